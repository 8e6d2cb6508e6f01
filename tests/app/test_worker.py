"""Workers over the SQLite queue, deciding real pushes on real registries: order per tag, no head-of-line blocking,
error classes (transient, authorisation, permanent), one final outcome and one alert per event, lease takeover."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from importer.adapters.ledger.sqlite import SqliteLedger
from importer.adapters.queue.doorbell import doorbell_for_queue
from importer.adapters.queue.sqlite import SqliteQueue
from importer.app.intake import Intake
from importer.app.pipeline import Pipeline
from importer.app.settings import Settings
from importer.app.worker import Worker, WorkerPolicy, WorkerPool
from importer.core.events import PushEvent
from importer.core.outcome import Outcome
from importer.core.policy import parse_policy
from importer.core.retry import RetryPolicy
from importer.entry.composition import registry_directory_for
from testbed.faults import FaultProxy
from testbed.images import ImageBuilder, multi, single
from testbed.push import push
from testbed.registry import LocalRegistry
from tests.collected import Collected

FAST = WorkerPolicy(lease_seconds=5.0, retry=RetryPolicy(attempts=3, base_delay=0.1, max_delay=0.2),
                    authorization_window=1.0, poll_seconds=0.02)


@dataclass
class Rig:
    registry: LocalRegistry
    upstream: FaultProxy
    guarded: FaultProxy
    builder: ImageBuilder
    ledger: SqliteLedger
    queue: SqliteQueue
    pipeline: Pipeline
    intake: Intake
    sink: Collected

    def event(self, repository: str, tag: str | None, digest: str, event_id: str | None = None) -> PushEvent:
        return PushEvent(event_id=event_id or f"{repository}:{tag}:{digest[-8:]}", schema="distribution",
                         action="push", origin=self.guarded.host, repository=repository, tag=tag, digest=digest,
                         media_type=None, size=None, artifact="image", actor="ci", user_agent="test", occurred_at=None)

    def final(self, event_id: str) -> list[Outcome]:
        return [outcome for outcome in self.ledger.outcomes(event_id=event_id, limit=100) if outcome.final]

    def wait_final(self, event_id: str, *, timeout: float = 30.0) -> Outcome:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            finals = self.final(event_id)
            if finals:
                return finals[0]
            time.sleep(0.02)
        raise AssertionError(f"{event_id}: no final outcome within {timeout} s: "
                             f"{[o.result for o in self.ledger.outcomes(event_id=event_id)]}")


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


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    builder = ImageBuilder(tmp_path / "layout")
    with LocalRegistry(tmp_path / "guarded") as registry, LocalRegistry(tmp_path / "upstream") as upstream, \
            FaultProxy(upstream.host, rate=0.0) as upstream_proxy, FaultProxy(registry.host, rate=0.0) as proxy:
        policy = parse_policy(POLICY.format(upstream=upstream_proxy.host), source="worker-test.yaml")
        settings = Settings(registries=(proxy.host,), policy=policy, ledger_path=tmp_path / "ledger.db")
        ledger = SqliteLedger(settings.ledger_path)
        queue = SqliteQueue(settings.queue_path)
        sink = Collected()
        pipeline = Pipeline(policy=policy, ledger=ledger, registries=registry_directory_for(settings), sinks=[sink])
        yield Rig(registry, upstream_proxy, proxy, builder, ledger, queue, pipeline, Intake(pipeline, queue), sink)
        queue.close()
        ledger.close()


def _pool(rig: Rig, threads: int = 2, policy: WorkerPolicy = FAST) -> WorkerPool:
    return WorkerPool(rig.queue, rig.pipeline, threads=threads, policy=policy).start()


def test_one_tags_outage_delays_no_other_tag_and_ends_in_one_failure_and_one_alert(rig: Rig) -> None:
    """An upstream that is down keeps one tag retrying; every other tag is decided meanwhile; the stuck one ends in
    exactly one `failed` outcome (with its verdict fields) and one alert after the last attempt, then dead-letters."""
    stuck = push(rig.builder, single(rig.builder, "linux/arm64", seed="stuck"), rig.registry.host, "fix/app", "1")
    rig.upstream.configure(rate=1.0, faults=("503",))
    others = {f"team/app-{n}": push(rig.builder, rig.builder.image("linux/amd64", seed=f"ok-{n}"), rig.registry.host,
                                    f"team/app-{n}", "1") for n in range(6)}
    stuck_event = rig.event("fix/app", "1", stuck)
    rig.intake.accept([stuck_event, *(rig.event(name, "1", digest) for name, digest in others.items())])
    pool = _pool(rig)
    try:
        for name, digest in others.items():
            assert rig.wait_final(rig.event(name, "1", digest).event_id, timeout=10).result == "compliant"
        final = rig.wait_final(stuck_event.event_id, timeout=30)
    finally:
        pool.stop()
    assert final.result == "failed" and "gave up after 3 attempts" in (final.error or ""), final
    assert final.verdict == "violation" and final.missing == ("linux/amd64",)  # what was known is kept
    records = rig.ledger.outcomes(event_id=stuck_event.event_id, limit=100)
    assert [record.result for record in records] == ["failed", "retrying", "retrying"]
    assert [record.attempt for record in records] == [3, 2, 1]
    assert len(rig.sink.alerts(stuck_event.event_id)) == 1
    [dead] = rig.queue.dead_letters()
    assert dead.key == f"tag:{rig.guarded.host}/fix/app:1" and dead.attempts == 3


def test_a_put_by_another_intake_wakes_idle_workers_through_the_doorbell(rig: Rig, tmp_path: Path) -> None:
    """Workers that would next look at the queue in a minute decide a push within seconds: the intake rang."""
    digest = push(rig.builder, rig.builder.image("linux/amd64", seed="rung"), rig.registry.host, "team/rung", "1")
    short = Path(tempfile.mkdtemp(prefix="pg-bell-", dir="/tmp"))
    ringing, listening = doorbell_for_queue(short / "q.db"), doorbell_for_queue(short / "q.db")
    assert ringing is not None and listening is not None
    pool = WorkerPool(rig.queue, rig.pipeline, threads=2, policy=dataclasses.replace(FAST, poll_seconds=60.0),
                      doorbell=listening).start()
    try:
        time.sleep(0.3)  # the workers have looked once and gone idle; the listener is bound
        event = rig.event("team/rung", "1", digest)
        Intake(rig.pipeline, rig.queue, on_queued=ringing.ring).accept([event])
        assert rig.wait_final(event.event_id, timeout=10).result == "compliant"
    finally:
        pool.stop()
        ringing.close()
        shutil.rmtree(short, ignore_errors=True)


def test_a_redriven_dead_letter_is_decided_once_the_upstream_is_back(rig: Rig) -> None:
    """After the outage, re-driving the dead letter decides the push: re-imported, one more final outcome."""
    bad = push(rig.builder, single(rig.builder, "linux/arm64", seed="later"), rig.registry.host, "fix/later", "1")
    push(rig.builder, multi(rig.builder, ["linux/amd64", "linux/arm64"]), rig.upstream.upstream, "mirror/fix/later",
         "1")
    rig.upstream.configure(rate=1.0, faults=("503",))
    event = rig.event("fix/later", "1", bad)
    rig.intake.accept([event])
    pool = _pool(rig)
    try:
        assert rig.wait_final(event.event_id).result == "failed"
        # The worker records the final outcome, then moves the message to the dead letters: wait for the second step.
        deadline = time.monotonic() + 10
        while rig.queue.depth(now=time.time()).dead < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        rig.upstream.configure(rate=0.0)
        assert rig.queue.redrive(now=time.time()) == 1
        pool.notify()
        deadline = time.monotonic() + 30
        while len(rig.final(event.event_id)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        pool.stop()
    assert [outcome.result for outcome in rig.final(event.event_id)] == ["reimported", "failed"]


def test_a_permanent_failure_fails_once_without_retrying_and_the_tag_goes_on(rig: Rig) -> None:
    """A push whose manifest is not in the registry fails at once (no attempt records); the tag's next event runs."""
    missing = "sha256:" + "0" * 64
    good = push(rig.builder, rig.builder.image("linux/amd64", seed="next"), rig.registry.host, "team/next", "1")
    first, second = rig.event("team/next", "1", missing), rig.event("team/next", "1", good)
    rig.intake.accept([first, second])
    pool = _pool(rig)
    try:
        assert rig.wait_final(second.event_id).result == "compliant"
    finally:
        pool.stop()
    assert [outcome.result for outcome in rig.ledger.outcomes(event_id=first.event_id)] == ["failed"]
    assert len(rig.sink.alerts(first.event_id)) == 1
    assert rig.queue.dead_letters() == []


