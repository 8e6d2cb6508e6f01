"""One authentication rule for every state-changing route of the local host, over real HTTP.

The rule (importer/entry/http_api.py, `GuardApi._authorize`): a POST to `/runtime/webhooks/eventgrid` (events and the
subscription validation handshake alike), `/api/registry-events` or `/api/cloudevents` is served only when it carries
PLATFORM_GUARD_WEBHOOK_TOKEN as `Authorization: Bearer <token>`, as an `x-functions-key` header or as a `code` query
parameter; anything else is 401 and nothing is queued or recorded. Without a configured token every such request is
refused. `GET /api/health` and the CloudEvents `OPTIONS` handshake change nothing and stay open.

A real QueuedHost (intake only: no worker decides, so no registry is read) on 127.0.0.1 with its SQLite queue and
ledger; the events name `contosoregistry.azurecr.io`, a configured registry, so an authorised one is queued (202).
"""

from __future__ import annotations

import http.client
import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from importer.app.settings import Settings
from importer.entry.composition import pipeline_for, queue_for
from importer.entry.serve import QueuedHost

pytestmark = pytest.mark.timeout(60)

DATA = Path(__file__).parents[1] / "data" / "events"
TOKEN = "route-auth-token-0123456789abcdef"
REGISTRY = "contosoregistry.azurecr.io"
EVENTGRID = "/runtime/webhooks/eventgrid?functionName=registry_event"


def _with_new_id(path: str, *, list_body: bool) -> bytes:
    """A test event file with a fresh event id, so that every delivery is a new event."""
    document = json.loads((DATA / path).read_text())
    (document[0] if list_body else document)["id"] = str(uuid.uuid4())
    return json.dumps(document).encode()


@dataclass(frozen=True, slots=True)
class Route:
    path: str
    headers: dict[str, str]
    body: str  # a file in tests/data/events, or "" for a distribution notification made here
    list_body: bool
    served: int  # the status when authorised
    queues: bool  # whether an authorised delivery puts an event on the queue


ROUTES = {
    "eventgrid-event": Route(EVENTGRID, {"aeg-event-type": "Notification", "Content-Type": "application/json"},
                             "eventgrid-image-pushed.json", True, 202, True),
    "eventgrid-validation-handshake": Route(
        EVENTGRID, {"aeg-event-type": "SubscriptionValidation", "Content-Type": "application/json"},
        "eventgrid-subscription-validation.json", True, 200, False),
    "registry-events": Route("/api/registry-events", {"Content-Type": "application/json"}, "", False, 202, True),
    "cloudevents": Route("/api/cloudevents", {"Content-Type": "application/cloudevents+json"},
                         "cloudevents-image-pushed.json", False, 202, True),
}


def _distribution_body() -> bytes:
    event = {"id": str(uuid.uuid4()), "timestamp": "2024-05-14T16:52:01.343Z", "action": "push",
             "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1, "length": 1,
                        "digest": "sha256:" + "ab" * 32, "repository": "team/app", "tag": "1"},
             "request": {"id": "r", "addr": "127.0.0.1", "host": REGISTRY, "method": "PUT", "useragent": "test"},
             "actor": {}, "source": {"addr": "x", "instanceID": "y"}}
    return json.dumps({"events": [event]}).encode()


def _body(route: Route) -> bytes:
    return _with_new_id(route.body, list_body=route.list_body) if route.body else _distribution_body()


# credential id: (extra headers, query suffix, whether it carries the right token)
CREDENTIALS: dict[str, tuple[dict[str, str], str, bool]] = {
    "none": ({}, "", False),
    "bearer": ({"Authorization": f"Bearer {TOKEN}"}, "", True),
    "bearer-scheme-in-lower-case": ({"Authorization": f"bearer {TOKEN}"}, "", True),
    "functions-key-header": ({"x-functions-key": TOKEN}, "", True),
    "code-query-parameter": ({}, f"code={quote(TOKEN)}", True),
    "wrong-bearer": ({"Authorization": "Bearer wrong-token-0123456789abcdef"}, "", False),
    "bearer-missing-last-character": ({"Authorization": f"Bearer {TOKEN[:-1]}"}, "", False),
    "bearer-with-extra-character": ({"Authorization": f"Bearer {TOKEN}x"}, "", False),
    "token-as-basic-credentials": ({"Authorization": f"Basic {TOKEN}"}, "", False),
    "token-without-scheme": ({"Authorization": TOKEN}, "", False),
    "wrong-functions-key": ({"x-functions-key": "wrong-token-0123456789abcdef"}, "", False),
    "empty-functions-key": ({"x-functions-key": ""}, "", False),
    "wrong-code": ({}, "code=wrong-token-0123456789abcdef", False),
    "empty-code": ({}, "code=", False),
    "token-in-another-parameter": ({}, f"key={quote(TOKEN)}", False),
}


