"""The metrics port: what the work reports for `/metrics` on the local host (docs/design.md, "Metrics").

    metrics.emit(outcome)                                       # an OutcomeSink: outcomes by result, latency, attempts
    metrics.message_settled(SETTLED_RETRY, attempts=2)          # a worker gave a message back, or dead-lettered it
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

# How a worker settled a message it did not complete (importer.app.attempt's endings, as the worker acts on them).
SETTLED_RETRY = "retry"
SETTLED_DEAD_LETTER = "dead-letter"


class RegistryRequestObserver(Protocol):
    """Told of every HTTP request one registry client sends (retries, redirects and token requests included)."""

    def request_sent(self, method: str, error_class: str | None) -> None:
        """One request: its method, and one of REGISTRY_ERROR_CLASSES, or None when it was answered 1xx-3xx."""
        ...


class WorkerMetrics(Protocol):
    """Told how each queued message a worker held was settled."""

    def message_settled(self, settle: str, *, attempts: int) -> None:
        """`settle`: "complete", SETTLED_RETRY or SETTLED_DEAD_LETTER; `attempts`: deliveries so far, this one
        included."""
        ...


class Metrics(OutcomeSink, WorkerMetrics, Protocol):
    """Everything the local host counts: outcomes (as a sink), queue settlements and registry requests."""

    def registry_observer(self, registry: str) -> RegistryRequestObserver:
        """The observer for the client of `registry` (a host); hosts that are not guarded share one label."""
        ...
