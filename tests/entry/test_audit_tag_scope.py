"""`audit REGISTRY/REPOSITORY:TAG`: one tag swept, and the per-tag command a report prints, run as printed.

A dry-run audit of a registry that PLATFORM_GUARD_REGISTRIES does not list prints, for each violation, a command that
fixes exactly that tag: `platform-guard audit REGISTRY/REPOSITORY:TAG --policy FILE --remediate`. The tests run it as
a user pastes it (shlex.split, the venv's bin directory on PATH, the same directory and settings) against a real
distribution registry, and check that the tag was fixed (re-imported from a real upstream registry, or quarantined)
and that every other violating tag is as it was. Naming the registry on the command line is the consent to change
it (importer/entry/commands/audit.py); nothing else is remediated.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from importer.app.sweep import SweepOptions, parse_scope
from testbed.images import ImageBuilder, multi, single
from testbed.push import fetch_manifest, list_tags, push
from testbed.registry import LocalRegistry

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
PROGRAM_DIRECTORY = Path(sys.executable).parent  # the venv's bin: where `pip install -e .` put platform-guard
POLICY_TEMPLATE = """\
version: 1
defaults:
  require: [linux/amd64]
  on_violation: quarantine
rules:
  - repositories: ["mirror/**"]
    upstream: "{upstream}/library/{{path}}"
    require: [linux/amd64, linux/arm64]
    on_violation: reimport
quarantine:
  mode: move
  repository: "quarantine/{{repository}}"
"""


# -- the scope ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("127.0.0.1:5000", ("127.0.0.1:5000", None, None), id="registry-only"),
        pytest.param("MyReg.azurecr.io/team/**", ("myreg.azurecr.io", "team/**", None), id="glob"),
        pytest.param("127.0.0.1:5000/team/app", ("127.0.0.1:5000", "team/app", None), id="one-repository"),
        pytest.param("127.0.0.1:5000/team/app:1.0", ("127.0.0.1:5000", "team/app", "1.0"), id="one-tag"),
        pytest.param("Reg.example:443/a/b/c:Latest_2", ("reg.example:443", "a/b/c", "Latest_2"),
                     id="tag-keeps-its-case-host-with-port"),
    ],
)
def test_parse_scope_takes_a_registry_a_glob_or_one_tag(text: str, expected: tuple[str, str | None, str | None]) -> None:
    """REGISTRY[/REPO_GLOB] or REGISTRY/REPOSITORY:TAG: the host (lower-cased), the glob and the tag."""
    assert parse_scope(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("127.0.0.1:5000/team/*:1.0", "no wildcard", id="tag-of-a-glob"),
        pytest.param("127.0.0.1:5000/team/app:", "invalid tag", id="empty-tag"),
        pytest.param("127.0.0.1:5000/team/app:-bad", "invalid tag", id="tag-starting-with-a-dash"),
        pytest.param("127.0.0.1:5000/team/app:1:2", "invalid tag", id="two-colons"),
        pytest.param("127.0.0.1:5000/team/app@sha256:" + "a" * 64, "is not allowed", id="digest-is-not-a-scope"),
        pytest.param("127.0.0.1:5000/Team/app:1", "lower-case", id="upper-case-repository"),
    ],
)
def test_parse_scope_refuses_a_tag_scope_that_is_not_one_tag(text: str, message: str) -> None:
    """A tag names one tag of one repository: a glob, an empty or invalid tag, a digest are refused, saying why."""
    with pytest.raises(ValueError, match=message):
        parse_scope(text)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"tag": "1.0"}, "no wildcard", id="tag-without-repository"),
        pytest.param({"repositories": "team/**", "tag": "1.0"}, "no wildcard", id="tag-of-a-glob"),
        pytest.param({"repositories": "team/app", "tag": "a b"}, "invalid tag", id="invalid-tag"),
    ],
)
def test_sweep_options_refuse_a_tag_without_one_repository(options: dict[str, str], message: str) -> None:
    """SweepOptions checks a tag as parse_scope does, so a Sweep made in code cannot sweep `tag` of many repositories."""
    with pytest.raises(ValueError, match=message):
        SweepOptions(**options)


# -- the printed command, run as printed ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Seeded:
    """A registry with violations (PLATFORM_GUARD_REGISTRIES does not list it), its upstream, and where to run."""

    host: str
    upstream: str
    directory: Path
    upstream_digests: dict[str, str]  # mirror tag → the digest the upstream has for it


def user_environment(directory: Path) -> dict[str, str]:
    """What a user's shell has: the venv's bin on PATH, a ledger of its own, no guarded registries."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PLATFORM_GUARD_")}
    environment["PATH"] = os.pathsep.join([str(PROGRAM_DIRECTORY), environment.get("PATH", "")])
    environment["PLATFORM_GUARD_LEDGER"] = str(directory / "ledger.db")
    return environment


