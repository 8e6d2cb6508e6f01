"""Tests for the entry points: the Azure Functions app called as the host calls it, and the local host over HTTP.

function_app.py: its functions are taken from `app.get_functions()` (once per app object, so once per module)
and called with `func.EventGridEvent` / `func.HttpRequest` objects built the way the Functions host builds
them from an ACR delivery. The process-wide runtime points at a real distribution registry on 127.0.0.1
through `importer.entry.runtime.reset(Runtime.from_settings(Settings(...)))`, and images are pushed with
testbed. A local registry has no ARM resource id, so its events carry the registry host as `topic`
(RegistryDirectory matches a configured host before it tries ACR ids); the ACR id → `<name>.azurecr.io`
mapping is a contract test with untagged pushes, which are recorded before any registry would be read.

importer.entry.serve.LocalHost: real HTTP with urllib and http.client, in front of a real pipeline and registry
(testbed.stack.GuardedRegistry): handshakes, health, 404/405, many senders at once, keep-alive.
"""

from __future__ import annotations

import http.client
import json
import threading
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

import importer.entry.runtime
from function_app import app
from importer.app.pipeline import TransientFailure
from importer.app.settings import Settings
from importer.core.outcome import Outcome
from importer.entry.runtime import Runtime
from testbed.faults import FaultProxy
from testbed.images import Descriptor, ImageBuilder
from testbed.push import push
from testbed.registry import LocalRegistry
from testbed.stack import WEBHOOK_TOKEN, GuardedRegistry

pytestmark = pytest.mark.timeout(60)

DATA = Path(__file__).parents[1] / "data" / "events"
TOKEN = "entrypoint-token-0123456789"
ACR_ID = (
    "/subscriptions/5f3c9a2e-8d41-4b7a-9c60-1e2f3a4b5c6d/resourceGroups/rg-guard"
    "/providers/Microsoft.ContainerRegistry/registries/{}"
)

# get_functions() may be called once per FunctionApp: a second call raises "does not have a unique function name".
BUILT_FUNCTIONS = app.get_functions()
FUNCTIONS: dict[str, Callable[..., Any]] = {f.get_function_name(): f.get_user_function() for f in BUILT_FUNCTIONS}


# -- helpers -----------------------------------------------------------------------------------------------


@pytest.fixture
def install_runtime() -> Iterator[Callable[[Settings], Runtime]]:
    """Install a runtime built from settings as the process-wide one; reset to None afterwards."""
    installed: list[Runtime] = []

    def install(settings: Settings) -> Runtime:
        runtime = Runtime.from_settings(settings)
        importer.entry.runtime.reset(runtime)
        installed.append(runtime)
        return runtime

    yield install
    importer.entry.runtime.reset(None)
    for runtime in installed:
        runtime.pipeline.ledger.close()


def acr_push_data(
    repository: str, tag: str | None, digest: str, media_type: str, size: int, host: str
) -> dict[str, Any]:
    """The `data` of an ACR ImagePushed event (the shape of tests/data/events/eventgrid-image-pushed.json)."""
    target: dict[str, Any] = {"mediaType": media_type, "size": size, "digest": digest, "length": size,
                              "repository": repository}
    if tag is not None:
        target["tag"] = tag
    return {
        "id": str(uuid.uuid4()),
        "timestamp": "2024-05-14T09:12:47.276585742Z",
        "action": "push",
        "location": "westeurope",
        "target": target,
        "request": {"id": str(uuid.uuid4()), "host": host, "method": "PUT", "useragent": "docker/24.0.7"},
        "actor": {"name": "ci-pipeline"},
        "source": {"addr": host, "instanceID": "4a1f7bde-9e1c-4a3b-8b9d-0f5c2e6a7d81"},
    }


