"""The queue port: events between the intake (which only accepts them) and the workers (which decide them).

    message_id = queue.put(key="registry/team/app:1.0", body=event_json, now=time.time())
    message = queue.take(owner="worker-1", lease_seconds=60, now=time.time())   # None: nothing ready
    ...work, calling queue.renew(message, ...) while it goes on...
    queue.complete(message)                                  # done: gone from the queue
    queue.retry_later(message, delay=30, error="503 …", now=…)  # a transient failure: again later
    queue.dead_letter(message, error="…", now=…)             # given up: kept for `outcomes --failed` and re-drive

A message is leased, not removed, when taken: a worker that dies leaves a lease that runs out, and another worker
takes the message again. Every call that changes a taken message names its owner and lease, so a worker that lost
its lease (it ran past the expiry and someone else took over) changes nothing: the call returns False.
Messages with one `key` (one tag) are never leased to two workers at once and are taken in the order they were put
(docs/design.md, "Intake and workers").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class QueueUnavailable(Exception):
    """The queue's backend failed in a way that may pass; the intake answers 503 so the sender delivers again."""

    transient = True


@dataclass(frozen=True, slots=True)
class Message:
    """One queued event as a worker holds it: the lease (owner, until) proves it is still the worker's."""

    message_id: str
    key: str
    body: str
    attempts: int  # deliveries to a worker so far, this one included
    enqueued_at: float
    first_attempt_at: float  # when a worker first took it: the authorisation retry window counts from here
    owner: str
    lease_until: float
    last_error: str | None = None
    receipt: str | None = None  # the backend's own proof of the lease (a Storage Queue pop receipt), if any


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message the workers gave up on."""

    message_id: str
    key: str
    body: str
    attempts: int
    enqueued_at: float
    dead_at: float
    error: str


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """How many messages are waiting (ready now or delayed), being worked on, and given up on."""

    ready: int
    delayed: int
    leased: int
    dead: int


class EventQueue(Protocol):
    """A durable queue of events with leases, per-key order, delayed retries and dead letters."""

    def put(self, key: str, body: str, *, now: float) -> str:
        """Store one event durably; returns its message id. QueueUnavailable when that cannot be done now."""
        ...

    def take(self, owner: str, *, lease_seconds: float, now: float) -> Message | None:
        """Lease the next ready message whose key no live lease holds (the oldest of its key), or None."""
        ...

    def renew(self, message: Message, *, lease_seconds: float, now: float) -> Message | None:
        """Extend the lease; None when it was lost (expired and taken over, or the message is gone)."""
        ...

    def complete(self, message: Message) -> bool:
        """Remove a finished message; False when the lease was lost (the new owner finishes it)."""
        ...

    def retry_later(self, message: Message, *, delay: float, error: str, now: float) -> bool:
        """Give the message back, ready again after `delay` seconds; False when the lease was lost."""
        ...

    def dead_letter(self, message: Message, *, error: str, now: float) -> bool:
        """Move the message to the dead letters; False when the lease was lost."""
        ...

    def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        """The newest dead letters first."""
        ...

    def redrive(self, message_ids: Sequence[str] | None = None, *, now: float) -> int:
        """Put dead letters (all, or these) back in the queue with their attempts reset; how many moved."""
        ...

    def depth(self, *, now: float) -> QueueDepth:
        """Counts for metrics and `outcomes`."""
        ...

    def close(self) -> None:
        """Release the backend's resources."""
        ...


class Doorbell(Protocol):
    """A wake-up between processes sharing one local queue: the intake rings after a put, idle workers wake at once
    instead of at their next poll. Best effort: a lost ring costs one poll interval, never an event."""

    def ring(self) -> None:
        """Wake every listening worker process (never raises, never blocks)."""

    def wait(self, timeout: float) -> int:
        """Block until rung or `timeout` passes; how many rings arrived (0: timed out)."""

    def close(self) -> None:
        """Stop listening and remove what this process left behind."""
