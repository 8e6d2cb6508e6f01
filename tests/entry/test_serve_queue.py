"""`serve` with its queue and worker processes, driven by a real registry's notifications: a push whose upstream is
down delays no other push, ends in one `failed` outcome and one dead letter, and `redrive` brings it back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from importer.adapters.ledger.sqlite import SqliteLedger
from importer.core.outcome import Outcome
from testbed.faults import FaultProxy
from testbed.images import ImageBuilder, multi, single
from testbed.push import push
from testbed.registry import LocalRegistry, free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "serve-queue-token-0123456789"
POLICY = """
version: 1
defaults:
  require: [linux/amd64]
rules:
  - repositories: ["fix/**"]
    require: [linux/amd64, linux/arm64]
    on_violation: reimport
    upstream: "{upstream}/mirror/{{repository}}"
"""


def _cli(environment: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "importer", *arguments], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=60)


def _wait(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[dict[str, str], LocalRegistry, FaultProxy, LocalRegistry, SqliteLedger]]:
    port = free_port()
    with LocalRegistry(tmp_path / "upstream") as upstream, FaultProxy(upstream.host, rate=0.0) as upstream_proxy:
        registry = LocalRegistry(tmp_path / "guarded", token=TOKEN,
                                 notify_url=f"http://127.0.0.1:{port}/api/registry-events")
        environment = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_GUARD_")},
            "PLATFORM_GUARD_REGISTRIES": registry.host,
            "PLATFORM_GUARD_WEBHOOK_TOKEN": TOKEN,
            "PLATFORM_GUARD_LEDGER": str(tmp_path / "ledger.db"),
            "PLATFORM_GUARD_POLICY": POLICY.format(upstream=upstream_proxy.host),
            "PLATFORM_GUARD_EVENT_RETRY": "3/0.2",
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "importer", "serve", "--port", str(port), "--threads", "1", "--workers", "2"],
            cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        try:
            _wait(lambda: _healthy(port), "serve answering /api/health")
            with registry:
                ledger = SqliteLedger(tmp_path / "ledger.db")
                try:
                    yield environment, registry, upstream_proxy, upstream, ledger
                finally:
                    ledger.close()
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                assert server.wait(timeout=40) == 0, server.stderr.read().decode() if server.stderr else ""
            finally:
                if server.poll() is None:
                    server.kill()
                    server.wait()


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def _finals(ledger: SqliteLedger, repository: str) -> list[Outcome]:
    return [o for o in ledger.outcomes(repository=repository, limit=100) if o.final and o.tag == "1"]


def test_a_push_whose_upstream_is_down_delays_no_other_push_and_is_redriven(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Notifications → serve (intake) → queue → worker threads and a worker process; the stuck push fails once,
    is listed by `outcomes --failed`, and `redrive --all` decides it once the upstream is back."""
    environment, registry, upstream_proxy, upstream, ledger = served
    builder = ImageBuilder(tmp_path / "layout")
    upstream_proxy.configure(rate=1.0, faults=("503",))
    push(builder, single(builder, "linux/arm64", seed="laptop"), registry.host, "fix/app", "1")
    for n in range(4):
        push(builder, builder.image("linux/amd64", seed=f"ok-{n}"), registry.host, f"team/app-{n}", "1")

    for n in range(4):  # decided while the stuck push is still being retried
        _wait(lambda n=n: [o.result for o in _finals(ledger, f"team/app-{n}")] == ["compliant"], f"team/app-{n}")
    _wait(lambda: bool(_finals(ledger, "fix/app")), "fix/app's final outcome")
    [failed] = _finals(ledger, "fix/app")
    assert failed.result == "failed" and "gave up after 3 attempts" in (failed.error or "")

    listed = _cli(environment, "outcomes", "--failed")
    assert listed.returncode == 0 and "fix/app:1" in listed.stdout and "redrive" in listed.stdout, listed
    every = _cli(environment, "outcomes", "--all", "--repository", "fix/app")
    assert every.stdout.count("retrying") == 2 and "retrying" not in _cli(environment, "outcomes").stdout

    upstream_proxy.configure(rate=0.0)
    push(builder, multi(builder, ["linux/amd64", "linux/arm64"]), upstream.host, "mirror/fix/app", "1")
    redriven = _cli(environment, "redrive", "--all")
    assert redriven.returncode == 0 and redriven.stdout.startswith("1 event back"), redriven
    _wait(lambda: "reimported" in [o.result for o in _finals(ledger, "fix/app")], "fix/app re-imported after the re-drive")
    oldest_first = [o.result for o in reversed(_finals(ledger, "fix/app"))]
    assert oldest_first[:2] == ["failed", "reimported"]  # then our own write's push settles as compliant
    assert set(oldest_first[2:]) <= {"compliant"}
