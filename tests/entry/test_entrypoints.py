"""Tests for the entry points: the Azure Functions app called as the host calls it, and the local host over HTTP.

function_app.py: its functions are taken from `app.get_functions()` (once per app object, so once per module) and
called with `azure.functions.queue.QueueMessage` / `func.HttpRequest` objects built the way the Functions host builds
them: a queue message carries the decoded text (host.json `messageEncoding: base64`), its dequeue count and insertion
time. The process-wide runtime points at a real distribution registry on 127.0.0.1 through
`importer.entry.runtime.reset(Runtime.from_settings(Settings(...)))`, and images are pushed with testbed. A local
registry has no ARM resource id, so its events carry the registry host as `topic` (RegistryDirectory matches a
configured host before it tries ACR ids); the ACR id → `<name>.azurecr.io` mapping is a contract test with untagged
pushes, which are recorded before any registry would be read.

The Storage queue is Azurite's (started once for the module): `HostQueue` plays the Functions host's part on it —
receive a message, decode it, call the queue trigger, delete it when the try returns, make it visible again when the
try raised, move it to `<queue>-poison` when the try numbered maxDequeueCount raised — so the routes' 202, the queue
trigger, the poison queue and `redrive` run end to end.

importer.entry.serve.LocalHost: real HTTP with urllib and http.client, in front of a real pipeline and registry
(testbed.stack.GuardedRegistry): handshakes, health, 404/405, many senders at once, keep-alive.
"""

from __future__ import annotations

import base64
import dataclasses
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
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
from azure.functions.queue import QueueMessage

import importer.entry.runtime
from function_app import app
from importer.adapters.queue.storage import HOST_GAVE_UP, StorageQueue
from importer.app.pipeline import TransientFailure
from importer.app.remediation import CLAIM_LEASE_SECONDS
from importer.app.settings import DEFAULT_QUEUE_NAME, Settings
from importer.core.outcome import Outcome
from importer.entry.queue_trigger import (
    HOST_JSON,
    MAX_DEQUEUE_COUNT_OVERRIDE,
    QUEUE_CONNECTION,
    GaveUp,
    UnreadableMessage,
    host_max_dequeue_count,
)
from importer.entry.runtime import Runtime
from testbed.azurite import Azurite
from testbed.faults import FaultProxy
from testbed.images import Descriptor, ImageBuilder
from testbed.push import push
from testbed.registry import LocalRegistry
from testbed.stack import WEBHOOK_TOKEN, GuardedRegistry
from tests.collected import Collected  # the alert sinks' view of the outcomes

pytestmark = pytest.mark.timeout(60)

DATA = Path(__file__).parents[1] / "data" / "events"
TOKEN = "entrypoint-token-0123456789"
ACR_ID = (
    "/subscriptions/5f3c9a2e-8d41-4b7a-9c60-1e2f3a4b5c6d/resourceGroups/rg-guard"
    "/providers/Microsoft.ContainerRegistry/registries/{}"
)
INSERTED = datetime(2024, 5, 14, 9, 12, 48, 250000, tzinfo=timezone.utc)  # when a test message entered the queue
HOST_CONFIG = json.loads(HOST_JSON.read_text())

# get_functions() may be called once per FunctionApp: a second call raises "does not have a unique function name".
BUILT_FUNCTIONS = app.get_functions()
FUNCTIONS: dict[str, Callable[..., Any]] = {f.get_function_name(): f.get_user_function() for f in BUILT_FUNCTIONS}


# -- helpers -----------------------------------------------------------------------------------------------


@pytest.fixture
def install_runtime() -> Iterator[Callable[..., Runtime]]:
    """Install a runtime built from settings as the process-wide one (`max_dequeue_count` overrides host.json's);
    reset to None afterwards."""
    installed: list[Runtime] = []

    def install(settings: Settings, *, max_dequeue_count: int | None = None) -> Runtime:
        runtime = Runtime.from_settings(settings)
        if max_dequeue_count is not None:
            runtime = dataclasses.replace(runtime, max_dequeue_count=max_dequeue_count)
        importer.entry.runtime.reset(runtime)
        installed.append(runtime)
        return runtime

    yield install
    importer.entry.runtime.reset(None)
    for runtime in installed:
        runtime.pipeline.ledger.close()
        if runtime.queue is not None:
            runtime.queue.close()


