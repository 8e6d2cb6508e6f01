"""The HTTP face of the pipeline, free of any web framework: the Functions app and the local host both call it.

    api = GuardApi(pipeline, webhook_token=settings.webhook_token, intake=Intake(pipeline, queue))
    response = api.dispatch("POST", "/api/registry-events", {}, headers, body)   # → ApiResponse(status, headers, body)

With an intake (the local host), a delivery is only authenticated, parsed, validated and queued, then answered 202:
workers decide it (importer/app/worker.py). Without one, the pipeline decides it in the request (200).

Routes (docs/design.md, Contracts): `POST /runtime/webhooks/eventgrid?functionName=NAME` (Event Grid schema, with the
validation handshake), `POST /api/registry-events` (distribution notifications and ACR classic webhooks),
`OPTIONS`/`POST /api/cloudevents` (CloudEvents 1.0), `GET /api/health`, and on the local host only (given `metrics`)
`GET /metrics` (Prometheus text, or OpenMetrics when the scraper's Accept asks for it).

One authentication rule for every state-changing route (each POST above, the Event Grid validation handshake
included): the request carries the webhook token (PLATFORM_GUARD_WEBHOOK_TOKEN) as `Authorization: Bearer <token>`,
as an `x-functions-key` header or as a `code` query parameter (the places an Event Grid subscription can put a key),
compared in constant time; otherwise 401 and nothing is parsed, queued or recorded. Without a configured token every
such request is refused. `GET /api/health`, `GET /metrics` and the CloudEvents `OPTIONS` handshake change nothing and
stay open: the metrics are counts under fixed labels (results, error classes, the guarded registries' hosts), with no
repository, tag, digest or secret, and serve binds 127.0.0.1 unless told otherwise.

A body that is not an event payload gets 400 and a `rejected` record; a queue, ledger or (in place) registry
problem that may pass gets 503 so the sender delivers again; nothing answers with a traceback.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
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
METRICS_PATH = "/metrics"
_ROUTE_SCHEMAS = {EVENTGRID_PATH: "eventgrid", REGISTRY_EVENTS_PATH: "distribution", CLOUDEVENTS_PATH: "cloudevents"}


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


_NO_QUERY: Mapping[str, str] = {}


def _presented_tokens(headers: Mapping[str, str], query: Mapping[str, str]) -> list[str]:
    """The credentials a request carries where the rule looks: a bearer token, an `x-functions-key` header, a `code`
    query parameter (`headers` lower-cased)."""
    presented: list[str] = []
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        presented.append(credentials.strip())
    if "x-functions-key" in headers:
        presented.append(headers["x-functions-key"].strip())
    if "code" in query:
        presented.append(query["code"])
    return presented


_CODE_PARAMETER = re.compile(r"(?i)([?&]code=)[^&\s\"]*")


def redact_credentials(text: str) -> str:
    """`text` (a request line, a URL) with the value of any `code` query parameter replaced by `***`."""
    return _CODE_PARAMETER.sub(r"\1***", text)


def _token_digest(token: str) -> bytes:
    """A fixed-length stand-in for a token, so the comparison takes the same time whatever the lengths."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def payload_id(body: bytes) -> str:
    """A stable id for a body that is not an event payload (the same bad body twice has one id)."""
    return "payload-" + hashlib.sha256(body).hexdigest()[:32]


# A scrape: the request's Accept header (or None) → the exposition bytes and their content type.
MetricsScrape = Callable[[str | None], tuple[bytes, str]]


