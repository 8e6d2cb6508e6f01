"""The hand-off of a swept tag to the pipeline (remediate and record modes): a synthetic push event per tag.

    handoff = PipelineHandoff(host, sweep_id, pipeline=pipeline, ledger=pipeline.ledger, clock=utc_now)
    item = handoff.hand_off(entry, digest, read_at, facts, verdict)      # a SweepItem from the recorded outcome

The event goes through the same Pipeline as a registry event, so claims, the loop guard, preservation,
compare-and-swap and outcome recording all apply; outcomes carry `schema: sweep` and `trigger: sweep`. Its id comes
from (registry, repository, tag, digest, sweep id): a new sweep is a new decision. Before a violation is remediated
the ledger is asked for an event outcome of that repository:tag received after the sweep read the tag; if there is
one, the newer decision stands and the sweep records `superseded`. Remediations in one repository run one at a time;
none starts after the sweep's deadline (`hand_off` returns None: the tag is left for the next run).
See docs/design.md, Sweep.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from importer.app.pipeline import Pipeline, TransientFailure
from importer.app.sweep.budget import passed
from importer.app.sweep.locks import KeyedLocks
from importer.app.sweep.model import ListedTag, SweepItem
from importer.core.decide import VIOLATION, Facts, Verdict, verdict_fields
from importer.core.events import PushEvent
from importer.core.outcome import TRIGGER_SWEEP, Outcome
from importer.core.reference import reference_of
from importer.ports.ledger import Ledger, LedgerUnavailable
from importer.ports.registry import CopyError

SWEEP_SCHEMA = TRIGGER_SWEEP  # the `schema` of a sweep's synthetic events (the route they came by)


def sweep_event_id(sweep_id: str, registry: str, repository: str, tag: str, digest: str) -> str:
    """The synthetic event id of one tag in one sweep: the same inputs give the same id, a new sweep a new one."""
    key = "\n".join((registry, repository, tag, digest, sweep_id)).encode()
    return f"sweep-{sweep_id}-{hashlib.sha256(key).hexdigest()[:32]}"


class PipelineHandoff:
    """Hands the tags of one sweep of one registry to a pipeline; `hand_off` may be called from several threads."""

    def __init__(self, host: str, sweep_id: str, *, pipeline: Pipeline, ledger: Ledger,
                 clock: Callable[[], str]) -> None:
        self.host = host
        self.sweep_id = sweep_id
        self._pipeline = pipeline
        self._ledger = ledger
        self._clock = clock
        self._locks = KeyedLocks()  # one remediation at a time per repository

    def hand_off(self, entry: ListedTag, digest: str, read_at: str, facts: Facts | None,
                 verdict: Verdict, *, deadline: float | None = None) -> SweepItem | None:
        """Hand one judged tag to the pipeline (or record it `superseded`); the item says what was done. None when a
        remediation would start after `deadline` (e.g. after waiting for its turn): nothing was done or recorded."""
        event = PushEvent(
            event_id=sweep_event_id(self.sweep_id, self.host, entry.repository, entry.tag, digest),
            schema=SWEEP_SCHEMA,
            action="push",
            origin=self.host,
            repository=entry.repository,
            tag=entry.tag,
            digest=digest,
            media_type=None,  # unknown to a listing; inspection tells
            size=None,
            artifact="image",
            actor=None,
            user_agent=None,
            occurred_at=read_at,
        )
        try:
            if verdict.verdict == VIOLATION and verdict.action in ("reimport", "quarantine"):
                with self._locks(entry.repository):
                    if passed(deadline):
                        return None
                    newer = self._event_outcome_after(entry.repository, entry.tag, read_at)
                    if newer is not None:
                        outcome = self._record_superseded(event, facts, verdict, newer, read_at)
                    else:
                        outcome = self._pipeline.handle(event)
            else:
                outcome = self._pipeline.handle(event)
        except TransientFailure as failure:  # recorded as failed by the pipeline; the next sweep tries again
            return self._failed(entry, digest, f"{failure} (the next sweep tries again)", event.event_id)
        except LedgerUnavailable as failure:
            return self._failed(entry, digest, f"ledger unavailable: {failure}", event.event_id)
        except CopyError as failure:
            return self._failed(entry, digest, str(failure), event.event_id)
        if outcome is None:  # only blob pushes are dropped, and a sweep never makes one
            return self._failed(entry, digest, "the pipeline dropped the event", event.event_id)
        return _item_from_outcome(self.host, entry, outcome, verdict)

    def _failed(self, entry: ListedTag, digest: str, error: str, event_id: str) -> SweepItem:
        return SweepItem.failed(self.host, entry, digest, error, event_id=event_id)

    def _event_outcome_after(self, repository: str, tag: str, read_at: str) -> Outcome | None:
        """An outcome of an event (not a sweep) for this registry and repository:tag received after `read_at`."""
        limit = 64
        while True:
            recent = self._ledger.outcomes(repository=repository, limit=limit)
            for outcome in recent:
                if (outcome.registry == self.host and outcome.tag == tag and outcome.trigger != TRIGGER_SWEEP
                        and outcome.received_at > read_at):
                    return outcome
            # Newest first: once a page reaches back past the read, or the ledger has no more, we have seen enough.
            if len(recent) < limit or recent[-1].received_at <= read_at:
                return None
            limit *= 4

    def _record_superseded(self, event: PushEvent, facts: Facts | None, verdict: Verdict, newer: Outcome,
                           read_at: str) -> Outcome:
        assert event.tag is not None
        reason = (
            f"{self.host}/{event.repository}:{event.tag} was decided by event {newer.event_id} ({newer.result}, "
            f"received {newer.received_at}) after this sweep read it at {read_at}: the newer decision stands"
        )
        outcome = Outcome(
            event_id=event.event_id,
            received_at=self._clock(),
            result="superseded",
            registry=self.host,
            reference=reference_of(self.host, event.repository, event.tag, event.digest),
            repository=event.repository,
            tag=event.tag,
            schema=SWEEP_SCHEMA,
            trigger=TRIGGER_SWEEP,
            **verdict_fields(facts, verdict),  # type: ignore[arg-type]
        )
        return self._pipeline.record_outcome(outcome.replace(reason=reason))


def _item_from_outcome(host: str, entry: ListedTag, outcome: Outcome, verdict: Verdict) -> SweepItem:
    """The swept tag as the pipeline decided it, the sweep's own verdict filling what the outcome leaves out."""
    if outcome.result == "failed":
        status = "failed"
    elif outcome.result == "duplicate" and outcome.verdict is None:
        status = verdict.verdict  # a digest already quarantined by this sweep: judged as the sweep read it
    else:
        status = outcome.verdict or verdict.verdict
    return SweepItem(
        host, entry.repository, entry.tag, status,
        digest=outcome.digest, kind=outcome.kind, verdict=outcome.verdict or verdict.verdict,
        action=outcome.action or verdict.action, result=outcome.result, reason=outcome.reason,
        platforms=outcome.platforms or verdict.platforms, required=outcome.required or verdict.required,
        missing=outcome.missing or verdict.missing, forbidden=outcome.forbidden or verdict.forbidden,
        inconsistent=outcome.inconsistent or verdict.inconsistent, error=outcome.error,
        event_id=outcome.event_id, new_digest=outcome.new_digest, preserved_as=outcome.preserved_as,
        source=outcome.source, affected_tags=outcome.affected_tags,
    )
