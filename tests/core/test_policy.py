"""Tables of cases for importer.core.policy: globs, upstream templates, rule resolution, validation and the schema.

Policies live in files: ``tests/data/policies/valid/*.yaml``, ``tests/data/policies/invalid/*.yaml`` (each with a
comment saying what is wrong) and ``examples/policy.yaml``. Every file is listed in exactly one table below.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from importer.app.policy_file import load_policy
from importer.core.platforms import parse
from importer.core.policy import (
    DEFAULT_POLICY,
    MAX_POLICY_BYTES,
    MAX_POLICY_NESTING,
    MAX_POLICY_NODES,
    PolicyError,
    Quarantine,
    Rule,
    parse_policy,
)

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "tests" / "data" / "policies"
EXAMPLE = ROOT / "examples" / "policy.yaml"
SCHEMA = ROOT / "schemas" / "policy.schema.json"


def _policy_file(name: str) -> Path:
    """`examples/policy.yaml` for "example", else a file of tests/data/policies/valid."""
    return EXAMPLE if name == "example" else POLICIES / "valid" / name


# --- repository globs ----------------------------------------------------------------------------

GLOB_CASES = [
    ("dockerhub/**", "dockerhub/library/nginx", True),
    ("dockerhub/**", "dockerhub/nginx", True),
    ("dockerhub/**", "dockerhub", False),  # `a/**` is what is inside `a`, not `a` itself
    ("dockerhub/**", "dockerhubx/nginx", False),
    ("dockerhub/**", "mirror/dockerhub/nginx", False),  # anchored at the start
    ("team/*", "team/app", True),
    ("team/*", "team/app/web", False),  # `*` stays within one segment
    ("team/*", "team", False),
    ("*", "app", True),
    ("*", "team/app", False),
    ("**", "app", True),
    ("**", "a/b/c", True),
    ("**/cache", "cache", True),  # a leading `**` may stand for zero segments
    ("**/cache", "a/b/cache", True),
    ("**/cache", "a/cache/x", False),  # anchored at the end
    ("**/cache", "a/mycache", False),
    ("a/**/b", "a/b", True),  # a middle `**` may stand for zero segments
    ("a/**/b", "a/x/y/b", True),
    ("a/**/b", "a/xb", False),
    ("a/**/b", "ab", False),
    ("a/**/**/b", "a/b", True),  # consecutive `**` mean one
    ("a/**/b/**", "a/x/b/c", True),
    ("a/**/b/**", "a/b", False),
    ("apps/?pi", "apps/api", True),
    ("apps/?pi", "apps/pi", False),  # `?` is exactly one character
    ("a?b", "a/b", False),  # and never a slash
    ("team/app", "team/app", True),
    ("team/app", "team/app2", False),
    ("dh-*", "dh-nginx", True),
    ("team/*-web", "team/shop-web", True),
    ("team/*-web", "team/shop-web/x", False),
    ("a.b/*", "axb/c", False),  # a dot is literal
    ("*/scratch-*", "team/scratch-1", True),
]


@pytest.mark.parametrize(
    ("pattern", "name", "expected"), GLOB_CASES, ids=[f"{p} {'~' if e else '!~'} {n}" for p, n, e in GLOB_CASES]
)
def test_glob_matches_whole_repository_names(pattern: str, name: str, expected: bool) -> None:
    """A rule's glob matches a repository name exactly when the documented glob semantics say so."""
    assert Rule(repositories=(pattern,)).matches(name) is expected


INVALID_GLOB_CASES = [
    ("", "empty repository glob"),
    ("Team/app", "repository names are lower-case, write 'team/app'"),
    ("a//b", "empty path segment"),
    ("/a", "empty path segment"),
    ("a/", "empty path segment"),
    ("a**", "'**' must be a whole path segment"),
    ("**a/b", "'**' must be a whole path segment"),
    ("a/***", "'**' must be a whole path segment"),
    ("a/[bc]", "'[' is not allowed in a repository glob"),
    ("a b", "' ' is not allowed in a repository glob"),
]


@pytest.mark.parametrize(("pattern", "fragment"), INVALID_GLOB_CASES, ids=[repr(p) for p, _ in INVALID_GLOB_CASES])
def test_invalid_glob_is_refused_when_the_rule_is_built(pattern: str, fragment: str) -> None:
    """Building a Rule compiles its globs, so an invalid glob fails at once with a message naming it."""
    with pytest.raises(ValueError, match=re.escape(fragment)):
        Rule(repositories=(pattern,))


def test_defaults_match_every_repository() -> None:
    """A rule without globs (defaults) matches any repository name."""
    assert DEFAULT_POLICY.defaults.matches("any/repository/at/all")


# --- upstream templates --------------------------------------------------------------------------