class GuardApi:
    """Routes HTTP requests to the pipeline."""

    def __init__(self, pipeline: Pipeline, *, webhook_token: str | None, intake: Intake | None = None,
                 metrics: MetricsScrape | None = None) -> None:
        self.pipeline = pipeline
        self.intake = intake
        self._token = webhook_token
        self._metrics = metrics

    def dispatch(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> ApiResponse:
        """Answer one request; unknown routes 404, wrong methods 405."""
        path = path.rstrip("/").lower() or "/"
        method = method.upper()
        headers = _lower(headers)
        routes: dict[str, dict[str, Callable[[], ApiResponse]]] = {
            EVENTGRID_PATH: {"POST": lambda: self.eventgrid(body, headers, query)},
            REGISTRY_EVENTS_PATH: {"POST": lambda: self.registry_events(body, headers, query)},
            CLOUDEVENTS_PATH: {
                "POST": lambda: self.cloudevents(body, headers, query),
                "OPTIONS": lambda: self.cloudevents_options(headers),
            },
            HEALTH_PATH: {"GET": self.health},
        }
        if self._metrics is not None:
            routes[METRICS_PATH] = {"GET": lambda: self.metrics(headers)}
        handlers = routes.get(path)
        if handlers is None:
            return ApiResponse.json(404, {"error": f"no route {path}"})
        handler = handlers.get(method)
        if handler is None:
            return ApiResponse.json(405, {"error": f"{method} not allowed on {path}"}, {"Allow": ", ".join(handlers)})
        if len(body) > MAX_BODY_BYTES:
            return ApiResponse.json(413, {"error": f"body of {len(body)} bytes is over {MAX_BODY_BYTES}"})
        # Bodies are refused past MAX_JSON_DEPTH before anything recurses into them, and capped at MAX_BODY_BYTES;
        # these two are the backstop, so that no input ever ends in a traceback or a 500 the sender retries forever.
        try:
            return handler()
        except RecursionError:
            log.warning("%s %s: the body could not be handled: nested too deeply", method, path)
            return self._refused_body(body, path, "the body is nested too deeply to handle")
        except MemoryError:  # at most MAX_BODY_BYTES each: the process is short of memory, not the body too large
            log.warning("%s %s: out of memory handling the body; the sender delivers it again", method, path)
            return ApiResponse.json(503, {"error": "out of memory; deliver again later", "retry": True},
                                    {"Retry-After": "5"})

    def health(self) -> ApiResponse:
        return ApiResponse.json(200, {"status": "ok"})

    def metrics(self, headers: Mapping[str, str]) -> ApiResponse:
        """The scrape, in the format the `accept` header asks for (`headers` lower-cased)."""
        assert self._metrics is not None
        body, content_type = self._metrics(headers.get("accept"))
        return ApiResponse(200, body, {"Content-Type": content_type})

    def eventgrid(self, body: bytes, headers: Mapping[str, str], query: Mapping[str, str] = _NO_QUERY) -> ApiResponse:
        """Event Grid schema delivery, including the subscription validation handshake."""
        refusal = self._authorize(headers, query)
        if refusal is not None:
            return refusal
        try:
            validation = eventgrid_validation_response(body, headers)
        except EventPayloadError as error:
            return self._rejected_payload(body, str(error), "eventgrid")
        if validation is not None:
            return ApiResponse.json(200, validation)
        return self._deliver(body, "eventgrid", lambda: parse_eventgrid(body))

    def registry_events(
        self, body: bytes, headers: Mapping[str, str], query: Mapping[str, str] = _NO_QUERY
    ) -> ApiResponse:
        """Distribution notification envelopes and ACR classic webhook bodies."""
        refusal = self._authorize(headers, query)
        if refusal is not None:
            return refusal
        return self._deliver(
            body, "distribution", lambda: parse_registry_notification(body, headers.get("content-type"))
        )

    def cloudevents(self, body: bytes, headers: Mapping[str, str], query: Mapping[str, str] = _NO_QUERY) -> ApiResponse:
        refusal = self._authorize(headers, query)
        if refusal is not None:
            return refusal
        return self._deliver(body, "cloudevents", lambda: parse_cloudevents(body, headers.get("content-type")))

    def cloudevents_options(self, headers: Mapping[str, str]) -> ApiResponse:
        """The CloudEvents abuse-protection handshake."""
        try:
            return ApiResponse(200, b"", cloudevents_options_response(headers))
        except EventPayloadError as error:
            return ApiResponse.json(400, {"error": str(error)})

    def _authorize(self, headers: Mapping[str, str], query: Mapping[str, str]) -> ApiResponse | None:
        """The one rule of every state-changing route (module docstring): None when the request carries the webhook
        token, else the 401 to answer. `headers` are lower-cased."""
        if not self._token:
            return ApiResponse.json(401, {"error": "webhook token not configured (PLATFORM_GUARD_WEBHOOK_TOKEN)"})
        expected = _token_digest(self._token)
        # Every presented credential is compared, each in constant time, so timing says nothing about which matched.
        matches = [hmac.compare_digest(_token_digest(token), expected) for token in _presented_tokens(headers, query)]
        if not any(matches):
            return ApiResponse.json(
                401,
                {"error": "missing or wrong webhook token (send it as Authorization: Bearer <token>, an "
                          "x-functions-key header or a code query parameter)"},
                {"WWW-Authenticate": "Bearer"},
            )
        return None

    def _refused_body(self, body: bytes, path: str, reason: str) -> ApiResponse:
        """400 for a body that could not be handled, recorded `rejected` when the ledger takes it."""
        try:
            return self._rejected_payload(body, reason, _ROUTE_SCHEMAS.get(path, "unknown"))
        except Exception:  # the record is best effort here: the answer must not fail too
            return ApiResponse.json(400, {"error": reason})

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
        except (RecursionError, MemoryError):
            raise  # answered by dispatch: neither is an internal error worth a traceback
        except Exception:
            log.exception("internal error handling a %s delivery", schema)
            return ApiResponse.json(500, {"error": "internal error; the event will be retried"})
        return ApiResponse.json(200, {"outcomes": [_summary(outcome) for outcome in outcomes]})


def _summary(outcome: Outcome) -> dict[str, object]:
    return {"event_id": outcome.event_id, "result": outcome.result, "reason": outcome.reason or outcome.error}
