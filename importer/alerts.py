"""Outcome sinks: where each recorded outcome goes besides the ledger.

    sink = LogSink()          # always on: one JSON line per outcome on the `platform_guard.outcome` logger
    sink.emit(outcome)

Outcomes that page someone (`Outcome.alerts`: quarantined, failed) are logged at ERROR, the rest at INFO,
so a log-based alert rule can key on the level as well as on the fields.
"""

from __future__ import annotations

import json
import logging
from typing import Protocol

from importer.outcome import Outcome

OUTCOME_LOGGER = "platform_guard.outcome"


class OutcomeSink(Protocol):
    """Receives every outcome after it is recorded in the ledger."""

    def emit(self, outcome: Outcome) -> None: ...


class LogSink:
    """One JSON log line per outcome; the fields also ride along as `extra` for structured log handlers."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or logging.getLogger(OUTCOME_LOGGER)

    def emit(self, outcome: Outcome) -> None:
        record = outcome.as_dict()
        level = logging.ERROR if outcome.alerts else logging.INFO
        if self._logger.isEnabledFor(level):
            self._logger.log(
                level,
                json.dumps(record, separators=(",", ":")),
                extra={"platform_guard": record},
            )
