"""Metrics with prometheus_client, for `/metrics` on the local host (docs/design.md, "Metrics").

    metrics = PrometheusMetrics(guarded_registries=settings.registries)    # a Metrics: sink, worker and registry hooks
    scrape = PrometheusScrape(queue, local=metrics.registry)                # one process: its own counters
    scrape = PrometheusScrape(queue, multiprocess_directory=path)           # serve and its `work` processes
    body, content_type = scrape.render(accept_header)                       # Prometheus text, or OpenMetrics if asked

Exported (every name in MetricNames):

| name | type | labels | what |
|---|---|---|---|
| platform_guard_outcomes_total | counter | result | final outcomes recorded (every result but `retrying`) |
| platform_guard_outcome_latency_seconds | histogram | result | from the event's `received_at` to its final outcome |
| platform_guard_event_attempts | histogram | — | tries an event took, per final outcome (1 unless retried) |
| platform_guard_queue_retries_total | counter | — | messages a worker gave back to be tried again |
| platform_guard_queue_dead_letters_total | counter | — | messages a worker moved to the dead letters |
| platform_guard_queue_messages | gauge | state | ready, delayed, leased, dead: read from the queue at scrape time |
| platform_guard_queue_up | gauge | — | 1 when the queue answered the scrape within QUEUE_DEADLINE_SECONDS |
| platform_guard_registry_requests_total | counter | registry, method | HTTP requests to registries, retries included |
| platform_guard_registry_errors_total | counter | registry, method, class | those that did not end 1xx-3xx |

`registry` is the label of the client that sent the request: a guarded registry's host, or `other` for the clients
of every other host (upstreams named by a policy share one label). A client's token-realm and storage-redirect
requests count under its own label. `result`, `class`, `method` and `state` come from fixed
lists.

With worker processes (`serve --workers N`), prometheus_client's multiprocess mode carries their counts to serve's
`/metrics`: each process writes its values to its own memory-mapped files in PROMETHEUS_MULTIPROC_DIR, and a scrape
adds them up. The variable must be set before prometheus_client is first imported in a process (the library picks its
value store at import), which is why this module is imported only once `serve` has set it (importer.entry.commands
.hosting). Counting from the ledger instead cannot work: registry requests are not in it, and a latency histogram
would mean reading every outcome ever recorded at every scrape.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, values
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from importer.core.outcome import FINAL_RESULTS, RESULTS, Outcome
from importer.ports.metrics import (
    MULTIPROCESS_ENVIRONMENT,
    OTHER_METHOD,
    REGISTRY_METHODS,
    SETTLED_DEAD_LETTER,
    SETTLED_RETRY,
    RegistryRequestObserver,
)
from importer.ports.queue import EventQueue, QueueDepth

log = logging.getLogger("platform_guard.metrics")

OTHER_REGISTRY = "other"
# 50 ms (a compliant push decided at once) to 5 minutes (EVENT_RETRY's longest wait between tries).
LATENCY_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
# PLATFORM_GUARD_EVENT_RETRY defaults to 8 tries; the Functions host's maxDequeueCount is 16.
ATTEMPT_BUCKETS: tuple[float, ...] = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16)
QUEUE_DEADLINE_SECONDS = 2.0  # a scrape waits this long for the queue's counts, then reports platform_guard_queue_up 0
QUEUE_STATES: tuple[str, ...] = ("ready", "delayed", "leased", "dead")


class MetricNames:
    """The exported names, as a scrape shows them (counters with their `_total`)."""

    OUTCOMES = "platform_guard_outcomes_total"
    LATENCY = "platform_guard_outcome_latency_seconds"
    ATTEMPTS = "platform_guard_event_attempts"
    RETRIES = "platform_guard_queue_retries_total"
    DEAD_LETTERS = "platform_guard_queue_dead_letters_total"
    QUEUE_MESSAGES = "platform_guard_queue_messages"
    QUEUE_UP = "platform_guard_queue_up"
    REGISTRY_REQUESTS = "platform_guard_registry_requests_total"
    REGISTRY_ERRORS = "platform_guard_registry_errors_total"


def multiprocess_mode() -> bool:
    """Whether prometheus_client writes to PROMETHEUS_MULTIPROC_DIR in this process (fixed when it was imported)."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