def acr_event(topic: str, data: dict[str, Any], event_id: str | None = None) -> func.EventGridEvent:
    """An ImagePushed event as the Functions host hands it to an Event Grid trigger."""
    target = data["target"]
    subject = f"{target['repository']}:{target['tag']}" if "tag" in target else target["repository"]
    return func.EventGridEvent(
        id=event_id or str(uuid.uuid4()),
        data=data,
        topic=topic,
        subject=subject,
        event_type="Microsoft.ContainerRegistry.ImagePushed",
        event_time=datetime(2024, 5, 14, 9, 12, 47, 654961, tzinfo=timezone.utc),
        data_version="1.0",
    )


def distribution_envelope(event_id: str, host: str, repository: str, tag: str, image: Descriptor) -> bytes:
    """A distribution notification envelope for the tagged push of `image`."""
    target = {"mediaType": image.media_type, "size": image.size, "digest": image.digest, "length": image.size,
              "repository": repository, "url": f"http://{host}/v2/{repository}/manifests/{image.digest}",
              "tag": tag}
    event = {"id": event_id, "timestamp": "2024-05-14T16:52:01.343Z", "action": "push", "target": target,
             "request": {"id": str(uuid.uuid4()), "addr": "127.0.0.1:40000", "host": host, "method": "PUT",
                         "useragent": "skopeo/1.9.3"},
             "actor": {"name": "release-bot"}, "source": {"addr": "registry:5000", "instanceID": "test"}}
    return json.dumps({"events": [event]}).encode()


def only_outcome(runtime: Runtime, event_id: str) -> Outcome:
    recorded = runtime.pipeline.ledger.outcomes(event_id=event_id)
    assert len(recorded) == 1, f"expected one outcome for {event_id}, got {[o.result for o in recorded]}"
    return recorded[0]


# -- bindings ----------------------------------------------------------------------------------------------

BINDINGS: dict[str, dict[str, Any]] = {
    "registry_event": {"type": "eventGridTrigger", "name": "event", "direction": "IN"},
    "registry_events": {"type": "httpTrigger", "name": "req", "direction": "IN", "route": "registry-events",
                        "methods": ["POST"], "authLevel": "FUNCTION"},
    "health": {"type": "httpTrigger", "name": "req", "direction": "IN", "route": "health", "methods": ["GET"],
               "authLevel": "ANONYMOUS"},
}


def test_app_declares_exactly_the_documented_functions() -> None:
    """The Functions app has the Event Grid trigger, the webhook route and the health probe, and nothing else."""
    assert sorted(FUNCTIONS) == sorted(BINDINGS)


@pytest.mark.parametrize("name, expected", BINDINGS.items(), ids=BINDINGS.keys())
def test_trigger_binding(name: str, expected: dict[str, Any]) -> None:
    """Each function's trigger binding has the type, route, methods and auth level the deployment relies on."""
    built = next(f for f in BUILT_FUNCTIONS if f.get_function_name() == name)
    bindings = [json.loads(raw) for raw in built.get_raw_bindings()]  # what function.json would hold
    assert [binding for binding in bindings if binding["direction"] == "IN"] == [expected]
    http_output = {"direction": "OUT", "type": "http", "name": "$return"}
    outputs = [binding for binding in bindings if binding["direction"] == "OUT"]
    assert outputs == ([http_output] if expected["type"] == "httpTrigger" else [])


# -- the Event Grid trigger against a real registry ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TriggerCase:
    platforms: tuple[str, ...]  # one platform: a single image; more: an index of them (with an attestation)
    tagged: bool
    result: str
    offered: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()


TRIGGER_CASES = {
    "amd64-image-compliant": TriggerCase(("linux/amd64",), True, "compliant", ("linux/amd64",)),
    "arm64-image-quarantined": TriggerCase(("linux/arm64",), True, "quarantined", ("linux/arm64",), ("linux/amd64",)),
    "multi-arch-index-compliant": TriggerCase(
        ("linux/amd64", "linux/arm64"), True, "compliant", ("linux/amd64", "linux/arm64")
    ),
    "untagged-child-push-ignored": TriggerCase(("linux/arm64",), False, "ignored"),
}


