"""The metrics port: what the work reports for `/metrics` on the local host (docs/design.md, "Metrics").

    metrics.emit(outcome)                                       # an OutcomeSink: outcomes by result, latency, attempts
    metrics.message_settled(SETTLED_RETRY)                      # a worker gave a message back, or dead-lettered it
    observer = metrics.registry_observer("registry.example")    # handed to one registry client's transport
    observer.request_sent("GET", "not_found")                   # one HTTP request and how it ended (None: answered)

Every label a backend may attach comes from a short list fixed here or from the operator's settings (the guarded
registries), never from an event, a manifest or a registry's answer, so the number of series stays bounded.
"""

from __future__ import annotations

from typing import Protocol

from importer.ports.sinks import OutcomeSink

# How one registry request ended when it did not end in a 1xx-3xx answer. The HTTP answers: 401/403, 404, 429, other
# 4xx, 5xx. The failures to get one: past its deadline or a socket timeout, no connection made (refused, no route,
# name not resolved), a connection that broke (reset, TLS failure, truncated answer).
NOT_FOUND = "not_found"
UNAUTHORIZED = "unauthorized"
THROTTLED = "throttled"
CLIENT_ERROR = "client_error"
SERVER_ERROR = "server_error"
TIMEOUT = "timeout"
UNREACHABLE = "unreachable"
CONNECTION = "connection"
REGISTRY_ERROR_CLASSES: tuple[str, ...] = (
    NOT_FOUND, UNAUTHORIZED, THROTTLED, CLIENT_ERROR, SERVER_ERROR, TIMEOUT, UNREACHABLE, CONNECTION,
)

# The HTTP methods a registry client sends; anything else is counted as OTHER_METHOD.
REGISTRY_METHODS: tuple[str, ...] = ("GET", "HEAD", "PUT", "POST", "PATCH", "DELETE")
OTHER_METHOD = "other"

# The environment variable naming the directory where the local host's processes (serve and its `work` processes)
# share their counts: prometheus_client's multiprocess mode reads it when first imported, so it is named here, where
# `serve` can set it before any metrics adapter is loaded.
MULTIPROCESS_ENVIRONMENT = "PROMETHEUS_MULTIPROC_DIR"

# How a worker settles a message: importer.app.attempt's endings (defined here, where the metrics count them).
SETTLED_COMPLETE = "complete"  # decided (or already decided): the message is done
SETTLED_RETRY = "retry"  # a failure that may pass: try the message again later
SETTLED_DEAD_LETTER = "dead-letter"  # given up: the message goes to the dead letters


class RegistryRequestObserver(Protocol):
    """Told of every HTTP request one registry client sends (retries, redirects and token requests included)."""

    def request_sent(self, method: str, error_class: str | None) -> None:
        """One request: its method, and one of REGISTRY_ERROR_CLASSES, or None when it was answered 1xx-3xx."""
        ...


class WorkerMetrics(Protocol):
    """Told how each queued message a worker held was settled."""

    def message_settled(self, settle: str) -> None:
        """`settle`: SETTLED_COMPLETE, SETTLED_RETRY or SETTLED_DEAD_LETTER."""
        ...


class Metrics(OutcomeSink, WorkerMetrics, Protocol):
    """Everything the local host counts: outcomes (as a sink), queue settlements and registry requests."""

    def registry_observer(self, registry: str) -> RegistryRequestObserver:
        """The observer for the client of `registry` (a host); hosts that are not guarded share one label."""
        ...