UPSTREAM_CASES = [
    ("path after **", ["dockerhub/**"], "docker.io/{path}", "dockerhub/library/nginx", "docker.io/library/nginx"),
    ("whole name", ["dockerhub/**"], "docker.io/{repository}", "dockerhub/nginx", "docker.io/dockerhub/nginx"),
    ("path after mid-segment *", ["dh-*"], "docker.io/library/{path}", "dh-nginx", "docker.io/library/nginx"),
    ("path after ?", ["apps/?pi"], "quay.io/org/{path}", "apps/api", "quay.io/org/api"),
    ("path keeps later literals", ["mirror/*/x"], "quay.io/{path}", "mirror/a/x", "quay.io/a/x"),
    ("leading ** strips nothing", ["**/cache"], "localhost:5000/{path}", "a/b/cache", "localhost:5000/a/b/cache"),
    ("glob without wildcard", ["team/app"], "ghcr.io/org/{path}", "team/app", "ghcr.io/org/team/app"),
    ("the glob that matched", ["other/**", "hub/**"], "docker.io/{path}", "hub/redis", "docker.io/redis"),
    ("both placeholders", ["hub/**"], "r.example.com/{path}/of/{repository}", "hub/x", "r.example.com/x/of/hub/x"),
    ("defaults: path is the name", [], "docker.io/{path}", "library/nginx", "docker.io/library/nginx"),
    ("no upstream", ["a/**"], None, "a/b", None),
]


@pytest.mark.parametrize(
    ("globs", "upstream", "repository", "expected"),
    [case[1:] for case in UPSTREAM_CASES],
    ids=[case[0] for case in UPSTREAM_CASES],
)
def test_upstream_for_fills_repository_and_path(
    globs: list[str], upstream: str | None, repository: str, expected: str | None
) -> None:
    """upstream_for puts the whole name in {repository} and the name minus the glob's literal prefix in {path}."""
    rule = Rule(repositories=tuple(globs), upstream=upstream)
    assert rule.upstream_for(repository) == expected


def test_upstream_for_refuses_a_repository_the_rule_does_not_match() -> None:
    """Asking a rule for the upstream of a name it does not match is a programming error, reported as such."""
    rule = Rule(repositories=("dockerhub/**",), upstream="docker.io/{path}", index=3)
    with pytest.raises(ValueError, match=r"rules\[3\]: repository 'quay/x' does not match"):
        rule.upstream_for("quay/x")


# --- resolution: valid policies ------------------------------------------------------------------


def resolved(
    rule: str,
    require: list[str],
    forbid: list[str],
    match: str,
    on_violation: str,
    upstream: str | None,
    *,
    flatten: bool = False,
    ignore: bool = False,
    signatures: str = "allow-loss",
) -> dict[str, Any]:
    """The expected view of a resolved rule, as `_view` gives it (``signatures: allow-loss`` unless told)."""
    return {
        "rule": rule,
        "require": require,
        "forbid": forbid,
        "match": match,
        "strict": match == "strict",
        "on_violation": on_violation,
        "upstream": upstream,
        "flatten": flatten,
        "ignore": ignore,
        "signatures": signatures,
        "keeps_signatures": signatures == "keep",
    }


def _view(rule: Rule, repository: str) -> dict[str, Any]:
    """What a resolved rule means for `repository`, in plain values."""
    return {
        "rule": rule.key_path,
        "require": [str(platform) for platform in rule.require],
        "forbid": list(rule.forbid),
        "match": rule.match,
        "strict": rule.strict,
        "on_violation": rule.on_violation,
        "upstream": rule.upstream_for(repository),
        "flatten": rule.flatten,
        "ignore": rule.ignore,
        "signatures": rule.signatures,
        "keeps_signatures": rule.keeps_signatures,
    }