def on_azurite(azurite: Azurite, **settings: Any) -> Settings:
    """Settings with the event queue on Azurite, in a queue no other test uses."""
    return Settings(queue_connection_string=azurite.connection_string, queue_name=f"q-{uuid.uuid4().hex[:16]}",
                    **settings)


class HostQueue:
    """The Functions host's part on one Azurite queue: receive, decode (base64), call the queue trigger, then delete
    the message (the try returned), make it visible again (it raised) or, when the try numbered `max_dequeue_count`
    raised, move its content to `<queue>-poison`."""

    def __init__(self, azurite: Azurite, name: str, max_dequeue_count: int) -> None:
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.queue import QueueClient

        self.queue = QueueClient.from_connection_string(azurite.connection_string, name)
        self.poison = QueueClient.from_connection_string(azurite.connection_string, f"{name}-poison")
        self.max_dequeue_count = max_dequeue_count
        for client in (self.queue, self.poison):
            try:
                client.create_queue()
            except ResourceExistsError:
                pass

    def send_eventgrid(self, event: dict[str, Any]) -> None:
        """Put one event in the queue as an Event Grid subscription with a StorageQueue destination does."""
        self.queue.send_message(base64.b64encode(json.dumps(event).encode()).decode())

    def count(self, client: Any) -> int:
        return int(client.get_queue_properties().approximate_message_count or 0)

    def deliver(self) -> Exception | None:
        """One try of the next visible message: None when it returned, else what it raised."""
        received = self.queue.receive_message(visibility_timeout=30)
        assert received is not None, "no message in the queue"
        message = QueueMessage(id=received.id, body=base64.b64decode(received.content),
                               dequeue_count=received.dequeue_count, insertion_time=received.inserted_on,
                               pop_receipt=received.pop_receipt)
        try:
            FUNCTIONS["registry_queue"](message)
        except Exception as error:  # noqa: BLE001 - as the host does: any exception fails the try
            if received.dequeue_count >= self.max_dequeue_count:
                self.poison.send_message(received.content)
                self.queue.delete_message(received)
            else:
                self.queue.update_message(received, visibility_timeout=0)
            return error
        self.queue.delete_message(received)
        return None

    def close(self) -> None:
        self.queue.close()
        self.poison.close()


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


