"""Hostile identifiers and deeply nested bodies on every route: the local host (in place and queued), the Functions
app's HTTP and queue triggers, and `python -m importer serve` as a process.

Real parts throughout: importer.entry.serve over HTTP on 127.0.0.1, a real pipeline, SQLite ledger and queue. No
registry is needed: rejected events and deletes are recorded before anything would be read. Each row checks what a
sender sees (a status that does not make it retry forever, no traceback), what the ledger keeps (a `rejected` outcome
whose text is safe to store and to print, the valid sibling still handled) and what the operator sees (no traceback
logged).
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.functions.queue import QueueMessage

import importer.entry.runtime
from importer.adapters.ledger.sqlite import SqliteLedger
from importer.app.settings import Settings
from importer.core.bounded_json import MAX_JSON_DEPTH
from importer.core.safe_text import unsafe_character
from importer.entry.composition import pipeline_for, queue_for
from importer.entry.http_api import GuardApi
from importer.entry.queue_trigger import UnreadableMessage
from importer.entry.runtime import Runtime
from importer.entry.serve import LocalHost, QueuedHost
from testbed.registry import free_port
from tests.entry.test_entrypoints import FUNCTIONS  # the app's functions: get_functions() may run once per app

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "hostile-routes-token-0123456789"
REGISTRY = "registry.test:5000"  # configured, never contacted: only rejections and deletes are sent
DIGEST = "sha256:" + "ab" * 32


# -- events as each route takes them ------------------------------------------------------------------------


def distribution_event(event_id: str, action: str = "delete") -> dict[str, Any]:
    return {"id": event_id, "timestamp": "2026-11-26T10:00:00Z", "action": action,
            "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": DIGEST,
                       "repository": "team/app", "tag": "1"},
            "request": {"host": REGISTRY, "useragent": "skopeo/1.9.3"}, "actor": {"name": "ci"}}


def acr_envelope(event_id: str, type_key: str, kind: str) -> dict[str, Any]:
    data = distribution_event("data-" + event_id)
    del data["id"]
    return {"id": event_id, type_key: f"Microsoft.ContainerRegistry.Image{kind}", "subject": "team/app:1",
            "data": data}


def eventgrid_event(event_id: str, kind: str = "Deleted") -> dict[str, Any]:
    return {**acr_envelope(event_id, "eventType", kind), "topic": REGISTRY, "eventTime": "2026-11-26T10:00:00Z"}


def cloudevent(event_id: str, kind: str = "Deleted") -> dict[str, Any]:
    return {**acr_envelope(event_id, "type", kind), "specversion": "1.0", "source": REGISTRY,
            "time": "2026-11-26T10:00:00Z"}


@dataclass(frozen=True, slots=True)
class Route:
    path: str
    headers: dict[str, str]
    event: Callable[[str], dict[str, Any]]
    wrap: Callable[[list[str]], str]  # JSON texts of events → the body's JSON text
    fields: dict[str, tuple[str, ...]]  # identifier → where it sits in this route's event


def _joined(texts: list[str]) -> str:
    return "[" + ",".join(texts) + "]"


TARGET = {"repository": ("target", "repository"), "mediaType": ("target", "mediaType"),
          "actor": ("actor", "name"), "useragent": ("request", "useragent")}
ROUTES = {
    "registry-events": Route(
        "/api/registry-events", {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        distribution_event, lambda texts: '{"events":' + _joined(texts) + "}",
        {"id": ("id",), "origin": ("request", "host"), "time": ("timestamp",), **TARGET}),
    "eventgrid": Route(
        "/runtime/webhooks/eventgrid?functionName=registry_event",
        {"aeg-event-type": "Notification", "Authorization": f"Bearer {TOKEN}"},
        eventgrid_event, _joined,
        {"id": ("id",), "origin": ("topic",), "subject": ("subject",), "time": ("eventTime",),
         **{name: ("data", *path) for name, path in TARGET.items()}}),
    "cloudevents": Route(
        "/api/cloudevents", {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/cloudevents-batch+json"},
        cloudevent, _joined,
        {"id": ("id",), "origin": ("source",), "subject": ("subject",), "time": ("time",),
         **{name: ("data", *path) for name, path in TARGET.items()}}),
}
HOSTILE = {
    "lone-surrogate": "\ud800",
    "clear-screen": "\x1b[2J\x1b[H",
    "forged-line": "ci\r\n{\"result\": \"compliant\"}",
    "bell-and-c1": "\x07\x9b31m",
    "bidi-override": "team\u202eppa",
    "over-long": "x" * 5000,
}


def with_value(event: dict[str, Any], path: tuple[str, ...], value: object) -> dict[str, Any]:
    changed = json.loads(json.dumps(event))
    node = changed
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return changed


# -- the local host, in place and queued --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Host:
    port: int
    ledger: SqliteLedger
    queued: bool


@pytest.fixture(scope="module", params=["in-place", "queued"])
def host(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    """The local host in front of a real pipeline: deciding in the request (200), or queueing (202) with no workers."""
    root = tmp_path_factory.mktemp("hostile-" + request.param)
    settings = Settings(registries=(REGISTRY,), ledger_path=root / "ledger.db", webhook_token=TOKEN)
    ledger = SqliteLedger(settings.ledger_path)
    pipeline = pipeline_for(settings, ledger=ledger)
    if request.param == "queued":
        with QueuedHost(pipeline, queue_for(settings), webhook_token=TOKEN, port=0, threads=0) as service:
            yield Host(service.host.port, ledger, queued=True)
    else:
        with LocalHost(GuardApi(pipeline, webhook_token=TOKEN), port=0) as local:
            yield Host(local.port, ledger, queued=False)
    ledger.close()


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


def post(port: int, route: Route, body: bytes, headers: dict[str, str] | None = None) -> Answer:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", route.path, body=body, headers={**route.headers, **(headers or {})})
        response = connection.getresponse()
        return Answer(response.status, response.read().decode("utf-8", "replace"))
    finally:
        connection.close()


def assert_no_traceback(answer: Answer, caplog: pytest.LogCaptureFixture) -> None:
    assert "Traceback" not in answer.text and "internal error" not in answer.text, answer.text
    logged = [record for record in caplog.records if record.exc_info or record.levelno >= logging.ERROR]
    assert not logged, [record.getMessage() for record in logged]


def assert_safe(text: str) -> None:
    assert unsafe_character(text) is None, text
    text.encode("utf-8")


IDENTIFIER_CASES = {
    f"{route}-{field}-{kind}": (route, field, value)
    for route, spec in ROUTES.items()
    for field in spec.fields
    for kind, value in HOSTILE.items()
}


@pytest.mark.parametrize(("route_name", "field", "value"), IDENTIFIER_CASES.values(), ids=IDENTIFIER_CASES.keys())
def test_hostile_identifier_is_recorded_rejected_and_its_sibling_handled(
    host: Host, caplog: pytest.LogCaptureFixture, route_name: str, field: str, value: str
) -> None:
    """The event is recorded `rejected` with a reason naming the field, in text safe to store and print; the answer
    (200, or 202 queued) tells the sender not to deliver again; the valid sibling is handled; nothing is logged as a
    crash."""
    route = ROUTES[route_name]
    bad_id, good_id = f"bad-{uuid.uuid4()}", f"good-{uuid.uuid4()}"
    bad = with_value(route.event(bad_id), route.fields[field], value)
    body = route.wrap([json.dumps(bad), json.dumps(route.event(good_id))]).encode()

    answer = post(host.port, route, body)

    assert answer.status == (202 if host.queued else 200), answer.text
    assert_no_traceback(answer, caplog)
    [rejected] = answer.json()["outcomes"][:1]
    assert rejected["result"] == "rejected"
    assert ".".join(route.fields[field]) + ":" in rejected["reason"]
    [recorded] = host.ledger.outcomes(event_id=rejected["event_id"])
    assert (recorded.result, recorded.reason) == ("rejected", rejected["reason"])
    for text in (recorded.event_id, recorded.reason or ""):
        assert_safe(text)
    if host.queued:
        assert answer.json()["queued"] == [good_id]
    else:
        assert [outcome.result for outcome in host.ledger.outcomes(event_id=good_id)] == ["ignored"]


def deep(depth: int, kind: str) -> str:
    return ("[" * depth + "1" + "]" * depth) if kind == "array" else ('{"k":' * depth + "1" + "}" * depth)


# Around the limit, and around where the parser's own recursion limit used to leave a window (~976).
DEPTHS = [MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 970, 974, 976, 978, 982, 990, 5000]
DEEP_CASES = {
    f"{route}-{kind}-{depth}": (route, kind, depth)
    for route in ROUTES
    for kind in ("array", "object")
    for depth in DEPTHS
}


@pytest.mark.parametrize(("route_name", "kind", "depth"), DEEP_CASES.values(), ids=DEEP_CASES.keys())
def test_deep_body_is_rejected_within_the_limit_and_refused_past_it(
    host: Host, caplog: pytest.LogCaptureFixture, route_name: str, kind: str, depth: int
) -> None:
    """An event that is itself `depth` levels deep: within MAX_JSON_DEPTH a `rejected` event (200/202), past it the
    whole body is answered 400 naming the limit and recorded `rejected`; never a 500 or a traceback."""
    route = ROUTES[route_name]
    envelope_depth = 2 if route_name == "registry-events" else 1
    body = route.wrap([deep(depth - envelope_depth, kind)]).encode()

    answer = post(host.port, route, body)

    assert_no_traceback(answer, caplog)
    if depth <= MAX_JSON_DEPTH:
        assert answer.status == (202 if host.queued else 200), answer.text
        [outcome] = answer.json()["outcomes"]
        assert outcome["result"] == "rejected"
    else:
        assert answer.status == 400, answer.text
        error = answer.json()["error"]
        assert f"JSON nested too deeply (more than {MAX_JSON_DEPTH} levels" in error
        newest = host.ledger.outcomes(event_id=answer.json()["event_id"], limit=1)  # the same body on two routes
        assert [(recorded.result, recorded.reason) for recorded in newest] == [("rejected", error)]


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 976, 5000])
def test_deep_subscription_validation_is_refused(host: Host, caplog: pytest.LogCaptureFixture, depth: int) -> None:
    """The Event Grid validation handshake reads the body too: past the limit it is a 400, not a crash."""
    route = ROUTES["eventgrid"]
    body = ('[{"eventType":"Microsoft.EventGrid.SubscriptionValidationEvent","data":{"x":'
            + deep(depth - 3, "array") + "}}]").encode()
    answer = post(host.port, route, body, {"aeg-event-type": "SubscriptionValidation"})
    assert answer.status == 400 and "nested too deeply" in answer.json()["error"]
    assert_no_traceback(answer, caplog)


# -- the Functions app: HTTP triggers and the queue trigger -------------------------------------------------


@pytest.fixture
def functions_runtime(tmp_path: Path) -> Iterator[Runtime]:
    """The process-wide runtime the Functions app calls, deciding in the request (no Storage queue)."""
    runtime = Runtime.from_settings(Settings(registries=(REGISTRY,), ledger_path=tmp_path / "ledger.db",
                                             webhook_token=TOKEN))
    importer.entry.runtime.reset(runtime)
    yield runtime
    importer.entry.runtime.reset(None)
    runtime.pipeline.ledger.close()


FUNCTION_ROUTES = {"registry_events": "registry-events", "cloudevents": "cloudevents"}


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 976, 990, 5000])
@pytest.mark.parametrize("function", FUNCTION_ROUTES)
def test_functions_http_trigger_refuses_a_deep_body(
    functions_runtime: Runtime, caplog: pytest.LogCaptureFixture, function: str, depth: int
) -> None:
    route = ROUTES[FUNCTION_ROUTES[function]]
    body = route.wrap([deep(depth - (2 if function == "registry_events" else 1), "object")]).encode()
    response = FUNCTIONS[function](func.HttpRequest("POST", "http://localhost:7071" + route.path.split("?")[0],
                                                    headers=route.headers, body=body))
    answer = Answer(response.status_code, response.get_body().decode())
    assert answer.status == 400 and "nested too deeply" in answer.json()["error"], answer.text
    assert_no_traceback(answer, caplog)


@pytest.mark.parametrize("function", FUNCTION_ROUTES)
def test_functions_http_trigger_rejects_a_surrogate_event_id(
    functions_runtime: Runtime, caplog: pytest.LogCaptureFixture, function: str
) -> None:
    route = ROUTES[FUNCTION_ROUTES[function]]
    body = route.wrap([json.dumps(route.event("\ud800"))]).encode()
    response = FUNCTIONS[function](func.HttpRequest("POST", "http://localhost:7071" + route.path,
                                                    headers=route.headers, body=body))
    answer = Answer(response.status_code, response.get_body().decode())
    assert answer.status == 200, answer.text
    [outcome] = answer.json()["outcomes"]
    assert outcome["result"] == "rejected" and "id: '\\ud800' is not printable text" in outcome["reason"]
    assert_no_traceback(answer, caplog)


def queue_message(body: bytes) -> QueueMessage:
    return QueueMessage(id=str(uuid.uuid4()), body=body, dequeue_count=1, pop_receipt="receipt")


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 976, 990, 5000])
def test_queue_trigger_refuses_a_deep_message_as_unreadable(functions_runtime: Runtime, depth: int) -> None:
    """A queue message nested past the limit is an UnreadableMessage (the host dead-letters it), not a crash."""
    body = ('{"eventType":"Microsoft.ContainerRegistry.ImagePushed","id":"q","data":'
            + deep(depth - 1, "array") + "}").encode()
    with pytest.raises(UnreadableMessage, match="nested too deeply"):
        FUNCTIONS["registry_queue"](queue_message(body))


def test_queue_trigger_records_a_hostile_event_as_rejected(functions_runtime: Runtime) -> None:
    """An Event Grid event with a lone surrogate in its id, from the queue: recorded `rejected`, the message done."""
    FUNCTIONS["registry_queue"](queue_message(json.dumps(eventgrid_event("\ud800", "Pushed")).encode()))
    [outcome] = functions_runtime.pipeline.ledger.outcomes(limit=5)
    assert outcome.result == "rejected" and "id: '\\ud800' is not printable text" in (outcome.reason or "")
    assert_safe(outcome.event_id)


# -- `python -m importer serve`, a process ------------------------------------------------------------------


def test_serve_prints_no_traceback_for_hostile_input(tmp_path: Path) -> None:
    """The local host as operators run it: hostile bodies on every route, then its stderr holds no traceback and its
    stdout no raw control character."""
    port = free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PLATFORM_GUARD_")}
    environment.update(PLATFORM_GUARD_REGISTRIES=REGISTRY, PLATFORM_GUARD_WEBHOOK_TOKEN=TOKEN,
                       PLATFORM_GUARD_LEDGER=str(tmp_path / "ledger.db"))
    process = subprocess.Popen([sys.executable, "-m", "importer", "serve", "--port", str(port), "--workers", "0",
                                "--threads", "1"], cwd=ROOT, env=environment, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    statuses: list[int] = []
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, "serve did not start"
                time.sleep(0.1)
        for route in ROUTES.values():
            for depth in (MAX_JSON_DEPTH + 1, 972, 974, 976, 978, 980, 5000):
                statuses.append(post(port, route, route.wrap([deep(depth, "array")]).encode()).status)
            for value in HOSTILE.values():
                bad = with_value(route.event(str(uuid.uuid4())), route.fields["actor"], value)
                statuses.append(post(port, route, route.wrap([json.dumps(bad)]).encode()).status)
            statuses.append(post(port, route, route.wrap([json.dumps(route.event("\ud800"))]).encode()).status)
    finally:
        process.terminate()
        stdout, stderr = process.communicate(timeout=20)
    assert "Traceback" not in stderr, stderr
    assert 500 not in statuses, statuses
    printed = stdout.replace("\n", "")
    assert unsafe_character(printed) is None, printed