AMD64 = "linux/amd64"
ARM64 = "linux/arm64"
DOCKERHUB_MIRROR = "registry.example.com:5000/mirror"
RESOLUTION_CASES = [
    ("minimal.yaml", "team/app", resolved("defaults", [AMD64], [], "compatible", "quarantine", None)),
    (
        "design-contract.yaml",
        "dockerhub/library/nginx",
        resolved("rules[0]", [AMD64, ARM64], [], "compatible", "reimport", "docker.io/library/nginx"),
    ),
    (
        "design-contract.yaml",
        "sandbox/tmp/x",
        resolved("rules[1]", [AMD64], [], "compatible", "quarantine", None, ignore=True),
    ),
    ("design-contract.yaml", "dockerhub", resolved("defaults", [AMD64], [], "compatible", "quarantine", None)),
    ("design-contract.yaml", "team/app", resolved("defaults", [AMD64], [], "compatible", "quarantine", None)),
    # overrides.yaml: explicit [] and null override defaults; the first matching rule wins.
    ("overrides.yaml", "team/special", resolved("rules[0]", [], [], "strict", "alert", None)),
    ("overrides.yaml", "team/special/sub", resolved("rules[0]", [], [], "strict", "alert", None)),
    (
        "overrides.yaml",
        "team/app",
        resolved("rules[1]", ["linux/arm/v7"], ["windows/*"], "compatible", "reimport", f"{DOCKERHUB_MIRROR}/team/app"),
    ),
    (
        "overrides.yaml",
        "team/cache",
        resolved(
            "rules[1]", ["linux/arm/v7"], ["windows/*"], "compatible", "reimport", f"{DOCKERHUB_MIRROR}/team/cache"
        ),
    ),
    (
        "overrides.yaml",
        "dh-nginx",
        resolved("rules[3]", [AMD64], ["windows/*"], "strict", "reimport", "docker.io/nginx", flatten=True),
    ),
    (
        "overrides.yaml",
        "hub/library/nginx",
        resolved("rules[3]", [AMD64], ["windows/*"], "strict", "reimport", "docker.io/library/nginx", flatten=True),
    ),
    (
        "overrides.yaml",
        "hub/nginx",
        resolved("defaults", [AMD64, ARM64], ["windows/*"], "strict", "reimport", f"{DOCKERHUB_MIRROR}/hub/nginx"),
    ),
    (
        "overrides.yaml",
        "a/b/cache",
        resolved(
            "rules[4]", [AMD64], ["windows", "linux/arm*"], "strict", "quarantine", f"{DOCKERHUB_MIRROR}/a/b/cache"
        ),
    ),
    (
        "ignored-rule-with-other-keys.yaml",
        "sandbox/x",
        resolved("rules[0]", [ARM64], [ARM64], "compatible", "reimport", None, flatten=True, ignore=True),
    ),
    (
        "ignored-rule-with-other-keys.yaml",
        "sandbox/keep/x",
        resolved("rules[0]", [ARM64], [ARM64], "compatible", "reimport", None, flatten=True, ignore=True),
    ),
    (
        "ignored-rule-with-other-keys.yaml",
        "team/app",
        resolved("rules[1]", [AMD64], [ARM64], "compatible", "quarantine", None),
    ),
    # yaml-features.yaml: anchors, merge keys and flow style read like yaml.safe_load reads them.
    (
        "yaml-features.yaml",
        "mirror/a/b",
        resolved("rules[0]", [AMD64, ARM64], [], "compatible", "reimport", "localhost:5000/a/b"),
    ),
    ("yaml-features.yaml", "apps/shop/web", resolved("rules[1]", [AMD64, ARM64], [], "strict", "quarantine", None)),
    ("yaml-features.yaml", "apps/api", resolved("rules[1]", [AMD64, ARM64], [], "strict", "quarantine", None)),
    ("yaml-features.yaml", "apps/pi", resolved("defaults", [AMD64, ARM64], [], "compatible", "quarantine", None)),
    # examples/policy.yaml
    ("example", "team/app", resolved("defaults", [AMD64], ["windows/*"], "compatible", "quarantine", None)),
    ("example", "sandbox/x", resolved("rules[0]", [AMD64], ["windows/*"], "compatible", "alert", None, ignore=True)),
    (
        "example",
        "team/scratch-1",
        resolved("rules[0]", [AMD64], ["windows/*"], "compatible", "alert", None, ignore=True),
    ),
    (
        "example",
        "dockerhub/library/nginx",
        resolved("rules[1]", [AMD64, ARM64], ["windows/*"], "compatible", "reimport", "docker.io/library/nginx"),
    ),
    (
        "example",
        "mcr/dotnet/runtime",
        resolved(
            "rules[2]",
            [AMD64, ARM64],
            ["windows/*"],
            "compatible",
            "reimport",
            "mcr.microsoft.com/dotnet/runtime",
            signatures="keep",
        ),
    ),
    (
        "example",
        "windows-team/iis",
        resolved("rules[3]", ["windows/amd64"], ["linux/*"], "compatible", "alert", None),
    ),
    (
        "example",
        "edge/camera",
        resolved("rules[4]", [ARM64, "linux/arm/v7"], ["windows/*", AMD64], "strict", "quarantine", None),
    ),
    (
        "example",
        "batch/legacy-etl",
        resolved("rules[5]", [AMD64], ["windows/*"], "compatible", "quarantine", None, flatten=True),
    ),
    ("example", "batch/etl", resolved("defaults", [AMD64], ["windows/*"], "compatible", "quarantine", None)),
]


@pytest.mark.parametrize(
    ("file_name", "repository", "expected"),
    RESOLUTION_CASES,
    ids=[f"{file_name}:{repository}" for file_name, repository, _ in RESOLUTION_CASES],
)
def test_rule_for_takes_the_first_matching_rule_filled_from_defaults(
    file_name: str, repository: str, expected: dict[str, Any]
) -> None:
    """rule_for returns the first rule whose globs match, with the keys it leaves out taken from defaults."""
    policy = load_policy(_policy_file(file_name))
    assert _view(policy.rule_for(repository), repository) == expected


