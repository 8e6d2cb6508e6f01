"""Bad input through the real local host: payloads, events, manifests, registries that fail, registries not ours.

Every row goes over HTTP to importer.entry.serve.LocalHost in front of a real pipeline, SQLite ledger and
distribution registry on 127.0.0.1. Bad payloads get HTTP 400 and a `rejected` record, bad events a `rejected`
outcome, unreadable manifests a `failed` outcome, each with a reason naming the problem and never a traceback;
after each row a good event is still decided.

What a real registry cannot be made to serve comes from testbed.faults.FaultProxy, a proxy in front of
the same registry that the pipeline knows as a second configured registry: distribution refuses to store a
manifest of an unknown media type or one over 4 MiB (both 400 MANIFEST_INVALID), so the proxy serves those as
canned answers; it also corrupts bodies (digest mismatches) and injects 503s, 429s and resets. The proxy's own
behaviour (seeded determinism, scripts, counts, uploads passing through) is pinned at the end of this file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from importer.adapters.ledger.sqlite import SqliteLedger
from importer.app.inspection import MAX_INDEX_DEPTH
from importer.app.settings import Settings
from importer.core.outcome import Outcome
from importer.entry.composition import pipeline_for
from importer.entry.http_api import GuardApi
from importer.entry.serve import LocalHost
from importer.ports.registry import MAX_MANIFEST_BYTES
from testbed.faults import FaultProxy
from testbed.images import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Descriptor, ImageBuilder, canonical_json
from testbed.push import fetch_manifest, push
from testbed.registry import LocalRegistry, free_port

pytestmark = pytest.mark.timeout(60)

TOKEN = "bad-input-token-0123456789"
UNKNOWN_MEDIA_TYPE = "application/vnd.example.unknown.manifest.v1+json"


# -- the testbed: registry, proxy, pipeline, local host -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rig:
    """The running pieces every row uses."""

    registry: LocalRegistry
    proxy: FaultProxy  # in front of `registry`, configured as a second registry
    ledger: SqliteLedger
    host: LocalHost
    builder: ImageBuilder
    good: Descriptor  # a compliant linux/amd64 image, pushed as good/app:1


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """One running testbed for the module; rows keep apart by event ids and repositories."""
    root = tmp_path_factory.mktemp("bad-input")
    builder = ImageBuilder(root / "layout")
    with LocalRegistry(root / "registry") as registry, FaultProxy(registry.host, retry_after=0) as proxy:
        settings = Settings(
            registries=(registry.host, proxy.host), ledger_path=root / "ledger.db", webhook_token=TOKEN
        )
        ledger = SqliteLedger(settings.ledger_path)
        api = GuardApi(pipeline_for(settings, ledger=ledger), webhook_token=TOKEN)
        good = builder.image("linux/amd64", seed="good")
        push(builder, good, registry.host, "good/app", "1")
        with LocalHost(api, port=0) as host:
            yield Rig(registry, proxy, ledger, host, builder, good)
        ledger.close()


@pytest.fixture(autouse=True)
def calm_proxy(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test starts with a proxy that forwards everything and serves nothing canned."""
    if "bed" in request.fixturenames:
        proxy: FaultProxy = request.getfixturevalue("bed").proxy
        proxy.configure(rate=0.0, script=[], match_all=True)
        proxy.clear_responses()
    yield


# -- sending ------------------------------------------------------------------------------------------------

ROUTES = {
    "registry-events": ("/api/registry-events", {"Authorization": f"Bearer {TOKEN}"}),
    "eventgrid": ("/runtime/webhooks/eventgrid?functionName=registry_event",
                  {"aeg-event-type": "Notification", "Authorization": f"Bearer {TOKEN}"}),
    "cloudevents": ("/api/cloudevents", {"Authorization": f"Bearer {TOKEN}"}),
}
CONTENT_TYPES = {
    "registry-events": "application/json",
    "eventgrid": "application/json",
    "cloudevents": "application/cloudevents+json",
}


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


def send(bed: Rig, route: str, body: bytes, content_type: str | None = None) -> Answer:
    """POST `body` to the local host on `route`; any status is returned, not raised."""
    path, headers = ROUTES[route]
    connection = http.client.HTTPConnection("127.0.0.1", bed.host.port, timeout=30)
    try:
        connection.request(
            "POST", path, body=body, headers={**headers, "Content-Type": content_type or CONTENT_TYPES[route]}
        )
        response = connection.getresponse()
        return Answer(response.status, dict(response.getheaders()), response.read().decode("utf-8", "replace"))
    finally:
        connection.close()


@dataclass(frozen=True, slots=True)
class Pushed:
    """What an event says was pushed."""

    repository: str
    tag: str | None
    digest: str
    media_type: str | None
    size: int


def distribution_event(event_id: str, origin: str, pushed: Pushed) -> dict[str, Any]:
    target: dict[str, Any] = {"size": pushed.size, "digest": pushed.digest, "length": pushed.size,
                              "repository": pushed.repository,
                              "url": f"http://{origin}/v2/{pushed.repository}/manifests/{pushed.digest}"}
    if pushed.media_type is not None:
        target["mediaType"] = pushed.media_type
    if pushed.tag is not None:
        target["tag"] = pushed.tag
    return {"id": event_id, "timestamp": "2024-05-14T16:52:01.343Z", "action": "push", "target": target,
            "request": {"id": "req-1", "addr": "127.0.0.1:40000", "host": origin, "method": "PUT",
                        "useragent": "skopeo/1.9.3"},
            "actor": {"name": "tester"}, "source": {"addr": "registry:5000", "instanceID": "test"}}


def acr_data(pushed: Pushed, origin: str) -> dict[str, Any]:
    event = distribution_event("data-id", origin, pushed)
    del event["target"]["url"], event["source"]
    return event


def eventgrid_event(event_id: str, origin: str, pushed: Pushed) -> dict[str, Any]:
    return {"id": event_id, "topic": origin, "subject": f"{pushed.repository}:{pushed.tag}",
            "eventType": "Microsoft.ContainerRegistry.ImagePushed", "eventTime": "2024-05-14T09:12:47.654Z",
            "data": acr_data(pushed, origin), "dataVersion": "1.0", "metadataVersion": "1"}


def cloudevent(event_id: str, origin: str, pushed: Pushed) -> dict[str, Any]:
    return {"specversion": "1.0", "type": "Microsoft.ContainerRegistry.ImagePushed", "source": origin,
            "subject": f"{pushed.repository}:{pushed.tag}", "id": event_id, "time": "2024-05-14T11:20:05.123Z",
            "data": acr_data(pushed, origin)}


def body_for(route: str, events: list[dict[str, Any]]) -> bytes:
    if route == "registry-events":
        return json.dumps({"events": events}).encode()
    if route == "eventgrid":
        return json.dumps(events).encode()
    return json.dumps(events[0] if len(events) == 1 else events).encode()


EVENT_BUILDERS: dict[str, Callable[[str, str, Pushed], dict[str, Any]]] = {
    "registry-events": distribution_event,
    "eventgrid": eventgrid_event,
    "cloudevents": cloudevent,
}


def deliver(bed: Rig, route: str, origin: str, pushed: Pushed, event_id: str | None = None) -> tuple[str, Answer]:
    """Send one push event for `pushed` from `origin`; return its id and the answer."""
    event_id = event_id or str(uuid.uuid4())
    return event_id, send(bed, route, body_for(route, [EVENT_BUILDERS[route](event_id, origin, pushed)]))


def outcomes_of(bed: Rig, event_id: str) -> list[Outcome]:
    return bed.ledger.outcomes(event_id=event_id)


def pushed_image(descriptor: Descriptor, repository: str, tag: str | None = "1") -> Pushed:
    return Pushed(repository, tag, descriptor.digest, descriptor.media_type, descriptor.size)


def assert_still_decides(bed: Rig) -> None:
    """A good event sent after a bad one is decided."""
    event_id, answer = deliver(bed, "registry-events", bed.registry.host, pushed_image(bed.good, "good/app"))
    assert answer.status == 200, answer.text
    assert [outcome.result for outcome in outcomes_of(bed, event_id)] == ["compliant"]


def assert_no_traceback(answer: Answer) -> None:
    assert "Traceback" not in answer.text and 'File "' not in answer.text, answer.text


# -- payloads that are not event payloads: 400 ---------------------------------------------------------------

PAYLOADS: dict[str, tuple[str, bytes, str | None, str]] = {  # route, body, content type, problem named
    "malformed-json": ("registry-events", b'{"events": [', None, "not valid JSON"),
    "malformed-json-eventgrid": ("eventgrid", b"[{", None, "not valid JSON"),
    "malformed-json-cloudevents": ("cloudevents", b'{"specversion": "1.0",', None, "not valid JSON"),
    "empty-body": ("registry-events", b"", None, "not valid JSON"),
    "not-utf8": ("registry-events", b'{"events": "\xff"}', None, "not UTF-8"),
    "nan-is-not-json": ("registry-events", b'{"events": [NaN]}', None, "NaN is not a JSON value"),
    "nested-too-deeply": ("eventgrid", b"[" * 100_000, None, "nested too deeply"),
    "array-instead-of-envelope": ("registry-events", b"[]", None, "expected an object, got array"),
    "object-that-is-no-event": ("registry-events", b'{"hello": "world"}', None, "neither a distribution envelope"),
    "events-not-an-array": ("registry-events", b'{"events": {"id": "1"}}', None, "'events' must be an array"),
    "eventgrid-object-without-eventtype": ("eventgrid", b'{"id": "1", "data": {}}', None, "no 'eventType'"),
    "eventgrid-scalar": ("eventgrid", b"42", None, "got number"),
    "cloudevent-without-specversion": ("cloudevents", b'{"id": "1", "type": "x"}', None, "no 'specversion'"),
    "cloudevents-batch-as-object": (
        "cloudevents", b'{"specversion": "1.0"}', "application/cloudevents-batch+json", "needs an array"
    ),
    "xml-content-type": ("registry-events", b"<events/>", "application/xml", "unsupported content type"),
    "text-content-type-for-cloudevents": ("cloudevents", b"{}", "text/plain", "unsupported content type"),
}


@pytest.mark.parametrize("route, body, content_type, problem", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_payload_that_is_not_events_gets_400(
    bed: Rig, route: str, body: bytes, content_type: str | None, problem: str
) -> None:
    """A body that is not an event payload is answered 400 and recorded as `rejected`, naming the problem."""
    answer = send(bed, route, body, content_type)

    assert answer.status == 400, answer.text
    assert_no_traceback(answer)
    error = answer.json()["error"]
    assert problem in error
    assert [(o.result, o.reason) for o in outcomes_of(bed, answer.json()["event_id"])][0] == ("rejected", error)
    assert_still_decides(bed)


# -- events that are invalid: a `rejected` outcome -----------------------------------------------------------


def _at(event: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    for key in path:
        event = event[key]
    return event


def drop(*path: str) -> Callable[[dict[str, Any]], None]:
    """A change to an event: remove the field at `path`."""
    return lambda event: _at(event, path[:-1]).pop(path[-1])


def put(*path: str, value: object) -> Callable[[dict[str, Any]], None]:
    """A change to an event: set the field at `path` to `value`."""
    return lambda event: _at(event, path[:-1]).__setitem__(path[-1], value)


# route → {case: (change to a valid event, what the reason must say)}
EVENTS_BY_ROUTE: dict[str, dict[str, tuple[Callable[[dict[str, Any]], None], str]]] = {
    "registry-events": {
        "id-missing": (drop("id"), "events[0].id: missing"),
        "target-missing": (drop("target"), "events[0].target: missing"),
        "target-a-string": (put("target", value="app:1"), "events[0].target: expected an object, got string"),
        "digest-missing": (drop("target", "digest"), "events[0].target.digest: missing"),
        "digest-a-number": (put("target", "digest", value=12), "target.digest: expected a string, got number 12"),
        "digest-not-hex": (put("target", "digest", value="sha256:xyz"), "'sha256:xyz' is not a valid digest"),
        "digest-upper-case": (put("target", "digest", value="sha256:" + "AB" * 32), "is not a valid digest"),
        "digest-md5": (put("target", "digest", value="md5:" + "a" * 32), "is not a valid digest"),
        "size-a-string": (put("target", "size", value="405"), "target.size: expected an integer, got '405'"),
        "size-negative": (put("target", "size", value=-1), "events[0].target.size: -1 is negative"),
        "tag-a-list": (put("target", "tag", value=["1"]), "events[0].target.tag: expected a string, got array"),
        "tag-invalid": (put("target", "tag", value="-1"), "'-1' is not a valid tag"),
        "repository-missing": (drop("target", "repository"), "events[0].target.repository: missing"),
        "repository-upper-case": (
            put("target", "repository", value="Team/App"), "'Team/App' is not a valid repository name"
        ),
        "repository-empty-segment": (
            put("target", "repository", value="team//app"), "is not a valid repository name"
        ),
        "repository-trailing-slash": (
            put("target", "repository", value="team/app/"), "is not a valid repository name"
        ),
        "repository-leading-dash": (put("target", "repository", value="-team/app"), "is not a valid repository name"),
        "repository-with-tag": (put("target", "repository", value="team/app:1"), "is not a valid repository name"),
        "repository-too-long": (put("target", "repository", value="a" * 256), "longer than 255"),
        "unknown-action": (put("action", value="explode"), "events[0].action: unknown action 'explode'"),
        "request-a-list": (put("request", value=[]), "events[0].request: expected an object, got array"),
    },
    "eventgrid": {
        "unknown-event-type": (
            put("eventType", value="Microsoft.ContainerRegistry.ImageExploded"), "[0].eventType: unknown event type"
        ),
        "data-missing": (drop("data"), "[0].data: missing"),
        "action-contradicts-type": (put("data", "action", value="delete"), "[0].data.action: 'delete' contradicts"),
        "invalid-digest": (
            put("data", "target", "digest", value="sha256:123"),
            "[0].data.target.digest: 'sha256:123' is not a valid digest",
        ),
    },
    "cloudevents": {
        "old-specversion": (put("specversion", value="0.3"), "unsupported CloudEvents version '0.3'"),
        "unknown-type": (put("type", value="com.example.pushed"), "type: unknown event type"),
        "source-missing": (drop("source"), "source: missing"),
    },
}
EVENTS = {
    f"{route}-{name}": (route, change, reason)
    for route, cases in EVENTS_BY_ROUTE.items()
    for name, (change, reason) in cases.items()
}


@pytest.mark.parametrize("route, change, reason", EVENTS.values(), ids=EVENTS.keys())
def test_invalid_event_is_rejected_with_a_reason(
    bed: Rig, route: str, change: Callable[[dict[str, Any]], None], reason: str
) -> None:
    """An invalid event inside a valid payload gets a `rejected` outcome whose reason names the field and problem."""
    good = pushed_image(bed.good, "good/app")
    event = EVENT_BUILDERS[route]("invalid-" + str(uuid.uuid4()), bed.registry.host, good)
    change(event)

    answer = send(bed, route, body_for(route, [event]))

    assert answer.status == 200, answer.text
    assert_no_traceback(answer)
    [summary] = answer.json()["outcomes"]
    assert summary["result"] == "rejected"
    assert reason in summary["reason"]
    recorded = outcomes_of(bed, summary["event_id"])
    assert [(outcome.result, outcome.reason) for outcome in recorded] == [("rejected", summary["reason"])]
    assert_still_decides(bed)


def test_invalid_event_does_not_spoil_its_siblings(bed: Rig) -> None:
    """In one envelope, a bad event is rejected while the good events around it are decided."""
    good = pushed_image(bed.good, "good/app")
    first, bad, last = (f"sibling-{name}-{uuid.uuid4()}" for name in ("first", "bad", "last"))
    broken = distribution_event(bad, bed.registry.host, good)
    broken["target"]["digest"] = "sha256:nope"
    events = [distribution_event(first, bed.registry.host, good), broken,
              distribution_event(last, bed.registry.host, good)]

    answer = send(bed, "registry-events", body_for("registry-events", events))

    assert answer.status == 200, answer.text
    assert [(item["event_id"], item["result"]) for item in answer.json()["outcomes"]] == [
        (first, "compliant"), (bad, "rejected"), (last, "compliant")
    ]


# -- manifests the pipeline cannot use: a `failed` outcome ---------------------------------------------------


def _digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _canned_manifest(bed: Rig, repository: str, body: bytes, media_type: str) -> Pushed:
    """Serve `body` from the proxy as manifest `repository@digest`, as a registry would."""
    digest = _digest(body)
    bed.proxy.respond(
        f"/v2/{repository}/manifests/{digest}",
        body=body,
        headers={"Content-Type": media_type, "Docker-Content-Digest": digest},
    )
    return Pushed(repository, "1", digest, None, len(body))


def unknown_media_type(bed: Rig) -> Pushed:
    # distribution refuses to store it (400 MANIFEST_INVALID), so the proxy serves it. The event leaves the
    # media type out: one naming a type that is not a manifest type is taken for a blob push and dropped.
    image = bed.builder.document(bed.builder.image("linux/amd64", seed="unknown-type"))
    body = canonical_json({**image, "mediaType": UNKNOWN_MEDIA_TYPE})
    return _canned_manifest(bed, "bad/unknown-type", body, UNKNOWN_MEDIA_TYPE)


def oversized_manifest(bed: Rig) -> Pushed:
    # distribution refuses bodies over 4 MiB ("http: request body too large"), so the proxy serves it.
    body = b'{"schemaVersion": 2, "mediaType": "%s", "layers": [], "padding": "%s"}' % (
        OCI_MANIFEST.encode(), b"x" * MAX_MANIFEST_BYTES
    )
    return dataclasses.replace(_canned_manifest(bed, "bad/oversized", body, OCI_MANIFEST), media_type=OCI_MANIFEST)


def manifest_not_json(bed: Rig) -> Pushed:
    return _canned_manifest(bed, "bad/not-json", b"this manifest is not JSON", OCI_MANIFEST)


def config_blob_missing(bed: Rig) -> Pushed:
    # distribution refuses a manifest whose config blob it lacks, so the proxy serves the manifest.
    config = {"mediaType": OCI_CONFIG, "digest": _digest(b"never pushed"), "size": 12}
    body = canonical_json({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": []})
    return _canned_manifest(bed, "bad/no-config", body, OCI_MANIFEST)


def corrupted_manifest(bed: Rig) -> Pushed:
    image = bed.builder.image("linux/amd64", seed="corrupt-manifest")
    push(bed.builder, image, bed.registry.host, "bad/corrupt-manifest", "1")
    bed.proxy.configure(rate=1.0, faults=("corrupt",), match=r"^GET /v2/bad/corrupt-manifest/manifests/")
    return pushed_image(image, "bad/corrupt-manifest")


def corrupted_config(bed: Rig) -> Pushed:
    image = bed.builder.image("linux/amd64", seed="corrupt-config")
    push(bed.builder, image, bed.registry.host, "bad/corrupt-config", "1")
    bed.proxy.configure(rate=1.0, faults=("corrupt",), match=r"^GET /v2/bad/corrupt-config/blobs/")
    return pushed_image(image, "bad/corrupt-config")


def _image_with_config(bed: Rig, repository: str, config_bytes: bytes) -> Pushed:
    config = bed.builder.add_blob(config_bytes, OCI_CONFIG)
    layer = bed.builder.add_blob(repository.encode(), OCI_LAYER)
    document = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.to_json(), "layers": [layer.to_json()]}
    manifest = bed.builder.raw_manifest(canonical_json(document), OCI_MANIFEST)
    push(bed.builder, manifest, bed.registry.host, repository, "1", via="raw")
    return pushed_image(manifest, repository)


def config_not_json(bed: Rig) -> Pushed:
    return _image_with_config(bed, "bad/config-not-json", b"this config is not JSON")


def config_nested_too_deeply(bed: Rig) -> Pushed:
    return _image_with_config(bed, "bad/config-too-deep", b"[" * 100_000)


def config_with_huge_number(bed: Rig) -> Pushed:
    return _image_with_config(bed, "bad/config-huge-number", b'{"os": "linux", "size": ' + b"9" * 5000 + b"}")


def config_without_platform(bed: Rig) -> Pushed:
    return _image_with_config(bed, "bad/config-no-os", b'{"architecture": "amd64", "rootfs": {}}')


def _nested_indexes(bed: Rig, levels: int, repository: str) -> Pushed:
    descriptor = bed.builder.image("linux/amd64", seed=repository)
    for _ in range(levels):
        descriptor = bed.builder.index([descriptor])
    push(bed.builder, descriptor, bed.registry.host, repository, "1")
    return pushed_image(descriptor, repository)


def index_too_deep(bed: Rig) -> Pushed:
    return _nested_indexes(bed, MAX_INDEX_DEPTH + 1, "bad/too-deep")


def index_as_deep_as_allowed(bed: Rig) -> Pushed:
    return _nested_indexes(bed, MAX_INDEX_DEPTH, "bad/deep-enough")


def manifest_not_in_registry(bed: Rig) -> Pushed:
    return Pushed("good/app", "1", _digest(b"no such manifest"), OCI_MANIFEST, 16)


MANIFESTS: dict[str, tuple[Callable[[Rig], Pushed], bool, str, str]] = {  # prepare, via proxy, result, problem
    "unknown-media-type": (unknown_media_type, True, "failed", f"unknown manifest media type '{UNKNOWN_MEDIA_TYPE}'"),
    "oversized-manifest": (oversized_manifest, True, "failed", f"more than the {MAX_MANIFEST_BYTES} allowed"),
    "manifest-not-json": (manifest_not_json, True, "failed", "manifest is not valid JSON"),
    "manifest-not-in-registry": (manifest_not_in_registry, False, "failed", "not found (HTTP 404"),
    "config-blob-missing": (config_blob_missing, True, "failed", "not found (HTTP 404"),
    "manifest-corrupted-in-transit": (corrupted_manifest, True, "failed", "the content served has digest"),
    "config-corrupted-in-transit": (corrupted_config, True, "failed", "the content served has digest"),
    "config-not-json": (config_not_json, False, "failed", "config is not valid JSON"),
    "config-nested-too-deeply": (config_nested_too_deeply, False, "failed", "config is not valid JSON"),
    "config-with-a-huge-number": (config_with_huge_number, False, "failed", "config is not valid JSON"),
    "config-without-os": (config_without_platform, False, "failed", "'os' missing"),
    "index-nested-too-deep": (index_too_deep, False, "failed", f"index nests deeper than {MAX_INDEX_DEPTH} levels"),
    "index-nested-as-deep-as-allowed": (index_as_deep_as_allowed, False, "compliant", "linux/amd64"),
}


@pytest.mark.parametrize("prepare, via_proxy, result, problem", MANIFESTS.values(), ids=MANIFESTS.keys())
def test_unusable_manifest_fails_with_a_reason(
    bed: Rig, prepare: Callable[[Rig], Pushed], via_proxy: bool, result: str, problem: str
) -> None:
    """A manifest, config or index that cannot be used ends in a `failed` outcome naming the problem, no retry."""
    pushed = prepare(bed)
    origin = bed.proxy.host if via_proxy else bed.registry.host

    event_id, answer = deliver(bed, "registry-events", origin, pushed)

    assert answer.status == 200, answer.text  # permanent: recorded, not retried
    assert_no_traceback(answer)
    [outcome] = outcomes_of(bed, event_id)
    assert (outcome.result, outcome.digest, outcome.registry) == (result, pushed.digest, origin)
    assert problem in (outcome.error if result == "failed" else " ".join(outcome.platforms)), outcome
    bed.proxy.configure(rate=0.0)
    assert_still_decides(bed)


# -- a registry that fails for a while: 503 to the sender, decided on redelivery -----------------------------


@pytest.mark.parametrize("fault", ["503", "429", "reset"])
@pytest.mark.parametrize("route", ["registry-events", "eventgrid"])
def test_transient_registry_failure_is_retried_by_the_sender(bed: Rig, route: str, fault: str) -> None:
    """Registry faults beyond the retry budget answer 503 and record a `retrying` attempt (no alert); the
    redelivery is then decided."""
    repository = f"flaky/{route}-{fault}"
    image = bed.builder.image("linux/amd64", seed=repository)
    push(bed.builder, image, bed.registry.host, repository, "1")
    injected_before = bed.proxy.stats.injected.get(fault, 0)
    bed.proxy.configure(rate=1.0, faults=(fault,))
    event_id, answer = deliver(bed, route, bed.proxy.host, pushed_image(image, repository))

    assert answer.status == 503, answer.text
    assert_no_traceback(answer)
    assert answer.json()["retry"] is True and answer.headers["Retry-After"].isdigit()
    [attempt] = outcomes_of(bed, event_id)
    assert attempt.result == "retrying" and attempt.error and not attempt.alerts
    assert bed.proxy.stats.injected[fault] - injected_before >= 2  # the client retried before giving up

    bed.proxy.configure(rate=0.0)
    _, again = deliver(bed, route, bed.proxy.host, pushed_image(image, repository), event_id=event_id)

    assert again.status == 200, again.text
    assert [outcome.result for outcome in outcomes_of(bed, event_id)] == ["compliant", "retrying"]


SCRIPTS = {
    "one-503": ["503"],
    "one-429": ["429"],
    "one-reset": ["reset"],
    "slow-answer": ["slow"],
    "three-different-faults": ["503", "reset", "429"],
}


@pytest.mark.parametrize("script", SCRIPTS.values(), ids=SCRIPTS.keys())
def test_faults_within_the_retry_budget_are_absorbed(bed: Rig, script: list[str]) -> None:
    """A few faults in a row are retried inside the call: the first delivery is decided."""
    repository = "absorbed/" + "-".join(script)
    image = bed.builder.image("linux/amd64", seed=repository)
    push(bed.builder, image, bed.registry.host, repository, "1")
    before = bed.proxy.stats.injected_total
    bed.proxy.configure(script=script)

    event_id, answer = deliver(bed, "registry-events", bed.proxy.host, pushed_image(image, repository))

    assert answer.status == 200, answer.text
    assert [outcome.result for outcome in outcomes_of(bed, event_id)] == ["compliant"]
    assert bed.proxy.stats.injected_total - before == len(script)


# -- events from registries that are not ours ----------------------------------------------------------------


@pytest.fixture
def bystander() -> Iterator[socket.socket]:
    """A listening loopback socket that nobody should connect to."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    yield listener
    listener.close()


@pytest.mark.parametrize("route", ["registry-events", "eventgrid", "cloudevents"])
def test_event_from_unknown_registry_is_rejected_without_connecting(
    bed: Rig, bystander: socket.socket, route: str
) -> None:
    """An event naming a registry that is not configured is rejected, and that registry is never contacted."""
    stranger = "127.0.0.1:%d" % bystander.getsockname()[1]
    event_id, answer = deliver(bed, route, stranger, pushed_image(bed.good, "good/app"))

    assert answer.status == 200, answer.text
    [outcome] = outcomes_of(bed, event_id)
    assert outcome.result == "rejected" and outcome.registry is None
    assert f"{stranger!r}, which is not a configured registry" in (outcome.reason or "")
    with pytest.raises(BlockingIOError):
        bystander.accept()  # a connection attempt would be waiting in the backlog
    assert_still_decides(bed)


# -- the fault proxy itself -----------------------------------------------------------------------------------

PROBE_PATHS = [f"/v2/probe/manifests/{number}" for number in range(24)] + ["/v2/"] * 6


def _fate_of(host: str, method: str, path: str) -> str:
    """What the client sees: the status code, or "reset" for a dropped connection."""
    connection = http.client.HTTPConnection(host, timeout=10)
    try:
        connection.request(method, path, headers={"Accept": OCI_MANIFEST})
        response = connection.getresponse()
        response.read()
        return str(response.status)
    except (ConnectionResetError, http.client.RemoteDisconnected):
        return "reset"
    finally:
        connection.close()


def _fates(registry: LocalRegistry, seed: int, paths: list[str]) -> dict[tuple[str, int], str]:
    """Fates of `paths` sent in that order, keyed by (path, how many times that path was sent before)."""
    seen: dict[str, int] = {}
    fates: dict[tuple[str, int], str] = {}
    with FaultProxy(registry.host, rate=0.5, faults=("503", "429", "reset"), seed=seed, retry_after=0) as proxy:
        for path in paths:
            fates[(path, seen.get(path, 0))] = _fate_of(proxy.host, "GET", path)
            seen[path] = seen.get(path, 0) + 1
    return fates


def test_fault_proxy_is_deterministic_for_a_seed(bed: Rig) -> None:
    """The same seed gives every request the same fate, whatever the order; another seed gives other fates."""
    first = _fates(bed.registry, 7, PROBE_PATHS)
    again_reversed = _fates(bed.registry, 7, PROBE_PATHS[::-1])
    other_seed = _fates(bed.registry, 8, PROBE_PATHS)

    assert first == again_reversed
    assert first != other_seed
    assert {"503", "429", "reset", "404", "200"} <= set(first.values())  # faults and real registry answers


def test_fault_proxy_follows_its_script_and_counts(bed: Rig) -> None:
    """Scripted fates apply in arrival order before the rate; stats count requests, forwards and faults."""
    with FaultProxy(bed.registry.host, script=["503", None, "429", "reset", "corrupt"], retry_after=3) as proxy:
        fates = [_fate_of(proxy.host, "GET", "/v2/") for _ in range(4)]
        connection = http.client.HTTPConnection(proxy.host, timeout=10)
        connection.request("GET", f"/v2/good/app/manifests/{bed.good.digest}",
                           headers={"Accept": OCI_MANIFEST})
        corrupted = connection.getresponse().read()
        connection.close()
        after = [_fate_of(proxy.host, "GET", "/v2/") for _ in range(2)]
        history = [entry.fate for entry in proxy.history()]
        stats = proxy.stats

    assert fates + after == ["503", "200", "429", "reset", "200", "200"]
    assert len(corrupted) == bed.good.size and _digest(corrupted) != bed.good.digest
    assert history == ["503", "forwarded", "429", "reset", "corrupt", "forwarded", "forwarded"]
    assert (stats.requests, stats.forwarded, stats.canned) == (7, 4, 0)
    assert stats.injected == {"503": 1, "429": 1, "reset": 1, "corrupt": 1}


def test_fault_proxy_sends_retry_after_with_429(bed: Rig) -> None:
    """An injected 429 carries Retry-After with the configured seconds and an OCI error body."""
    with FaultProxy(bed.registry.host, script=["429"], retry_after=7) as proxy:
        connection = http.client.HTTPConnection(proxy.host, timeout=10)
        connection.request("GET", "/v2/")
        response = connection.getresponse()
        body = json.loads(response.read())
        connection.close()
    assert (response.status, response.getheader("Retry-After")) == (429, "7")
    assert body["errors"][0]["code"] == "TOOMANYREQUESTS"


def test_fault_proxy_match_limits_which_requests_fail(bed: Rig) -> None:
    """With `match`, only requests whose method and path match are faulted; the rest are forwarded."""
    with FaultProxy(bed.registry.host, rate=1.0, faults=("503",), match=r"^GET /v2/.+/manifests/") as proxy:
        fates = [_fate_of(proxy.host, method, path) for method, path in [
            ("GET", "/v2/"), ("GET", "/v2/good/app/manifests/1"), ("HEAD", "/v2/good/app/manifests/1"),
            ("GET", "/v2/good/app/tags/list"),
        ]]
    assert fates == ["200", "503", "200", "200"]


def test_fault_proxy_passes_pushes_through(bed: Rig) -> None:
    """A push through a calm proxy (uploads, Location headers, manifest PUT) lands unchanged in the registry."""
    image = bed.builder.index([bed.builder.image("linux/amd64", seed="via-proxy"),
                               bed.builder.image("linux/arm64", seed="via-proxy")])
    with FaultProxy(bed.registry.host) as proxy:
        digest = push(bed.builder, image, proxy.host, "via/proxy", "1", via="skopeo")
        stats = proxy.stats
    served = fetch_manifest(bed.registry.host, "via/proxy", "1")
    assert (digest, served.digest) == (image.digest, image.digest)
    assert stats.forwarded == stats.requests > 0 and stats.injected_total == 0


def test_fault_proxy_answers_502_when_the_registry_is_unreachable() -> None:
    """A proxy whose registry does not listen answers 502 with an OCI error body and counts the failure."""
    with FaultProxy(f"127.0.0.1:{free_port()}") as proxy:
        fate = _fate_of(proxy.host, "GET", "/v2/")
        stats = proxy.stats
    assert fate == "502"
    assert (stats.requests, stats.forwarded, stats.upstream_failures) == (1, 0, 1)


BAD_PROXY_SETTINGS: dict[str, tuple[dict[str, Any], str]] = {
    "rate-above-one": ({"rate": 1.5}, "rate=1.5"),
    "negative-rate": ({"rate": -0.1}, "rate=-0.1"),
    "unknown-fault": ({"faults": ("503", "teapot")}, "unknown kind\\(s\\) \\['teapot'\\]"),
    "faults-as-a-string": ({"faults": "503"}, "give a sequence"),
    "rate-without-faults": ({"rate": 0.5, "faults": ()}, "name at least one fault kind"),
    "unknown-scripted-fault": ({"script": ["503", "boom"]}, "unknown fault kind\\(s\\) \\['boom'\\]"),
    "broken-match": ({"match": "(unclosed"}, "is not a regular expression"),
    "negative-slow": ({"slow_seconds": -1}, "slow_seconds \\(-1\\)"),
}


@pytest.mark.parametrize("options, message", BAD_PROXY_SETTINGS.values(), ids=BAD_PROXY_SETTINGS.keys())
def test_fault_proxy_refuses_bad_settings(options: dict[str, Any], message: str) -> None:
    """A setting the proxy cannot honour raises ValueError naming the setting and its value."""
    with pytest.raises(ValueError, match=message):
        FaultProxy("127.0.0.1:1", **options)