@pytest.mark.parametrize("case", TRIGGER_CASES.values(), ids=TRIGGER_CASES.keys())
def test_eventgrid_trigger_decides_a_real_push(
    registry: LocalRegistry,
    builder: ImageBuilder,
    install_runtime: Callable[[Settings], Runtime],
    tmp_path: Path,
    case: TriggerCase,
) -> None:
    """An ImagePushed event handed to the Event Grid trigger ends in one recorded outcome for the pushed image."""
    runtime = install_runtime(Settings(registries=(registry.host,), ledger_path=tmp_path / "ledger.db"))
    images = [builder.image(platform) for platform in case.platforms]
    pushed = images[0] if len(images) == 1 else builder.index([*images, builder.attestation(images[0])])
    tag = "1.0" if case.tagged else None
    digest = push(builder, pushed, registry.host, "team/app", tag)
    data = acr_push_data("team/app", tag, digest, pushed.media_type, pushed.size, registry.host)
    event = acr_event(registry.host, data)

    assert FUNCTIONS["registry_event"](event) is None

    outcome = only_outcome(runtime, event.id)
    assert outcome.result == case.result
    assert (outcome.registry, outcome.repository, outcome.tag, outcome.digest) == (
        registry.host, "team/app", tag, digest
    )
    assert (outcome.platforms, outcome.missing) == (case.offered, case.missing)
    assert (outcome.actor, outcome.user_agent, outcome.schema) == ("ci-pipeline", "docker/24.0.7", "eventgrid")


TOPICS = {
    "acr-id-of-the-configured-registry": (ACR_ID.format("myacr"), "myacr.azurecr.io"),
    "acr-id-in-lower-case": (ACR_ID.format("myacr").lower(), "myacr.azurecr.io"),
    "acr-id-with-trailing-slash": (ACR_ID.format("myacr") + "/", "myacr.azurecr.io"),
    "the-configured-host-itself": ("myacr.azurecr.io", "myacr.azurecr.io"),
    "acr-id-of-another-registry": (ACR_ID.format("otheracr"), None),
    "acr-id-whose-name-extends-ours": (ACR_ID.format("myacr2"), None),
    "acr-id-of-a-registry-with-our-prefix": (ACR_ID.format("my"), None),
    "storage-account-with-our-name": (
        "/subscriptions/5f3c/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/myacr", None
    ),
    "acr-provider-not-under-a-subscription": ("/providers/Microsoft.ContainerRegistry/registries/myacr", None),
    "lookalike-host": ("myacr.azurecr.io.example.com", None),
    "no-topic": ("", None),
}


@pytest.mark.parametrize("topic, registry_host", TOPICS.values(), ids=TOPICS.keys())
def test_contract_eventgrid_topic_maps_acr_resource_id_to_configured_host(
    install_runtime: Callable[[Settings], Runtime], tmp_path: Path, topic: str, registry_host: str | None
) -> None:
    """An ACR resource id for `myacr` stands for the configured host myacr.azurecr.io; any other origin is rejected."""
    # Untagged pushes are recorded as ignored before any registry is read: nothing leaves this machine.
    runtime = install_runtime(Settings(registries=("myacr.azurecr.io",), ledger_path=tmp_path / "ledger.db"))
    digest = "sha256:" + "ab" * 32
    data = acr_push_data("team/app", None, digest, "application/vnd.oci.image.manifest.v1+json", 405,
                         "myacr.azurecr.io")
    event = acr_event(topic, data)

    FUNCTIONS["registry_event"](event)

    outcome = only_outcome(runtime, event.id)
    if registry_host is None:
        assert outcome.result == "rejected"
        assert outcome.registry is None
        assert "not a configured registry" in (outcome.reason or "")
    else:
        assert outcome.result == "ignored"
        assert outcome.registry == registry_host
        assert outcome.reference == f"{registry_host}/team/app@{digest}"


