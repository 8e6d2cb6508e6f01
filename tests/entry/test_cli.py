"""The command line as users run it: `python -m importer …` in a subprocess, exit codes and messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from importer.adapters.ledger.sqlite import SqliteLedger
from testbed.images import ImageBuilder, multi, single
from testbed.push import push
from testbed.registry import LocalRegistry, free_port

ROOT = Path(__file__).resolve().parents[2]
AMD64_POLICY = "version: 1\ndefaults:\n  require: [linux/amd64]\n"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_GUARD_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "importer", *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(AMD64_POLICY)
    return path


@pytest.mark.parametrize("command", ["check", "serve", "outcomes", "demo"])
def test_help(command: str) -> None:
    """Every command has --help that describes it and exits 0."""
    result = run(command, "--help")
    assert result.returncode == 0 and "usage: platform-guard " + command in result.stdout


@pytest.mark.parametrize(
    ("platforms", "code", "verdict"),
    [(["linux/amd64"], 0, "compliant"), (["linux/arm64"], 1, "violation")],
    ids=["compliant-exits-0", "violation-exits-1"],
)
def test_check_exit_codes_and_json(
    registry: LocalRegistry, builder: ImageBuilder, policy_file: Path, platforms: list[str], code: int, verdict: str
) -> None:
    """`check --json` prints the verdict contract and exits 0 or 1 against a loopback registry with no settings."""
    digest = push(builder, multi(builder, platforms), registry.host, "team/app", "1")
    result = run("check", f"{registry.host}/team/app:1", "--policy", str(policy_file), "--json")
    assert result.returncode == code, result.stderr
    record = json.loads(result.stdout)
    assert list(record) == [
        "reference", "repository", "tag", "digest", "media_type", "kind", "platforms", "required", "missing",
        "forbidden", "inconsistent", "verdict", "action", "reason",
    ]
    assert (record["verdict"], record["digest"], record["repository"], record["tag"]) == (verdict, digest, "team/app", "1")


def test_check_human_output(registry: LocalRegistry, builder: ImageBuilder, policy_file: Path) -> None:
    """Without --json, `check` prints a short report naming what is missing."""
    push(builder, single(builder, "linux/arm64"), registry.host, "team/app", "1")
    result = run("check", f"{registry.host}/team/app:1", "--policy", str(policy_file))
    assert result.returncode == 1
    assert "violation" in result.stdout and "missing      linux/amd64" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "127.0.0.1:5000/Team/App:1"], "repository"),
        (["check", "127.0.0.1:5000/team/app:1", "--policy", "/nonexistent/policy.yaml"], "/nonexistent/policy.yaml"),
        (["check"], "the following arguments are required: REF"),
        (["frobnicate"], "invalid choice"),
    ],
    ids=["invalid-repository-name", "missing-policy-file", "missing-ref", "unknown-command"],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    """Usage and policy errors exit 2 with a message naming the problem, never a traceback."""
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_invalid_policy_names_file_and_key(tmp_path: Path) -> None:
    """A policy error names the file and the key path."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ndefaults:\n  match: exact\n")
    result = run("check", "127.0.0.1:5000/team/app:1", "--policy", str(bad))
    assert result.returncode == 2 and f"{bad}: defaults.match" in result.stderr


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("PLATFORM_GUARD_REGISTRIES", "not a host!", "PLATFORM_GUARD_REGISTRIES"),
        ("PLATFORM_GUARD_WEBHOOK_TOKEN", "short", "at least 16 characters"),
        ("PLATFORM_GUARD_REGISTRY_DOCKER_IO_USERNAME", "me", "PLATFORM_GUARD_REGISTRY_DOCKER_IO_PASSWORD is missing"),
    ],
    ids=["bad-registry-host", "short-token", "username-without-password"],
)
def test_invalid_settings_exit_2(setting: str, value: str, message: str) -> None:
    """A bad setting is reported by name at start-up."""
    env = {setting: value}
    if "DOCKER_IO" in setting:
        env["PLATFORM_GUARD_POLICY"] = (
            "version: 1\ndefaults:\n  require: [linux/amd64]\n  upstream: docker.io/{repository}\n"
        )
    result = run("check", "127.0.0.1:5000/team/app:1", env=env)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_unreachable_registry_exits_3(policy_file: Path) -> None:
    """A registry that cannot be reached (after bounded retries) exits 3 with the reason."""
    port = free_port()
    result = run("check", f"127.0.0.1:{port}/team/app:1", "--policy", str(policy_file))
    assert result.returncode == 3
    assert f"127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr


def test_missing_tag_exits_3(registry: LocalRegistry, policy_file: Path) -> None:
    """A tag that does not exist is a registry error (exit 3), not a violation."""
    result = run("check", f"{registry.host}/team/app:nope", "--policy", str(policy_file))
    assert result.returncode == 3 and "not found" in result.stderr.lower()


def test_outcomes_lists_the_ledger(tmp_path: Path) -> None:
    """`outcomes` prints what the ledger holds, as a table and as JSON lines."""
    from importer.adapters.ledger.sqlite import SqliteLedger
    from importer.core.outcome import Outcome

    ledger_path = tmp_path / "ledger.db"
    ledger = SqliteLedger(ledger_path)
    ledger.record(Outcome(event_id="e1", received_at="2026-11-26T00:00:00Z", result="compliant", repository="a/b",
                          reference="r.example/a/b:1", reason="fine"))
    ledger.record(Outcome(event_id="e2", received_at="2026-11-26T00:00:01Z", result="alerted", repository="a/c",
                          reference="r.example/a/c:1", reason="offers linux/arm64"))
    ledger.close()
    env = {"PLATFORM_GUARD_LEDGER": str(ledger_path)}
    table = run("outcomes", env=env)
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].startswith("RECEIVED") and "r.example/a/b:1" in lines[1] and "offers linux/arm64" in lines[2]
    as_json = run("outcomes", "--json", "--repository", "a/c", env=env)
    records = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [r["event_id"] for r in records] == ["e2"]


def test_serve_answers_and_logs_one_json_line_per_outcome(registry: LocalRegistry, builder: ImageBuilder,
                                                         tmp_path: Path) -> None:
    """`serve` answers health, decides a registry notification, and prints the outcome as one JSON line."""
    import time
    import urllib.request

    digest = push(builder, single(builder, "linux/amd64"), registry.host, "team/app", "1")
    port = free_port()
    token = "serve-test-token-0123456789"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_GUARD_")}
    environment.update(PLATFORM_GUARD_REGISTRIES=registry.host, PLATFORM_GUARD_WEBHOOK_TOKEN=token,
                       PLATFORM_GUARD_LEDGER=str(tmp_path / "ledger.db"))
    process = subprocess.Popen([sys.executable, "-m", "importer", "serve", "--port", str(port)], cwd=ROOT,
                               env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1) as response:
                    assert json.load(response) == {"status": "ok"}
                    break
            except OSError:
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)
        event = {"events": [{"id": "serve-1", "timestamp": "2026-11-26T10:00:00Z", "action": "push",
                             "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
                                        "repository": "team/app", "tag": "1", "size": 1, "length": 1},
                             "request": {"id": "r", "addr": "127.0.0.1", "host": registry.host, "method": "PUT",
                                         "useragent": "test"},
                             "actor": {}, "source": {"addr": "x", "instanceID": "y"}}]}
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/registry-events", method="POST",
                                         data=json.dumps(event).encode(),
                                         headers={"Authorization": f"Bearer {token}",
                                                  "Content-Type": "application/vnd.docker.distribution.events.v1+json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert (response.status, json.load(response)["queued"]) == (202, ["serve-1"])
        ledger = SqliteLedger(tmp_path / "ledger.db")
        try:  # a worker thread decides it; the outcome reaches the ledger and stdout
            while not ledger.outcomes(event_id="serve-1") and time.monotonic() < deadline + 15:
                time.sleep(0.05)
        finally:
            ledger.close()
    finally:
        process.terminate()
        stdout, stderr = process.communicate(timeout=10)
    records = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    assert [(r["event_id"], r["result"], r["digest"]) for r in records] == [("serve-1", "compliant", digest)]
    assert "Traceback" not in stderr
