"""The one place that strings the steps together: event → claim → inspect → decide → outcome.

    pipeline = pipeline_for(load_settings())       # importer.entry.composition wires it from the settings
    outcomes = pipeline.handle_all(parse_registry_notification(body, content_type))
    # raises TransientFailure (after recording) when a registry problem may pass: fail the delivery so it is retried

Every event the parsers return ends in exactly one recorded outcome per delivery: rejected (bad event, unknown
registry), duplicate (a redelivery), ignored, compliant, alerted (a violation, alert only), reimported, quarantined,
superseded (a newer push won), or failed. Remediation itself lives in importer/app/remediation.py.
A tagged Helm chart push goes to the chart manager (importer/app/chart_guard.py): its outcome is the chart's summary,
and each image the chart references gets an outcome of its own (event id `<event id>/image/<n>`).
Entry points (function_app.py, the local host, the CLI) only parse and call this.
Each try of an event runs under one time limit, `event_deadline` (PLATFORM_GUARD_EVENT_DEADLINE_SECONDS, 240 s by
default; importer.ports.deadlines): every registry request and wait ends by then, and a try that runs out of time ends
as a transient failure, tried again later.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from importer.app.failpoints import failpoint
from importer.app.inspection import evaluate, inspect_untagged
from importer.app.registries import RegistryDirectory
from importer.app.settings import DEFAULT_EVENT_DEADLINE_SECONDS
from importer.core.decide import VIOLATION, Facts, Verdict, verdict_fields
from importer.core.events import CHART, ParsedEvent, PushEvent, RejectedEvent, may_be_referrer, triage
from importer.core.manifests import ManifestError
from importer.core.media_types import HELM_CONFIG
from importer.core.outcome import TRIGGER_EVENT, TRIGGER_SWEEP, Outcome
from importer.core.policy import Policy, repository_matcher
from importer.core.quarantine_names import quarantine_tag
from importer.core.reference import reference_of
from importer.ports.deadlines import time_limit
from importer.ports.ledger import Ledger, LedgerUnavailable
from importer.ports.registry import CopyError, NotFound, RegistryError, Unauthorized
from importer.ports.sinks import OutcomeSink

if TYPE_CHECKING:  # loaded on first use: a compliant push never pays for remediation or charts
    from importer.app.chart_guard import ChartManager
    from importer.app.remediation import Remediator
    from importer.ports.abilities import ServerImport


log = logging.getLogger("platform_guard.pipeline")


TRANSIENT = "transient"  # 5xx, 429, timeouts, broken connections, an unavailable ledger
AUTHORIZATION = "authorization"  # 401/403: role assignments take minutes to propagate
INTERNAL = "internal"  # an unexpected error: tried a bounded number of times, like a transient one


class TransientFailure(Exception):
    """Handling failed for a reason that may pass: the event is tried again (by a worker, or by the sender).

    `kind` is TRANSIENT, AUTHORIZATION or INTERNAL (docs/design.md, "Errors and retries"); `outcome` holds what was
    known when it failed (the verdict fields once the image was judged), for the attempt record or the final failure.
    """

    def __init__(self, message: str, *, kind: str = TRANSIENT, outcome: Outcome | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.outcome = outcome


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Pipeline:
    """Handles parsed events against one policy, ledger, set of registries and sinks."""

    def __init__(
        self,
        *,
        policy: Policy,
        ledger: Ledger,
        registries: RegistryDirectory,
        sinks: Sequence[OutcomeSink] = (),
        clock: Callable[[], str] = utc_now,
        loop_limit: int = 3,
        loop_window: float = 3600.0,
        paused_repositories: Sequence[str] = (),
        server_import: ServerImport | None = None,
        event_deadline: float = DEFAULT_EVENT_DEADLINE_SECONDS,
    ) -> None:
        if not 0 < event_deadline < float("inf"):  # also refuses NaN
            raise ValueError(f"event_deadline must be a finite number of seconds above 0, got {event_deadline!r}")
        self.policy = policy
        self.event_deadline = event_deadline
        self.ledger = ledger
        self.registries = registries
        self.sinks = tuple(sinks)
        self._remediation = (loop_limit, loop_window, server_import)
        self._remediator: Remediator | None = None
        self._chart_manager: ChartManager | None = None
        self._paused = repository_matcher(tuple(paused_repositories))
        self._clock = clock

    def with_remediation_paused(self) -> Pipeline:
        """A pipeline like this one (policy, ledger, clients, sinks, clock, limits) whose remediation is paused
        everywhere: violations are recorded as `alerted` and nothing is changed."""
        loop_limit, loop_window, server_import = self._remediation
        return Pipeline(policy=self.policy, ledger=self.ledger, registries=self.registries, sinks=self.sinks,
                        clock=self._clock, loop_limit=loop_limit, loop_window=loop_window, paused_repositories=("**",),
                        server_import=server_import, event_deadline=self.event_deadline)

    # -- events -----------------------------------------------------------------------------------------

    def handle_all(self, events: Iterable[ParsedEvent]) -> list[Outcome]:
        """Handle every event of one delivery in place (no queue): each failure that may pass is recorded as a
        `retrying` attempt, and TransientFailure at the end makes the sender deliver again. The whole delivery gets
        the time limit of one event, however many events it carries: the sender's request is waiting for it."""
        with time_limit(self.event_deadline, "this delivery"):
            return self._handle_all(events)

    def _handle_all(self, events: Iterable[ParsedEvent]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        transient: list[str] = []
        for event in events:
            try:
                outcome = self.handle(event)
            except TransientFailure as failure:
                if failure.outcome is not None:
                    with contextlib.suppress(LedgerUnavailable):
                        self.record_attempt(failure.outcome, error=str(failure), attempt=None)
                transient.append(str(failure))
                continue
            except LedgerUnavailable as failure:  # recording failed: the ledger will be back, deliver again then
                log.warning("ledger unavailable handling %s: %s", getattr(event, "event_id", "?"), failure)
                transient.append(f"ledger unavailable: {failure}")
                continue
            if outcome is not None:
                outcomes.append(outcome)
        if transient:
            raise TransientFailure("; ".join(transient))
        return outcomes

    def now(self) -> str:
        """The pipeline's clock: an ISO 8601 UTC timestamp, as outcomes carry it."""
        return self._clock()

    def record_attempt(self, outcome: Outcome, *, error: str, attempt: int | None) -> Outcome:
        """Record a try that failed for a reason that may pass: result `retrying`, never an alert."""
        return self.record_outcome(outcome.replace(result="retrying", error=error, attempt=attempt))

    def reject_payload(self, event_id: str, reason: str, *, schema: str | None = None) -> Outcome:
        """Record a delivery whose body is not an event payload at all."""
        return self._finish(
            Outcome(event_id=event_id, received_at=self._clock(), result="rejected", reason=reason, schema=schema),
            time.perf_counter(),
        )

    def admit(self, event: ParsedEvent) -> Outcome | None:
        """What the intake does before queueing, with no registry I/O: record a rejected event (invalid, or from a
        registry that is not configured) and return its outcome; None for an event to queue or to drop."""
        if isinstance(event, RejectedEvent) or self.registries.guarded_host(event.origin) is None:
            return self.handle(event)
        return None

    def handle(
        self, event: ParsedEvent, *, retaking: bool = False, received_at: str | None = None, attempt: int = 1
    ) -> Outcome | None:
        """Handle one event; None when it is dropped silently (pulls, mounts, blob pushes).

        `retaking`: a worker takes this event again after an earlier try of it ended without a final outcome (the
        worker died, or the try failed transiently): the event's claim from that try does not make it a duplicate.
        `received_at`: when the intake received it (default: now). `attempt`: which try of the event this is; the
        final outcome of an event that needed more than one carries it.
        The whole try runs under the time limit `event_deadline` (importer.ports.deadlines): every registry request
        and wait in it ends by then, and running out of time is a transient registry error, so a TransientFailure.
        """
        with time_limit(self.event_deadline, "this event"):
            return self._handle(event, retaking=retaking, received_at=received_at, attempt=attempt)

    def _handle(self, event: ParsedEvent, *, retaking: bool, received_at: str | None,
                attempt: int = 1) -> Outcome | None:
        started = time.perf_counter()
        received_at = received_at or self._clock()
        if isinstance(event, RejectedEvent):
            outcome = Outcome(event_id=event.event_id, received_at=received_at, result="rejected", reason=event.reason)
            return self._finish(outcome, started)
        sorting = triage(event)
        if sorting.disposition == "drop":
            return None
        base = self.outcome_base(event, received_at)
        if attempt > 1:
            base = base.replace(attempt=attempt)
        if base.registry is None:
            reason = f"event from {event.origin or 'an unnamed registry'!r}, which is not a configured registry"
            return self._finish(base.replace(reason=reason), started)
        host = base.registry
        if event.digest is None and sorting.disposition == "decide":
            # A push named by its tag alone (Quay's repo_push) carries nothing that tells two pushes of one tag apart:
            # its id, from the body, is the same each time. What the tag holds now does, so the event is named by
            # both before it is claimed: a redelivery is still a duplicate, a new push of the tag is decided.
            resolved = self._resolve_tag(event, host, base, started)
            if isinstance(resolved, Outcome):
                return resolved
            event = resolved
            base = base.replace(event_id=event.event_id, digest=event.digest, media_type=event.media_type,
                                reference=reference_of(host, event.repository, event.tag, event.digest))
        try:
            claimed = self.ledger.claim(event.event_id) or (retaking and not self.has_final_outcome(event.event_id))
        except LedgerUnavailable as error:
            raise TransientFailure(f"ledger unavailable: {error}", outcome=None) from error
        if not claimed:
            return self._finish(base.replace(result="duplicate", reason="event already handled"), started)
        if sorting.disposition == "ignore":
            outcome = base.replace(result="ignored", verdict="ignored", action="none", reason=sorting.reason)
            if may_be_referrer(event) and self._judged(event.repository):
                outcome = self._name_untagged_referrer(event, host, outcome)
            return self._finish(outcome, started)
        return self._decide(event, host, base, started, retaking=retaking)

    def _resolve_tag(self, event: PushEvent, host: str, base: Outcome, started: float) -> PushEvent | Outcome:
        """The event with the digest its tag points at now, and named `<event id>@<digest>`; or its final outcome
        when there is nothing to judge (the tag is gone: `ignored`) or the registry refused for good (`failed`).
        Failures that may pass are raised as TransientFailure, like any read of the decision (nothing is claimed yet:
        the event is tried again)."""
        assert event.tag is not None
        try:
            head = self.registries.client(host).head_manifest(event.repository, event.tag)
        except RegistryError as error:
            self._raise_if_it_may_pass(error, event.event_id, base)
            return self._finish(base.replace(result="failed", error=str(error)), started)
        if head is None:
            reason = f"{event.repository}:{event.tag} no longer exists: nothing to judge (deleted or moved since)"
            return self._finish(base.replace(result="ignored", verdict="ignored", action="none", reason=reason),
                                started)
        return dataclasses.replace(event, event_id=f"{event.event_id}@{head.digest}", digest=head.digest,
                                   media_type=event.media_type or head.media_type)

    def _raise_if_it_may_pass(self, error: RegistryError, event_id: str, known: Outcome) -> None:
        """For a registry failure that may pass (401/403 while role assignments propagate, or a transient one): give the
        event's claim back and raise TransientFailure carrying what is `known`. Returns for a permanent failure."""
        if isinstance(error, Unauthorized):
            self._give_back(event_id)
            raise TransientFailure(str(error), kind=AUTHORIZATION, outcome=known) from error
        if error.transient:
            self._give_back(event_id)
            raise TransientFailure(str(error), outcome=known) from error

    def _judged(self, repository: str) -> bool:
        """Whether the policy judges images in `repository`: what it ignores, and the quarantine, are never read."""
        return not self.policy.rule_for(repository).ignore and not self.policy.quarantine.holds(repository)

    def _name_untagged_referrer(self, event: PushEvent, host: str, outcome: Outcome) -> Outcome:
        """An untagged OCI push may be a referrer (a Notation signature, an SBOM pushed by digest) rather than a child
        of a multi-arch push: one manifest read tells, and the `ignored` outcome then says what it is.

        The result is `ignored` either way: nothing is decided or remediated on an untagged push. So a failed read
        (registry down, denied, the manifest already gone, unreadable content) leaves the usual reason, and is logged:
        turning it into `failed` would alert on-call about a push that needs nothing, and retrying it would re-read,
        for a label, every child of every multi-arch push while the registry is struggling.
        """
        assert event.digest is not None
        try:
            artifact = inspect_untagged(self.registries.client(host), event.repository, event.digest)
        except (RegistryError, ValueError) as error:  # ManifestError, a ReferenceError: content no retry can read
            log.warning("untagged push %s of %s: not read to tell whether it is a referrer: %s", event.digest,
                        event.repository, error)
            return outcome
        if artifact is None:
            return outcome
        return outcome.replace(kind=artifact.kind, reason=f"untagged push of {event.digest}: {artifact.reason}")

    def outcome_base(self, event: PushEvent, received_at: str) -> Outcome:
        """The fields of an event's outcome known before anything is read (result still to be set)."""
        host = self.registries.guarded_host(event.origin)
        return Outcome(
            event_id=event.event_id,
            received_at=received_at,
            result="rejected",
            registry=host,
            reference=reference_of(host, event.repository, event.tag, event.digest) if host else None,
            repository=event.repository,
            tag=event.tag,
            digest=event.digest,
            media_type=event.media_type,
            actor=event.actor,
            user_agent=event.user_agent,
            schema=event.schema,
            # A sweep (importer/app/sweep) hands synthetic push events whose schema is "sweep".
            trigger=TRIGGER_SWEEP if event.schema == TRIGGER_SWEEP else TRIGGER_EVENT,
        )

    def _decide(self, event: PushEvent, host: str, base: Outcome, started: float, *, retaking: bool) -> Outcome:
        assert event.digest is not None  # a push named by its tag alone was resolved before its claim
        known = base  # what an attempt record or a final failure can say: the verdict fields once judged
        try:
            restored = self._restore_newer_push(event, host)
            facts, verdict = evaluate(self.policy, self.registries.client(host), event.repository, event.digest,
                                      tag=event.tag)
            failpoint("after-verdict")
            result = "alerted" if verdict.verdict == VIOLATION else verdict.verdict
            outcome = known = base.replace(result=result, **verdict_fields(facts, verdict))
            if restored is not None:
                outcome = known = outcome.replace(reason=restored + (outcome.reason or ""))
            if facts is not None and facts.kind == "artifact" and (
                event.artifact == CHART or facts.artifact_type == HELM_CONFIG
            ):
                outcome = self.chart_manager.handle(outcome)  # decide() ignores artifacts: no remediation below
            if verdict.verdict == VIOLATION and facts is not None:
                outcome = self._remediate(event, host, facts, verdict, outcome)
        except RegistryError as error:
            self._raise_if_it_may_pass(error, event.event_id, known)
            kept = self._already_quarantined(host, event) if isinstance(error, NotFound) else None
            if kept is not None:
                reason = f"{event.digest} was already quarantined as {kept}: nothing left to do"
                return self._finish(base.replace(result="duplicate", reason=reason, preserved_as=kept), started)
            moved = self._moved_to_quarantine(host, event) if retaking and isinstance(error, NotFound) else None
            if moved is not None:  # a try that died after the delete: free its claim and finish its record
                from importer.app.remediation import Target

                self.ledger.finish_remediation(Target(host, event.repository, event.tag or "", event.digest).key,
                                               owner=event.event_id)
                reason = f"moved to {moved}; removed it from {event.repository} (finished after a worker stopped)"
                outcome = base.replace(result="quarantined", verdict="violation", action="quarantine",
                                       reason=reason, preserved_as=moved, affected_tags=(event.tag,))
                return self._finish(outcome, started)
            return self._finish(known.replace(result="failed", error=str(error)), started)
        except (ManifestError, CopyError) as error:  # the content can never work: no retry
            return self._finish(known.replace(result="failed", error=str(error)), started)
        except ValueError as error:  # a name or value no retry can fix (a ReferenceError, say)
            return self._finish(known.replace(result="failed", error=f"{type(error).__name__}: {error}"), started)
        except LedgerUnavailable as error:
            self._give_back(event.event_id)
            raise TransientFailure(f"ledger unavailable: {error}", outcome=None) from error
        except Exception as error:  # a bug: tried again a bounded number of times, then failed once
            self._give_back(event.event_id)
            log.exception("unexpected error handling event %s", event.event_id)
            raise TransientFailure(f"internal error: {type(error).__name__}: {error}", kind=INTERNAL,
                                   outcome=known) from error
        return self._finish(outcome, started)

    def _restore_newer_push(self, event: PushEvent, host: str) -> str | None:
        """Put this event's image back on its tag when our re-import overwrote it (docs/design.md, "Newer push wins").

        The OCI API has no conditional PUT, so a push can land between a re-import's compare and its tag write. That
        push's event comes after ours (one tag's events are taken in order) and finds the tag on what we wrote: the
        pushed digest goes back on the tag before it is judged. Only tags remediated within the loop-guard window are
        looked at (one ledger read otherwise). Returns what was done, for the outcome's reason, or None.
        """
        if event.tag is None or event.digest is None or event.schema == TRIGGER_SWEEP:
            return None
        _, loop_window, _ = self._remediation
        scope = f"{host}/{event.repository}:{event.tag}"
        if self.ledger.count_remediations(scope, since=time.time() - loop_window) == 0:
            return None
        registry = self.registries.client(host)
        current = registry.head_manifest(event.repository, event.tag)
        if current is None or current.digest == event.digest:
            return None
        ours = any(
            earlier.registry == host and earlier.tag == event.tag and earlier.new_digest == current.digest
            and earlier.result == "reimported"
            for earlier in self.ledger.outcomes(repository=event.repository, limit=200)
        )
        if not ours:
            return None
        pushed = registry.get_manifest(event.repository, event.digest)
        registry.put_manifest(event.repository, event.tag, pushed.raw, pushed.media_type)
        return f"restored the newer push {event.digest} over the re-import {current.digest}; "

    def _give_back(self, event_id: str) -> None:
        """Release the event's claim so that the next try decides it (a ledger outage is no reason to fail here)."""
        with contextlib.suppress(LedgerUnavailable):
            self.ledger.release(event_id)

    def has_final_outcome(self, event_id: str) -> bool:
        """Whether an outcome that ends the event's handling was recorded for it."""
        return any(outcome.final for outcome in self.ledger.outcomes(event_id=event_id, limit=20))

    @property
    def remediator(self) -> "Remediator":
        """Built on the first violation: the copy engine and the ACR modules stay out of a cold start."""
        if self._remediator is None:
            from importer.app.remediation import Remediator

            loop_limit, loop_window, server_import = self._remediation
            self._remediator = Remediator(self.policy, self.registries, self.ledger, loop_limit=loop_limit,
                                          loop_window=loop_window, server_import=server_import)
        return self._remediator

    @property
    def chart_manager(self) -> "ChartManager":
        """Built on the first chart push, like the remediator: chart reading stays out of a cold start."""
        if self._chart_manager is None:
            from importer.app.chart_guard import ChartManager

            self._chart_manager = ChartManager(self.policy, self.registries, self.ledger, self.remediator,
                                               record=self._finish, paused=self._paused)
        return self._chart_manager

    def _already_quarantined(self, host: str, event: PushEvent) -> str | None:
        """Where an earlier outcome quarantined this digest (a late redelivery finds it gone), or None."""
        for earlier in self.ledger.outcomes(repository=event.repository, limit=200):
            if earlier.registry == host and earlier.digest == event.digest and earlier.result == "quarantined":
                return earlier.preserved_as
        return None

    def _moved_to_quarantine(self, host: str, event: PushEvent) -> str | None:
        """Where this push's image is kept when its quarantine copy exists (by name, with its digest), else None."""
        if event.tag is None or event.digest is None:
            return None
        repository = self.policy.quarantine.repository_for(event.repository)
        tag = quarantine_tag(event.tag, event.digest)
        kept = self.registries.client(host).head_manifest(repository, tag)
        return f"{host}/{repository}:{tag}" if kept is not None and kept.digest == event.digest else None

    def _remediate(self, event: PushEvent, host: str, facts: Facts, verdict: Verdict, outcome: Outcome) -> Outcome:
        """Act on a violation as the rule says: alert only, re-import, or quarantine."""
        if self.ledger.is_released(f"{host}/{event.repository}", facts.digest):
            return outcome.replace(result="ignored", action="none", reason=f"released on purpose; {verdict.reason}")
        if verdict.action == "alert" or event.tag is None:
            return outcome
        if self._paused(event.repository):
            return outcome.replace(reason=f"remediation paused for {event.repository}; {verdict.reason}")
        rule = self.policy.rule_for(event.repository)
        from importer.app.remediation import Target

        remedy = self.remediator.remediate(Target(host, event.repository, event.tag, facts.digest), facts, verdict, rule,
                                           owner=event.event_id)
        return outcome.replace(
            result=remedy.result,
            reason=remedy.reason,
            new_digest=remedy.new_digest,
            preserved_as=remedy.preserved_as,
            source=remedy.source,
            error=remedy.error,
            alert=remedy.alert,
            affected_tags=remedy.affected_tags,
            referrers_copied=remedy.referrers_copied,
            signatures=remedy.signatures,
        )

    def record_outcome(self, outcome: Outcome) -> Outcome:
        """Record an outcome decided outside `handle` (a sweep's `superseded`) like every other: ledger, then sinks."""
        return self._finish(outcome, time.perf_counter())

    def _finish(self, outcome: Outcome, started: float) -> Outcome:
        outcome = outcome.replace(duration_ms=round((time.perf_counter() - started) * 1000, 3))
        failpoint("before-outcome")
        self.ledger.record(outcome)
        for sink in self.sinks:
            try:
                sink.emit(outcome)
            except Exception:  # a sink must never lose the recorded outcome or fail the event
                log.exception("outcome sink %s failed", type(sink).__name__)
        return outcome