def test_denied_access_is_retried_for_the_authorisation_window_then_fails(rig: Rig) -> None:
    """403 from the registry (roles still propagating) is tried again until the window has passed, then fails once."""
    digest = push(rig.builder, rig.builder.image("linux/amd64", seed="denied"), rig.registry.host, "team/denied", "1")
    rig.guarded.configure(rate=1.0, faults=("403",))
    event = rig.event("team/denied", "1", digest)
    rig.intake.accept([event])
    policy = WorkerPolicy(lease_seconds=5.0, retry=RetryPolicy(attempts=100, base_delay=0.2, max_delay=0.2),
                          authorization_window=1.0, poll_seconds=0.02)
    started = time.monotonic()
    pool = _pool(rig, policy=policy)
    try:
        final = rig.wait_final(event.event_id, timeout=30)
    finally:
        pool.stop()
    assert time.monotonic() - started >= 1.0  # not before the window passed
    assert final.result == "failed" and "403" in (final.error or ""), final
    attempts = [o for o in rig.ledger.outcomes(event_id=event.event_id, limit=100) if o.result == "retrying"]
    assert len(attempts) >= 2 and not any(o.alerts for o in attempts)
    assert len(rig.sink.alerts(event.event_id)) == 1


def test_one_tags_events_are_decided_in_the_order_they_arrived(rig: Rig) -> None:
    """Three pushes of one tag, queued in order, are decided in that order even with several workers."""
    digests = [push(rig.builder, rig.builder.image("linux/amd64", seed=f"order-{n}"), rig.registry.host,
                    "team/order", str(n)) for n in range(3)]
    events = [rig.event("team/order", "1", digest, event_id=f"order-{n}") for n, digest in enumerate(digests)]
    rig.intake.accept(events)
    pool = _pool(rig, threads=3)
    try:
        for event in events:
            rig.wait_final(event.event_id)
    finally:
        pool.stop()
    recorded = list(reversed(rig.ledger.outcomes(limit=100)))
    assert [outcome.event_id for outcome in recorded] == ["order-0", "order-1", "order-2"]


