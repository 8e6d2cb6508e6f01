"""The ledger port: idempotency claims and the outcome records, with one adapter per backend.

    ledger = SqliteLedger("platform-guard.db")    # the embedded default
    if ledger.claim(event.event_id):              # first delivery of this event
        ...decide...; ledger.record(outcome)
    else:
        ledger.record(duplicate_outcome)          # a redelivery: recorded, not decided again

A claim is released when handling fails transiently, so that the redelivered event is decided then.
"""

from __future__ import annotations

from typing import Protocol

from importer.outcome import Outcome


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

    def close(self) -> None:
        """Release the backend's resources."""