def test_windows_os_version_is_kept_in_required_platforms() -> None:
    """A required Windows platform keeps its os.version (which str() leaves out), so build rules can apply."""
    rule = load_policy(EXAMPLE).rule_for("windows-team/iis")
    assert rule.require == (parse("windows(10.0.20348)/amd64"),)
    assert rule.require[0].os_version == "10.0.20348"


QUARANTINE_CASES = [
    ("design-contract.yaml", "move", "quarantine/team/app"),
    ("minimal.yaml", "move", "quarantine/team/app"),
    ("yaml-features.yaml", "lock", "held/team/app-quarantined"),
    ("example", "move", "quarantine/team/app"),
]


@pytest.mark.parametrize(("file_name", "mode", "destination"), QUARANTINE_CASES, ids=[c[0] for c in QUARANTINE_CASES])
def test_quarantine_settings_are_read_or_defaulted(file_name: str, mode: str, destination: str) -> None:
    """The quarantine mode and repository template come from the file, else move to quarantine/{repository}."""
    quarantine = load_policy(_policy_file(file_name)).quarantine
    assert (quarantine.mode, quarantine.repository_for("team/app")) == (mode, destination)


HOLDS_CASES = [
    ("quarantine/{repository}", "quarantine/team/app", True),
    ("quarantine/{repository}", "team/app", False),
    ("quarantine/{repository}", "quarantine", False),
    ("held/{repository}-q", "held/team/app-q", True),
    ("held/{repository}-q", "held/team/app", False),
    ("{repository}/quarantined", "team/app/quarantined", True),
    ("q/{repository}/{repository}", "q/a/a", True),
    ("q/{repository}/{repository}", "q/a/b", False),
]


@pytest.mark.parametrize(
    ("template", "repository", "expected"), HOLDS_CASES, ids=[f"{t} {r}" for t, r, _ in HOLDS_CASES]
)
def test_quarantine_knows_its_own_repositories(template: str, repository: str, expected: bool) -> None:
    """holds() tells whether a repository is a quarantine destination, so pushes there are not judged again."""
    assert Quarantine(repository=template).holds(repository) is expected


def test_default_policy_is_the_documented_one() -> None:
    """The embedded default requires linux/amd64 (compatible), quarantines by moving, and has no rules."""
    assert _view(DEFAULT_POLICY.rule_for("team/app"), "team/app") == resolved(
        "defaults", [AMD64], [], "compatible", "quarantine", None
    )
    assert DEFAULT_POLICY.rules == ()
    assert DEFAULT_POLICY.quarantine == Quarantine(mode="move", repository="quarantine/{repository}")
    assert load_policy(POLICIES / "valid" / "minimal.yaml").defaults == DEFAULT_POLICY.defaults


def test_inline_policy_is_named_inline() -> None:
    """parse_policy without a source names the policy "<inline>", in the Policy and in errors."""
    assert parse_policy("version: 1").source == "<inline>"
    with pytest.raises(PolicyError, match="^<inline>: version: unsupported policy version 3"):
        parse_policy("version: 3")


# --- validation: invalid policies ----------------------------------------------------------------

