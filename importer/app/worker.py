"""Workers: take queued events, decide them with the pipeline, and settle every message exactly once.

    worker = Worker(queue, pipeline, owner="host-1:worker-0")
    worker.work_once()                          # False when nothing was ready
    pool = WorkerPool(queue, pipeline, threads=4).start()   # the local host's workers; pool.notify() on a put

Each message is leased while it is worked on, and the lease is renewed in the background, so a long re-import keeps
it and a dead worker's message is taken over when its lease runs out. Each try goes through `app/attempt.py` (shared
with the Functions queue trigger). Failures are sorted by the pipeline
(`TransientFailure.kind`, docs/design.md "Errors and retries"): a transient or internal one is recorded as a
`retrying` attempt and the message comes back after a growing delay (EVENT_RETRY), an authorisation one (401/403)
likewise until the authorisation window has passed since the first try; then, or after the last attempt, the event
ends in one `failed` outcome carrying what was known (and one alert), and the message goes to the dead letters.
`metrics` (importer.ports.metrics.WorkerMetrics), when given, is told of each message settled under a lease still
held, so a message taken over by another worker is counted once, by whoever settles it.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from importer.app.attempt import COMPLETE, DEAD_LETTER, attempt_event
from importer.app.failpoints import failpoint
from importer.app.pipeline import AUTHORIZATION, Pipeline, TransientFailure
from importer.core.events import event_from_json
from importer.core.retry import EVENT_RETRY, RetryPolicy
from importer.ports.metrics import WorkerMetrics
from importer.ports.queue import Doorbell, EventQueue, Message, QueueUnavailable

log = logging.getLogger("platform_guard.worker")

_DOORBELL_WAIT_SECONDS = 0.5  # how soon a stopping pool notices, while it listens for rings


@dataclass(frozen=True, slots=True)
class WorkerPolicy:
    """How long a lease lasts, and when a failing event is given up on."""

    lease_seconds: float = 60.0  # renewed every third of it while the work goes on
    retry: RetryPolicy = EVENT_RETRY  # attempts in all, and the delay before each next try
    authorization_window: float = 900.0  # 401/403 are tried again for this long after the first try (roles propagate)
    poll_seconds: float = 0.2  # an idle worker looks at the queue this often (a put in this process wakes it at once)


def worker_name(index: int) -> str:
    """An owner name no other worker uses: host, process, index and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{index}:{uuid.uuid4().hex[:8]}"


