"""Crash safety, proven by killing real worker processes (SIGKILL) at every failpoint of a re-import and of a
quarantine, then letting a fresh worker take the event over when the dead one's lease runs out.

After each kill and restart: the tag is compliant (re-import) or gone from the guarded repository (quarantine), the
offending image is preserved and readable by its digest, the event has exactly one final outcome, and no message
lease or remediation claim is left behind. Every case runs with the SQLite ledger and with the Table Storage ledger
on Azurite.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from importer.adapters.queue.sqlite import SqliteQueue
from importer.adapters.registry.oci import OciRegistry
from importer.app.inspection import evaluate
from importer.app.remediation import quarantine_tag
from importer.app.settings import load_settings
from importer.core.events import PushEvent, event_to_json, ordering_key
from importer.core.media_types import OCI_MANIFEST
from importer.entry.composition import ledger_for
from testbed.azurite import Azurite, node_binary
from testbed.images import ImageBuilder, multi, single
from testbed.push import push
from testbed.registry import LocalRegistry

ROOT = Path(__file__).resolve().parents[2]
POLICY = """
version: 1
defaults:
  require: [linux/amd64]
  on_violation: quarantine
rules:
  - repositories: ["fix/**"]
    require: [linux/amd64, linux/arm64]
    on_violation: reimport
    upstream: "{upstream}/mirror/{{repository}}"