# (file, key path, message fragment, line, what the JSON schema does: True rejects, False cannot tell, None not YAML)
INVALID_CASES = [
    ("empty.yaml", "", "the policy is empty; it needs at least 'version: 1'", None, True),
    ("not-a-mapping.yaml", "", "must be a mapping with version, defaults, rules and quarantine (got a list)", 1, True),
    ("version-missing.yaml", "version", "missing: a policy starts with 'version: 1'", None, True),
    ("version-2.yaml", "version", "unsupported policy version 2; this tool reads version 1", 2, True),
    ("version-string.yaml", "version", "must be 1 (got '1')", 2, True),
    ("unknown-top-level-key.yaml", "rule", "unknown key 'rule' (did you mean 'rules'?)", 3, True),
    ("require-at-top-level.yaml", "require", "unknown key 'require' (it belongs under defaults or in a rule)", 3, True),
    (
        "unknown-defaults-key.yaml",
        "defaults.on_violaton",
        "unknown key 'on_violaton' (did you mean 'on_violation'?); known keys: require, forbid,",
        5,
        True,
    ),
    ("repositories-in-defaults.yaml", "defaults.repositories", "(only rules have repositories)", 4, True),
    ("unknown-rule-key.yaml", "rules[0].repository", "'repository' (did you mean 'repositories'?)", 4, True),
    ("unknown-quarantine-key.yaml", "quarantine.modes", "unknown key 'modes' (did you mean 'mode'?)", 4, True),
    ("defaults-not-a-mapping.yaml", "defaults", "must be a mapping (got a list)", 3, True),
    ("match-exact.yaml", "defaults.match", "must be one of compatible, strict (got 'exact')", 5, True),
    (
        "on-violation-unknown.yaml",
        "rules[0].on_violation",
        "must be one of reimport, quarantine, alert (got 'delete')",
        5,
        True,
    ),
    ("require-not-a-list.yaml", "defaults.require", "must be a list of platforms, like [linux/amd64]", 4, True),
    ("require-number.yaml", "defaults.require[1]", "must be a string (got 386)", 4, True),
    ("unknown-architecture.yaml", "rules[1].require[0]", "'linux/amd46' is not a known architecture", 7, False),
    ("unknown-os.yaml", "defaults.require[0]", "'linxu/amd64' is not a known os (did you mean 'linux'?)", 4, False),
    ("invalid-platform.yaml", "defaults.require[0]", "'linux/arm/v7/extra'", 4, True),
    ("duplicate-platform.yaml", "defaults.require[1]", "'linux/x86_64' is linux/amd64, which is already", 6, False),
    ("forbid-invalid-pattern.yaml", "defaults.forbid[0]", "'windows/*/*/*'", 4, True),
    ("forbid-unknown-os.yaml", "defaults.forbid[0]", "'windwos' is not a known os", 4, False),
    (
        "required-and-forbidden.yaml",
        "rules[0].require[0]",
        "required platform windows/amd64 is also forbidden by 'windows/*' (from defaults)",
        7,
        False,
    ),
    (
        "required-and-forbidden-in-defaults.yaml",
        "defaults.forbid[1]",
        "required platform linux/arm64 is also forbidden by 'linux/arm*'",
        5,
        False,
    ),
    (
        "reimport-without-upstream.yaml",
        "rules[0].on_violation",
        "reimport needs an upstream, but neither this rule nor defaults set one",
        5,
        True,
    ),
    (
        "reimport-without-upstream-in-defaults.yaml",
        "defaults.on_violation",
        "reimport needs an upstream, but defaults set none",
        4,
        True,
    ),
    (
        "reimport-upstream-null-in-rule.yaml",
        "rules[0]",
        "on_violation: reimport (from defaults) needs an upstream, but this rule sets upstream: null",
        7,
        False,
    ),
    ("upstream-unknown-placeholder.yaml", "defaults.upstream", "unknown placeholder {name}", 4, True),
    ("upstream-stray-brace.yaml", "defaults.upstream", "stray brace in 'docker.io/{path'", 4, True),
    ("upstream-no-host.yaml", "rules[0].upstream", "'library' is not a registry host", 5, True),
    ("upstream-no-path.yaml", "defaults.upstream", "'docker.io' must be host/path", 4, True),
    ("upstream-scheme.yaml", "defaults.upstream", "must be host/path without a scheme", 4, True),
    ("upstream-tag.yaml", "defaults.upstream", "must not carry a tag", 4, True),
    ("upstream-digest.yaml", "defaults.upstream", "must not carry a digest", 4, True),
    ("upstream-placeholder-host.yaml", "rules[0].upstream", "must be host/path with the host written out", 5, True),
    ("upstream-not-a-string.yaml", "defaults.upstream", "(got a list)", 4, True),
    ("quarantine-without-placeholder.yaml", "quarantine.repository", "must contain {repository}", 4, True),
    ("quarantine-into-itself.yaml", "quarantine.repository", "would quarantine an image into its own", 4, True),
    ("quarantine-unknown-placeholder.yaml", "quarantine.repository", "unknown placeholder {path}", 4, True),
    ("quarantine-mode.yaml", "quarantine.mode", "must be one of move, lock (got 'delete')", 4, True),
    ("repositories-empty.yaml", "rules[0].repositories", "must list at least one repository glob", 4, True),
    ("repositories-missing.yaml", "rules[0]", "missing 'repositories'", 4, True),
    ("rules-not-a-list.yaml", "rules", "must be a list of rules (got a mapping)", 3, True),
    ("rule-not-a-mapping.yaml", "rules[0]", "must be a mapping (got 'dockerhub/**')", 4, True),
    ("glob-upper-case.yaml", "rules[0].repositories[0]", "repository names are lower-case", 4, True),
    ("glob-double-star-in-segment.yaml", "rules[0].repositories[0]", "'**' must be a whole path segment", 4, True),
    ("glob-empty-segment.yaml", "rules[0].repositories[0]", "'team/': empty path segment", 4, True),
    ("glob-bracket.yaml", "rules[0].repositories[0]", "'[' is not allowed in a repository glob", 4, True),
    ("flatten-not-bool.yaml", "defaults.flatten", "must be true or false (got 'yes')", 4, True),
    ("flatten-two-platforms.yaml", "rules[0].flatten", "needs exactly one required platform", 6, True),
    ("flatten-inherited.yaml", "rules[0]", "flatten: true (from defaults) needs exactly one required", 6, False),
    ("ignore-not-bool.yaml", "rules[0].ignore", "must be true or false (got 'true')", 5, True),
    ("duplicate-key.yaml", "", "invalid YAML: duplicate key 'rules' (first at line 3)", 5, False),
    ("yaml-syntax-error.yaml", "", "invalid YAML: expected ',' or ']'", 5, None),
    ("python-tag.yaml", "", "invalid YAML: could not determine a constructor for the tag", 3, None),
]


