"""An outcome sink for tests: keeps what the pipeline emits, as the alert sinks would see it."""

from __future__ import annotations

from importer.core.outcome import Outcome


class Collected:
    """An outcome sink that keeps what it is given (the alert sinks' view of the outcomes)."""

    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []

    def emit(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)

    def alerts(self, event_id: str) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.event_id == event_id and outcome.alerts]
