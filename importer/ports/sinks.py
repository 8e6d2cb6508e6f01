"""The outcome sink port: where each recorded outcome goes besides the ledger (log, webhook, Event Grid, telemetry)."""

from __future__ import annotations

from typing import Protocol

from importer.core.outcome import Outcome


class OutcomeSink(Protocol):
    """Receives every outcome after it is recorded in the ledger."""

    def emit(self, outcome: Outcome) -> None: ...
