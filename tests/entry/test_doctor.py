"""`python -m importer doctor`: the command as an operator runs it, settings from the environment, against the local
stack (real registries, Azurite), with its table, its `--json`, its exit codes and what it never prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from importer.entry.cli import main
from testbed.azurite import ACCOUNT_KEY, ACCOUNT_NAME, Azurite, read_only_tables
from testbed.faults import FaultProxy
from testbed.images import ImageBuilder, single
from testbed.push import push
from testbed.registry import LocalRegistry, free_port

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "doctor-webhook-token-0123456789"
PASSWORD = "pw-upstream-do-not-print-7f3a"


@pytest.fixture
def environment(clean_settings: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A clean PLATFORM_GUARD_* environment with the ledger in the test's folder (`clean_settings`), and no
    AZURE_CLIENT_ID."""
    clean_settings.delenv("AZURE_CLIENT_ID", raising=False)
    return clean_settings


def doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["doctor", "--timeout", "20", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def upstream(tmp_path: Path, builder: ImageBuilder) -> Iterator[LocalRegistry]:
    with LocalRegistry(tmp_path / "upstream") as running:
        push(builder, single(builder, "linux/amd64", seed="up"), running.host, "vendor/app", "1")
        yield running


def test_the_local_stack_passes(environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                registry: LocalRegistry, upstream: LocalRegistry) -> None:
    """A guarded registry, an upstream in the policy, SQLite ledger and queue: a table of checks, exit 0."""
    environment.setenv("PLATFORM_GUARD_REGISTRIES", registry.host)
    environment.setenv("PLATFORM_GUARD_WEBHOOK_TOKEN", TOKEN)
    environment.setenv("PLATFORM_GUARD_POLICY", (
        "version: 1\nrules:\n  - repositories: ['shop/**']\n"
        f"    upstream: '{upstream.host}/vendor/{{path}}'\n    on_violation: reimport\n"))
    code, out, err = doctor(capsys)
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[0].split() == ["CHECK", "TARGET", "RESULT", "DETAIL"]
    for check, target in (("reachable", registry.host), ("push", registry.host), ("upstream", upstream.host),
                          ("ledger", "SQLite"), ("queue", "SQLite")):
        assert any(line.split()[:1] == [check.split()[0]] and target in line and " ok " in line for line in lines), (
            check, out)
    assert lines[-1].startswith("12 checks:") and lines[-1].endswith("exit 0")
    assert TOKEN not in out


def test_json_for_machines(environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                           registry: LocalRegistry) -> None:
    environment.setenv("PLATFORM_GUARD_REGISTRIES", registry.host)
    code, out, _ = doctor(capsys, "--json")
    report = json.loads(out)
    assert code == report["exit_code"] == 0
    assert set(report) == {"exit_code", "counts", "checks"}
    assert set(report["checks"][0]) == {"check", "target", "result", "detail", "fix"}
    assert {check["check"] for check in report["checks"]} >= {"policy", "reachable", "catalog", "read", "push",
                                                               "delete", "import", "ledger", "queue", "topic",
                                                               "alert webhook"}


def test_a_refused_push_exits_1_and_prints_the_fix(environment: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str], registry: LocalRegistry) -> None:
    with FaultProxy(registry.host, rate=1.0, faults=("403",), match=r"^POST /v2/.+/blobs/uploads/") as proxy:
        environment.setenv("PLATFORM_GUARD_REGISTRIES", proxy.host)
        code, out, _ = doctor(capsys)
    assert code == 1
    assert "To grant what is missing" in out
    key = "PLATFORM_GUARD_REGISTRY_127_0_0_1_" + proxy.host.rsplit(":", 1)[1]
    assert f"    # {proxy.host} is reached anonymously: set {key}_USERNAME and {key}_PASSWORD" in out


