"""Outcomes to Application Insights: one trace per outcome whose custom dimensions are the outcome fields.

    sink = configure_telemetry(os.environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING"))   # once, at start-up
    if sink is not None:
        sinks.append(sink)         # TelemetrySink.emit(outcome) → a trace in App Insights `traces`
    sink.flush()                   # optional: export now instead of within the batch delay (about 5 s)

configure_telemetry sets up azure-monitor-opentelemetry (`configure_azure_monitor`) for the whole process, with the
exporter's log handler on the TELEMETRY_LOGGER logger only; it returns None when no connection string is set, and
imports the SDK only then. Each outcome becomes a trace (severity Error for alerting outcomes, else Information)
whose `customDimensions` hold every field of importer.core.outcome.OUTCOME_FIELDS as `platform_guard_<field>` (DIMENSIONS):
lists as JSON array strings (`["linux/arm64"]`, `[]`), numbers as numbers, and fields that are null in the outcome
left out. These names are a contract: docs/queries.md and the alert rule in infra query them.

The JSON line of importer.adapters.sinks.log.LogSink is left as it is; the telemetry logger does not propagate, so the console
(and the Functions host, which forwards plain log lines) does not get a second copy.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any
from urllib.parse import urlsplit

from importer.core.outcome import OUTCOME_FIELDS, Outcome
from importer.core.reference import is_loopback_host

TELEMETRY_LOGGER = "platform_guard.telemetry"
CONNECTION_STRING_SETTING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
DIMENSION_PREFIX = "platform_guard_"
# Every custom dimension name a trace can carry, in OUTCOME_FIELDS order.
DIMENSIONS: tuple[str, ...] = tuple(DIMENSION_PREFIX + name for name in OUTCOME_FIELDS)

# Not a child of TELEMETRY_LOGGER: its records would go to Application Insights as traces.
log = logging.getLogger("platform_guard.telemetry_setup")

_configure_lock = threading.Lock()
_configured_with: str | None = None


class TelemetryError(ValueError):
    """The Application Insights settings are unusable; the message names the setting (never its value)."""


def custom_dimensions(outcome: Outcome) -> dict[str, str | int | float]:
    """The custom dimensions of an outcome's trace: `platform_guard_<field>` for every non-null outcome field."""
    dimensions: dict[str, str | int | float] = {}
    for name, value in outcome.as_dict().items():
        if value is None:
            continue
        if isinstance(value, list):
            dimensions[DIMENSION_PREFIX + name] = json.dumps(value, separators=(",", ":"))
        elif isinstance(value, (str, int, float)):
            dimensions[DIMENSION_PREFIX + name] = value
        else:
            dimensions[DIMENSION_PREFIX + name] = str(value)
    return dimensions


def trace_message(outcome: Outcome) -> str:
    """The trace's message: result, what it was about and why, for a human scanning the `traces` table."""
    subject = outcome.reference or outcome.event_id
    why = outcome.error or outcome.reason
    return f"platform guard {outcome.result}: {subject}" + (f" ({why})" if why else "")


class TelemetrySink:
    """Logs each outcome to the telemetry logger with its fields flattened into custom dimensions."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or logging.getLogger(TELEMETRY_LOGGER)

    def __repr__(self) -> str:
        return f"TelemetrySink({self._logger.name!r})"

    def emit(self, outcome: Outcome) -> None:
        level = logging.ERROR if outcome.alerts else logging.INFO
        if self._logger.isEnabledFor(level):
            self._logger.log(level, "%s", trace_message(outcome), extra=custom_dimensions(outcome))

    def flush(self, timeout_seconds: float = 10.0) -> bool:
        """Export what is buffered now; False when the exporter did not finish within the timeout."""
        from opentelemetry._logs import get_logger_provider

        provider: Any = get_logger_provider()
        force_flush = getattr(provider, "force_flush", None)
        if force_flush is None:  # no SDK provider configured: nothing is buffered
            return True
        return bool(force_flush(int(timeout_seconds * 1000)))


def parse_connection_string(connection_string: str) -> dict[str, str]:
    """The `Key=Value;…` pairs of an Application Insights connection string, keys lower-cased.

    Raises TelemetryError (naming the setting, not the value) when it has no InstrumentationKey or its
    IngestionEndpoint is not https (plain http is allowed to loopback hosts only, for local tests).
    """
    pairs: dict[str, str] = {}
    for part in connection_string.split(";"):
        key, separator, value = part.partition("=")
        if not part.strip():
            continue
        if not separator or not key.strip():
            raise TelemetryError(f"{CONNECTION_STRING_SETTING}: expected Key=Value pairs separated by ';'")
        pairs[key.strip().lower()] = value.strip()
    if not pairs.get("instrumentationkey"):
        raise TelemetryError(f"{CONNECTION_STRING_SETTING}: no InstrumentationKey")
    for key in ("ingestionendpoint", "liveendpoint"):
        if key in pairs:
            _check_endpoint(key, pairs[key])
    return pairs


def _check_endpoint(key: str, endpoint: str) -> None:
    name = {"ingestionendpoint": "IngestionEndpoint", "liveendpoint": "LiveEndpoint"}[key]
    parts = urlsplit(endpoint)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise TelemetryError(f"{CONNECTION_STRING_SETTING}: {name} is not an http(s) URL")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise TelemetryError(f"{CONNECTION_STRING_SETTING}: {name} uses plain http to a non-loopback host")


def configure_telemetry(
    connection_string: str | None, *, credential: object | None = None, enable_live_metrics: bool = False
) -> TelemetrySink | None:
    """Send outcomes to Application Insights when a connection string is given; call once per process.

    Returns the sink to add to the pipeline, or None when `connection_string` is None or blank. For a resource with
    local auth disabled, the exporter authenticates with Entra ID: set APPLICATIONINSIGHTS_AUTHENTICATION_STRING
    (`Authorization=AAD;ClientId=<managed identity client id>`), which the exporter reads itself, or pass `credential`
    (a TokenCredential; it then wins over that setting).
    The process-wide OpenTelemetry providers can be set only once: a second call with the same connection string
    returns another sink for them, with a different one it raises TelemetryError.
    """
    global _configured_with
    if connection_string is None or not connection_string.strip():
        return None
    connection_string = connection_string.strip()
    parse_connection_string(connection_string)
    with _configure_lock:
        if _configured_with is None:
            from azure.monitor.opentelemetry import configure_azure_monitor

            options: dict[str, Any] = {
                "connection_string": connection_string,
                "logger_name": TELEMETRY_LOGGER,
                "enable_live_metrics": enable_live_metrics,
            }
            if credential is not None:
                options["credential"] = credential
            configure_azure_monitor(**options)
            _configured_with = connection_string
            log.info("outcomes go to Application Insights as traces with platform_guard_* custom dimensions")
        elif _configured_with != connection_string:
            raise TelemetryError(
                f"{CONNECTION_STRING_SETTING}: telemetry is already configured in this process with another "
                "connection string (OpenTelemetry providers can be set once)"
            )
    logger = logging.getLogger(TELEMETRY_LOGGER)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not logger.handlers:  # the SDK's logs pipeline is off (OTEL_LOGS_EXPORTER=none): keep lastResort quiet
        logger.addHandler(logging.NullHandler())
    return TelemetrySink(logger)