def acr_event(topic: str, data: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    """An ImagePushed event as Event Grid (Event Grid schema) writes it into the Storage queue."""
    target = data["target"]
    subject = f"{target['repository']}:{target['tag']}" if "tag" in target else target["repository"]
    return {"id": event_id or str(uuid.uuid4()), "topic": topic, "subject": subject,
            "eventType": "Microsoft.ContainerRegistry.ImagePushed", "eventTime": "2024-05-14T09:12:47.6549614Z",
            "data": data, "dataVersion": "1.0", "metadataVersion": "1"}


def queue_message(body: dict[str, Any] | bytes, *, dequeue_count: int = 1) -> QueueMessage:
    """A queue message as the host hands it to the queue trigger (its text already base64-decoded)."""
    return QueueMessage(id=str(uuid.uuid4()), body=body if isinstance(body, bytes) else json.dumps(body).encode(),
                        dequeue_count=dequeue_count, insertion_time=INSERTED, pop_receipt="receipt")


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


def webhook_request(body: bytes, authorization: str | None = f"Bearer {TOKEN}") -> func.HttpRequest:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    return func.HttpRequest("POST", "http://localhost:7071/api/registry-events", headers=headers, params={},
                            body=body)


def run_cli(settings: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m importer …` as an operator runs it, with only these settings."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_GUARD_")}
    result = subprocess.run([sys.executable, "-m", "importer", *args], cwd=Path(__file__).resolve().parents[2],
                            env={**environment, **settings}, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result


def only_outcome(runtime: Runtime, event_id: str) -> Outcome:
    recorded = runtime.pipeline.ledger.outcomes(event_id=event_id)
    assert len(recorded) == 1, f"expected one outcome for {event_id}, got {[o.result for o in recorded]}"
    return recorded[0]


def results(runtime: Runtime, event_id: str) -> list[str]:
    """The event's outcomes, newest first."""
    return [outcome.result for outcome in runtime.pipeline.ledger.outcomes(event_id=event_id)]


# -- bindings ----------------------------------------------------------------------------------------------

BINDINGS: dict[str, dict[str, Any]] = {
    "registry_queue": {"type": "queueTrigger", "name": "message", "direction": "IN", "queueName": DEFAULT_QUEUE_NAME,
                       "connection": QUEUE_CONNECTION},
    "registry_events": {"type": "httpTrigger", "name": "req", "direction": "IN", "route": "registry-events",
                        "methods": ["POST"], "authLevel": "FUNCTION"},
    "cloudevents": {"type": "httpTrigger", "name": "req", "direction": "IN", "route": "cloudevents",
                    "methods": ["POST", "OPTIONS"], "authLevel": "FUNCTION"},
    "health": {"type": "httpTrigger", "name": "req", "direction": "IN", "route": "health", "methods": ["GET"],
               "authLevel": "ANONYMOUS"},
}


def test_app_declares_exactly_the_documented_functions() -> None:
    """The Functions app has the queue trigger, the webhook routes and the health probe, and nothing else."""
    assert sorted(FUNCTIONS) == sorted(BINDINGS)


@pytest.mark.parametrize("name, expected", BINDINGS.items(), ids=BINDINGS.keys())
def test_trigger_binding(name: str, expected: dict[str, Any]) -> None:
    """Each function's trigger binding has the type, queue, route, methods and auth level the deployment relies on."""
    built = next(f for f in BUILT_FUNCTIONS if f.get_function_name() == name)
    bindings = [json.loads(raw) for raw in built.get_raw_bindings()]  # what function.json would hold
    assert [binding for binding in bindings if binding["direction"] == "IN"] == [expected]
    http_output = {"direction": "OUT", "type": "http", "name": "$return"}
    outputs = [binding for binding in bindings if binding["direction"] == "OUT"]
    assert outputs == ([http_output] if expected["type"] == "httpTrigger" else [])


# -- host.json: the queue trigger's schedule ---------------------------------------------------------------


def _seconds(timespan: str) -> int:
    hours, minutes, seconds = (int(part) for part in timespan.split(":"))
    return hours * 3600 + minutes * 60 + seconds


def test_max_dequeue_count_has_one_source_host_json(tmp_path: Path) -> None:
    """The function gives up on the try host.json's maxDequeueCount names (or the app setting overriding it): it reads
    what the host reads, nothing else."""
    assert Runtime.from_settings(Settings(ledger_path=tmp_path / "ledger.db")).max_dequeue_count == (
        HOST_CONFIG["extensions"]["queues"]["maxDequeueCount"]) == host_max_dequeue_count({})
    assert host_max_dequeue_count({MAX_DEQUEUE_COUNT_OVERRIDE: "3"}) == 3
    no_setting = tmp_path / "host.json"
    no_setting.write_text(json.dumps({"version": "2.0"}))
    assert host_max_dequeue_count({}, no_setting) == 5  # the host's own default
    for bad in ("0", "two", "-1"):
        with pytest.raises(ValueError, match="maxDequeueCount"):
            host_max_dequeue_count({MAX_DEQUEUE_COUNT_OVERRIDE: bad})


def test_host_json_queue_schedule_is_coherent() -> None:
    """The host's retries span the authorisation window (401/403 tried again while roles propagate), a try ends
    before the remediation claim's lease does, and messages are base64 as Event Grid and StorageQueue write them."""
    queues = HOST_CONFIG["extensions"]["queues"]
    retries_span = (queues["maxDequeueCount"] - 1) * _seconds(queues["visibilityTimeout"])
    assert retries_span >= Settings().auth_retry_seconds
    assert _seconds(HOST_CONFIG["functionTimeout"]) < CLAIM_LEASE_SECONDS
    assert queues["messageEncoding"] == "base64"
    assert 1 <= queues["newBatchThreshold"] <= queues["batchSize"] <= 32  # 32: the most one receive returns
    assert _seconds(queues["maxPollingInterval"]) <= 5  # a pushed image is judged within seconds


@pytest.mark.parametrize(("settings", "kind", "message"), [
    (Settings(queue_connection_string="UseDevelopmentStorage=true", queue_name="Bad_Name"), None,
     "PLATFORM_GUARD_QUEUE_NAME: queue name 'Bad_Name'"),
    (Settings(queue_endpoint="https://acct.blob.core.windows.net"), None, "PLATFORM_GUARD_QUEUE_ENDPOINT: cannot tell"),
    (Settings(queue_endpoint="https://acct.queue.core.windows.net", queue_name="events"), "StorageQueue", ""),
    (Settings(queue_connection_string="UseDevelopmentStorage=true"), "StorageQueue", ""),
    (Settings(), "SqliteQueue", ""),
], ids=["bad-name", "not-a-queue-endpoint", "endpoint-and-identity", "connection-string", "no-queue-settings"])
def test_queue_for_picks_the_queue_the_settings_name(
    settings: Settings, kind: str | None, message: str, tmp_path: Path
) -> None:
    """queue_for: Storage Queues when a queue endpoint or connection string is set (no connection made yet), SQLite next
    to the ledger otherwise; a name or endpoint the service would refuse is a SettingsError naming the setting."""
    from importer.app.settings import SettingsError
    from importer.entry.composition import queue_for

    settings = dataclasses.replace(settings, ledger_path=tmp_path / "ledger.db")
    if kind is None:
        with pytest.raises(SettingsError, match=re.escape(message)):
            queue_for(settings)
        return
    queue = queue_for(settings)
    assert type(queue).__name__ == kind
    if kind == "StorageQueue":
        assert queue.queue_name == settings.queue_name  # type: ignore[attr-defined]
    queue.close()


# -- the queue trigger against a real registry ---------------------------------------------------------------


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
def test_queue_trigger_decides_a_real_push(
    registry: LocalRegistry,
    builder: ImageBuilder,
    install_runtime: Callable[..., Runtime],
    tmp_path: Path,
    case: TriggerCase,
) -> None:
    """An ImagePushed event Event Grid put in the queue ends in one recorded outcome for the pushed image, received
    when it entered the queue."""
    runtime = install_runtime(Settings(registries=(registry.host,), ledger_path=tmp_path / "ledger.db"))
    images = [builder.image(platform) for platform in case.platforms]
    pushed = images[0] if len(images) == 1 else builder.index([*images, builder.attestation(images[0])])
    tag = "1.0" if case.tagged else None
    digest = push(builder, pushed, registry.host, "team/app", tag)
    event = acr_event(registry.host, acr_push_data("team/app", tag, digest, pushed.media_type, pushed.size,
                                                   registry.host))

    assert FUNCTIONS["registry_queue"](queue_message(event)) is None

    outcome = only_outcome(runtime, event["id"])
    assert outcome.result == case.result
    assert (outcome.registry, outcome.repository, outcome.tag, outcome.digest) == (
        registry.host, "team/app", tag, digest
    )
    assert (outcome.platforms, outcome.missing) == (case.offered, case.missing)
    assert (outcome.actor, outcome.user_agent, outcome.schema) == ("ci-pipeline", "docker/24.0.7", "eventgrid")
    assert outcome.received_at == "2024-05-14T09:12:48.250Z"


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
    install_runtime: Callable[..., Runtime], tmp_path: Path, topic: str, registry_host: str | None
) -> None:
    """An ACR resource id for `myacr` stands for the configured host myacr.azurecr.io; any other origin is rejected
    when the message is taken (admitted as the routes' intake admits), and the message is done."""
    # Untagged pushes are recorded as ignored before any registry is read: nothing leaves this machine.
    runtime = install_runtime(Settings(registries=("myacr.azurecr.io",), ledger_path=tmp_path / "ledger.db"))
    digest = "sha256:" + "ab" * 32
    data = acr_push_data("team/app", None, digest, "application/vnd.oci.image.manifest.v1+json", 405,
                         "myacr.azurecr.io")
    event = acr_event(topic, data)

    FUNCTIONS["registry_queue"](queue_message(event))

    outcome = only_outcome(runtime, event["id"])
    if registry_host is None:
        assert outcome.result == "rejected"
        assert outcome.registry is None
        assert "not a configured registry" in (outcome.reason or "")
    else:
        assert outcome.result == "ignored"
        assert outcome.registry == registry_host
        assert outcome.reference == f"{registry_host}/team/app@{digest}"


@dataclass
class Outage:
    """A pushed image whose registry answers 503 to everything (until `proxy.configure(rate=0.0)`), the runtime that
    guards it (with a collecting sink) and the push's ImagePushed event."""

    proxy: FaultProxy
    runtime: Runtime
    sink: Collected
    event: dict[str, Any]
    digest: str


@pytest.fixture
def outage(
    registry: LocalRegistry, builder: ImageBuilder, install_runtime: Callable[..., Runtime], tmp_path: Path
) -> Iterator[Outage]:
    image = builder.image("linux/amd64")
    digest = push(builder, image, registry.host, "team/app", "2.0")
    with FaultProxy(registry.host, rate=1.0, faults=("503",)) as proxy:
        runtime = install_runtime(Settings(registries=(proxy.host,), ledger_path=tmp_path / "ledger.db"))
        sink = Collected()
        runtime.pipeline.sinks = (*runtime.pipeline.sinks, sink)
        data = acr_push_data("team/app", "2.0", digest, image.media_type, image.size, proxy.host)
        yield Outage(proxy, runtime, sink, acr_event(proxy.host, data), digest)


def test_queue_trigger_raises_on_a_transient_registry_error_and_the_next_try_decides(outage: Outage) -> None:
    """A registry answering 503 makes the try raise (the host delivers the message again) after recording a
    `retrying` attempt, which pages no one; the next try decides."""
    runtime, event = outage.runtime, outage.event
    with pytest.raises(TransientFailure, match="HTTP 503.*try 1 of 16: the host delivers it again"):
        FUNCTIONS["registry_queue"](queue_message(event, dequeue_count=1))
    attempt = only_outcome(runtime, event["id"])
    assert (attempt.result, attempt.attempt, attempt.alerts) == ("retrying", 1, False)
    assert "HTTP 503" in (attempt.error or "")
    assert outage.proxy.stats.injected["503"] >= 2 and outage.proxy.stats.forwarded == 0  # retried inside, gave up

    outage.proxy.configure(rate=0.0)
    FUNCTIONS["registry_queue"](queue_message(event, dequeue_count=2))  # visibilityTimeout later

    assert results(runtime, event["id"]) == ["compliant", "retrying"]  # newest first: decided, not a duplicate
    assert outage.sink.alerts(event["id"]) == []


def test_last_dequeue_ends_the_event_in_one_failure_and_one_alert(outage: Outage) -> None:
    """When the try numbered maxDequeueCount fails too, the event ends in one `failed` outcome with its verdict
    fields known so far (one alert), and the function raises so that the host moves the message to the poison queue;
    a later redelivery of that message finds the event ended and does nothing."""
    runtime, event, last = outage.runtime, outage.event, outage.runtime.max_dequeue_count
    with pytest.raises(TransientFailure):
        FUNCTIONS["registry_queue"](queue_message(event, dequeue_count=1))
    with pytest.raises(GaveUp, match=f"try {last} of {last}: given up, the host moves it to the poison queue"):
        FUNCTIONS["registry_queue"](queue_message(event, dequeue_count=last))

    final, attempt = runtime.pipeline.ledger.outcomes(event_id=event["id"])
    assert (final.result, final.attempt, attempt.result) == ("failed", last, "retrying")
    assert "HTTP 503" in (final.error or "") and f"gave up after {last} attempts" in (final.error or "")
    assert (final.registry, final.repository, final.tag, final.digest) == (
        outage.proxy.host, "team/app", "2.0", outage.digest)
    assert [outcome.result for outcome in outage.sink.alerts(event["id"])] == ["failed"]

    outage.proxy.configure(rate=0.0)
    FUNCTIONS["registry_queue"](queue_message(event, dequeue_count=last + 1))  # the host crashed before moving it
    assert results(runtime, event["id"]) == ["failed", "retrying"]
    assert len(outage.sink.alerts(event["id"])) == 1


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", json.dumps({"hello": "world"}).encode(),
                                  json.dumps({"v": 1, "key": "k", "body": "{}"}).encode()],
                         ids=["not-json", "an-array", "no-event-type", "envelope-without-an-event"])
def test_a_message_that_is_not_ours_fails_every_try(
    install_runtime: Callable[..., Runtime], tmp_path: Path, body: bytes
) -> None:
    """A message that is neither an Event Grid event nor a queued event records nothing and raises on every try, so
    the host moves it to the poison queue after its tries."""
    runtime = install_runtime(Settings(ledger_path=tmp_path / "ledger.db"))
    with pytest.raises(UnreadableMessage):
        FUNCTIONS["registry_queue"](queue_message(body))
    assert runtime.pipeline.ledger.outcomes(limit=10) == []


# -- Azurite: the routes queue, the queue trigger works, the host dead-letters, redrive --------------------


def test_http_route_answers_202_and_the_queue_trigger_decides(
    azurite: Azurite, registry: LocalRegistry, builder: ImageBuilder, install_runtime: Callable[..., Runtime],
    tmp_path: Path,
) -> None:
    """With the Storage queue configured, the webhook route only queues (202, the event in the queue as a base64
    envelope); the queue trigger then decides it, and the queue is empty."""
    settings = on_azurite(azurite, registries=(registry.host,), ledger_path=tmp_path / "ledger.db",
                          webhook_token=TOKEN)
    runtime = install_runtime(settings)
    host = HostQueue(azurite, settings.queue_name, runtime.max_dequeue_count)
    image = builder.image("linux/amd64")
    push(builder, image, registry.host, "team/app", "4.0")
    event_id = str(uuid.uuid4())

    response = FUNCTIONS["registry_events"](
        webhook_request(distribution_envelope(event_id, registry.host, "team/app", "4.0", image)))

    assert (response.status_code, json.loads(response.get_body())) == (202, {"queued": [event_id], "outcomes": []})
    assert results(runtime, event_id) == []  # nothing decided in the request
    (waiting,) = host.queue.peek_messages(max_messages=32)
    envelope = json.loads(base64.b64decode(waiting.content))
    assert (envelope["v"], envelope["key"]) == (1, f"tag:{registry.host}/team/app:4.0")
    assert json.loads(envelope["body"])["event"]["event_id"] == event_id

    assert host.deliver() is None

    assert results(runtime, event_id) == ["compliant"]
    assert host.count(host.queue) == 0 and host.count(host.poison) == 0
    host.close()


def test_eventgrid_message_poisoned_after_the_last_try_is_listed_and_redriven(
    azurite: Azurite, registry: LocalRegistry, builder: ImageBuilder, install_runtime: Callable[..., Runtime],
    tmp_path: Path,
) -> None:
    """An Event Grid message whose tries all fail ends `failed` once and lands in the poison queue, where
    `outcomes --failed` with the queue settings finds it; `redrive --all` puts it back as it was and the trigger
    decides it."""
    image = builder.image("linux/amd64")
    digest = push(builder, image, registry.host, "team/app", "5.0")
    with FaultProxy(registry.host, rate=1.0, faults=("503",)) as proxy:
        settings = on_azurite(azurite, registries=(proxy.host,), ledger_path=tmp_path / "ledger.db")
        runtime = install_runtime(settings, max_dequeue_count=2)
        host = HostQueue(azurite, settings.queue_name, runtime.max_dequeue_count)
        event = acr_event(proxy.host, acr_push_data("team/app", "5.0", digest, image.media_type, image.size,
                                                    proxy.host))
        host.send_eventgrid(event)

        assert isinstance(host.deliver(), TransientFailure)
        assert isinstance(host.deliver(), GaveUp)
        assert results(runtime, event["id"]) == ["failed", "retrying"]
        assert (host.count(host.queue), host.count(host.poison)) == (0, 1)

        cli = {"PLATFORM_GUARD_QUEUE_CONNECTION_STRING": azurite.connection_string,
               "PLATFORM_GUARD_QUEUE_NAME": settings.queue_name, "PLATFORM_GUARD_LEDGER": str(tmp_path / "cli.db")}
        listed = run_cli(cli, "outcomes", "--failed", "--json")
        (dead,) = [json.loads(line) for line in listed.stdout.splitlines()]
        assert (dead["key"], dead["error"]) == ("eventgrid:team/app:5.0", HOST_GAVE_UP)
        assert json.loads(dead["body"])["id"] == event["id"]

        proxy.configure(rate=0.0)
        redriven = run_cli(cli, "redrive", "--all")
        assert f"1 event back in the Storage queue {settings.queue_name}" in redriven.stdout
        queue = StorageQueue(connection_string=azurite.connection_string, queue_name=settings.queue_name)
        assert queue.dead_letters() == []
        queue.close()
        assert host.deliver() is None

    assert results(runtime, event["id"]) == ["compliant", "failed", "retrying"]
    assert (host.count(host.queue), host.count(host.poison)) == (0, 0)
    host.close()


# -- the HTTP triggers -------------------------------------------------------------------------------------

AUTHORIZATION_CASES = {
    "no-authorization-header": (TOKEN, None, 401),
    "wrong-token": (TOKEN, "Bearer not-the-token-0123456789", 401),
    "token-with-basic-scheme": (TOKEN, f"Basic {TOKEN}", 401),
    "token-without-scheme": (TOKEN, TOKEN, 401),
    "token-with-extra-suffix": (TOKEN, f"Bearer {TOKEN}x", 401),
    "no-token-configured-refuses-all": (None, f"Bearer {TOKEN}", 401),
    "right-token": (TOKEN, f"Bearer {TOKEN}", 202),
    "scheme-is-case-insensitive": (TOKEN, f"bearer {TOKEN}", 202),
}


@pytest.mark.parametrize(
    "configured, authorization, status", AUTHORIZATION_CASES.values(), ids=AUTHORIZATION_CASES.keys()
)
def test_http_trigger_requires_the_bearer_token(
    azurite: Azurite,
    registry: LocalRegistry,
    builder: ImageBuilder,
    install_runtime: Callable[..., Runtime],
    tmp_path: Path,
    configured: str | None,
    authorization: str | None,
    status: int,
) -> None:
    """The registry-events HTTP trigger queues a webhook only with the configured bearer token, else 401 and
    nothing queued or recorded."""
    settings = on_azurite(azurite, registries=(registry.host,), ledger_path=tmp_path / "ledger.db",
                          webhook_token=configured)
    runtime = install_runtime(settings)
    image = builder.image("linux/amd64")
    push(builder, image, registry.host, "team/app", "3.0")
    event_id = str(uuid.uuid4())

    response = FUNCTIONS["registry_events"](
        webhook_request(distribution_envelope(event_id, registry.host, "team/app", "3.0", image), authorization))

    assert response.status_code == status
    answer = json.loads(response.get_body())
    assert runtime.pipeline.ledger.outcomes(event_id=event_id) == []
    if status == 401:
        assert "token" in answer["error"]
    else:
        assert answer == {"queued": [event_id], "outcomes": []}
    assert runtime.queue is not None
    assert runtime.queue.depth(now=0.0).ready == (1 if status == 202 else 0)


def test_http_trigger_without_a_queue_decides_in_the_request(
    registry: LocalRegistry, builder: ImageBuilder, install_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    """A Functions host run without the Storage queue settings decides a webhook in the request and answers 200."""
    runtime = install_runtime(Settings(registries=(registry.host,), ledger_path=tmp_path / "ledger.db",
                                       webhook_token=TOKEN))
    assert runtime.queue is None
    image = builder.image("linux/amd64")
    push(builder, image, registry.host, "team/app", "6.0")
    event_id = str(uuid.uuid4())

    response = FUNCTIONS["registry_events"](
        webhook_request(distribution_envelope(event_id, registry.host, "team/app", "6.0", image)))

    assert response.status_code == 200
    recorded = runtime.pipeline.ledger.outcomes(event_id=event_id)
    assert json.loads(response.get_body())["outcomes"] == [
        {"event_id": event_id, "result": "compliant", "reason": recorded[0].reason}]


def test_cloudevents_trigger_answers_the_handshake_and_queues(
    azurite: Azurite, install_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    """The CloudEvents route answers the OPTIONS abuse-protection handshake and queues a CloudEvent (202)."""
    settings = on_azurite(azurite, registries=("contosoregistry.azurecr.io",), ledger_path=tmp_path / "ledger.db",
                          webhook_token=TOKEN)
    runtime = install_runtime(settings)

    handshake = FUNCTIONS["cloudevents"](func.HttpRequest(
        "OPTIONS", "http://localhost:7071/api/cloudevents", headers={"WebHook-Request-Origin": "eventgrid.azure.net"},
        body=b""))
    assert (handshake.status_code, handshake.headers["WebHook-Allowed-Origin"]) == (200, "eventgrid.azure.net")

    body = (DATA / "cloudevents-image-pushed.json").read_bytes()
    response = FUNCTIONS["cloudevents"](func.HttpRequest(
        "POST", "http://localhost:7071/api/cloudevents", body=body,
        headers={"Content-Type": "application/cloudevents+json", "Authorization": f"Bearer {TOKEN}"}))
    assert response.status_code == 202
    assert json.loads(response.get_body())["queued"] == [json.loads(body)["id"]]
    assert runtime.queue is not None and runtime.queue.depth(now=0.0).ready == 1


def test_http_trigger_refuses_a_body_over_the_limit(install_runtime: Callable[..., Runtime], tmp_path: Path) -> None:
    """The routes go through the same dispatch as the local host's: a body over the limit is refused with 413."""
    install_runtime(Settings(ledger_path=tmp_path / "ledger.db", webhook_token=TOKEN))
    from importer.core.events import MAX_BODY_BYTES

    response = FUNCTIONS["registry_events"](webhook_request(b" " * (MAX_BODY_BYTES + 1)))
    assert response.status_code == 413 and re.search(r"over \d+", json.loads(response.get_body())["error"])


def test_health_trigger_answers_without_a_registry(
    install_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    """The health probe answers 200 with a JSON status, whatever the registries."""
    install_runtime(Settings(ledger_path=tmp_path / "ledger.db"))
    response = FUNCTIONS["health"](func.HttpRequest("GET", "http://localhost:7071/api/health", body=b""))
    assert (response.status_code, json.loads(response.get_body())) == (200, {"status": "ok"})
    assert response.headers["Content-Type"] == "application/json"


# HTTP trigger: (authLevel, methods). In Azure the host's keys guard these before the webhook token is checked.
HTTP_TRIGGERS = {
    "registry_events": ("FUNCTION", {"POST"}),
    "cloudevents": ("FUNCTION", {"POST", "OPTIONS"}),
    "health": ("ANONYMOUS", {"GET"}),
}


def test_http_triggers_need_the_function_key_except_the_health_probe() -> None:
    """Every state-changing HTTP trigger is authLevel FUNCTION (the host wants a function key, then GuardApi the
    webhook token); only the read-only health probe is anonymous. There is no Event Grid HTTP trigger at all: Event
    Grid delivers to the Storage queue."""
    declared = {
        function.get_function_name(): (
            function.get_trigger().auth_level.name, {method.value for method in function.get_trigger().methods}
        )
        for function in BUILT_FUNCTIONS
        if function.get_trigger().type == "httpTrigger"
    }
    assert declared == HTTP_TRIGGERS


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
STACK_AUTHORIZATION = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}  # the Event Grid route takes the webhook token too

HTTP_CASES = {
    "eventgrid-validation-handshake": HttpCase(
        "POST", EVENTGRID_PATH, 200, {"aeg-event-type": "SubscriptionValidation", "Content-Type": "application/json",
                                      **STACK_AUTHORIZATION},
        VALIDATION, {"validationResponse": VALIDATION_CODE},
    ),
    "eventgrid-validation-without-header": HttpCase(
        "POST", EVENTGRID_PATH, 200, {"Content-Type": "application/json", **STACK_AUTHORIZATION}, VALIDATION,
        {"validationResponse": VALIDATION_CODE},
    ),
    "eventgrid-validation-with-the-key-in-the-url": HttpCase(
        "POST", f"{EVENTGRID_PATH}&code={WEBHOOK_TOKEN}", 200, {"aeg-event-type": "SubscriptionValidation"},
        VALIDATION, {"validationResponse": VALIDATION_CODE},
    ),
    "eventgrid-validation-without-the-token": HttpCase(
        "POST", EVENTGRID_PATH, 401, {"aeg-event-type": "SubscriptionValidation"}, VALIDATION,
        answer_headers={"WWW-Authenticate": "Bearer"},
    ),
    "eventgrid-route-is-case-insensitive": HttpCase(
        "POST", "/runtime/webhooks/EventGrid?functionName=registry_event", 200,
        {"aeg-event-type": "SubscriptionValidation", **STACK_AUTHORIZATION}, VALIDATION,
        {"validationResponse": VALIDATION_CODE},
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


def test_queue_trigger_decides_one_push_of_a_tag_at_a_time(
    registry: LocalRegistry, builder: ImageBuilder, install_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    """While another push of the same tag is being decided (its tag lease held), a try raises so that the host
    delivers it again later; once the tag is free, the same message is decided."""
    runtime = install_runtime(Settings(registries=(registry.host,), ledger_path=tmp_path / "ledger.db"))
    image = builder.image("linux/amd64", seed="one-at-a-time")
    digest = push(builder, image, registry.host, "team/busy", "1")
    event = acr_event(registry.host, acr_push_data("team/busy", "1", digest, image.media_type, image.size,
                                                   registry.host))
    lease = f"tag-lease:tag:{registry.host}/team/busy:1"
    assert runtime.pipeline.ledger.claim_remediation(lease, lease_seconds=60, now=time.time(), owner="other-push")

    with pytest.raises(TransientFailure, match="another push of team/busy:1 is being decided"):
        FUNCTIONS["registry_queue"](queue_message(event, dequeue_count=1))
    assert runtime.pipeline.ledger.outcomes(event_id=event["id"]) == []

    runtime.pipeline.ledger.finish_remediation(lease, owner="other-push")
    FUNCTIONS["registry_queue"](queue_message(event, dequeue_count=2))
    assert only_outcome(runtime, event["id"]).result == "compliant"
