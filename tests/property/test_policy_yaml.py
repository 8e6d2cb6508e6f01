"""Properties of policy reading (importer.core.policy.parse_policy, the policy file, the policy app setting) over
hostile YAML.

For any text: `parse_policy` returns a Policy or raises PolicyError (`<source>: <key path>: <problem> (line N)`),
within the CPU and memory bounds of `tests.property.hostile`, for policies that are valid in shape with hostile
values, and for YAML hazards put where a value goes: alias bombs (shared when loaded, expanded by anything that
walks or prints them), nesting a thousand levels deep, huge numbers, unsafe and odd tags, merge keys, duplicate
keys. The same text through the file (`load_policy`, any bytes) and the app setting (`load_settings`) ends in
a Policy, a PolicyError, or a SettingsError. A parsed policy picks a rule for any repository name without raising.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from importer.app.policy_file import load_policy
from importer.app.settings import Settings, SettingsError, load_settings
from importer.core.policy import Policy, PolicyError, parse_policy
from tests.property.hostile import (
    Shapes,
    bounded,
    hostile_text,
    one_value_corrupted,
    scaled_examples,
    yaml_alias_bomb,
    yaml_deep,
    yaml_hazards,
)

PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7", "windows/amd64", "arm64", "linux/riscv64")
PATTERNS = ("windows/*", "linux/arm", "*/386", "linux/arm/v[5-6]", "[!l]*")
GLOBS = ("team/**", "dockerhub/**", "**", "a/*/b", "dh-*", "x?y", "**/app")
UPSTREAMS = ("docker.io/{path}", "ghcr.io/acme/{repository}", "127.0.0.1:5000/mirror/{path}", None)
_SECTION_KEYS = frozenset({"require", "forbid", "repositories", "upstream", "match", "on_violation", "version",
                           "rules", "defaults", "quarantine", "repository", "mode", "flatten", "ignore",
                           "signatures"})


def _rule_fields(shapes: Shapes) -> dict[str, st.SearchStrategy[Any]]:
    field = shapes.field
    return {
        "require": field(st.lists(st.sampled_from(PLATFORMS), max_size=3, unique=True)),
        "forbid": field(st.lists(st.sampled_from(PATTERNS), max_size=2)),
        "match": field(st.sampled_from(("compatible", "strict"))),
        "on_violation": field(st.sampled_from(("alert", "quarantine", "reimport"))),
        "upstream": field(st.sampled_from(UPSTREAMS)),
        "flatten": field(st.booleans()),
        "signatures": field(st.sampled_from(("keep", "allow-loss"))),
    }


def _policy(shapes: Shapes) -> st.SearchStrategy[Any]:
    field, obj = shapes.field, shapes.obj
    rule = obj({"repositories": field(st.lists(st.sampled_from(GLOBS), min_size=1, max_size=3)),
                "ignore": field(st.booleans()), **_rule_fields(shapes)}, extra=False)
    return obj({
        "version": field(st.just(1)),
        "defaults": field(obj(_rule_fields(shapes), extra=False)),
        "rules": field(st.lists(rule, max_size=3)),
        "quarantine": field(obj({"mode": field(st.sampled_from(("move", "lock"))),
                                 "repository": field(st.sampled_from(("quarantine/{repository}", "q/{repository}/x")))},
                                extra=False)),
    }, extra=False)


def _with_hazard(document: dict[str, Any], key: str, hazard: str) -> str:
    """The document as YAML with one value replaced by the hazard's text: a top-level key, or `defaults.<key>`."""
    section, _, inner = key.partition(".")
    kept = {name: value for name, value in document.items() if name != section}
    text = yaml.safe_dump(kept, sort_keys=False, allow_unicode=True) if kept else ""
    if inner:
        return text + f"{section}:\n  {inner}: {hazard}\n"
    return text + f"{section}: {hazard}\n"


def _dumped(document: Any) -> str:
    try:
        return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    except yaml.YAMLError:  # values PyYAML will not write (lone surrogates): JSON is YAML too
        return json.dumps(document)


def _bomb_under(levels: int, fanout: int, key: str) -> str:
    """A policy whose `key` is an alias bomb (with `version: 1` besides, unless the bomb is the version)."""
    return yaml_alias_bomb(levels, fanout, name=key) + ("" if key == "version" else "version: 1\n")


