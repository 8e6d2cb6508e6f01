"""Outcome sinks: where each recorded outcome goes besides the ledger.

    LogSink()                                  # always on: one JSON line per outcome (`platform_guard.outcome`)
    WebhookSink(url, token=…)                  # CloudEvents 1.0 POST for every alerting outcome

Alerting outcomes (`Outcome.alerts`): quarantined, failed, and a loop-guard stop. They are logged at ERROR (the rest at
INFO), so a log-based alert rule can key on the level as well as on the fields. The alert payload tells on-call what
was pushed, what was expected, what was done, where the image is kept and the command that releases it.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any, Protocol

import urllib3

from importer.core.outcome import Outcome

OUTCOME_LOGGER = "platform_guard.outcome"
DEFAULT_TYPE_PREFIX = "io.platformguard"
log = logging.getLogger("platform_guard.alerts")


class OutcomeSink(Protocol):
    """Receives every outcome after it is recorded in the ledger."""

    def emit(self, outcome: Outcome) -> None: ...


def event_kind(outcome: Outcome) -> str | None:
    """The notification kind of an outcome: quarantined, reimported, violation, failed, loopguard (None: nothing to tell)."""
    if outcome.alert == "loopguard":
        return "loopguard"
    return {"quarantined": "quarantined", "reimported": "reimported", "alerted": "violation", "failed": "failed"}.get(
        outcome.result
    )


def alert_summary(outcome: Outcome) -> dict[str, Any]:
    """What on-call needs first, in plain fields."""
    release = f"python -m importer release {outcome.preserved_as}" if outcome.preserved_as else None
    return {
        "pushed": {"reference": outcome.reference, "actor": outcome.actor, "user_agent": outcome.user_agent,
                   "platforms": list(outcome.platforms)},
        "expected": {"required": list(outcome.required), "missing": list(outcome.missing),
                     "forbidden": list(outcome.forbidden), "inconsistent": list(outcome.inconsistent)},
        "done": {"result": outcome.result, "reason": outcome.reason, "error": outcome.error,
                 "new_digest": outcome.new_digest, "source": outcome.source},
        "kept_at": outcome.preserved_as,
        "release_command": release,
    }


def cloud_event(outcome: Outcome, *, type_prefix: str = DEFAULT_TYPE_PREFIX) -> dict[str, Any]:
    """The outcome as a structured-mode CloudEvents 1.0 object."""
    kind = event_kind(outcome) or outcome.result
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{outcome.event_id}/{outcome.result}/{outcome.received_at}")),
        "source": f"/platform-guard/{outcome.registry or 'unknown'}",
        "type": f"{type_prefix}.image.{kind}",
        "subject": outcome.reference or outcome.event_id,
        "time": outcome.received_at,
        "datacontenttype": "application/json",
        "data": {**outcome.as_dict(), "summary": alert_summary(outcome)},
    }


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


class WebhookSink:
    """POSTs each alerting outcome as a CloudEvent to a configured URL (bearer token), with bounded retries."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 5.0, attempts: int = 3,
                 type_prefix: str = DEFAULT_TYPE_PREFIX) -> None:
        self.url = url
        self._token = token
        self._type_prefix = type_prefix
        self._pool = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            retries=urllib3.Retry(total=attempts - 1, backoff_factor=0.2, status_forcelist=(429, 500, 502, 503, 504),
                                  allowed_methods=None, respect_retry_after_header=True, raise_on_status=False),
        )

    def __repr__(self) -> str:
        return f"WebhookSink({self.url!r})"

    def emit(self, outcome: Outcome) -> None:
        if not outcome.alerts:
            return
        headers = {"Content-Type": "application/cloudevents+json; charset=utf-8"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        body = json.dumps(cloud_event(outcome, type_prefix=self._type_prefix)).encode()
        response = self._pool.request("POST", self.url, body=body, headers=headers)
        if not 200 <= response.status < 300:
            log.error("alert webhook answered %s for event %s", response.status, outcome.event_id)
