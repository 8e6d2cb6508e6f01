"""Outcome sink that publishes outcomes to an Azure Event Grid custom topic as CloudEvents 1.0.

    sink = EventGridSink("https://TOPIC.REGION-1.eventgrid.azure.net/api/events", credential=DefaultAzureCredential())
    sink = EventGridSink(endpoint, credential=AzureKeyCredential(key), kinds={"quarantined", "loopguard"})
    sink.emit(outcome)       # never raises: a failed publish is logged (without the key) and the outcome stays recorded

Event types are `<type_prefix>.image.<kind>` for the kinds of importer.core.alerts.event_kind: quarantined, reimported,
violation (a violation only alerted), failed, loopguard; source `/platform-guard/<registry>`, subject the image
reference, data the outcome record plus its alert summary (importer.core.alerts.cloud_event). Outcomes of other kinds, or of
kinds left out of `kinds`, are not published. With a TokenCredential the identity needs the "EventGrid Data Sender"
role on the topic. azure-eventgrid is imported on the first publish, and the client is built once and reused.
Retries are the SDK's, configured per call from the `retry` policy (importer.core.retry.EVENTGRID_RETRY by default;
`attempts`, when given, overrides its attempts).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from importer.adapters.retrying import azure_retry_options
from importer.core.alerts import DEFAULT_TYPE_PREFIX, cloud_event, event_kind
from importer.core.outcome import Outcome
from importer.core.reference import is_loopback_host
from importer.core.retry import EVENTGRID_RETRY, RetryPolicy

# Every kind importer.core.alerts.event_kind can return, in the order an on-call reader would rank them.
EVENT_KINDS: tuple[str, ...] = ("quarantined", "loopguard", "failed", "violation", "reimported")
DEFAULT_TOPIC_PATH = "/api/events"
# Logger of the generated models in azure-eventgrid 4.x, and the per-call options we pass; see _CallOptionWarnings.
_SDK_MODEL_LOGGER = "azure.eventgrid._legacy._generated._serialization"
_CALL_OPTIONS = ("retry_total", "retry_backoff_factor", "retry_backoff_max", "connection_timeout", "read_timeout",
                 "enforce_https")

log = logging.getLogger("platform_guard.alerts.eventgrid")


class _CallOptionWarnings(logging.Filter):
    """Drops the SDK's warning that a per-call pipeline option "is not a known attribute" of its CloudEvent model.

    For basic topics EventGridPublisherClient does not pass client options on to its pipeline, so retries, timeouts
    and `enforce_https` must be given per call; the SDK also hands those keywords to its event model, which warns once
    per event and option that it ignores them (harmlessly). Only those warnings, for our option names, are dropped.
    """

    _prefixes = tuple(f"{name} is not a known attribute of class" for name in _CALL_OPTIONS)

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self._prefixes)


def topic_endpoint(endpoint: str) -> str:
    """The publish URL of a topic endpoint: https, or http to a loopback host only; `/api/events` when no path is given.

    Raises ValueError naming the endpoint when it is not one.
    """
    shown = _redacted(endpoint)
    try:
        parts = urlsplit(endpoint.strip())
        _ = parts.port  # parsing the port raises ValueError when it is not a number in range
    except ValueError:
        raise ValueError(f"Event Grid endpoint {shown!r} is not a valid URL") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"Event Grid endpoint {shown!r} is not an http(s) URL with a host")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise ValueError(f"Event Grid endpoint {shown!r} must have no user info, query or fragment")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError(f"Event Grid endpoint {shown!r} uses plain http to a non-loopback host: use https")
    path = parts.path if parts.path not in ("", "/") else DEFAULT_TOPIC_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _redacted(endpoint: str) -> str:
    """The endpoint without user info or query string, safe for logs and messages."""
    try:
        parts = urlsplit(endpoint.strip())
        port = parts.port
    except ValueError:
        return "<not a URL>"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _event_time(received_at: str | None) -> datetime | None:
    """The outcome's receive time as a datetime (CloudEvent `time`), None when it does not parse."""
    if not received_at:
        return None
    try:
        return datetime.fromisoformat(received_at)
    except ValueError:
        return None


