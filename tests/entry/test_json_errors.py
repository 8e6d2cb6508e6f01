"""Every command that takes `--json` says a failure on stdout as an error document too, so that a script reading
stdout is never left with nothing: `{"error": {"kind", "message", "reference"}}`, the kind from the one mapping in
importer/entry/formats/errors.py, the exit code the command documents. Without `--json`, stdout stays empty. Real
registries on loopback ports; `check` and `audit` (with `-o`) are covered in test_output_formats.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from importer.entry.cli import main
from testbed.images import ImageBuilder, multi
from testbed.push import push
from testbed.registry import LocalRegistry

CLOSED_PORT_HOST = "127.0.0.1:1"  # nothing listens on port 1 here: connection refused


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """A registry holding an amd64 + arm64 index at team/app:1."""
    root = tmp_path_factory.mktemp("json-errors")
    builder = ImageBuilder(root / "layout")
    with LocalRegistry(root / "registry") as running:
        push(builder, multi(builder, ["linux/amd64", "linux/arm64"]), running.host, "team/app", "1")
        yield running


@pytest.fixture(autouse=True)
def no_settings(tmp_path: Path, clean_settings: pytest.MonkeyPatch) -> None:
    clean_settings.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))  # never the real ~/.docker


CASES = [
    pytest.param(["copy", "{host}/team/missing:1", "{host}/team/copy:1"], "not_found", 3, "{host}/team/missing:1",
                 id="copy-missing-source"),
    pytest.param(["copy", f"{CLOSED_PORT_HOST}/team/app:1", "{host}/team/copy:1"], "unreachable", 3,
                 f"{CLOSED_PORT_HOST}/team/app:1", id="copy-unreachable-source"),
    pytest.param(["copy", "{host}/team/app:1", "{host}/team/copy:1", "--platform", "windows/amd64"], "invalid", 2,
                 "{host}/team/app:1", id="copy-platform-not-offered"),
    pytest.param(["copy", "{host}/team/app:1", "{host}/team/copy:1", "--platform", "nonsense"], "usage", 2, None,
                 id="copy-bad-platform"),
    pytest.param(["chart-images", "{host}/charts/missing:1.0.0"], "not_found", 3, "{host}/charts/missing:1.0.0",
                 id="chart-images-missing"),
    pytest.param(["chart-images", f"oci://{CLOSED_PORT_HOST}/charts/shop:1.0.0"], "unreachable", 3,
                 f"{CLOSED_PORT_HOST}/charts/shop:1.0.0", id="chart-images-unreachable"),
    pytest.param(["chart-images", "{tmp}/not-a-chart.tgz"], "invalid_content", 2, "{tmp}/not-a-chart.tgz",
                 id="chart-images-not-a-chart"),
]


def _argv(template: list[str], host: str, tmp: Path) -> list[str]:
    return [word.format(host=host, tmp=tmp) for word in template]


@pytest.mark.parametrize(("argv", "kind", "exit_code", "reference"), CASES)
def test_a_failure_with_json_is_an_error_document(
    source: LocalRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], kind: str,
    exit_code: int, reference: str | None,
) -> None:
    (tmp_path / "not-a-chart.tgz").write_bytes(b"this is no gzip archive")
    code = main([*_argv(argv, source.host, tmp_path), "--json"])
    out, err = capsys.readouterr()
    assert code == exit_code, err
    document = json.loads(out)
    assert document["error"]["kind"] == kind, document
    assert document["error"]["reference"] == (reference.format(host=source.host, tmp=tmp_path) if reference else None)
    assert document["error"]["message"] and document["error"]["message"] in err  # the same failure, said twice
    assert err.startswith("error: ")


@pytest.mark.parametrize(("argv", "kind", "exit_code", "reference"), CASES)
def test_without_json_stdout_stays_empty(
    source: LocalRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], kind: str,
    exit_code: int, reference: str | None,
) -> None:
    (tmp_path / "not-a-chart.tgz").write_bytes(b"this is no gzip archive")
    code = main(_argv(argv, source.host, tmp_path))
    out, err = capsys.readouterr()
    assert (code, out) == (exit_code, "")
    assert err.startswith("error: ")


def test_doctor_json_says_a_settings_error_as_an_error_object(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PLATFORM_GUARD_LOOP_GUARD", "many")
    code = main(["doctor", "--json"])
    out, err = capsys.readouterr()
    document = json.loads(out)
    assert code == document["exit_code"] == 2
    assert document["error"]["kind"] == "usage" and "PLATFORM_GUARD_LOOP_GUARD" in document["error"]["message"]
    assert document["checks"] == []