def run_as_printed(command: str, directory: Path) -> subprocess.CompletedProcess[str]:
    """Run a printed command line as a user pastes it into a POSIX shell (no shell features are used in them)."""
    return subprocess.run(shlex.split(command), cwd=directory, env=user_environment(directory), capture_output=True,
                          text=True, timeout=120)


def digests(host: str, repository: str) -> dict[str, str]:
    return {tag: fetch_manifest(host, repository, tag).digest for tag in sorted(list_tags(host, repository))}


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[Seeded]:
    """team/app: v1, v2, v3 each its own arm64-only image (quarantined one by one), `ok` compliant. mirror/lib: 1.0
    and 1.1 amd64-only (arm64 is required too), re-imported from the upstream's library/lib, which has both."""
    if shutil.which("platform-guard", path=str(PROGRAM_DIRECTORY)) is None:
        pytest.fail(f"{PROGRAM_DIRECTORY}/platform-guard is missing: run scripts/setup (pip install -e .)", pytrace=False)
    builder = ImageBuilder(tmp_path / "layout")
    with LocalRegistry(tmp_path / "guarded") as guarded, LocalRegistry(tmp_path / "upstream") as upstream:
        for tag in ("v1", "v2", "v3"):
            push(builder, single(builder, "linux/arm64", seed=f"team/app:{tag}"), guarded.host, "team/app", tag)
        push(builder, single(builder, "linux/amd64", seed="ok"), guarded.host, "team/app", "ok")
        upstream_digests = {}
        for tag in ("1.0", "1.1"):
            push(builder, single(builder, "linux/amd64", seed=f"mirror/lib:{tag}"), guarded.host, "mirror/lib", tag)
            right = multi(builder, ["linux/amd64", "linux/arm64"], seed=f"upstream lib {tag}")
            upstream_digests[tag] = push(builder, right, upstream.host, "library/lib", tag)
        directory = tmp_path / "work"
        directory.mkdir()
        (directory / "policy.yaml").write_text(POLICY_TEMPLATE.format(upstream=upstream.host))
        yield Seeded(guarded.host, upstream.host, directory, upstream_digests)


def dry_run(seeded: Seeded) -> dict[tuple[str, str], str | None]:
    """`platform-guard audit HOST --policy policy.yaml --json`: each pending violation and its suggested command."""
    result = run_as_printed(f"platform-guard audit {seeded.host} --policy policy.yaml --json", seeded.directory)
    assert result.returncode == 1, result.stderr  # violations left
    report = json.loads(result.stdout)
    return {(item["repository"], item["tag"]): item["suggestion"] for item in report["violations"]}


@pytest.mark.parametrize(
    ("target", "fixed"),
    [
        pytest.param(("team/app", "v2"), "quarantined", id="quarantine-one-tag"),
        pytest.param(("mirror/lib", "1.0"), "reimported", id="reimport-one-tag"),
    ],
)
def test_the_printed_per_tag_command_fixes_exactly_that_tag(seeded: Seeded, target: tuple[str, str],
                                                            fixed: str) -> None:
    """The dry run prints `platform-guard audit HOST/REPO:TAG --policy policy.yaml --remediate` for each violation; run
    as printed, with PLATFORM_GUARD_REGISTRIES unset, it exits 0 having fixed that tag alone: the other violating tags
    keep their digests, and a dry run afterwards finds one violation fewer."""
    repository, tag = target
    before = {name: digests(seeded.host, name) for name in ("team/app", "mirror/lib")}
    suggestions = dry_run(seeded)
    assert set(suggestions) == {("team/app", "v1"), ("team/app", "v2"), ("team/app", "v3"), ("mirror/lib", "1.0"),
                                ("mirror/lib", "1.1")}
    command = suggestions[target]
    assert command == f"platform-guard audit {seeded.host}/{repository}:{tag} --policy policy.yaml --remediate"

    result = run_as_printed(command, seeded.directory)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"remediating {seeded.host}, named on the command line" in result.stderr
    after = {name: digests(seeded.host, name) for name in ("team/app", "mirror/lib")}
    expected = {name: dict(tags) for name, tags in before.items()}
    if fixed == "quarantined":
        del expected[repository][tag]
        quarantined = digests(seeded.host, f"quarantine/{repository}")
        assert before[repository][tag] in quarantined.values(), quarantined
    else:
        expected[repository][tag] = seeded.upstream_digests[tag]
    assert after == expected
    assert set(dry_run(seeded)) == set(suggestions) - {target}


def test_a_tag_the_repository_does_not_have_is_a_failure_naming_it(seeded: Seeded) -> None:
    """`audit HOST/REPO:TAG` of a tag that does not exist exits 3 and says which tag; nothing is swept or changed."""
    before = digests(seeded.host, "team/app")
    result = run_as_printed(f"platform-guard audit {seeded.host}/team/app:v9 --policy policy.yaml --remediate --json",
                            seeded.directory)
    assert result.returncode == 3, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["tags"] == 0 and report["repository_errors"] == [
        {"repository": "team/app", "error": f"{seeded.host}/team/app has no tag v9"}]
    assert digests(seeded.host, "team/app") == before