def test_eventgrid_trigger_raises_on_transient_registry_error_and_redelivery_is_decided(
    registry: LocalRegistry, builder: ImageBuilder, install_runtime: Callable[[Settings], Runtime], tmp_path: Path
) -> None:
    """A registry answering 503 makes the trigger raise (the host retries), frees the claim, and the retry decides."""
    image = builder.image("linux/amd64")
    digest = push(builder, image, registry.host, "team/app", "2.0")
    with FaultProxy(registry.host, rate=1.0, faults=("503",)) as proxy:
        runtime = install_runtime(Settings(registries=(proxy.host,), ledger_path=tmp_path / "ledger.db"))
        event = acr_event(proxy.host, acr_push_data("team/app", "2.0", digest, image.media_type, image.size,
                                                    proxy.host))

        with pytest.raises(TransientFailure, match="HTTP 503"):
            FUNCTIONS["registry_event"](event)
        attempt = only_outcome(runtime, event.id)
        assert attempt.result == "retrying" and not attempt.alerts  # an attempt: on-call is not paged
        assert "HTTP 503" in (attempt.error or "")
        assert proxy.stats.injected["503"] >= 2 and proxy.stats.forwarded == 0  # retried inside, then gave up

        proxy.configure(rate=0.0)
        FUNCTIONS["registry_event"](event)  # Event Grid delivers the same event again

    results = [outcome.result for outcome in runtime.pipeline.ledger.outcomes(event_id=event.id)]
    assert results == ["compliant", "retrying"]  # newest first: decided, not a duplicate


# -- the HTTP triggers -------------------------------------------------------------------------------------

AUTHORIZATION_CASES = {
    "no-authorization-header": (TOKEN, None, 401),
    "wrong-token": (TOKEN, "Bearer not-the-token-0123456789", 401),
    "token-with-basic-scheme": (TOKEN, f"Basic {TOKEN}", 401),
    "token-without-scheme": (TOKEN, TOKEN, 401),
    "token-with-extra-suffix": (TOKEN, f"Bearer {TOKEN}x", 401),
    "no-token-configured-refuses-all": (None, f"Bearer {TOKEN}", 401),
    "right-token": (TOKEN, f"Bearer {TOKEN}", 200),
    "scheme-is-case-insensitive": (TOKEN, f"bearer {TOKEN}", 200),
}


@pytest.mark.parametrize(
    "configured, authorization, status", AUTHORIZATION_CASES.values(), ids=AUTHORIZATION_CASES.keys()
)
def test_http_trigger_requires_the_bearer_token(
    registry: LocalRegistry,
    builder: ImageBuilder,
    install_runtime: Callable[[Settings], Runtime],
    tmp_path: Path,
    configured: str | None,
    authorization: str | None,
    status: int,
) -> None:
    """The registry-events HTTP trigger decides a webhook only with the configured bearer token, else 401."""
    runtime = install_runtime(
        Settings(registries=(registry.host,), ledger_path=tmp_path / "ledger.db", webhook_token=configured)
    )
    image = builder.image("linux/amd64")
    push(builder, image, registry.host, "team/app", "3.0")
    event_id = str(uuid.uuid4())
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    request = func.HttpRequest(
        "POST", "http://localhost:7071/api/registry-events", headers=headers, params={},
        body=distribution_envelope(event_id, registry.host, "team/app", "3.0", image),
    )

    response = FUNCTIONS["registry_events"](request)

    assert response.status_code == status
    answer = json.loads(response.get_body())
    recorded = runtime.pipeline.ledger.outcomes(event_id=event_id)
    if status == 401:
        assert "token" in answer["error"]
        assert recorded == []
    else:
        assert answer["outcomes"] == [{"event_id": event_id, "result": "compliant", "reason": recorded[0].reason}]
        assert [outcome.result for outcome in recorded] == ["compliant"]