@functools.cache
def policy_texts() -> st.SearchStrategy[str]:
    """Policy texts: hostile in shape, valid with one value corrupted, a YAML hazard in one place, or any text."""
    corrupted = _policy(Shapes(hostile=False)).flatmap(
        lambda document: one_value_corrupted(document, favoured=_SECTION_KEYS, raw_json=False))
    hazard_keys = st.sampled_from(("version", "rules", "quarantine", "defaults.require", "defaults.forbid",
                                   "defaults.upstream", "defaults.match"))
    return st.one_of(
        _policy(Shapes(hostile=True, raw_json=False)).map(_dumped),
        corrupted.map(_dumped),
        st.builds(_with_hazard, _policy(Shapes(hostile=False)), hazard_keys, yaml_hazards()),
        st.builds(_bomb_under, st.integers(2, 9), st.integers(2, 9),
                  st.sampled_from(("version", "rules", "defaults", "quarantine"))),
        hostile_text(),
    )


# Worst inputs: issue 12 item 9 (deep YAML), and alias bombs under each key (tiny text, ~10^9 strings expanded).
DEEP_REQUIRE = "version: 1\ndefaults:\n  require: " + yaml_deep(5_000) + "\n"
DEEP_BLOCK = "version: 1\ndefaults:\n" + "".join("  " * (level + 1) + "a:\n" for level in range(3_000))
BOMBS = [yaml_alias_bomb(9, 9, name=key) for key in ("rules", "defaults", "quarantine", "version")]


def check_parsed(outcome: Policy | Exception) -> None:
    if isinstance(outcome, PolicyError):
        assert str(outcome).startswith(outcome.source), outcome
        return
    assert isinstance(outcome, Policy)
    for name in ("team/app", "a" * 255, "quarantine/x", "dockerhub/library/nginx"):
        assert outcome.rule_for(name) is not None


@given(text=policy_texts())
@example(text=DEEP_REQUIRE)
@example(text=DEEP_BLOCK)
@example(text=BOMBS[0])
@example(text=BOMBS[1])
@example(text=BOMBS[2])
@example(text=BOMBS[3])
@example(text="version: " + "1" * 5_000 + "\n")
@example(text="version: 1\ndefaults:\n  require: [" + ", ".join(["linux/amd64"] * 50_000) + "]\n")
def test_any_policy_text_is_a_policy_or_a_policy_error(text: str) -> None:
    """Time only: PyYAML runs ~5 times slower under tracemalloc, and an alias expanded costs time as it costs memory."""
    outcome = bounded(lambda: parse_policy(text, source="fuzz.yaml"), allowed=(PolicyError,), peak_bytes=None,
                      what="policy")
    check_parsed(outcome)


READERS: dict[str, Callable[[bytes, Path], Policy | Settings]] = {
    "file": lambda raw, path: load_policy(_written(raw, path)),
    "setting": lambda raw, _path: load_settings({"PLATFORM_GUARD_POLICY": raw.decode("utf-8", "replace"),
                                                 "HOME": "/nonexistent"}),
}


def _written(raw: bytes, path: Path) -> Path:
    path.write_bytes(raw)
    return path


@settings(max_examples=scaled_examples(0.5))
@given(raw=st.one_of(policy_texts().map(lambda text: text.encode("utf-8", "surrogatepass")), st.binary(max_size=64)),
       reader=st.sampled_from(sorted(READERS)))
@example(raw=DEEP_REQUIRE.encode(), reader="file")
@example(raw=DEEP_REQUIRE.encode(), reader="setting")
@example(raw=b"\xef\xbb\xbfversion: 1\n\xff", reader="file")
def test_policy_files_and_settings_end_in_a_policy_or_a_named_error(raw: bytes, reader: str,
                                                                     fuzz_directory: Callable[[], Path]) -> None:
    """Any bytes as the policy file or the policy app setting: a policy, or PolicyError / SettingsError."""
    path = fuzz_directory() / "policy.yaml"
    outcome = bounded(lambda: READERS[reader](raw, path), allowed=(PolicyError, SettingsError), peak_bytes=None,
                      what=reader)
    assert isinstance(outcome, Policy | Settings | PolicyError | SettingsError)
