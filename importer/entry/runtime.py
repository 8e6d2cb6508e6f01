"""The process-wide pipeline behind the Azure Functions entry points, built once per warm instance.

    runtime = current()                      # settings read, ledger opened and clients made on first use
    runtime.work_queue_message(delivery)     # the queue trigger: one message the host delivered (returns or raises)
    runtime.api.dispatch("POST", "/api/registry-events", {}, headers, body)   # 202: queued for the queue trigger

With a Storage queue configured (PLATFORM_GUARD_QUEUE_*, as infra/ sets it) the HTTP routes are intake only: they
authenticate, parse, validate and put the events on the queue the queue trigger works (importer/entry/queue_trigger.py),
and answer 202. Without one (a Functions host run without storage) they decide in the request and answer 200.

Start-up (function_app.py, when the host indexes the functions) reads and checks every setting, the policy included:

    settings = start()                       # StartupError naming the setting (and the policy's key and line)

so that a bad setting stops the app before any function is declared, rather than failing every event it takes. The
host then logs "Worker failed to index functions" with StartupError's message and loads no function at all: no queue
trigger takes a message, so the events wait in the queue (its messages never expire) until the setting is fixed and
the app restarts. Settings are all the start does: the pipeline, ledger, queue and clients are built on first use, so a
cold start pays only for what the first event needs.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from importer.app.attempt import Ending
from importer.app.intake import Intake
from importer.app.pipeline import Pipeline
from importer.app.settings import Settings, SettingsError, load_settings, queue_name_setting
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


class StartupError(SettingsError):
    """A setting stops the app at start-up: the message names it, says what is wrong and what happens meanwhile."""


_lock = threading.Lock()
_current: Runtime | None = None
_started: Settings | None = None  # the settings start() read and checked, for the first use


def start(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and check every setting now (function_app.py calls this when the host indexes the functions); the first
    use builds the runtime from them. A bad one raises StartupError, after one line on stderr, which the host logs
    as an error too."""
    global _started
    environ = os.environ if environ is None else environ
    try:
        settings = load_settings(environ)
    except SettingsError as error:
        message = (
            f"Platform Guard cannot start: {error}. No function is loaded until this is fixed: events wait in the "
            f"queue {queue_name_setting(environ)!r} and are decided once the app restarts with a good setting."
        )
        print(f"error: {message}", file=sys.stderr, flush=True)
        raise StartupError(message) from None
    with _lock:
        _started = settings
    return settings


def current() -> Runtime:
    """The runtime of this process: built on first use from the settings start() checked, else from the
    environment."""
    global _current
    with _lock:
        if _current is None:
            _current = Runtime.from_settings(_started if _started is not None else load_settings())
        return _current


def reset(runtime: Runtime | None = None) -> None:
    """Replace (or drop) the process-wide runtime, and forget the start-up settings: for tests and settings
    reloads."""
    global _current, _started
    with _lock:
        _current = runtime
        _started = None