def test_health_trigger_answers_without_a_registry(
    install_runtime: Callable[[Settings], Runtime], tmp_path: Path
) -> None:
    """The health probe answers 200 with a JSON status, whatever the registries."""
    install_runtime(Settings(ledger_path=tmp_path / "ledger.db"))
    response = FUNCTIONS["health"](func.HttpRequest("GET", "http://localhost:7071/api/health", body=b""))
    assert (response.status_code, json.loads(response.get_body())) == (200, {"status": "ok"})
    assert response.headers["Content-Type"] == "application/json"


# -- the local host over HTTP ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuardedRegistry]:
    """One registry guarded by a running local host, shared by the HTTP tests below (event ids keep them apart)."""
    with GuardedRegistry(tmp_path_factory.mktemp("local-host")) as running:
        yield running


@pytest.fixture(scope="module")
def stack_builder(tmp_path_factory: pytest.TempPathFactory) -> ImageBuilder:
    return ImageBuilder(tmp_path_factory.mktemp("local-host-images"))


@dataclass(frozen=True, slots=True)
class HttpCase:
    method: str
    path: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    answer: dict[str, Any] | None = None  # the JSON body expected, when it is checked whole
    answer_headers: dict[str, str] = field(default_factory=dict)


VALIDATION = (DATA / "eventgrid-subscription-validation.json").read_bytes()
VALIDATION_CODE = json.loads(VALIDATION)[0]["data"]["validationCode"]
EVENTGRID_PATH = "/runtime/webhooks/eventgrid?functionName=registry_event"

HTTP_CASES = {
    "eventgrid-validation-handshake": HttpCase(
        "POST", EVENTGRID_PATH, 200, {"aeg-event-type": "SubscriptionValidation", "Content-Type": "application/json"},
        VALIDATION, {"validationResponse": VALIDATION_CODE},
    ),
    "eventgrid-validation-without-header": HttpCase(
        "POST", EVENTGRID_PATH, 200, {"Content-Type": "application/json"}, VALIDATION,
        {"validationResponse": VALIDATION_CODE},
    ),
    "eventgrid-route-is-case-insensitive": HttpCase(
        "POST", "/runtime/webhooks/EventGrid?functionName=registry_event", 200,
        {"aeg-event-type": "SubscriptionValidation"}, VALIDATION, {"validationResponse": VALIDATION_CODE},
    ),
    "cloudevents-options-handshake": HttpCase(
        "OPTIONS", "/api/cloudevents", 200, {"WebHook-Request-Origin": "eventgrid.azure.net"},
        answer_headers={"WebHook-Allowed-Origin": "eventgrid.azure.net"},
    ),
    "cloudevents-options-with-rate": HttpCase(
        "OPTIONS", "/api/cloudevents", 200,
        {"WebHook-Request-Origin": "eventgrid.azure.net", "WebHook-Request-Rate": "120"},
        answer_headers={"WebHook-Allowed-Origin": "eventgrid.azure.net", "WebHook-Allowed-Rate": "*"},
    ),
    "cloudevents-options-without-origin": HttpCase("OPTIONS", "/api/cloudevents", 400),
    "health": HttpCase("GET", "/api/health", 200, answer={"status": "ok"}),
    "health-with-trailing-slash": HttpCase("GET", "/api/health/", 200, answer={"status": "ok"}),
    "unknown-route": HttpCase("GET", "/api/nothing-here", 404),
    "root": HttpCase("GET", "/", 404),
    "get-on-a-post-route": HttpCase("GET", "/api/registry-events", 405, answer_headers={"Allow": "POST"}),
    "post-on-health": HttpCase("POST", "/api/health", 405, body=b"{}", answer_headers={"Allow": "GET"}),
    "put-on-a-post-route": HttpCase("PUT", "/api/registry-events", 405, body=b"{}", answer_headers={"Allow": "POST"}),
    "delete-on-health": HttpCase("DELETE", "/api/health", 405, answer_headers={"Allow": "GET"}),
    "head-on-cloudevents": HttpCase("HEAD", "/api/cloudevents", 405, answer_headers={"Allow": "POST, OPTIONS"}),
}


