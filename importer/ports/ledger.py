"""The ledger port: idempotency claims and the outcome records, with one adapter per backend.

    ledger = SqliteLedger("platform-guard.db")    # the embedded default
    if ledger.claim(event.event_id):              # first delivery of this event
        ...decide...; ledger.record(outcome)
    else:
        ledger.record(duplicate_outcome)          # a redelivery: recorded, not decided again

A claim is released when handling fails transiently, so that the redelivered event is decided then.
Remediation has claims of its own, with a lease, keyed by what is remediated rather than by event, so that
two deliveries (or two workers) never remediate the same registry/repository:tag@digest at once; the loop
guard counts remediations per tag; releases remember images put back on purpose.
"""

from __future__ import annotations

from typing import Protocol

from importer.core.outcome import Outcome


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

    def claim_remediation(self, key: str, *, lease_seconds: float, now: float) -> bool:
        """Take the right to remediate `key` (registry/repository:tag@digest) until the lease runs out."""

    def finish_remediation(self, key: str) -> None:
        """Give the remediation claim back."""

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
