"""One try at a queued event: decide it, record a failed try or the final failure, and say how its message ends.

    ending = attempt_event(pipeline, event, received_at, attempt=3, last_try=lambda failure: attempt >= 8)
    ending.settle        # COMPLETE, RETRY or DEAD_LETTER; ending.error says why for the last two

Every worker runs each try through here, so an event ends the same way wherever it was queued: the local host's
workers (app/worker.py) complete, delay or dead-letter the message in their queue; the Functions queue trigger
(entry/queue_trigger.py) returns, or raises so that the host delivers it again (or, on its last dequeue, moves it to
the poison queue).

A failure that may pass (TransientFailure, an unavailable ledger, an unexpected error: docs/design.md "Errors and
retries") is recorded as a `retrying` attempt, which never alerts, and the message is tried again. On the last try —
`last_try` says when: the caller knows its queue's bounds and the authorisation window — the event ends in one `failed`
outcome carrying what was known ("gave up after N attempts"), which alerts once, and the message is dead-lettered; if
that outcome cannot be recorded (the ledger is down) the message is tried again instead, and ends then.
A retaken message (attempt > 1) whose event already has a final outcome (an earlier try finished but its message was
not settled) is simply completed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from importer.app.pipeline import Pipeline, TransientFailure
from importer.core.events import PushEvent
from importer.core.outcome import Outcome
from importer.core.words import counted
from importer.ports.ledger import LedgerUnavailable
from importer.ports.metrics import SETTLED_COMPLETE, SETTLED_DEAD_LETTER, SETTLED_RETRY

log = logging.getLogger("platform_guard.worker")

# How a message ends; the words are the metrics port's, which counts them.
COMPLETE = SETTLED_COMPLETE  # decided (or already decided): the message is done
RETRY = SETTLED_RETRY  # a failure that may pass: try the message again later
DEAD_LETTER = SETTLED_DEAD_LETTER  # given up: the final `failed` outcome is recorded, the message is dead-lettered


@dataclass(frozen=True, slots=True)
class Ending:
    """How one try ends for its message, and why when it was not decided."""

    settle: str  # COMPLETE | RETRY | DEAD_LETTER
    error: str = ""


def attempt_event(
    pipeline: Pipeline,
    event: PushEvent,
    received_at: str,
    *,
    attempt: int,
    last_try: Callable[[TransientFailure], bool],
) -> Ending:
    """Try `event` (received at `received_at`) for the `attempt`-th time (1 for the first try)."""
    retaking = attempt > 1
    if retaking and _already_final(pipeline, event.event_id):
        return Ending(COMPLETE)
    try:
        pipeline.handle(event, retaking=retaking, received_at=received_at, attempt=attempt)
    except TransientFailure as failure:
        known = failure.outcome or pipeline.outcome_base(event, received_at)
        return _after_failure(pipeline, failure, known, attempt, last_try)
    except LedgerUnavailable as failure:  # recording the outcome failed: the next try records it
        return _after_failure(pipeline, TransientFailure(f"ledger unavailable: {failure}"), None, attempt, last_try)
    except Exception as error:  # the pipeline sorts its own errors: this is a bug in the worker's path
        log.exception("unexpected error deciding event %s", event.event_id)
        failure = TransientFailure(f"internal error: {type(error).__name__}: {error}")
        return _after_failure(pipeline, failure, pipeline.outcome_base(event, received_at), attempt, last_try)
    return Ending(COMPLETE)


def _already_final(pipeline: Pipeline, event_id: str) -> bool:
    try:
        return pipeline.has_final_outcome(event_id)
    except LedgerUnavailable:
        return False


def _after_failure(
    pipeline: Pipeline,
    failure: TransientFailure,
    known: Outcome | None,
    attempt: int,
    last_try: Callable[[TransientFailure], bool],
) -> Ending:
    if last_try(failure):
        if known is not None:
            ending = f"{failure} (gave up after {counted(attempt, 'attempt')})"
            try:
                pipeline.record_outcome(known.replace(result="failed", error=ending, attempt=attempt))
            except LedgerUnavailable:  # cannot end it now: try again later, it ends then
                return Ending(RETRY, str(failure))
        return Ending(DEAD_LETTER, str(failure))
    if known is not None:
        with contextlib.suppress(LedgerUnavailable):  # the attempt goes unrecorded; the final outcome will be
            pipeline.record_attempt(known, error=str(failure), attempt=attempt)
    return Ending(RETRY, str(failure))