@pytest.mark.parametrize("settled", [False, True], ids=["died-before-the-outcome", "died-after-the-outcome"])
def test_a_dead_workers_message_is_taken_over_and_ends_in_exactly_one_outcome(rig: Rig, settled: bool) -> None:
    """A worker that took the message and died (its lease runs out) leaves it to another worker; whether or not the
    dead one recorded the outcome, the event ends with exactly one final outcome and the queue is empty."""
    digest = push(rig.builder, rig.builder.image("linux/amd64", seed=f"dead-{settled}"), rig.registry.host,
                  "team/dead", "1")
    event = rig.event("team/dead", "1", digest)
    rig.intake.accept([event])
    taken = rig.queue.take("dead-worker", lease_seconds=0.3, now=time.time())
    assert taken is not None
    if settled:
        rig.pipeline.handle(event)  # the outcome is recorded, then the worker dies before completing the message
    time.sleep(0.35)
    survivor = Worker(rig.queue, rig.pipeline, owner="survivor", policy=FAST)
    assert survivor.work_once()
    assert [outcome.result for outcome in rig.final(event.event_id)] == ["compliant"]
    assert rig.queue.depth(now=time.time()).ready == 0 and rig.queue.depth(now=time.time()).leased == 0
    assert rig.queue.complete(taken) is False  # the dead worker's receipt no longer works


def test_an_event_decided_on_its_second_try_says_so_in_its_final_outcome(rig: Rig) -> None:
    """A try that fails for a reason that passes is recorded `retrying` with `attempt: 1`; the final outcome of the
    next try carries `attempt: 2` (the contract: set on a final outcome that needed more than one)."""
    from importer.app.attempt import COMPLETE, RETRY, attempt_event

    bad = push(rig.builder, single(rig.builder, "linux/arm64", seed="second"), rig.registry.host, "fix/second", "1")
    push(rig.builder, multi(rig.builder, ["linux/amd64", "linux/arm64"], seed="second"), rig.upstream.upstream,
         "mirror/fix/second", "1")
    event = rig.event("fix/second", "1", bad)
    received = "2026-12-06T00:00:00.000Z"
    rig.upstream.configure(rate=1.0, faults=("503",))
    assert attempt_event(rig.pipeline, event, received, attempt=1, last_try=lambda _: False).settle == RETRY
    rig.upstream.configure(rate=0.0)
    assert attempt_event(rig.pipeline, event, received, attempt=2, last_try=lambda _: False).settle == COMPLETE
    records = rig.ledger.outcomes(event_id=event.event_id, limit=10)
    assert [(o.result, o.attempt) for o in reversed(records)] == [("retrying", 1), ("reimported", 2)], records