@dataclass
class Host:
    service: QueuedHost
    token: str | None

    def post(self, route_id: str, credential: str) -> tuple[int, dict[str, object], bytes]:
        route = ROUTES[route_id]
        headers, query, _ = CREDENTIALS[credential]
        path = route.path + (("&" if "?" in route.path else "?") + query if query else "")
        body = _body(route)
        connection = http.client.HTTPConnection("127.0.0.1", self.service.host.port, timeout=30)
        try:
            connection.request("POST", path, body=body, headers={**route.headers, **headers})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def queued(self) -> int:
        return self.service.queue.depth(now=time.time()).ready

    def recorded(self) -> int:
        return len(self.service.pipeline.ledger.outcomes(limit=100_000))


def _host(tmp_path: Path, token: str | None) -> Iterator[Host]:
    settings = Settings(registries=(REGISTRY,), ledger_path=tmp_path / "ledger.db", webhook_token=token)
    pipeline = pipeline_for(settings)
    service = QueuedHost(pipeline, queue_for(settings), webhook_token=token, port=0, threads=0)
    with service:
        yield Host(service, token)
    pipeline.ledger.close()


@pytest.fixture(scope="module")
def guarded_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    yield from _host(tmp_path_factory.mktemp("auth"), TOKEN)


@pytest.fixture(scope="module")
def host_without_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    yield from _host(tmp_path_factory.mktemp("no-token"), None)


def _assert_refused(host: Host, status: int, body: bytes, before: tuple[int, int]) -> None:
    assert status == 401, body
    answer = json.loads(body)
    assert "token" in str(answer["error"]) and b"Traceback" not in body
    assert (host.queued(), host.recorded()) == before  # nothing queued, nothing recorded


@pytest.mark.parametrize("credential", CREDENTIALS, ids=CREDENTIALS.keys())
@pytest.mark.parametrize("route_id", ROUTES, ids=ROUTES.keys())
def test_every_state_changing_route_takes_the_webhook_token_and_refuses_without_it(
    guarded_host: Host, route_id: str, credential: str
) -> None:
    """Each POST route (the Event Grid route and its validation handshake included) is served with the token as a
    bearer token, an x-functions-key header or a code parameter; any other credential gets 401 and changes nothing."""
    route = ROUTES[route_id]
    authorised = CREDENTIALS[credential][2]
    before = (guarded_host.queued(), guarded_host.recorded())

    status, headers, body = guarded_host.post(route_id, credential)

    if not authorised:
        _assert_refused(guarded_host, status, body, before)
        assert headers.get("WWW-Authenticate") == "Bearer"
        return
    assert status == route.served, body
    answer = json.loads(body)
    if route_id == "eventgrid-validation-handshake":
        assert answer == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    else:
        assert len(answer["queued"]) == 1
    assert guarded_host.queued() == before[0] + (1 if route.queues else 0)


@pytest.mark.parametrize("credential", ["none", "bearer", "functions-key-header", "code-query-parameter"])
@pytest.mark.parametrize("route_id", ROUTES, ids=ROUTES.keys())
def test_without_a_configured_token_every_state_changing_route_refuses(
    host_without_token: Host, route_id: str, credential: str
) -> None:
    """No PLATFORM_GUARD_WEBHOOK_TOKEN: every POST route refuses every request (401), whatever it carries."""
    before = (host_without_token.queued(), host_without_token.recorded())
    status, _, body = host_without_token.post(route_id, credential)
    _assert_refused(host_without_token, status, body, before)
    assert "not configured" in json.loads(body)["error"]


OPEN_ROUTES = {
    "health": ("GET", "/api/health", {}, 200),
    "cloudevents-options-handshake": ("OPTIONS", "/api/cloudevents", {"WebHook-Request-Origin": "eventgrid.azure.net"},
                                      200),
}


@pytest.mark.parametrize(("method", "path", "headers", "status"), OPEN_ROUTES.values(), ids=OPEN_ROUTES.keys())
def test_read_only_routes_need_no_token(
    host_without_token: Host, method: str, path: str, headers: dict[str, str], status: int
) -> None:
    """Health and the CloudEvents OPTIONS handshake change nothing: they answer without a token."""
    before = (host_without_token.queued(), host_without_token.recorded())
    connection = http.client.HTTPConnection("127.0.0.1", host_without_token.service.host.port, timeout=30)
    try:
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    assert response.status == status
    assert (host_without_token.queued(), host_without_token.recorded()) == before


def test_a_token_in_the_url_never_reaches_the_log(guarded_host: Host, caplog: pytest.LogCaptureFixture) -> None:
    """The local host's request log (debug, `-v`) shows `code=***`, never the token a subscription put in its URL."""
    caplog.set_level(logging.DEBUG, logger="platform_guard.serve")
    status, _, body = guarded_host.post("eventgrid-validation-handshake", "code-query-parameter")
    assert status == 200, body
    deadline = time.monotonic() + 5
    while "webhooks/eventgrid" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "code=***" in caplog.text
    assert TOKEN not in caplog.text
