"""The ledger port: idempotency claims and the outcome records, with one adapter per backend.

    ledger = SqliteLedger("platform-guard.db")    # the embedded default
    if ledger.claim(event.event_id):              # first delivery of this event
        ...decide...; ledger.record(outcome)
    else:
        ledger.record(duplicate_outcome)          # a redelivery: recorded, not decided again

A claim is released when handling fails transiently, so that the redelivered event is decided then.
Remediation has claims of its own, with a lease, keyed by what is remediated rather than by event, so that
two deliveries (or two workers) never remediate the same registry/repository:tag@digest at once; the loop
guard counts remediations per tag; releases remember images put back on purpose; sweep resume points say where the
next timer sweep of a registry starts; quarantine records say where each quarantined image came from.
"""

from __future__ import annotations

from typing import Protocol

from importer.core.outcome import Outcome
from importer.core.quarantine_names import QuarantineOrigin


class LedgerUnavailable(Exception):
    """The ledger's backend failed in a way that may pass (5xx, 429, timeouts, refused connections) after the
    adapter's own bounded retries: fail the delivery so that it is retried, as for a transient registry error."""

    transient = True


class Ledger(Protocol):
    """Where claims and outcomes live."""

    def claim(self, event_id: str) -> bool:
        """Take the event for handling; False when it was taken before (a duplicate delivery)."""

    def release(self, event_id: str) -> None:
        """Give a claim back after a transient failure, so a redelivery is handled again."""

    def record(self, outcome: Outcome) -> None:
        """Append one outcome record."""

    def outcomes(self, *, limit: int = 50, repository: str | None = None, event_id: str | None = None) -> list[Outcome]:
        """The newest outcomes first, optionally for one repository or one event."""

    def claim_remediation(self, key: str, *, lease_seconds: float, now: float, owner: str | None = None) -> bool:
        """Take the right to remediate `key` (registry/repository:tag@digest) until the lease runs out.

        `owner` (the event being decided) may take its own claim over before it expires: a worker that takes an
        event again after the previous one died resumes its remediation instead of waiting out the lease.
        """

    def finish_remediation(self, key: str, *, owner: str | None = None) -> None:
        """Give the remediation claim back; with `owner`, only if it is still that owner's (a successor's claim
        is never removed by a worker whose lease ran out)."""

    def note_remediation(self, scope: str, *, now: float) -> None:
        """Count one remediation of `scope` (registry/repository:tag) for the loop guard."""

    def count_remediations(self, scope: str, *, since: float) -> int:
        """How many remediations of `scope` were noted at or after `since`."""

    def mark_released(self, repository: str, digest: str, *, now: float) -> None:
        """Remember that `digest` was put back into `repository` on purpose: it is not remediated again."""

    def is_released(self, repository: str, digest: str) -> bool:
        """Whether `digest` was released into `repository` on purpose."""

    def close(self) -> None:
        """Release the backend's resources."""

    def save_sweep_resume(self, registry: str, repositories: list[str], *, now: float) -> None:
        """Remember where the next sweep of `registry` starts: the repositories the last one did not reach, in its
        order (a short list: the sweep keeps at most 100 names); an empty list starts from the beginning. Replaces
        what was saved before. The sweep keeps the order of the registries under the name `*`."""

    def sweep_resume(self, registry: str) -> list[str]:
        """The repositories last saved for `registry` by save_sweep_resume, in order; empty when none were saved."""

    def record_quarantine(
        self, registry: str, quarantine_repository: str, quarantine_tag: str, original_repository: str,
        original_tag: str, digest: str, *, now: float,
    ) -> None:
        """Remember where the image kept at `registry`/`quarantine_repository`:`quarantine_tag` came from (a
        shortened name does not say it); recording the same name again replaces the record."""

    def quarantine_origin(
        self, registry: str, quarantine_repository: str, quarantine_tag: str
    ) -> QuarantineOrigin | None:
        """The original repository, tag and digest recorded for a quarantine name, or None when none was recorded."""