@pytest.mark.parametrize(
    ("file_name", "key_path", "fragment", "line", "schema_rejects"), INVALID_CASES, ids=[c[0] for c in INVALID_CASES]
)
def test_invalid_policy_is_refused_naming_file_key_and_line(
    file_name: str, key_path: str, fragment: str, line: int | None, schema_rejects: bool | None
) -> None:
    """Each invalid policy fails with "<file>: <key path>: <what is wrong> (line N)", the line when YAML has one."""
    path = POLICIES / "invalid" / file_name
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    error = caught.value
    message = str(error)
    assert message.startswith(f"{path}: {key_path}: " if key_path else f"{path}: "), message
    assert fragment in message
    assert (error.path, error.line) == (key_path, line)
    assert message.endswith(f" (line {line})") if line is not None else "(line " not in message


def test_message_has_the_documented_shape() -> None:
    """The whole message reads "<file>: <key path>: <problem> (line N)", with the file name as given."""
    text = (POLICIES / "invalid" / "match-exact.yaml").read_text()
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, source="policy.yaml")
    assert str(caught.value) == "policy.yaml: defaults.match: must be one of compatible, strict (got 'exact') (line 5)"
    assert isinstance(caught.value, ValueError)


def test_rule_and_quarantine_refuse_unknown_choices_when_built_directly() -> None:
    """Rule and Quarantine check their choices even when built in code rather than read from a file."""
    with pytest.raises(ValueError, match=r"rules\[0\]: match must be one of compatible, strict \(got 'exact'\)"):
        Rule(repositories=("a/**",), match="exact", index=0)
    with pytest.raises(ValueError, match="on_violation must be one of reimport, quarantine, alert"):
        Rule(on_violation="delete")
    with pytest.raises(ValueError, match="quarantine.mode must be one of move, lock"):
        Quarantine(mode="delete")
    with pytest.raises(ValueError, match="must contain {repository}"):
        Quarantine(repository="quarantine")


# --- size limits and files -----------------------------------------------------------------------


def test_policy_text_over_one_mebibyte_is_refused() -> None:
    """parse_policy refuses text over 1 MiB before YAML reads it."""
    text = "version: 1\n" + "#" * MAX_POLICY_BYTES
    with pytest.raises(PolicyError, match=r"^big\.yaml: the policy is \d+ bytes; the limit is 1048576 bytes"):
        parse_policy(text, source="big.yaml")


def _nested_aliases(levels: int = 10, width: int = 9) -> str:
    """A flow list whose items are lists of aliases to the item before: width**levels strings if expanded."""
    items = [f"&l0 [{', '.join(['x'] * width)}]"]
    items += [f"&l{n} [{', '.join([f'*l{n - 1}'] * width)}]" for n in range(1, levels)]
    return "[" + ", ".join(items) + "]"


BILLION_LAUGHS = "\n".join(
    ["version: 1", "l0: &l0 [x, x, x, x, x, x, x, x, x]"]
    + [f"l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 9) + "]" for n in range(1, 10)]
    + ["rules: *l9"]
)
ALIAS_BOMB_CASES = [
    ("top-level keys", BILLION_LAUGHS, "<inline>: l0: unknown key 'l0'"),
    ("inside rules", f"version: 1\nrules: {_nested_aliases()}", r"<inline>: rules[0]: must be a mapping (got a list)"),
    (
        "inside repositories",
        f"version: 1\nrules: [{{repositories: {_nested_aliases()}}}]",
        "<inline>: rules[0].repositories[0]: must be a string (got a list)",
    ),
]


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in ALIAS_BOMB_CASES], ids=[c[0] for c in ALIAS_BOMB_CASES])
def test_alias_bomb_is_refused_without_expanding_it(text: str, expected: str) -> None:
    """A "billion laughs" of YAML aliases under 1 MiB fails at its first wrong value, in well under a second."""
    assert len(text) < 2000
    with pytest.raises(PolicyError, match="^" + re.escape(expected)):
        parse_policy(text)


LOAD_ERROR_CASES = [
    ("missing file", lambda tmp: tmp / "absent.yaml", "cannot read the policy file: No such file or directory"),
    ("directory", lambda tmp: tmp, "cannot read the policy file: Is a directory"),
    ("too large", lambda tmp: _write(tmp / "big.yaml", b"version: 1\n" + b"#" * MAX_POLICY_BYTES), "larger than"),
    ("not UTF-8", lambda tmp: _write(tmp / "latin1.yaml", b"version: 1\n# caf\xe9\n"), "not UTF-8 text"),
]


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("make_path", "fragment"), [c[1:] for c in LOAD_ERROR_CASES], ids=[c[0] for c in LOAD_ERROR_CASES]
)
def test_load_policy_names_the_file_it_could_not_use(tmp_path: Path, make_path: Any, fragment: str) -> None:
    """load_policy turns unreadable, oversized or non-UTF-8 files into a PolicyError naming the file."""
    path = make_path(tmp_path)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert fragment in str(caught.value)


def test_load_policy_accepts_a_byte_order_mark(tmp_path: Path) -> None:
    """A UTF-8 byte order mark (as some Windows editors write) does not break the file."""
    path = _write(tmp_path / "bom.yaml", b"\xef\xbb\xbfversion: 1\n")
    assert load_policy(path).source == str(path)


# --- the JSON schema -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema_validator() -> jsonschema.Draft202012Validator:
    """The editor schema, itself checked against the draft 2020-12 meta-schema."""
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


VALID_FILES = [EXAMPLE, *sorted((POLICIES / "valid").glob("*.yaml"))]