"""
# Where each kind of remediation passes, in order; a failpoint a kind never reaches just lets the first worker finish.
REIMPORT_POINTS = ["after-lease", "after-verdict", "after-preserve", "after-blobs", "after-children",
                   "before-tag-write", "after-tag-write", "before-outcome"]
QUARANTINE_POINTS = ["after-lease", "after-verdict", "after-preserve", "before-quarantine-delete",
                     "after-quarantine-delete", "before-outcome"]


@dataclass
class Bed:
    guarded: LocalRegistry
    upstream: LocalRegistry
    builder: ImageBuilder
    environment: dict[str, str]
    ledger_path: Path
    queue_path: Path


@pytest.fixture(scope="module", params=["sqlite", "tables"])
def bed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Bed:  # type: ignore[misc]
    root = tmp_path_factory.mktemp(f"crash-{request.param}")
    with contextlib.ExitStack() as stack:
        guarded = stack.enter_context(LocalRegistry(root / "guarded"))
        upstream = stack.enter_context(LocalRegistry(root / "upstream"))
        environment = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_GUARD_")},
            "PLATFORM_GUARD_REGISTRIES": guarded.host,
            "PLATFORM_GUARD_LEDGER": str(root / "ledger.db"),
            "PLATFORM_GUARD_POLICY": POLICY.format(upstream=upstream.host),
            "PLATFORM_GUARD_LEASE_SECONDS": "1",
            "PLATFORM_GUARD_EVENT_RETRY": "5/0.1",
        }
        if request.param == "tables":
            if node_binary() is None:
                pytest.skip("node is not installed, so Azurite cannot run")
            azurite = stack.enter_context(Azurite(root / "azurite"))
            environment["PLATFORM_GUARD_TABLES_CONNECTION_STRING"] = azurite.connection_string
        settings = load_settings(environment)
        yield Bed(guarded, upstream, ImageBuilder(root / "layout"), environment, settings.ledger_path,
                  settings.queue_path)


def _worker(bed: Bed, failpoint: str | None) -> subprocess.Popen[bytes]:
    environment = dict(bed.environment)
    if failpoint:
        environment["PLATFORM_GUARD_FAILPOINTS"] = failpoint
    return subprocess.Popen([sys.executable, "-m", "importer", "work", "--threads", "1"], cwd=ROOT, env=environment,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _final_outcomes(bed: Bed, event_id: str) -> list[str]:
    ledger = ledger_for(load_settings(bed.environment))  # SQLite or Table Storage, as the workers use
    try:
        return [o.result for o in ledger.outcomes(event_id=event_id, limit=100) if o.final]
    finally:
        ledger.close()


def _wait(condition, what: str, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.05)


def _run(bed: Bed, repository: str, bad: str, failpoint: str) -> tuple[int | None, list[str]]:
    event = PushEvent(event_id=f"crash-{repository}", schema="distribution", action="push", origin=bed.guarded.host,
                      repository=repository, tag="1", digest=bad, media_type=OCI_MANIFEST, size=1, artifact="image",
                      actor="ci", user_agent="test", occurred_at=None)
    queue = SqliteQueue(bed.queue_path)
    try:
        queue.put(ordering_key(event), event_to_json(event, received_at="2026-12-06T00:00:00.000Z"), now=time.time())
    finally:
        queue.close()
    first = _worker(bed, failpoint)
    try:  # killed at the failpoint, or (a point this kind never passes) finished and idle: stop it then
        _wait(lambda: first.poll() is not None or bool(_final_outcomes(bed, event.event_id)), "first worker")
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)
    killed = first.returncode
    second = _worker(bed, None)
    try:
        _wait(lambda: bool(_final_outcomes(bed, event.event_id)), f"{repository}: a final outcome after the restart")
        time.sleep(0.3)  # let the worker settle its message
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0, second.stderr.read().decode() if second.stderr else ""
    return killed, _final_outcomes(bed, event.event_id)


def _leftovers(bed: Bed, repository: str, digest: str) -> tuple[int, bool]:
    """(messages left in the queue, whether a remediation claim on the tag is still held)."""
    with sqlite3.connect(bed.queue_path) as queue_db:
        messages = int(queue_db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
    ledger = ledger_for(load_settings(bed.environment))
    try:  # a probe that may take the claim only if nobody holds it
        key = f"{bed.guarded.host}/{repository}:1@{digest}"
        free = ledger.claim_remediation(key, lease_seconds=60, now=time.time(), owner="probe")
        if free:
            ledger.finish_remediation(key, owner="probe")
    finally:
        ledger.close()
    return messages, not free


@pytest.mark.parametrize("failpoint", REIMPORT_POINTS)
def test_reimport_survives_a_kill_at(bed: Bed, failpoint: str) -> None:
    """Killed at this point of a re-import, the restarted worker completes it: compliant tag, offender kept."""
    repository = f"fix/{failpoint}"
    good = multi(bed.builder, ["linux/amd64", "linux/arm64"], attestations=True)
    push(bed.builder, good, bed.upstream.host, f"mirror/{repository}", "1")
    bad = push(bed.builder, single(bed.builder, "linux/arm64", seed=f"re-{failpoint}"), bed.guarded.host, repository,
               "1")
    killed, finals = _run(bed, repository, bad, failpoint)

    assert killed == -signal.SIGKILL, f"the worker was not killed at {failpoint}"
    assert finals == ["reimported"], finals
    direct = OciRegistry(bed.guarded.host)
    settings = load_settings(bed.environment)
    _, verdict = evaluate(settings.policy, direct, repository, "1")
    assert verdict.verdict == "compliant", verdict.reason
    kept = direct.head_manifest(f"quarantine/{repository}", quarantine_tag("1", bad))
    assert kept is not None and kept.digest == bad
    direct.get_manifest(f"quarantine/{repository}", bad)  # preserved and verifiable by its digest
    assert _leftovers(bed, repository, bad) == (0, False)


@pytest.mark.parametrize("failpoint", QUARANTINE_POINTS)
def test_quarantine_survives_a_kill_at(bed: Bed, failpoint: str) -> None:
    """Killed at this point of a quarantine, the restarted worker completes it: tag removed, offender kept."""
    repository = f"hold/{failpoint}"
    bad = push(bed.builder, single(bed.builder, "linux/arm64", seed=f"q-{failpoint}"), bed.guarded.host, repository,
               "1")
    killed, finals = _run(bed, repository, bad, failpoint)

    assert killed == -signal.SIGKILL, f"the worker was not killed at {failpoint}"
    assert finals == ["quarantined"], finals
    direct = OciRegistry(bed.guarded.host)
    assert direct.head_manifest(repository, "1") is None
    kept = direct.head_manifest(f"quarantine/{repository}", quarantine_tag("1", bad))
    assert kept is not None and kept.digest == bad
    direct.get_manifest(f"quarantine/{repository}", bad)
    assert _leftovers(bed, repository, bad) == (0, False)


def test_a_push_between_the_compare_and_the_tag_write_ends_on_the_tag(bed: Bed, tmp_path: Path) -> None:
    """The newer push wins even inside the check-then-write window: the worker pauses after its compare, a newer
    image is pushed, the re-import then overwrites the tag, and the newer push's own event puts it back and judges it."""
    repository = "fix/race"
    push(bed.builder, multi(bed.builder, ["linux/amd64", "linux/arm64"]), bed.upstream.host, f"mirror/{repository}",
         "1")
    bad = push(bed.builder, single(bed.builder, "linux/arm64", seed="race-bad"), bed.guarded.host, repository, "1")
    gate = tmp_path / "gate"
    first = PushEvent(event_id="race-1", schema="distribution", action="push", origin=bed.guarded.host,
                      repository=repository, tag="1", digest=bad, media_type=OCI_MANIFEST, size=1, artifact="image",
                      actor="laptop", user_agent="test", occurred_at=None)
    queue = SqliteQueue(bed.queue_path)
    worker = _worker(bed, f"before-tag-write={gate}")
    try:
        queue.put(ordering_key(first), event_to_json(first, received_at="2026-12-06T00:00:00.000Z"), now=time.time())
        _wait(lambda: gate.with_name("gate.reached").exists(), "the worker pausing before its tag write")
        newer = push(bed.builder, multi(bed.builder, ["linux/amd64", "linux/arm64"], seed="race-newer"),
                     bed.guarded.host, repository, "1")
        second = PushEvent(event_id="race-2", schema="distribution", action="push", origin=bed.guarded.host,
                           repository=repository, tag="1", digest=newer, media_type=None, size=1, artifact="image",
                           actor="ci", user_agent="test", occurred_at=None)
        queue.put(ordering_key(second), event_to_json(second, received_at="2026-12-06T00:00:01.000Z"), now=time.time())
        gate.touch()
        _wait(lambda: bool(_final_outcomes(bed, "race-2")), "the newer push's outcome")
    finally:
        queue.close()
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert _final_outcomes(bed, "race-1") == ["reimported"]
    ledger = ledger_for(load_settings(bed.environment))
    try:
        [decided] = [o for o in ledger.outcomes(event_id="race-2") if o.final]
    finally:
        ledger.close()
    assert decided.result == "compliant" and "restored the newer push" in (decided.reason or ""), decided
    current = OciRegistry(bed.guarded.host).head_manifest(repository, "1")
    assert current is not None and current.digest == newer