def _exchange(
    url: str, method: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.mark.parametrize("case", HTTP_CASES.values(), ids=HTTP_CASES.keys())
def test_local_host_routes(stack: GuardedRegistry, case: HttpCase) -> None:
    """The local host answers handshakes, health, unknown routes (404) and wrong methods (405, with Allow)."""
    status, headers, body = _exchange(stack.host.url + case.path, case.method, case.body, case.headers)
    assert status == case.status, body
    for name, value in case.answer_headers.items():
        assert headers[name] == value
    if case.method != "HEAD":
        answer = json.loads(body) if body else None
        if case.answer is not None:
            assert answer == case.answer
        elif status >= 400:
            assert isinstance(answer, dict) and answer.get("error"), body
    assert b"Traceback" not in body


def test_local_host_answers_many_senders_at_once(stack: GuardedRegistry, stack_builder: ImageBuilder) -> None:
    """32 senders posting at the same moment are all answered 202 (queued), and each event is recorded exactly once."""
    builder = stack_builder
    image = builder.image("linux/amd64", seed="concurrent")
    push(builder, image, stack.registry.host, "team/busy", "1")
    senders = 32
    event_ids = [f"concurrent-{number}-{uuid.uuid4()}" for number in range(senders)]
    start = threading.Barrier(senders)
    headers = {"Authorization": f"Bearer {WEBHOOK_TOKEN}", "Content-Type": "application/json"}

    def send(event_id: str) -> tuple[int, bytes]:
        body = distribution_envelope(event_id, stack.registry.host, "team/busy", "1", image)
        start.wait()
        status, _, answer = _exchange(stack.host.url + "/api/registry-events", "POST", body, headers)
        return status, answer

    with ThreadPoolExecutor(senders) as pool:
        answers = list(pool.map(send, event_ids))

    assert [status for status, _ in answers] == [202] * senders
    stack.wait_until(lambda outcomes: len([o for o in outcomes if o.event_id in set(event_ids)]) >= senders)
    recorded = [outcome for outcome in stack.outcomes() if outcome.event_id in set(event_ids)]
    assert Counter(outcome.event_id for outcome in recorded) == Counter(event_ids)
    assert {outcome.result for outcome in recorded} == {"compliant"}


def test_local_host_keeps_connections_alive(stack: GuardedRegistry, stack_builder: ImageBuilder) -> None:
    """One HTTP/1.1 connection carries health checks, an event and a rejected payload in a row."""
    builder = stack_builder
    image = builder.image("linux/amd64", seed="keep-alive")
    push(builder, image, stack.registry.host, "team/alive", "1")
    event_id = str(uuid.uuid4())
    headers = {"Authorization": f"Bearer {WEBHOOK_TOKEN}", "Content-Type": "application/json"}
    exchanges = [
        ("GET", "/api/health", None, 200),
        ("POST", "/api/registry-events", distribution_envelope(event_id, stack.registry.host, "team/alive", "1",
                                                              image), 202),
        ("POST", "/api/registry-events", b"{not json", 400),
        ("GET", "/api/nowhere", None, 404),
        ("GET", "/api/health", None, 200),
    ]
    connection = http.client.HTTPConnection("127.0.0.1", stack.host.port, timeout=30)
    try:
        sockets = []
        for method, path, body, status in exchanges:
            connection.request(method, path, body=body, headers=headers if body else {})
            response = connection.getresponse()
            response.read()
            assert (response.status, response.version, response.will_close) == (status, 11, False)
            sockets.append(connection.sock)
    finally:
        connection.close()
    assert all(sock is sockets[0] for sock in sockets)
    stack.wait_until(lambda outcomes: any(o.event_id == event_id for o in outcomes))
    assert [outcome.result for outcome in stack.ledger.outcomes(event_id=event_id)] == ["compliant"]