@pytest.mark.parametrize("path", VALID_FILES, ids=[p.name for p in VALID_FILES])
def test_schema_accepts_every_valid_policy(path: Path, schema_validator: jsonschema.Draft202012Validator) -> None:
    """Every policy the tool accepts also validates against the editor schema."""
    load_policy(path)
    errors = [error.message for error in schema_validator.iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


@pytest.mark.parametrize(
    ("file_name", "schema_rejects"), [(c[0], c[4]) for c in INVALID_CASES], ids=[c[0] for c in INVALID_CASES]
)
def test_schema_rejects_every_invalid_policy_it_can_express(
    file_name: str, schema_rejects: bool | None, schema_validator: jsonschema.Draft202012Validator
) -> None:
    """The schema refuses each invalid policy it can express, and the table says honestly which ones it cannot."""
    text = (POLICIES / "invalid" / file_name).read_text()
    if schema_rejects is None:
        with pytest.raises(yaml.YAMLError):
            yaml.safe_load(text)
        return
    assert schema_validator.is_valid(yaml.safe_load(text)) is not schema_rejects


def test_every_policy_file_is_in_a_table() -> None:
    """No policy file under tests/data/policies is left out of the tables above."""
    invalid_on_disk = {path.name for path in (POLICIES / "invalid").glob("*")}
    assert invalid_on_disk == {case[0] for case in INVALID_CASES}
    valid_on_disk = {path.name for path in (POLICIES / "valid").glob("*")}
    assert valid_on_disk == {case[0] for case in RESOLUTION_CASES} - {"example"}


# --- how deep and how big the YAML itself may be -----------------------------------------------------------------
# A policy needs 4 levels of nesting (document, rules, a rule, its repositories) and a few hundred YAML nodes. Deeper
# than MAX_POLICY_NESTING, or more nodes than MAX_POLICY_NODES (values, aliases and merged `<<` keys all count), is
# refused with the source and line, at once; before, deep nesting was a RecursionError traceback (tens of seconds for
# flow lists) and merge chains cost time quadratic in their length.


def _flow(levels: int, *, before: str = "version: 1\nrules: ") -> str:
    return before + "[" * levels + "]" * levels + "\n"


def _block_mappings(levels: int) -> str:
    """`x:` holding `k0:` holding `k1:` …, each one level deeper: the mapping at depth d starts on line d + 1."""
    return "version: 1\nx:\n" + "".join("  " * (level + 1) + f"k{level}:\n" for level in range(levels))


def _block_lists(levels: int) -> str:
    """`rules:` holding a list holding a list …: the list at depth d starts on line d + 1."""
    return "version: 1\nrules:\n" + "".join("  " * (level + 1) + "-\n" for level in range(levels))


def _merge_chain(length: int) -> str:
    """Each mapping merges the one before and adds a key: PyYAML copies 1 + 2 + … + length pairs."""
    lines = ["version: 1", "a0: &a0 {k0: 1}"]
    lines += [f"a{n}: &a{n} {{<<: *a{n - 1}, k{n}: 1}}" for n in range(1, length)]
    return "\n".join(lines) + "\n"


def _merge_fan(keys: int, merges: int) -> str:
    """One mapping of `keys` keys merged `merges` times into another: keys × merges pairs to look at."""
    wide = ", ".join(f"k{n}: 1" for n in range(keys))
    return f"version: 1\na: &a {{{wide}}}\nb: {{<<: [{', '.join(['*a'] * merges)}]}}\n"


def _flat_list(size: int) -> str:
    """A flow list of one-character strings filling `size` bytes."""
    items = (size - 40) // 2
    return "version: 1\nrules: [" + ",".join(["a"] * items) + "]\n"


TOO_DEEP = MAX_POLICY_NESTING + 1
NESTING_CASES = {
    # id: (text, line of the first collection deeper than the limit)
    "flow-lists-5000-deep": (_flow(5000), 2),
    "flow-mappings-5000-deep": ("version: 1\nrules: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n", 2),
    "block-mappings-200-deep": (_block_mappings(200), TOO_DEEP + 1),
    "block-lists-500-deep": (_block_lists(500), TOO_DEEP + 1),
    "inside-a-rule": ("version: 1\nrules:\n  - repositories: " + "[" * 3000 + "]" * 3000 + "\n", 3),
    "one-level-over-the-limit": (_flow(TOO_DEEP - 1), 2),
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("text", "line"), NESTING_CASES.values(), ids=NESTING_CASES.keys())
def test_nesting_deeper_than_the_limit_is_refused_with_source_and_line(text: str, line: int) -> None:
    """Deep nesting is a PolicyError naming the source, the limit and the line where it went too deep: never a
    RecursionError, and at once."""
    started = time.perf_counter()
    with pytest.raises(PolicyError) as refused:
        parse_policy(text, source="deep.yaml")
    assert time.perf_counter() - started < 5
    assert str(refused.value) == (
        f"deep.yaml: nested more than {MAX_POLICY_NESTING} levels deep; a policy needs 4 (line {line})"
    )


def test_nesting_at_the_limit_is_read() -> None:
    """MAX_POLICY_NESTING levels are read; the policy then fails on its shape, not its depth."""
    with pytest.raises(PolicyError, match=r"^deep\.yaml: rules\[0\]: must be a mapping \(got a list\)"):
        parse_policy(_flow(MAX_POLICY_NESTING - 1), source="deep.yaml")


SIZE_CASES = {
    "merge-chain-of-6000": _merge_chain(6000),
    "one-mapping-merged-5000-times": _merge_fan(20_000, 5000),
    "one-mebibyte-flat-list": _flat_list(MAX_POLICY_BYTES),
    "many-rules": "version: 1\nrules:\n" + "  - {repositories: [a]}\n" * 30_000,
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("text", SIZE_CASES.values(), ids=SIZE_CASES.keys())
def test_more_yaml_nodes_than_the_limit_is_refused_at_once(text: str) -> None:
    """Values, aliases and merged keys count against one budget of nodes: past it, a PolicyError with the line,
    in well under a second of work instead of tens of seconds (or quadratic time in a chain of merges)."""
    assert len(text.encode()) <= MAX_POLICY_BYTES
    started = time.perf_counter()
    with pytest.raises(PolicyError) as refused:
        parse_policy(text, source="big.yaml")
    assert time.perf_counter() - started < 5
    assert re.fullmatch(
        rf"big\.yaml: more than {MAX_POLICY_NODES} YAML nodes \(values, aliases and merged keys\); "
        r"a policy needs far fewer \(line \d+\)",
        str(refused.value),
    ), str(refused.value)


def test_a_large_real_policy_fits_the_node_budget() -> None:
    """1,000 rules of the usual shape (about 13 nodes each) are read."""
    rule = "  - repositories: [\"team-{n}/**\"]\n    require: [linux/amd64, linux/arm64]\n    on_violation: alert\n"
    text = "version: 1\nrules:\n" + "".join(rule.format(n=n) for n in range(1000))
    assert len(parse_policy(text).rules) == 1000


def test_a_recursion_error_while_reading_becomes_a_policy_error() -> None:
    """Whatever the stack has left, reading a policy never lets a RecursionError out: it is a PolicyError."""
    depth = len(inspect.stack(0))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 60)  # too little for nesting that is within the limit
    try:
        with pytest.raises(PolicyError, match=r"^deep\.yaml: too deeply nested to read"):
            parse_policy(_flow(MAX_POLICY_NESTING - 1), source="deep.yaml")
    finally:
        sys.setrecursionlimit(limit)


def test_merges_flattened_from_the_far_end_of_a_chain_are_refused_by_depth() -> None:
    """A mapping that merges the last of a chain of not yet flattened merges (they sit deeper in the document)
    flattens the whole chain inside itself: past MAX_POLICY_NESTING that is refused, not a RecursionError."""
    items = ["&a0 {k0: 1}"] + [f"&a{n} {{<<: *a{n - 1}, k{n}: 1}}" for n in range(1, 3000)]
    text = "version: 1\nchain: [" + ", ".join(items) + "]\nlast: {<<: *a2999}\n"
    with pytest.raises(PolicyError) as refused:
        parse_policy(text, source="merges.yaml")
    assert str(refused.value) == (
        f"merges.yaml: merge keys (<<) nested more than {MAX_POLICY_NESTING} levels deep (line 2)"
    )