class EventGridSink:
    """Publishes outcomes of the chosen kinds to an Event Grid custom topic, one CloudEvent per outcome."""

    def __init__(
        self,
        endpoint: str,
        *,
        credential: object,
        type_prefix: str = DEFAULT_TYPE_PREFIX,
        kinds: Iterable[str] = EVENT_KINDS,
        timeout: float = 5.0,
        retry: RetryPolicy = EVENTGRID_RETRY,
        attempts: int | None = None,
    ) -> None:
        self.endpoint = topic_endpoint(endpoint)
        self.kinds = frozenset(kinds)
        unknown = sorted(self.kinds - set(EVENT_KINDS))
        if unknown:
            raise ValueError(f"unknown Event Grid event kinds {unknown}: expected some of {list(EVENT_KINDS)}")
        if not type_prefix or type_prefix.endswith("."):
            raise ValueError(f"Event Grid type prefix {type_prefix!r} must be a non-empty name like 'io.platformguard'")
        if (attempts is not None and attempts < 1) or timeout <= 0:
            raise ValueError(f"Event Grid sink needs attempts >= 1 and timeout > 0 (got {attempts}, {timeout})")
        retry = retry.replace(attempts=attempts)
        self._uses_token = callable(getattr(credential, "get_token", None))
        if not self._uses_token and not _is_key_or_sas_credential(credential):
            raise ValueError(
                f"Event Grid credential of type {type(credential).__name__} is neither a TokenCredential "
                "(get_token) nor an AzureKeyCredential / AzureSasCredential"
            )
        self._credential = credential
        self.type_prefix = type_prefix
        self._call_options: dict[str, Any] = {
            **azure_retry_options(retry),
            "connection_timeout": timeout,
            "read_timeout": timeout,
        }
        if self._uses_token and urlsplit(self.endpoint).scheme == "http":
            # azure-core refuses bearer tokens over http unless told otherwise; topic_endpoint allowed http to
            # loopback hosts only. Key credentials must not get this option: no policy consumes it for them.
            self._call_options["enforce_https"] = False
        self._client: Any = None
        self._client_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"EventGridSink({_redacted(self.endpoint)!r}, kinds={sorted(self.kinds)})"

    def publishes(self, outcome: Outcome) -> bool:
        """Whether this sink publishes the outcome: its event kind is one of `kinds`."""
        return event_kind(outcome) in self.kinds

    def emit(self, outcome: Outcome) -> None:
        """Publish the outcome if its kind is selected; log (never raise) when Event Grid does not take it."""
        if not self.publishes(outcome):
            return
        try:
            self._get_client().send([self.as_cloud_event(outcome)], **self._call_options)
        except Exception as error:  # a sink must never fail the event; the ledger has the outcome
            log.error(
                "Event Grid publish to %s failed for event %s (%s): %s: %s",
                _redacted(self.endpoint),
                outcome.event_id,
                event_kind(outcome),
                type(error).__name__,
                _first_line(str(error)),
            )

    def as_cloud_event(self, outcome: Outcome) -> Any:
        """The outcome as an azure.core.messaging.CloudEvent (the fields of importer.core.alerts.cloud_event)."""
        from azure.core.messaging import CloudEvent

        fields = cloud_event(outcome, type_prefix=self.type_prefix)
        time = _event_time(outcome.received_at)
        return CloudEvent(
            source=fields["source"],
            type=fields["type"],
            subject=fields["subject"],
            id=fields["id"],
            data=fields["data"],
            datacontenttype=fields["datacontenttype"],
            **({"time": time} if time is not None else {}),
        )

    def close(self) -> None:
        """Close the client's connections (it is rebuilt on the next emit)."""
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _get_client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                from azure.eventgrid import EventGridPublisherClient

                sdk_model_log = logging.getLogger(_SDK_MODEL_LOGGER)
                if not any(isinstance(f, _CallOptionWarnings) for f in sdk_model_log.filters):
                    sdk_model_log.addFilter(_CallOptionWarnings())
                self._client = EventGridPublisherClient(self.endpoint, self._credential)  # type: ignore[arg-type]
            return self._client


def _is_key_or_sas_credential(credential: object) -> bool:
    from azure.core.credentials import AzureKeyCredential, AzureSasCredential

    return isinstance(credential, (AzureKeyCredential, AzureSasCredential))


def _first_line(text: str) -> str:
    """The first line of an SDK error message (the rest repeats the response body and headers)."""
    return text.strip().splitlines()[0] if text.strip() else ""