def test_an_unreachable_registry_exits_3(environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    host = f"127.0.0.1:{free_port()}"
    environment.setenv("PLATFORM_GUARD_REGISTRIES", host)
    code, out, _ = doctor(capsys)
    assert code == 3
    assert any(line.startswith("reachable") and "unreachable" in line for line in out.splitlines())


def test_a_settings_error_exits_2(environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    environment.setenv("PLATFORM_GUARD_LOOP_GUARD", "lots")
    code, out, err = doctor(capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: settings: PLATFORM_GUARD_LOOP_GUARD")


def test_a_bad_policy_is_reported_in_the_table_and_exits_2(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], registry: LocalRegistry
) -> None:
    """The policy row says what is wrong; everything else is still checked (with the default policy)."""
    environment.setenv("PLATFORM_GUARD_REGISTRIES", registry.host)
    environment.setenv("PLATFORM_GUARD_POLICY", "version: 1\ndefaults:\n  on_violation: explode\n")
    code, out, _ = doctor(capsys)
    assert code == 2
    policy = next(line for line in out.splitlines() if line.startswith("policy"))
    assert "error" in policy and "on_violation" in policy
    assert any(line.startswith("push") and " ok " in line for line in out.splitlines())


def test_azure_storage_through_azurite(environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                       azurite: Azurite, registry: LocalRegistry) -> None:
    """Table ledger and Storage queue by connection string: ok; a read-only table SAS: exit 1 with the role
    assignment for the app's identity. No key, SAS, password or token is printed."""
    environment.setenv("PLATFORM_GUARD_REGISTRIES", registry.host)
    environment.setenv(f"PLATFORM_GUARD_REGISTRY_{registry.host.replace('.', '_').replace(':', '_')}_USERNAME", "ci")
    environment.setenv(f"PLATFORM_GUARD_REGISTRY_{registry.host.replace('.', '_').replace(':', '_')}_PASSWORD",
                       PASSWORD)
    environment.setenv("PLATFORM_GUARD_TABLES_CONNECTION_STRING", azurite.connection_string)
    environment.setenv("PLATFORM_GUARD_QUEUE_CONNECTION_STRING", azurite.connection_string)
    environment.setenv("PLATFORM_GUARD_QUEUE_NAME", "doctor-cli-events")
    code, out, err = doctor(capsys)
    assert code == 0, out + err
    read_only = read_only_tables(azurite)
    environment.setenv("PLATFORM_GUARD_TABLES_CONNECTION_STRING", read_only)
    environment.setenv("AZURE_CLIENT_ID", "22222222-3333-4444-5555-666666666666")
    code, refused, err = doctor(capsys)
    assert code == 1, refused + err
    assert ('    az role assignment create --assignee 22222222-3333-4444-5555-666666666666 '
            '--role "Storage Table Data Contributor" '
            f'--scope "$(az storage account show --name {ACCOUNT_NAME} --query id --output tsv)"') in refused
    for secret in (ACCOUNT_KEY, read_only.split("SharedAccessSignature=")[1], PASSWORD):
        assert secret not in out + refused + err


def test_the_command_runs_as_a_process() -> None:
    """`python -m importer doctor --json` in a process of its own, settings from its environment."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_GUARD_")}
    environment["PLATFORM_GUARD_REGISTRIES"] = f"127.0.0.1:{free_port()}"
    result = subprocess.run([sys.executable, "-m", "importer", "doctor", "--json", "--timeout", "10"], cwd=ROOT,
                            env=environment, capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stderr
    assert json.loads(result.stdout)["exit_code"] == 3


def test_doctor_is_not_loaded_with_the_function_app() -> None:
    """The Functions cold start pays nothing for doctor: function_app's import leaves its modules unloaded."""
    script = ("import json, sys, function_app; print(json.dumps(sorted(m for m in sys.modules if m in "
              "('importer.entry.doctor', 'importer.app.doctor', 'importer.adapters.probes', 'importer.ports.probes'))))")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == []
