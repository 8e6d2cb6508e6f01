"""The process-wide pipeline behind the Azure Functions entry points, built once per warm instance.

    runtime = current()                      # settings read, ledger opened and clients made on first use
    runtime.work_queue_message(delivery)     # the queue trigger: one message the host delivered (returns or raises)
    runtime.api.dispatch("POST", "/api/registry-events", {}, headers, body)   # 202: queued for the queue trigger

With a Storage queue configured (PLATFORM_GUARD_QUEUE_*, as infra/ sets it) the HTTP routes are intake only: they
authenticate, parse, validate and put the events on the queue the queue trigger works (importer/entry/queue_trigger.py),
and answer 202. Without one (a Functions host run without storage) they decide in the request and answer 200.

Nothing here runs at import time, so a cold start pays only for what the first event needs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from importer.app.attempt import Ending
from importer.app.intake import Intake
from importer.app.pipeline import Pipeline
from importer.app.settings import Settings, load_settings
from importer.entry.composition import pipeline_for, queue_for
from importer.entry.http_api import GuardApi
from importer.entry.queue_trigger import (
    HOST_DEFAULT_MAX_DEQUEUE_COUNT,
    QueueDelivery,
    host_max_dequeue_count,
    work_delivery,
)
from importer.ports.queue import EventQueue


@dataclass(frozen=True, slots=True)
class Runtime:
    """Settings, pipeline, HTTP API and (when configured) the Storage queue, sharing one ledger and one set of
    registry clients; `max_dequeue_count` is the host's (host.json), read once."""

    settings: Settings
    pipeline: Pipeline
    api: GuardApi
    queue: EventQueue | None = None
    max_dequeue_count: int = HOST_DEFAULT_MAX_DEQUEUE_COUNT

    @classmethod
    def from_settings(cls, settings: Settings) -> "Runtime":
        pipeline = pipeline_for(settings)
        queue = queue_for(settings) if settings.uses_storage_queue else None
        intake = Intake(pipeline, queue) if queue is not None else None
        api = GuardApi(pipeline, webhook_token=settings.webhook_token, intake=intake)
        return cls(settings, pipeline, api, queue, host_max_dequeue_count())

    def work_queue_message(self, delivery: QueueDelivery) -> Ending | None:
        """One message the queue trigger delivered: returns when it is done; TransientFailure makes the host deliver
        it again, GaveUp (its last try) makes the host move it to the poison queue."""
        return work_delivery(self.pipeline, delivery, max_dequeue_count=self.max_dequeue_count)


_lock = threading.Lock()
_current: Runtime | None = None


def current() -> Runtime:
    """The runtime of this process, created from the environment on first use."""
    global _current
    with _lock:
        if _current is None:
            _current = Runtime.from_settings(load_settings())
        return _current


def reset(runtime: Runtime | None = None) -> None:
    """Replace (or drop) the process-wide runtime: for tests and for settings reloads."""
    global _current
    with _lock:
        _current = runtime
