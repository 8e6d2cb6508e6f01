"""The HTTP face of the pipeline, free of any web framework: the Functions app and the local host both call it.

    api = GuardApi(pipeline, webhook_token=settings.webhook_token, intake=Intake(pipeline, queue))
    response = api.dispatch("POST", "/api/registry-events", {}, headers, body)   # → ApiResponse(status, headers, body)

With an intake (the local host), a delivery is only authenticated, parsed, validated and queued, then answered 202:
workers decide it (importer/app/worker.py). Without one, the pipeline decides it in the request (200).

Routes (docs/design.md, Contracts): `POST /runtime/webhooks/eventgrid?functionName=NAME` (Event Grid schema, with the
validation handshake), `POST /api/registry-events` (distribution notifications and ACR classic webhooks,
bearer token), `OPTIONS`/`POST /api/cloudevents` (CloudEvents 1.0, bearer token), `GET /api/health`.
A body that is not an event payload gets 400 and a `rejected` record; a queue, ledger or (in place) registry
problem that may pass gets 503 so the sender delivers again; nothing answers with a traceback.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from importer.app.intake import Intake
from importer.app.pipeline import Pipeline, TransientFailure
from importer.core.events import (
    MAX_BODY_BYTES,
    EventPayloadError,
    ParsedEvent,
    cloudevents_options_response,
    eventgrid_validation_response,
    parse_cloudevents,
    parse_eventgrid,
    parse_registry_notification,
)
from importer.core.outcome import Outcome

log = logging.getLogger("platform_guard.http")

EVENTGRID_PATH = "/runtime/webhooks/eventgrid"
REGISTRY_EVENTS_PATH = "/api/registry-events"
CLOUDEVENTS_PATH = "/api/cloudevents"
HEALTH_PATH = "/api/health"


@dataclass(frozen=True, slots=True)
class ApiResponse:
    """What to send back: status, headers, JSON body bytes."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: object, headers: Mapping[str, str] | None = None) -> "ApiResponse":
        return cls(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}


def payload_id(body: bytes) -> str:
    """A stable id for a body that is not an event payload (the same bad body twice has one id)."""
    return "payload-" + hashlib.sha256(body).hexdigest()[:32]


class GuardApi:
    """Routes HTTP requests to the pipeline."""

    def __init__(self, pipeline: Pipeline, *, webhook_token: str | None, intake: Intake | None = None) -> None:
        self.pipeline = pipeline
        self.intake = intake
        self._token = webhook_token

    def dispatch(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> ApiResponse:
        """Answer one request; unknown routes 404, wrong methods 405."""
        path = path.rstrip("/").lower() or "/"
        method = method.upper()
        headers = _lower(headers)
        routes: dict[str, dict[str, Callable[[], ApiResponse]]] = {
            EVENTGRID_PATH: {"POST": lambda: self.eventgrid(body, headers)},
            REGISTRY_EVENTS_PATH: {"POST": lambda: self.registry_events(body, headers)},
            CLOUDEVENTS_PATH: {
                "POST": lambda: self.cloudevents(body, headers),
                "OPTIONS": lambda: self.cloudevents_options(headers),
            },
            HEALTH_PATH: {"GET": self.health},
        }
        handlers = routes.get(path)
        if handlers is None:
            return ApiResponse.json(404, {"error": f"no route {path}"})
        handler = handlers.get(method)
        if handler is None:
            return ApiResponse.json(405, {"error": f"{method} not allowed on {path}"}, {"Allow": ", ".join(handlers)})
        if len(body) > MAX_BODY_BYTES:
            return ApiResponse.json(413, {"error": f"body of {len(body)} bytes is over {MAX_BODY_BYTES}"})
        return handler()

    def health(self) -> ApiResponse:
        return ApiResponse.json(200, {"status": "ok"})

    def eventgrid(self, body: bytes, headers: Mapping[str, str]) -> ApiResponse:
        """Event Grid schema delivery, including the subscription validation handshake."""
        try:
            validation = eventgrid_validation_response(body, headers)
        except EventPayloadError as error:
            return self._rejected_payload(body, str(error), "eventgrid")
        if validation is not None:
            return ApiResponse.json(200, validation)
        return self._deliver(body, "eventgrid", lambda: parse_eventgrid(body))

    def registry_events(self, body: bytes, headers: Mapping[str, str]) -> ApiResponse:
        """Distribution notification envelopes and ACR classic webhook bodies."""
        refusal = self._authorize(headers)
        if refusal is not None:
            return refusal
        return self._deliver(
            body, "distribution", lambda: parse_registry_notification(body, headers.get("content-type"))
        )

    def cloudevents(self, body: bytes, headers: Mapping[str, str]) -> ApiResponse:
        refusal = self._authorize(headers)
        if refusal is not None:
            return refusal
        return self._deliver(body, "cloudevents", lambda: parse_cloudevents(body, headers.get("content-type")))

    def cloudevents_options(self, headers: Mapping[str, str]) -> ApiResponse:
        """The CloudEvents abuse-protection handshake."""
        try:
            return ApiResponse(200, b"", cloudevents_options_response(headers))
        except EventPayloadError as error:
            return ApiResponse.json(400, {"error": str(error)})

    def _authorize(self, headers: Mapping[str, str]) -> ApiResponse | None:
        if not self._token:
            return ApiResponse.json(401, {"error": "webhook token not configured (PLATFORM_GUARD_WEBHOOK_TOKEN)"})
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self._token.encode()):
            return ApiResponse.json(401, {"error": "missing or wrong bearer token"}, {"WWW-Authenticate": "Bearer"})
        return None

    def _rejected_payload(self, body: bytes, reason: str, schema: str) -> ApiResponse:
        outcome = self.pipeline.reject_payload(payload_id(body), reason, schema=schema)
        return ApiResponse.json(400, {"error": reason, "event_id": outcome.event_id})

    def _deliver(self, body: bytes, schema: str, parse: Callable[[], list[ParsedEvent]]) -> ApiResponse:
        try:
            events = parse()
        except EventPayloadError as error:
            return self._rejected_payload(body, str(error), schema)
        try:
            if self.intake is not None:  # queue them: the workers decide
                accepted = self.intake.accept(events)
                summaries = [_summary(outcome) for outcome in accepted.outcomes]
                return ApiResponse.json(202, {"queued": accepted.queued, "outcomes": summaries})
            outcomes = self.pipeline.handle_all(events)  # decide them here
        except TransientFailure as failure:
            return ApiResponse.json(503, {"error": str(failure), "retry": True}, {"Retry-After": "5"})
        except Exception:
            log.exception("internal error handling a %s delivery", schema)
            return ApiResponse.json(500, {"error": "internal error; the event will be retried"})
        return ApiResponse.json(200, {"outcomes": [_summary(outcome) for outcome in outcomes]})


def _summary(outcome: Outcome) -> dict[str, object]:
    return {"event_id": outcome.event_id, "result": outcome.result, "reason": outcome.reason or outcome.error}