def _counter_name(total: str) -> str:
    return total.removesuffix("_total")  # prometheus_client adds `_total` itself


class PrometheusMetrics:
    """The Metrics port on prometheus_client. Thread-safe; in multiprocess mode every process makes its own."""

    def __init__(self, *, guarded_registries: Iterable[str] = (), clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._guarded = frozenset(host.lower() for host in guarded_registries)
        self._clock = clock
        self.outcomes = Counter(_counter_name(MetricNames.OUTCOMES), "Final outcomes recorded, by result.",
                                ["result"], registry=self.registry)
        self.latency = Histogram(MetricNames.LATENCY, "Seconds from receiving an event to recording its final outcome.",
                                 ["result"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.attempts = Histogram(MetricNames.ATTEMPTS, "Tries an event took, observed at its final outcome.",
                                  buckets=ATTEMPT_BUCKETS, registry=self.registry)
        self.retries = Counter(_counter_name(MetricNames.RETRIES), "Queued messages given back to be tried again.",
                               registry=self.registry)
        self.dead_letters = Counter(_counter_name(MetricNames.DEAD_LETTERS),
                                    "Queued messages moved to the dead letters.", registry=self.registry)
        self.requests = Counter(_counter_name(MetricNames.REGISTRY_REQUESTS),
                                "HTTP requests sent to registries, retries, redirects and token requests included.",
                                ["registry", "method"], registry=self.registry)
        self.errors = Counter(_counter_name(MetricNames.REGISTRY_ERRORS),
                              "Registry requests that did not end in a 1xx-3xx answer, by class.",
                              ["registry", "method", "class"], registry=self.registry)
        # Every result shows from the first scrape (at 0), so a dashboard's rate() has a series before the first event.
        for result in sorted(FINAL_RESULTS, key=RESULTS.index):
            self.outcomes.labels(result)
            self.latency.labels(result)

    def emit(self, outcome: Outcome) -> None:
        if not outcome.final:
            return  # a `retrying` attempt: counted by the worker that gives its message back
        self.outcomes.labels(outcome.result).inc()
        self.attempts.observe(outcome.attempt or 1)
        latency = self._seconds_since(outcome.received_at)
        if latency is not None:
            self.latency.labels(outcome.result).observe(latency)

    def message_settled(self, settle: str) -> None:
        if settle == SETTLED_RETRY:
            self.retries.inc()
        elif settle == SETTLED_DEAD_LETTER:
            self.dead_letters.inc()

    def registry_observer(self, registry: str) -> RegistryRequestObserver:
        label = registry.lower() if registry.lower() in self._guarded else OTHER_REGISTRY
        return _RegistryRequests(self, label)

    def _seconds_since(self, received_at: str) -> float | None:
        try:
            received = datetime.fromisoformat(received_at.replace("Z", "+00:00"))
        except (AttributeError, ValueError):
            return None
        if received.tzinfo is None:
            return None
        return max(0.0, self._clock() - received.timestamp())


class _RegistryRequests:
    """The RegistryRequestObserver of one registry client: its label fixed when the client was made. Each method's
    label and request counter are bound on its first request and kept, so a later one costs a dictionary lookup and
    an increment (bound on first use, not up front: a method never sent shows no series, as before)."""

    def __init__(self, metrics: PrometheusMetrics, registry: str) -> None:
        self._metrics = metrics
        self._registry = registry
        self._requests: dict[str, tuple[str, Any]] = {}  # method as sent -> (its label, its request counter)

    def request_sent(self, method: str, error_class: str | None) -> None:
        bound = self._requests.get(method)
        if bound is None:  # the transports send a handful of methods: this runs a few times per client
            label = method.upper() if method.upper() in REGISTRY_METHODS else OTHER_METHOD
            bound = self._requests.setdefault(method, (label, self._metrics.requests.labels(self._registry, label)))
        label, requests = bound
        requests.inc()
        if error_class is not None:
            self._metrics.errors.labels(self._registry, label, error_class).inc()


class PrometheusScrape:
    """What `/metrics` answers: the counters (this process's, or every process's in `multiprocess_directory`) and
    the queue's depth read now."""

    def __init__(self, queue: EventQueue | None, *, local: CollectorRegistry | None = None,
                 multiprocess_directory: str | Path | None = None) -> None:
        if (local is None) == (multiprocess_directory is None):
            raise ValueError("give exactly one of local (one process) or multiprocess_directory (several)")
        if multiprocess_directory is not None and not multiprocess_mode():
            raise RuntimeError(f"prometheus_client was imported before {MULTIPROCESS_ENVIRONMENT} was set: this "
                               "process's own counts would be missing from the scrape")
        self._local = local
        self._directory = None if multiprocess_directory is None else str(multiprocess_directory)
        self._queue = _QueueCollector(queue) if queue is not None else None

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """The exposition the `Accept` header asks for (OpenMetrics when it names application/openmetrics-text, else
        the Prometheus text format), and its content type."""
        registry = CollectorRegistry(auto_describe=False)
        if self._directory is not None:
            MultiProcessCollector(registry, path=self._directory)
        else:
            assert self._local is not None
            registry.register(self._local)  # a registry is a collector of everything registered in it
        if self._queue is not None:
            registry.register(self._queue)
        encoder, content_type = choose_encoder(accept or "")
        return encoder(registry), content_type

    def close(self) -> None:
        if self._queue is not None:
            self._queue.close()


class _QueueCollector:
    """The queue's depth at scrape time, read by one helper thread so that a stuck backend costs a scrape at most
    QUEUE_DEADLINE_SECONDS (and then reports platform_guard_queue_up 0) rather than hanging it."""

    def __init__(self, queue: EventQueue, *, deadline: float = QUEUE_DEADLINE_SECONDS) -> None:
        self._queue = queue
        self._deadline = deadline
        self._reader = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrics-queue")
        self._reading: concurrent.futures.Future[QueueDepth] | None = None  # the one read in flight, or the last
        self._lock = threading.Lock()  # scrapes may run at once: one of them starts a read, every one waits on it

    def collect(self) -> Iterator[Metric]:
        depth = self._read()
        up = GaugeMetricFamily(MetricNames.QUEUE_UP, "1 when the queue answered this scrape in time, else 0.")
        up.add_metric([], 1.0 if depth is not None else 0.0)
        yield up
        if depth is not None:
            messages = GaugeMetricFamily(MetricNames.QUEUE_MESSAGES, "Queued messages now, by state.",
                                         labels=["state"])
            for state, count in zip(QUEUE_STATES, _counts(depth), strict=True):
                messages.add_metric([state], float(count))
            yield messages

    def _read(self) -> QueueDepth | None:
        """The depth from a read started now, or from the read still in flight: a queue that hangs holds one read,
        not one more per scrape."""
        with self._lock:
            future = self._reading
            if future is None or future.done():
                future = self._reading = self._reader.submit(self._queue.depth, now=time.time())
        try:
            return future.result(timeout=self._deadline)
        except concurrent.futures.TimeoutError:
            log.warning("the queue did not report its depth within %.1f s", self._deadline)
        except Exception as error:  # a closed or unavailable queue: the scrape goes on without it
            log.warning("the queue did not report its depth: %s", error)
        return None

    def close(self) -> None:
        self._reader.shutdown(wait=False, cancel_futures=True)


def _counts(depth: QueueDepth) -> Sequence[int]:
    return depth.ready, depth.delayed, depth.leased, depth.dead
