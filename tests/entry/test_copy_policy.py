"""`copy` into a guarded registry (or with --policy) is judged by the policy before anything is written
(importer.app.copy_policy): a violation is refused with exit 1 and nothing lands in the target, unless --force.

Real registries on loopback: a source holding an index (linux/amd64 + linux/arm64), a single image and an SBOM
artifact, pushed with skopeo; a fresh target per test, read back with plain HTTP (tags and catalog).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from importer.entry.cli import main
from testbed.images import ImageBuilder, multi, single
from testbed.push import list_tags, push
from testbed.registry import LocalRegistry

POLICY = """\
version: 1
defaults:
  require: [linux/amd64]
rules:
  - repositories: ["edge/**"]
    require: [linux/arm64]
  - repositories: ["sandbox/**"]
    ignore: true
"""
AMD64_MISSING = "would violate the policy: offers linux/arm64; nothing offered is runnable on linux/amd64"
ARM64_MISSING = "would violate the policy: offers linux/amd64; nothing offered is runnable on linux/arm64"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """team/multi:1 (linux/amd64 + linux/arm64), team/single-arm:1 (linux/arm64) and team/sbom:1 (an SBOM)."""
    root = tmp_path_factory.mktemp("copy-policy-source")
    builder = ImageBuilder(root / "layout")
    with LocalRegistry(root / "registry") as running:
        push(builder, multi(builder, ["linux/amd64", "linux/arm64"]), running.host, "team/multi", "1")
        push(builder, single(builder, "linux/arm64"), running.host, "team/single-arm", "1")
        push(builder, builder.artifact("application/spdx+json"), running.host, "team/sbom", "1")
        yield running


@pytest.fixture
def target(tmp_path: Path, clean_settings: pytest.MonkeyPatch) -> Iterator[LocalRegistry]:
    """An empty registry to copy into; no PLATFORM_GUARD_* settings (tests/conftest.py's `clean_settings`) and no
    docker config from outside the test."""
    clean_settings.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    with LocalRegistry(tmp_path / "target") as running:
        yield running


def catalog(host: str) -> list[str]:
    with urllib.request.urlopen(f"http://{host}/v2/_catalog", timeout=10) as response:
        return list(json.loads(response.read()).get("repositories") or [])


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("src", "dst", "options", "guarded", "code", "message"),
    [
        pytest.param("team/multi:1", "apps/web:1", ["--platform", "linux/arm64"], True, 1, AMD64_MISSING,
                     id="subset-without-a-required-platform-is-refused"),
        pytest.param("team/multi:1", "apps/web:1", ["--platform", "linux/arm64", "--flatten"], True, 1,
                     AMD64_MISSING, id="flattened-child-is-judged"),
        pytest.param("team/multi:1", "apps/web:1", ["--exclude", "linux/amd64"], True, 1, AMD64_MISSING,
                     id="exclude-that-drops-a-required-platform-is-refused"),
        pytest.param("team/single-arm:1", "apps/web:1", [], True, 1, AMD64_MISSING,
                     id="whole-single-image-is-judged"),
        pytest.param("team/multi:1", "apps/web:1", ["--platform", "linux/amd64"], True, 0, None,
                     id="subset-with-the-required-platform-is-copied"),
        pytest.param("team/multi:1", "apps/web:1", [], True, 0, None, id="whole-index-is-copied"),
        pytest.param("team/multi:1", "edge/web:1", ["--platform", "linux/amd64"], True, 1, ARM64_MISSING,
                     id="rule-matched-by-glob-requires-arm64"),
        pytest.param("team/multi:1", "edge/web:1", ["--platform", "linux/arm64", "--flatten"], True, 0, None,
                     id="rule-matched-by-glob-is-satisfied"),
        pytest.param("team/multi:1", "sandbox/web:1", ["--platform", "linux/arm64"], True, 0, None,
                     id="ignored-repository-is-not-judged"),
        pytest.param("team/multi:1", "quarantine/apps/web:1", ["--platform", "linux/arm64"], True, 0, None,
                     id="quarantine-repository-is-not-judged"),
        pytest.param("team/sbom:1", "apps/sbom:1", [], True, 0, None, id="artifact-is-ignored"),
        pytest.param("team/multi:1", "apps/web:1", ["--platform", "linux/arm64"], False, 0, None,
                     id="unguarded-target-is-not-judged"),
        pytest.param("team/multi:1", "apps/web:1", ["--platform", "linux/arm64", "--policy", "FILE"], False, 1,
                     AMD64_MISSING, id="policy-flag-judges-an-unguarded-target"),
    ],
)
def test_copy_is_judged_by_the_policy_before_anything_is_written(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, source: LocalRegistry,
    target: LocalRegistry, src: str, dst: str, options: list[str], guarded: bool, code: int, message: str | None,
) -> None:
    """A refused copy exits 1, says why on stderr and leaves the target registry empty; an allowed one copies."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    if guarded:
        monkeypatch.setenv("PLATFORM_GUARD_REGISTRIES", target.host)
        monkeypatch.setenv("PLATFORM_GUARD_POLICY_FILE", str(policy))
    options = [str(policy) if option == "FILE" else option for option in options]
    repository, tag = dst.rsplit(":", 1)
    got, out, err = run(capsys, "copy", f"{source.host}/{src}", f"{target.host}/{dst}", *options)
    assert got == code, err
    if code:
        assert message is not None and message in err
        assert "nothing was copied (--force copies anyway)" in err
        assert catalog(target.host) == [] and out == ""
    else:
        assert list_tags(target.host, repository) == [tag]
        assert err == ""


def test_refusal_as_json_names_the_verdict(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, source: LocalRegistry, target: LocalRegistry,
) -> None:
    """With --json the refusal is also one JSON object on stdout: not copied, and the verdict fields of `check`."""
    monkeypatch.setenv("PLATFORM_GUARD_REGISTRIES", target.host)
    code, out, err = run(capsys, "copy", f"{source.host}/team/multi:1", f"{target.host}/apps/web:1",
                         "--platform", "linux/arm64", "--json")
    assert code == 1, err
    document = json.loads(out)
    assert document["copied"] is False
    assert (document["verdict"], document["missing"], document["platforms"]) == (
        "violation", ["linux/amd64"], ["linux/arm64"])
    assert (document["repository"], document["tag"]) == ("apps/web", "1")
    assert catalog(target.host) == []


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_force_copies_a_violation_and_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, source: LocalRegistry, target: LocalRegistry,
    as_json: bool,
) -> None:
    """--force writes the tag anyway, exits 0, and warns that the target violates the policy."""
    monkeypatch.setenv("PLATFORM_GUARD_REGISTRIES", target.host)
    code, out, err = run(capsys, "copy", f"{source.host}/team/multi:1", f"{target.host}/apps/web:1",
                         "--platform", "linux/arm64", "--force", *(["--json"] if as_json else []))
    assert code == 0, err
    assert list_tags(target.host, "apps/web") == ["1"]
    assert "violates the policy, copied anyway (--force)" in err
    if as_json:
        document = json.loads(out)
        assert document["forced"] is True and document["policy"]["verdict"] == "violation"
        assert document["platforms"] == ["linux/arm64"]


def test_the_help_documents_exit_1_and_shows_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["copy", "--help"])
    text = capsys.readouterr().out
    assert "1 refused: the target would violate the policy" in " ".join(text.split())
    assert "\nexamples:\n  platform-guard copy " in text
