"""The intake: what every route does with a delivery before answering — no registry I/O, then the queue.

    intake = Intake(pipeline, queue, on_queued=pool.notify)
    accepted = intake.accept(parse_registry_notification(body, content_type))   # TransientFailure: answer 503
    accepted.queued, accepted.outcomes      # event ids put in the queue; outcomes recorded at once (rejections)

Authentication and parsing happen in the route; here each event is either recorded at once (an invalid event, or one
from a registry that is not configured: `rejected`), dropped (pulls, blob pushes), or durably queued under its
tag's ordering key, so that one tag's events are worked on in order and no event waits for another tag's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from importer.app.pipeline import Pipeline, TransientFailure
from importer.core.events import ParsedEvent, PushEvent, event_to_json, ordering_key, triage
from importer.core.outcome import Outcome
from importer.ports.ledger import LedgerUnavailable
from importer.ports.queue import EventQueue, QueueUnavailable


@dataclass(frozen=True, slots=True)
class Accepted:
    """What became of one delivery's events."""

    queued: list[str] = field(default_factory=list)  # event ids
    outcomes: list[Outcome] = field(default_factory=list)  # recorded at once


class Intake:
    """Admits, records or queues the events of a delivery."""

    def __init__(
        self,
        pipeline: Pipeline,
        queue: EventQueue,
        *,
        on_queued: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.pipeline = pipeline
        self.queue = queue
        self._on_queued = on_queued
        self._clock = clock

    def accept(self, events: Iterable[ParsedEvent]) -> Accepted:
        """Record or queue every event; TransientFailure when the queue or the ledger cannot take them now."""
        accepted = Accepted()
        try:
            for event in events:
                outcome = self.pipeline.admit(event)
                if outcome is not None:
                    accepted.outcomes.append(outcome)
                elif isinstance(event, PushEvent) and triage(event).disposition != "drop":
                    body = event_to_json(event, received_at=self.pipeline.now())
                    self.queue.put(ordering_key(event), body, now=self._clock())
                    accepted.queued.append(event.event_id)
                    if self._on_queued is not None:
                        self._on_queued()
        except (QueueUnavailable, LedgerUnavailable) as error:
            raise TransientFailure(f"cannot take events now: {error}") from error
        return accepted
