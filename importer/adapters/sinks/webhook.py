"""Alerting outcomes POSTed as CloudEvents 1.0 to a configured URL (bearer token), with bounded retries.

Retries are urllib3's, configured from the `retry` policy (importer.core.retry.WEBHOOK_RETRY by default; `attempts`,
when given, overrides its attempts): 429 and 5xx, connection failures, Retry-After honoured up to its cap.
"""

from __future__ import annotations

import json
import logging

import urllib3

from importer.adapters.retrying import urllib3_retry
from importer.core.alerts import DEFAULT_TYPE_PREFIX, cloud_event
from importer.core.outcome import Outcome
from importer.core.retry import WEBHOOK_RETRY, RetryPolicy

log = logging.getLogger("platform_guard.alerts")


class WebhookSink:
    """POSTs each alerting outcome as a CloudEvent to a configured URL (bearer token), with bounded retries."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 5.0,
                 retry: RetryPolicy = WEBHOOK_RETRY, attempts: int | None = None,
                 type_prefix: str = DEFAULT_TYPE_PREFIX) -> None:
        self.url = url
        self._token = token
        self._type_prefix = type_prefix
        self._pool = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            retries=urllib3_retry(retry.replace(attempts=attempts), status_forcelist=(429, 500, 502, 503, 504),
                                  allowed_methods=None, raise_on_status=False),
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