class Worker:
    """One worker: takes a message, works on it under a renewed lease, settles it."""

    def __init__(
        self,
        queue: EventQueue,
        pipeline: Pipeline,
        *,
        owner: str,
        policy: WorkerPolicy = WorkerPolicy(),
        clock: Callable[[], float] = time.time,
        random_fraction: Callable[[], float] = random.random,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.queue = queue
        self.pipeline = pipeline
        self.owner = owner
        self.policy = policy
        self._clock = clock
        self._random = random_fraction
        self._metrics = metrics

    def work_once(self) -> bool:
        """Take one ready message and settle it; False when none was ready (or the queue is unavailable)."""
        try:
            message = self.queue.take(self.owner, lease_seconds=self.policy.lease_seconds, now=self._clock())
        except QueueUnavailable as error:
            log.warning("queue unavailable: %s", error)
            return False
        if message is None:
            return False
        failpoint("after-lease")
        with self._renewed(message) as lease:
            self._work(message, lease)
        return True

    def _work(self, message: Message, lease: _Lease) -> None:
        try:
            event, received_at = event_from_json(message.body)
        except ValueError as error:  # not ours to fix by trying again
            problem = str(error)
            log.error("dead-lettering message %s: %s", message.message_id, problem)
            if self._settle(lease, lambda held: self.queue.dead_letter(held, error=problem, now=self._clock())):
                self._count(DEAD_LETTER)
            return
        ending = attempt_event(self.pipeline, event, received_at, attempt=message.attempts,
                               last_try=lambda failure: self._gives_up(failure, message, self._clock()))
        if ending.settle == COMPLETE:
            settled = self._settle(lease, self.queue.complete)
        elif ending.settle == DEAD_LETTER:
            settled = self._settle(
                lease, lambda held: self.queue.dead_letter(held, error=ending.error, now=self._clock())
            )
        else:
            settled = self._retry(lease, ending.error, message.attempts)
        if settled:
            self._count(ending.settle)

    def _count(self, settle: str) -> None:
        if self._metrics is not None:
            self._metrics.message_settled(settle)

    def _gives_up(self, failure: TransientFailure, message: Message, now: float) -> bool:
        if failure.kind == AUTHORIZATION:
            return now - message.first_attempt_at >= self.policy.authorization_window
        return message.attempts >= self.policy.retry.attempts

    def _retry(self, lease: _Lease, error: str, attempt: int) -> bool:
        delay = self.policy.retry.delay(min(attempt, 64), random_fraction=self._random())
        return self._settle(
            lease, lambda held: self.queue.retry_later(held, delay=delay, error=error, now=self._clock())
        )

    def _settle(self, lease: _Lease, settle: Callable[[Message], bool]) -> bool:
        """Complete, retry or dead-letter under the lease we hold; a lost lease leaves the message to its new owner
        (False)."""
        held = lease.stop()
        if held is None or not _quietly(settle, held):
            log.warning("lease on message %s was lost: its new owner settles it", lease.message.message_id)
            return False
        return True

    @contextmanager
    def _renewed(self, message: Message) -> Iterator[_Lease]:
        lease = _Lease(self.queue, message, self.policy.lease_seconds, self._clock)
        lease.start()
        try:
            yield lease
        finally:
            lease.stop()


def _quietly(settle: Callable[[Message], bool], message: Message) -> bool:
    try:
        return settle(message)
    except QueueUnavailable as error:  # the lease runs out and the message comes back: nothing is lost
        log.warning("queue unavailable settling message %s: %s", message.message_id, error)
        return False


class _Lease:
    """Renews a message's lease every third of its length until stopped; knows when it was lost."""

    def __init__(self, queue: EventQueue, message: Message, seconds: float, clock: Callable[[], float]) -> None:
        self.message = message
        self._queue = queue
        self._seconds = seconds
        self._clock = clock
        self._held: Message | None = message
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._renew, name=f"lease-{message.message_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> Message | None:
        """Stop renewing; the message as last renewed, or None when the lease was lost."""
        self._stopped.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=self._seconds)
        with self._lock:
            return self._held

    def _renew(self) -> None:
        while not self._stopped.wait(self._seconds / 3):
            with self._lock:
                if self._held is None:
                    return
                try:
                    self._held = self._queue.renew(self._held, lease_seconds=self._seconds, now=self._clock())
                except QueueUnavailable as error:
                    log.warning("could not renew the lease on message %s: %s", self.message.message_id, error)
                    continue
                if self._held is None:
                    log.warning("lease on message %s was lost while working on it", self.message.message_id)
                    return


class WorkerPool:
    """Threads of workers over one queue; `notify` wakes one at once after a put in this process."""

    def __init__(self, queue: EventQueue, pipeline: Pipeline, *, threads: int = 4,
                 policy: WorkerPolicy = WorkerPolicy(), doorbell: Doorbell | None = None,
                 metrics: WorkerMetrics | None = None) -> None:
        if threads < 1:
            raise ValueError(f"a worker pool needs at least 1 thread, got {threads}")
        self.workers = [Worker(queue, pipeline, owner=worker_name(index), policy=policy, metrics=metrics)
                        for index in range(threads)]
        self._policy = policy
        self._wake = threading.Condition()
        self._pending = 0
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._doorbell = doorbell

    def start(self) -> WorkerPool:
        for worker in self.workers:
            thread = threading.Thread(target=self._run, args=(worker,), name=f"worker-{worker.owner}", daemon=True)
            thread.start()
            self._threads.append(thread)
        if self._doorbell is not None:
            thread = threading.Thread(target=self._listen, args=(self._doorbell,), name="worker-doorbell", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def notify(self) -> None:
        """A message was put: wake an idle worker now instead of at its next poll."""
        with self._wake:
            self._pending += 1
            self._wake.notify()

    def stop(self, *, timeout: float = 30.0) -> None:
        """Stop taking messages and wait (up to `timeout` in all) for the work in hand to be settled."""
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._threads.clear()
        if self._doorbell is not None:
            self._doorbell.close()

    def _listen(self, doorbell: Doorbell) -> None:
        """Puts made by other processes (the intake in `serve`) ring the doorbell: wake as many idle workers."""
        while not self._stopping.is_set():
            try:
                rings = doorbell.wait(_DOORBELL_WAIT_SECONDS)
            except OSError as error:
                log.warning("doorbell failed (%s): the workers poll instead", error)
                return
            for _ in range(min(rings, len(self.workers))):
                self.notify()

    def _run(self, worker: Worker) -> None:
        while not self._stopping.is_set():
            try:
                worked = worker.work_once()
            except Exception:  # never let a worker thread die: log, pause, go on
                log.exception("worker %s failed; it goes on", worker.owner)
                worked = False
            if worked:
                continue
            with self._wake:
                if self._pending == 0 and not self._stopping.is_set():
                    self._wake.wait(self._policy.poll_seconds)
                self._pending = max(0, self._pending - 1)
