"""The process-wide pipeline behind the Azure Functions entry points, built once per warm instance.

    runtime = current()                      # settings read, ledger opened and clients made on first use
    runtime.handle_eventgrid_event(envelope)
    runtime.api.registry_events(body, headers)

Nothing here runs at import time, so a cold start pays only for what the first event needs.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from importer.app.pipeline import Pipeline
from importer.app.settings import Settings, load_settings
from importer.core.events import parse_eventgrid_envelope
from importer.core.outcome import Outcome
from importer.entry.composition import pipeline_for
from importer.entry.http_api import GuardApi


@dataclass(frozen=True, slots=True)
class Runtime:
    """Settings, pipeline and HTTP API sharing one ledger and one set of registry clients."""

    settings: Settings
    pipeline: Pipeline
    api: GuardApi

    @classmethod
    def from_settings(cls, settings: Settings) -> "Runtime":
        pipeline = pipeline_for(settings)
        return cls(settings, pipeline, GuardApi(pipeline, webhook_token=settings.webhook_token))

    def handle_eventgrid_event(self, envelope: Mapping[str, object]) -> list[Outcome]:
        """One Event Grid event as the Functions trigger hands it over; TransientFailure makes the host retry."""
        return self.pipeline.handle_all([parse_eventgrid_envelope(envelope)])


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
