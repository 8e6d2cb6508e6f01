"""The always-on outcome sink: one JSON log line per outcome on the `platform_guard.outcome` logger.

Alerting outcomes (quarantined, failed, a loop-guard stop) are logged at ERROR with their alert summary, the rest at
INFO, so a log-based alert rule can key on the level as well as on the fields.
"""

from __future__ import annotations

import json
import logging

from importer.core.alerts import alert_summary
from importer.core.outcome import Outcome

OUTCOME_LOGGER = "platform_guard.outcome"


class LogSink:
    """One JSON log line per outcome; the fields also ride along as `extra` for structured log handlers."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or logging.getLogger(OUTCOME_LOGGER)

    def emit(self, outcome: Outcome) -> None:
        level = logging.ERROR if outcome.alerts else logging.INFO
        if self._logger.isEnabledFor(level):
            record = outcome.as_dict()
            if outcome.alerts:
                record["summary"] = alert_summary(outcome)
            self._logger.log(level, json.dumps(record, separators=(",", ":")), extra={"platform_guard": record})
