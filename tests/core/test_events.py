"""Tests for importer.core.events: every payload schema to PushEvent, per-event rejections, payload errors, triage,
the two delivery handshakes, and the notifications a real distribution registry sends for a multi-arch push.

Sample payloads live in tests/data/events/: the ACR ones follow the documented Event Grid, CloudEvents and
webhook shapes; the distribution ones are what distribution 2.8.2 really sent for `skopeo copy --all` of a
two-platform OCI index and for a manifest delete (only the ports were changed, to 5000).
"""

from __future__ import annotations

import copy
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from importer.core.events import (
    MAX_BODY_BYTES,
    EventPayloadError,
    ParsedEvent,
    PushEvent,
    RejectedEvent,
    Triage,
    cloudevents_options_response,
    eventgrid_validation_response,
    parse_cloudevents,
    parse_eventgrid,
    parse_eventgrid_envelope,
    parse_registry_notification,
    triage,
)
from testbed.http_server import LocalHttpServer, QuietRequestHandler
from testbed.images import ImageBuilder, multi
from testbed.registry import LocalRegistry

DATA = Path(__file__).parents[1] / "data" / "events"

ACR_TOPIC = (
    "/subscriptions/5f3c9a2e-8d41-4b7a-9c60-1e2f3a4b5c6d/resourceGroups/rg-platform-guard"
    "/providers/Microsoft.ContainerRegistry/registries/contosoregistry"
)
DOCKER_UA = (
    "docker/24.0.7 go/go1.20.10 git-commit/311b9ff kernel/6.5.0-1025-azure os/linux arch/amd64 "
    "UpstreamClient(Docker-Client/24.0.7 \\(linux\\))"
)
WEB_INDEX = "sha256:660eadba5e4ad40c2786e352cc9a21ac8b73b189ecd52fa9fd4bcde430204170"
INGRESS_CHART = "sha256:9fb86e4da04e7da63df817164128f64e5e6fec0e766e7f36c3fba33c93c0ad4b"
API_LIST = "sha256:c0d249e1910e22eb0f342c7b4ef212bc3959771726c91c249f0765de2b96416e"
HELLO_WORLD = "sha256:8feb3aec32f801606f47c8b6a6d146d89cc5f9f7d57f916adb2394c8712718c4"
HELLO_AMD64 = "sha256:bc1d12e33bce80c54d8a23c3ec43c05a28afd767b864166521ac5fc7ed63f961"
HELLO_ARM64 = "sha256:e3557439d5ec110f05da29bc2896ba2068c22695d0d9dd6e01f11dbefcf5ed00"
HELLO_INDEX = "sha256:dd31dd54daced469fab63ec1b23a447e3220e9777bce8a5bd06cba8813aaa062"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DISTRIBUTION_V1 = "application/vnd.docker.distribution.events.v1+json"
DISTRIBUTION_V2 = "application/vnd.docker.distribution.events.v2+json"
GOOD_DIGEST = "sha256:" + "ab" * 32


def sample_bytes(name: str) -> bytes:
    return (DATA / name).read_bytes()


def sample(name: str) -> Any:
    return json.loads(sample_bytes(name))


def encode(document: Any) -> bytes:
    return json.dumps(document).encode()


def push_event(**fields: Any) -> PushEvent:
    """A PushEvent with neutral defaults, for triage rows."""
    defaults: dict[str, Any] = dict(
        event_id="e1", schema="distribution", action="push", origin="127.0.0.1:5000", repository="team/app",
        tag="1.0", digest=GOOD_DIGEST, media_type=OCI_INDEX, size=500, artifact="image", actor=None,
        user_agent=None, occurred_at=None,
    )
    return PushEvent(**{**defaults, **fields})


# -- each schema, from the sample payloads ----------------------------------------------------------------

SAMPLE_CASES: list[tuple[str, Callable[[bytes], list[ParsedEvent]], list[PushEvent]]] = [
    (
        "eventgrid-image-pushed.json",
        parse_eventgrid,
        [PushEvent("831e1650-001e-001b-66ab-eeb76e069631", "eventgrid", "push", ACR_TOPIC, "team/web", "1.4.2",
                   WEB_INDEX, OCI_INDEX, 856, "image", "ci-pipeline", DOCKER_UA, "2024-05-14T09:12:47.6549614Z")],
    ),
    (
        "eventgrid-image-deleted.json",
        parse_eventgrid,
        [PushEvent("f06e3895-d1f1-4a79-9d3e-b7d9a8bd5d8b", "eventgrid", "delete", ACR_TOPIC, "team/web", None,
                   WEB_INDEX, OCI_INDEX, None, "image", None, "python-requests/2.31.0",
                   "2024-05-15T17:56:00.8329523Z")],
    ),
    (
        "eventgrid-chart-pushed.json",
        parse_eventgrid,
        [PushEvent("ea3a9c28-5b17-40f6-a500-3f02b6823ff9", "eventgrid", "push", ACR_TOPIC, "charts/ingress",
                   "ingress-1.2.0.tgz", INGRESS_CHART, "application/vnd.acr.helm.chart", 25265, "chart", None, None,
                   "2024-05-14T10:16:31.5164086Z")],
    ),
    (
        "eventgrid-chart-deleted.json",
        parse_eventgrid,
        [PushEvent("39136b3a-1a7e-416f-a09e-5c85d5402fca", "eventgrid", "delete", ACR_TOPIC, "charts/ingress",
                   "ingress-1.2.0.tgz", INGRESS_CHART, "application/vnd.acr.helm.chart", 25265, "chart", None, None,
                   "2024-05-16T08:02:11.4212334Z")],
    ),
    (
        "cloudevents-image-pushed.json",
        lambda body: parse_cloudevents(body, "application/cloudevents+json; charset=utf-8"),
        [PushEvent("9a7b3c1d-2e4f-4a6b-8c0d-1e2f3a4b5c6d", "cloudevents", "push", ACR_TOPIC, "team/api", "2.0.0",
                   API_LIST, "application/vnd.docker.distribution.manifest.list.v2+json", 1159, "image",
                   "release-bot", "buildkit/v0.12", "2024-05-14T11:20:05.1234567Z")],
    ),
    (
        "acr-webhook-push.json",
        lambda body: parse_registry_notification(body, "application/json"),
        [PushEvent("cb8c3971-9adc-488b-bdd8-43cbb4974ff5", "acr-webhook", "push", "contosoregistry.azurecr.io",
                   "hello-world", "v1", HELLO_WORLD, "application/vnd.docker.distribution.manifest.v2+json", 524,
                   "image", None, DOCKER_UA, "2024-05-14T16:52:01.343145347Z")],
    ),
    (
        "distribution-skopeo-copy-all.json",
        lambda body: parse_registry_notification(body, DISTRIBUTION_V1),
        [
            PushEvent("82aa1111-53fa-4c8c-92bd-8f16b35caeb3", "distribution", "push", "127.0.0.1:5000", "team/hello",
                      None, HELLO_AMD64, OCI_MANIFEST, 418, "image", None, "skopeo/1.9.3",
                      "2026-11-26T08:27:36.343430623Z"),
            PushEvent("8c9e6f12-fdd6-4373-822e-129077afc49e", "distribution", "push", "127.0.0.1:5000", "team/hello",
                      None, HELLO_ARM64, OCI_MANIFEST, 418, "image", None, "skopeo/1.9.3",
                      "2026-11-26T08:27:36.362589007Z"),
            PushEvent("5496b2ab-b65b-4b80-aed6-ccb833fc3663", "distribution", "push", "127.0.0.1:5000", "team/hello",
                      "1.0", HELLO_INDEX, OCI_INDEX, 517, "image", None, "skopeo/1.9.3",
                      "2026-11-26T08:27:36.36481692Z"),
        ],
    ),
    (
        "distribution-delete-manifest.json",
        lambda body: parse_registry_notification(body, DISTRIBUTION_V2),
        [
            PushEvent("e366b996-d4d4-451c-998f-61960326fe6d", "distribution", "delete", "127.0.0.1:5000",
                      "team/hello", None, HELLO_INDEX, None, None, "image", None, "Python-urllib/3.11",
                      "2026-11-26T08:27:38.369360153Z"),
            PushEvent("8b9ff906-3f32-4688-a37c-2db9a677b54b", "distribution", "delete", "127.0.0.1:5000",
                      "team/hello", "1.0", None, None, None, "image", None, "Python-urllib/3.11",
                      "2026-11-26T08:27:38.370139766Z"),
        ],
    ),
]


@pytest.mark.parametrize(("name", "parse", "expected"), SAMPLE_CASES, ids=[case[0] for case in SAMPLE_CASES])
def test_sample_payload_parses_to_push_events(
    name: str, parse: Callable[[bytes], list[ParsedEvent]], expected: list[PushEvent]
) -> None:
    """Each documented or captured payload becomes exactly these normalised events, from bytes and from text."""
    body = sample_bytes(name)
    assert parse(body) == expected
    assert parse(body.decode()) == expected  # type: ignore[arg-type]


def test_distribution_sends_one_envelope_per_event_with_the_same_result() -> None:
    """Distribution 2.8 really delivers each event in its own envelope; one by one they parse to the same events."""
    envelope = sample("distribution-skopeo-copy-all.json")
    one_by_one = [
        parsed
        for event in envelope["events"]
        for parsed in parse_registry_notification(encode({"events": [event]}), DISTRIBUTION_V1)
    ]
    assert one_by_one == parse_registry_notification(encode(envelope), DISTRIBUTION_V1)
    assert len(envelope["events"]) == 7 and len(one_by_one) == 3


def test_multi_arch_push_triages_children_as_ignored_and_the_tagged_index_as_decided() -> None:
    """Of a `skopeo copy --all` push, only the tagged index is decided; the untagged children are ignored."""
    events = parse_registry_notification(sample_bytes("distribution-skopeo-copy-all.json"), DISTRIBUTION_V1)
    assert [triage(event) for event in events if isinstance(event, PushEvent)] == [
        Triage("ignore", f"untagged push of {HELLO_AMD64} (a child manifest of a multi-arch push)"),
        Triage("ignore", f"untagged push of {HELLO_ARM64} (a child manifest of a multi-arch push)"),
        Triage("decide", "tagged image push of team/hello:1.0"),
    ]


def test_event_grid_body_may_be_a_single_object() -> None:
    """An Event Grid delivery of one bare event object (no array) parses like a one-element array."""
    event = sample("eventgrid-image-pushed.json")[0]
    assert parse_eventgrid(encode(event)) == parse_eventgrid(encode([event]))


def test_cloudevents_batch_parses_every_event() -> None:
    """A CloudEvents batch (application/cloudevents-batch+json) yields one PushEvent per element, in order."""
    first = sample("cloudevents-image-pushed.json")
    second = copy.deepcopy(first)
    second["id"] = "second"
    second["data"]["target"]["tag"] = "2.0.1"
    events = parse_cloudevents(encode([first, second]), "application/cloudevents-batch+json")
    assert [(event.event_id, event.tag) for event in events if isinstance(event, PushEvent)] == [
        ("9a7b3c1d-2e4f-4a6b-8c0d-1e2f3a4b5c6d", "2.0.0"),
        ("second", "2.0.1"),
    ]


@pytest.mark.parametrize(
    ("content_type", "batch"),
    [(None, False), (None, True), ("application/json", False), ("application/json", True),
     ("Application/CloudEvents+JSON; charset=utf-8", False)],
    ids=["no-type-object", "no-type-array", "json-object", "json-array", "type-case-and-parameters"],
)
def test_cloudevents_without_a_cloudevents_content_type_is_read_by_shape(content_type: str | None, batch: bool) -> None:
    """With no or a plain JSON content type, an object is one CloudEvent and an array is a batch."""
    event = sample("cloudevents-image-pushed.json")
    parsed = parse_cloudevents(encode([event] if batch else event), content_type)
    assert [type(item) for item in parsed] == [PushEvent]


# -- tags, deletes, charts, origins -----------------------------------------------------------------------


def distribution_event(**target: Any) -> dict[str, Any]:
    """The captured tagged index push, with `target` fields replaced (a None value removes the field)."""
    event: dict[str, Any] = copy.deepcopy(sample("distribution-skopeo-copy-all.json")["events"][6])
    for key, value in target.items():
        if value is None:
            event["target"].pop(key, None)
        else:
            event["target"][key] = value
    return event


def parse_one_distribution_event(event: Any) -> list[ParsedEvent]:
    return parse_registry_notification(encode({"events": [event]}), DISTRIBUTION_V1)


@pytest.mark.parametrize(
    ("event", "tag"),
    [
        (distribution_event(tag=None), None),
        (distribution_event(tag=""), None),
        ({**distribution_event(), "target": {**distribution_event()["target"], "tag": None}}, None),
        (distribution_event(tag="v1.2.3-rc.1_build"), "v1.2.3-rc.1_build"),
        (distribution_event(tag="_" + "a" * 127), "_" + "a" * 127),
    ],
    ids=["absent", "empty-string", "json-null", "dots-dashes-underscores", "128-characters"],
)
def test_tag_is_none_when_absent_or_empty(event: dict[str, Any], tag: str | None) -> None:
    """An absent, null or empty tag is None (an untagged push); a valid tag is kept as sent."""
    [parsed] = parse_one_distribution_event(event)
    assert isinstance(parsed, PushEvent) and parsed.tag == tag


def test_empty_tag_push_is_triaged_as_untagged() -> None:
    """A push whose tag is the empty string is ignored as an untagged child push, not decided."""
    [parsed] = parse_one_distribution_event(distribution_event(tag=""))
    assert isinstance(parsed, PushEvent)
    assert triage(parsed).disposition == "ignore"


@pytest.mark.parametrize(
    ("event", "artifact"),
    [
        (distribution_event(references=[
            {"mediaType": "application/vnd.cncf.helm.config.v1+json", "size": 120, "digest": GOOD_DIGEST},
            {"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip", "size": 900, "digest": GOOD_DIGEST},
        ], mediaType=OCI_MANIFEST), "chart"),
        (distribution_event(mediaType="application/vnd.acr.helm.chart"), "chart"),
        (distribution_event(), "image"),
        (distribution_event(references=None), "image"),
    ],
    ids=["helm-config-in-references", "acr-helm-media-type", "image-index", "no-references"],
)
def test_artifact_is_chart_for_helm_media_types(event: dict[str, Any], artifact: str) -> None:
    """A manifest whose references carry Helm media types, or ACR's chart media type, is a chart; others are images."""
    [parsed] = parse_one_distribution_event(event)
    assert isinstance(parsed, PushEvent) and parsed.artifact == artifact


@pytest.mark.parametrize(
    ("action", "expected_action"),
    [("chart_push", "push"), ("chart_delete", "delete"), ("push", "push"), ("delete", "delete")],
    ids=["chart_push", "chart_delete", "push", "delete"],
)
def test_acr_webhook_actions(action: str, expected_action: str) -> None:
    """ACR webhook chart_push/chart_delete are chart pushes/deletes; push/delete keep their meaning."""
    body = sample("acr-webhook-push.json")
    body["action"] = action
    [parsed] = parse_registry_notification(encode(body), None)
    assert isinstance(parsed, PushEvent)
    assert (parsed.action, parsed.artifact) == (expected_action, "chart" if action.startswith("chart") else "image")


@pytest.mark.parametrize(
    ("request_field", "origin"),
    [({"host": "registry.local:5000"}, "registry.local:5000"), ({}, ""), (None, "")],
    ids=["host", "request-without-host", "no-request"],
)
def test_notification_origin_is_the_request_host_or_empty(request_field: dict[str, str] | None, origin: str) -> None:
    """For distribution events the origin is request.host, and "" when the event does not say."""
    event = distribution_event()
    if request_field is None:
        del event["request"]
    else:
        event["request"] = request_field
    [parsed] = parse_one_distribution_event(event)
    assert isinstance(parsed, PushEvent) and parsed.origin == origin


def test_event_grid_origin_is_empty_without_topic() -> None:
    """An Event Grid event without `topic` still parses, with origin "" (the pipeline then rejects it)."""
    event = sample("eventgrid-image-pushed.json")[0]
    del event["topic"]
    [parsed] = parse_eventgrid(encode([event]))
    assert isinstance(parsed, PushEvent) and parsed.origin == ""


def test_actor_name_is_none_for_an_anonymous_push() -> None:
    """Distribution sends `actor: {}` for anonymous pushes; the actor is then None, and a named actor is kept."""
    anonymous = distribution_event()
    named = {**distribution_event(), "actor": {"name": "alice"}}
    parsed = parse_registry_notification(encode({"events": [anonymous, named]}), DISTRIBUTION_V1)
    assert [event.actor for event in parsed if isinstance(event, PushEvent)] == [None, "alice"]


# -- what is dropped silently -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        {**distribution_event(), "action": "pull"},
        {**distribution_event(), "action": "mount"},
        {**distribution_event(), "action": "pull", "target": "not even an object", "id": 5},
        sample("distribution-skopeo-copy-all.json")["events"][0],
        distribution_event(mediaType="application/vnd.oci.image.layer.v1.tar+gzip", tag=None),
        distribution_event(mediaType="application/vnd.oci.image.config.v1+json", tag=None),
        distribution_event(mediaType="application/vnd.cncf.helm.config.v1+json", tag=None),
        distribution_event(mediaType=None, tag=None, url="/v2/team/hello/blobs/" + GOOD_DIGEST),
        distribution_event(mediaType="application/octet-stream", repository="NOT valid", tag=None),
    ],
    ids=["pull", "mount", "pull-with-garbage", "captured-blob-push", "layer", "image-config", "helm-config",
         "blob-url-without-media-type", "blob-push-with-bad-repository"],
)
def test_pulls_mounts_and_blob_pushes_are_dropped(event: dict[str, Any]) -> None:
    """Pulls, mounts and pushes of layers, configs or other blobs never appear in the result."""
    assert parse_one_distribution_event(event) == []


def test_acr_webhook_quarantine_notice_is_dropped() -> None:
    """ACR's `quarantine` webhook action (an image held by the quarantine policy) is not an event we act on."""
    body = sample("acr-webhook-push.json")
    body["action"] = "quarantine"
    assert parse_registry_notification(encode(body), "application/json") == []


def test_repository_with_a_segment_named_blobs_is_not_mistaken_for_a_blob_push() -> None:
    """Only a URL ending in /blobs/<digest> marks a blob push; a manifest push into "x/blobs" is kept."""
    event = distribution_event(repository="mirror/blobs", url="/v2/mirror/blobs/manifests/" + HELLO_INDEX)
    [parsed] = parse_one_distribution_event(event)
    assert isinstance(parsed, PushEvent) and parsed.repository == "mirror/blobs"


# -- invalid single events inside a valid payload ---------------------------------------------------------

DROP = object()  # as the value for `mutate`: remove the field


def mutate(document: Any, path: tuple[str | int, ...], value: Any) -> Any:
    """A deep copy of `document` with the value at `path` replaced, or removed when `value` is DROP."""
    result = copy.deepcopy(document)
    if not path:
        return value
    parent = result
    for key in path[:-1]:
        parent = parent[key]
    if value is DROP:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return result


DIGEST_HINT = " is not a valid digest (expected sha256:<64 lower-case hex> or sha512:<128 lower-case hex>)"

DISTRIBUTION_REJECTIONS: list[tuple[str, tuple[str | int, ...], Any, str]] = [
    ("missing-id", ("id",), DROP, "events[1].id: missing"),
    ("id-number", ("id",), 7, "events[1].id: expected a string, got number 7"),
    ("id-empty", ("id",), "", "events[1].id: empty string"),
    ("id-control-character", ("id",), "a\nb",
     "events[1].id: 'a\\nb' is not printable text: a control character \\n at character 2"),
    ("missing-action", ("action",), DROP, "events[1].action: missing"),
    ("unknown-action", ("action",), "frobnicate",
     "events[1].action: unknown action 'frobnicate' (expected one of push, delete, pull, mount)"),
    ("event-not-object", (), 42, "events[1]: expected an object, got number"),
    ("missing-target", ("target",), DROP, "events[1].target: missing"),
    ("target-null", ("target",), None, "events[1].target: expected an object, got null"),
    ("target-string", ("target",), "x", "events[1].target: expected an object, got string"),
    ("missing-repository", ("target", "repository"), DROP, "events[1].target.repository: missing"),
    ("repository-number", ("target", "repository"), 5, "events[1].target.repository: expected a string, got number 5"),
    ("repository-upper-case", ("target", "repository"), "Team/Hello",
     "events[1].target.repository: 'Team/Hello' is not a valid repository name"),
    ("repository-leading-slash", ("target", "repository"), "/team/hello",
     "events[1].target.repository: '/team/hello' is not a valid repository name"),
    ("repository-empty-segment", ("target", "repository"), "team//hello",
     "events[1].target.repository: 'team//hello' is not a valid repository name"),
    ("repository-trailing-dash", ("target", "repository"), "team/hello-",
     "events[1].target.repository: 'team/hello-' is not a valid repository name"),
    ("repository-triple-underscore", ("target", "repository"), "a___b",
     "events[1].target.repository: 'a___b' is not a valid repository name"),
    ("repository-with-host", ("target", "repository"), "127.0.0.1:5000/team",
     "events[1].target.repository: '127.0.0.1:5000/team' is not a valid repository name"),
    ("repository-256-characters", ("target", "repository"), "a" * 256,
     "events[1].target.repository: '" + "a" * 76 + "...' is 256 characters, longer than 255"),
    ("tag-starts-with-dot", ("target", "tag"), ".hidden", "events[1].target.tag: '.hidden' is not a valid tag"),
    ("tag-starts-with-dash", ("target", "tag"), "-x", "events[1].target.tag: '-x' is not a valid tag"),
    ("tag-129-characters", ("target", "tag"), "a" * 129,
     "events[1].target.tag: '" + "a" * 76 + "...' is not a valid tag"),
    ("tag-with-colon", ("target", "tag"), "1.0:latest", "events[1].target.tag: '1.0:latest' is not a valid tag"),
    ("tag-number", ("target", "tag"), 1, "events[1].target.tag: expected a string, got number 1"),
    ("push-without-digest", ("target", "digest"), DROP, "events[1].target.digest: missing"),
    ("digest-short", ("target", "digest"), "sha256:xyz", "events[1].target.digest: 'sha256:xyz'" + DIGEST_HINT),
    ("digest-upper-case-hex", ("target", "digest"), "sha256:" + "AB" * 32,
     "events[1].target.digest: 'sha256:" + "AB" * 32 + "'" + DIGEST_HINT),
    ("digest-sha512-too-short", ("target", "digest"), "sha512:" + "ab" * 32,
     "events[1].target.digest: 'sha512:" + "ab" * 32 + "'" + DIGEST_HINT),
    ("digest-unknown-algorithm", ("target", "digest"), "md5:" + "ab" * 16,
     "events[1].target.digest: 'md5:" + "ab" * 16 + "'" + DIGEST_HINT),
    ("digest-without-algorithm", ("target", "digest"), "ab" * 32,
     "events[1].target.digest: '" + "ab" * 32 + "'" + DIGEST_HINT),
    ("digest-trailing-newline", ("target", "digest"), GOOD_DIGEST + "\n",
     "events[1].target.digest: '" + GOOD_DIGEST
     + "\\n' is not printable text: a control character \\n at character 72"),
    ("media-type-number", ("target", "mediaType"), 3, "events[1].target.mediaType: expected a string, got number 3"),
    ("size-string", ("target", "size"), "517", "events[1].target.size: expected an integer, got '517'"),
    ("size-boolean", ("target", "size"), True, "events[1].target.size: expected an integer, got boolean true"),
    ("size-float", ("target", "size"), 1.5, "events[1].target.size: expected an integer, got number 1.5"),
    ("size-negative", ("target", "size"), -1, "events[1].target.size: -1 is negative"),
    ("references-object", ("target", "references"), {}, "events[1].target.references: expected an array, got object"),
    ("reference-not-object", ("target", "references", 0), "x",
     "events[1].target.references[0]: expected an object, got string"),
    ("request-string", ("request",), "x", "events[1].request: expected an object, got string"),
    ("useragent-number", ("request", "useragent"), 9, "events[1].request.useragent: expected a string, got number 9"),
    ("host-array", ("request", "host"), [], "events[1].request.host: expected a string, got array"),
    ("actor-array", ("actor",), [], "events[1].actor: expected an object, got array"),
    ("actor-name-number", ("actor",), {"name": 1}, "events[1].actor.name: expected a string, got number 1"),
    ("timestamp-number", ("timestamp",), 1700000000, "events[1].timestamp: expected a string, got number 1700000000"),
]


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [case[1:] for case in DISTRIBUTION_REJECTIONS],
    ids=[case[0] for case in DISTRIBUTION_REJECTIONS],
)
def test_invalid_distribution_event_is_rejected_and_its_sibling_still_parses(
    path: tuple[str | int, ...], value: Any, reason: str
) -> None:
    """One bad event in an envelope becomes a RejectedEvent naming the field and the problem; the good one parses."""
    good = distribution_event()
    bad = mutate(distribution_event(), path, value)
    first, second = parse_registry_notification(encode({"events": [good, bad]}), DISTRIBUTION_V1)
    assert isinstance(first, PushEvent)
    assert isinstance(second, RejectedEvent)
    assert second.reason == reason


def eventgrid_pair(path: tuple[str | int, ...], value: Any) -> bytes:
    """An Event Grid batch of the sample push and a copy of it changed at `path`."""
    event = sample("eventgrid-image-pushed.json")[0]
    return encode([event, mutate(event, path, value)])


EVENTGRID_REJECTIONS: list[tuple[str, tuple[str | int, ...], Any, str]] = [
    ("unknown-event-type", ("eventType",), "Microsoft.Storage.BlobCreated",
     "[1].eventType: unknown event type 'Microsoft.Storage.BlobCreated'"),
    ("validation-event-among-notifications", ("eventType",), "Microsoft.EventGrid.SubscriptionValidationEvent",
     "[1].eventType: unknown event type 'Microsoft.EventGrid.SubscriptionValidationEvent'"),
    ("missing-event-type", ("eventType",), DROP, "[1].eventType: missing"),
    ("event-type-number", ("eventType",), 3, "[1].eventType: expected a string, got number 3"),
    ("missing-id", ("id",), DROP, "[1].id: missing"),
    ("topic-number", ("topic",), 1, "[1].topic: expected a string, got number 1"),
    ("missing-data", ("data",), DROP, "[1].data: missing"),
    ("data-string", ("data",), "{}", "[1].data: expected an object, got string"),
    ("data-action-contradicts-type", ("data", "action"), "delete",
     "[1].data.action: 'delete' contradicts event type 'Microsoft.ContainerRegistry.ImagePushed'"),
    ("data-missing-target", ("data", "target"), DROP, "[1].data.target: missing"),
    ("bad-digest", ("data", "target", "digest"), "sha256:xyz", "[1].data.target.digest: 'sha256:xyz'" + DIGEST_HINT),
    ("bad-repository", ("data", "target", "repository"), "Team/Web",
     "[1].data.target.repository: 'Team/Web' is not a valid repository name"),
    ("event-time-number", ("eventTime",), 5, "[1].eventTime: expected a string, got number 5"),
    ("event-not-object", (), [], "[1]: expected an object, got array"),
]


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [case[1:] for case in EVENTGRID_REJECTIONS],
    ids=[case[0] for case in EVENTGRID_REJECTIONS],
)
def test_invalid_event_grid_event_is_rejected_and_its_sibling_still_parses(
    path: tuple[str | int, ...], value: Any, reason: str
) -> None:
    """One bad event in an Event Grid batch becomes a RejectedEvent naming the field; the good one parses."""
    first, second = parse_eventgrid(eventgrid_pair(path, value))
    assert isinstance(first, PushEvent)
    assert isinstance(second, RejectedEvent)
    assert second.reason == reason


CLOUDEVENTS_REJECTIONS: list[tuple[str, tuple[str | int, ...], Any, str]] = [
    ("specversion-0.3", ("specversion",), "0.3",
     "[1].specversion: unsupported CloudEvents version '0.3' (expected '1.0')"),
    ("missing-specversion", ("specversion",), DROP, "[1].specversion: missing"),
    ("missing-source", ("source",), DROP, "[1].source: missing"),
    ("empty-source", ("source",), "", "[1].source: empty string"),
    ("unknown-type", ("type",), "com.example.thing", "[1].type: unknown event type 'com.example.thing'"),
    ("data-as-base64-only", ("data",), DROP, "[1].data: missing"),
    ("bad-tag", ("data", "target", "tag"), "-bad", "[1].data.target.tag: '-bad' is not a valid tag"),
]


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [case[1:] for case in CLOUDEVENTS_REJECTIONS],
    ids=[case[0] for case in CLOUDEVENTS_REJECTIONS],
)
def test_invalid_cloudevent_in_a_batch_is_rejected_and_its_sibling_still_parses(
    path: tuple[str | int, ...], value: Any, reason: str
) -> None:
    """One bad CloudEvent in a batch becomes a RejectedEvent naming the field; the good one parses."""
    event = sample("cloudevents-image-pushed.json")
    first, second = parse_cloudevents(encode([event, mutate(event, path, value)]), "application/cloudevents-batch+json")
    assert isinstance(first, PushEvent)
    assert isinstance(second, RejectedEvent)
    assert second.reason == reason


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        (("action",), "ping",
         "action: unknown action 'ping' (expected one of push, delete, chart_push, chart_delete, quarantine)"),
        (("target", "digest"), "sha256:123", "target.digest: 'sha256:123'" + DIGEST_HINT),
        (("target", "repository"), "hello world", "target.repository: 'hello world' is not a valid repository name"),
    ],
    ids=["unknown-action", "bad-digest", "bad-repository"],
)
def test_invalid_acr_webhook_body_is_one_rejected_event(path: tuple[str, ...], value: Any, reason: str) -> None:
    """A bad ACR webhook body (a single event, so paths have no prefix) is a RejectedEvent, not a payload error."""
    body = mutate(sample("acr-webhook-push.json"), path, value)
    assert parse_registry_notification(encode(body), "application/json") == [
        RejectedEvent("cb8c3971-9adc-488b-bdd8-43cbb4974ff5", reason, "contosoregistry.azurecr.io")
    ]


def test_rejected_event_keeps_its_own_id_and_origin() -> None:
    """A rejected event with a usable id keeps it, and carries the origin the event names."""
    body = eventgrid_pair(("data", "target", "digest"), "bad")
    _, rejected = parse_eventgrid(body)
    assert isinstance(rejected, RejectedEvent)
    assert (rejected.event_id, rejected.origin) == ("831e1650-001e-001b-66ab-eeb76e069631", ACR_TOPIC)


@pytest.mark.parametrize(
    "bad",
    [
        mutate(distribution_event(), ("id",), DROP),
        mutate(distribution_event(), ("id",), 12),
        mutate(distribution_event(), ("id",), "x" * 257),
        "just a string",
    ],
    ids=["missing", "number", "too-long", "not-an-object"],
)
def test_rejected_event_without_usable_id_gets_a_stable_derived_id(bad: Any) -> None:
    """Without a usable id, the id is "sha256-" plus 64 hex of the event's JSON: the same on redelivery, and
    different for a different event."""
    [first] = parse_one_distribution_event(bad)
    [again] = parse_one_distribution_event(copy.deepcopy(bad))
    [other] = parse_one_distribution_event([bad])
    assert isinstance(first, RejectedEvent) and isinstance(other, RejectedEvent)
    assert first == again
    assert first.event_id.startswith("sha256-") and len(first.event_id) == len("sha256-") + 64
    assert other.event_id != first.event_id


def test_rejected_event_origin_is_empty_when_the_event_has_none() -> None:
    """A rejected event that names no registry has origin ""."""
    [rejected] = parse_one_distribution_event(42)
    assert isinstance(rejected, RejectedEvent) and rejected.origin == ""


# -- bodies that are not event payloads at all ------------------------------------------------------------

EVENTGRID = parse_eventgrid
CLOUDEVENTS = lambda body: parse_cloudevents(body, "application/cloudevents+json")  # noqa: E731
CLOUDEVENTS_ANY = lambda body: parse_cloudevents(body, None)  # noqa: E731
REGISTRY = lambda body: parse_registry_notification(body, DISTRIBUTION_V1)  # noqa: E731

PAYLOAD_ERRORS: list[tuple[str, Callable[[Any], object], bytes | str, str]] = [
    ("eventgrid-malformed-json", EVENTGRID, b'[{"id": ',
     r"^Event Grid body: not valid JSON \(Expecting value at line 1 column 9\)$"),
    ("eventgrid-empty-body", EVENTGRID, b"", r"^Event Grid body: not valid JSON"),
    ("eventgrid-not-utf8", EVENTGRID, b'["\xff"]', r"^Event Grid body: not UTF-8 text"),
    ("eventgrid-nan", EVENTGRID, b"[NaN]", r"^Event Grid body: not valid JSON \(NaN is not a JSON value\)$"),
    ("eventgrid-number", EVENTGRID, b"42",
     r"^Event Grid body: expected an array of events or one event object, got number$"),
    ("eventgrid-string", EVENTGRID, b'"x"', r"got string$"),
    ("eventgrid-null", EVENTGRID, b"null", r"got null$"),
    ("eventgrid-empty-object", EVENTGRID, b"{}", r"^Event Grid body: the object has no 'eventType'"),
    ("eventgrid-given-a-cloudevent", EVENTGRID, sample_bytes("cloudevents-image-pushed.json"),
     r"a CloudEvents body goes to parse_cloudevents"),
    ("eventgrid-nested-too-deeply", EVENTGRID, b"[" * 200_000 + b"]" * 200_000,
     r"^Event Grid body: JSON nested too deeply \(more than 64 levels of arrays and objects\)$"),
    ("cloudevents-malformed-json", CLOUDEVENTS, b"{", r"^CloudEvents body: not valid JSON"),
    ("cloudevents-number", CLOUDEVENTS_ANY, b"1",
     r"^CloudEvents body: expected one event object or an array of events, got number$"),
    ("cloudevents-object-without-specversion", CLOUDEVENTS, b'{"id": "1"}',
     r"no 'specversion', so it is not a CloudEvent$"),
    ("cloudevents-single-type-with-array", CLOUDEVENTS, b"[]", r"needs one event object, got an array$"),
    ("cloudevents-batch-type-with-object",
     lambda body: parse_cloudevents(body, "application/cloudevents-batch+json"),
     sample_bytes("cloudevents-image-pushed.json"), r"needs an array of events, got an object$"),
    ("cloudevents-unsupported-content-type", lambda body: parse_cloudevents(body, "text/plain"),
     sample_bytes("cloudevents-image-pushed.json"), r"^CloudEvents body: unsupported content type 'text/plain'"),
    ("registry-malformed-json", REGISTRY, b'{"events": [}', r"^registry notification body: not valid JSON"),
    ("registry-array", REGISTRY, b"[]", r"^registry notification body: expected an object, got array$"),
    ("registry-number", REGISTRY, b"3.5", r"got number$"),
    ("registry-empty-object", REGISTRY, b"{}", r"neither a distribution envelope .* nor an ACR webhook body"),
    ("registry-events-string", REGISTRY, b'{"events": "x"}',
     r"^registry notification body: 'events' must be an array, got string$"),
    ("registry-events-object", REGISTRY, b'{"events": {}}', r"'events' must be an array, got object$"),
    ("registry-unsupported-content-type", lambda body: parse_registry_notification(body, "multipart/form-data"),
     sample_bytes("acr-webhook-push.json"), r"unsupported content type 'multipart/form-data' \(expected JSON\)$"),
]


@pytest.mark.parametrize(
    ("parse", "body", "message"),
    [case[1:] for case in PAYLOAD_ERRORS],
    ids=[case[0] for case in PAYLOAD_ERRORS],
)
def test_body_that_is_not_an_event_payload_raises(parse: Callable[[Any], object], body: bytes, message: str) -> None:
    """Malformed JSON, a wrong top-level shape or content type is an EventPayloadError saying what and where."""
    with pytest.raises(EventPayloadError, match=message):
        parse(body)


OVERSIZED = b"[" + b" " * MAX_BODY_BYTES + b"]"


@pytest.mark.parametrize(
    ("parse", "body"),
    [
        (EVENTGRID, OVERSIZED),
        (EVENTGRID, OVERSIZED.decode()),
        (EVENTGRID, '["' + "é" * (MAX_BODY_BYTES // 2) + '"]'),  # fewer characters than the limit, more bytes
        (CLOUDEVENTS_ANY, OVERSIZED),
        (REGISTRY, b'{"events": ' + OVERSIZED + b"}"),
        (lambda body: eventgrid_validation_response(body, {}), OVERSIZED),
    ],
    ids=["eventgrid-bytes", "eventgrid-text", "eventgrid-multibyte-text", "cloudevents", "registry", "validation"],
)
def test_body_over_one_mebibyte_is_refused_before_parsing(parse: Callable[[Any], object], body: bytes | str) -> None:
    """A body larger than 1 MiB (counted in UTF-8 bytes) is an EventPayloadError, even if it is valid JSON."""
    with pytest.raises(EventPayloadError, match=r"bytes, larger than the 1048576-byte limit$"):
        parse(body)


def test_body_of_exactly_one_mebibyte_is_accepted() -> None:
    """The size limit is inclusive: a 1 MiB body is parsed."""
    body = b"[" + b" " * (MAX_BODY_BYTES - 2) + b"]"
    assert len(body) == MAX_BODY_BYTES
    assert parse_eventgrid(body) == []


@pytest.mark.parametrize(
    ("parse", "body"),
    [(EVENTGRID, b"[]"), (REGISTRY, b'{"events": []}'), (CLOUDEVENTS_ANY, b"[]")],
    ids=["eventgrid", "distribution", "cloudevents-batch"],
)
def test_empty_batch_is_no_events(parse: Callable[[Any], list[ParsedEvent]], body: bytes) -> None:
    """An empty batch is a valid payload with nothing in it."""
    assert parse(body) == []


# -- the Functions trigger envelope -----------------------------------------------------------------------


def trigger_envelope(**changes: Any) -> dict[str, Any]:
    """The fields of the sample ImagePushed event as the Functions trigger hands them over (snake_case)."""
    event = sample("eventgrid-image-pushed.json")[0]
    envelope = {
        "id": event["id"], "topic": event["topic"], "subject": event["subject"], "event_type": event["eventType"],
        "event_time": datetime(2024, 5, 14, 9, 12, 47, tzinfo=UTC), "data": event["data"],
        "data_version": event["dataVersion"],
    }
    return {**envelope, **changes}


def test_envelope_from_the_functions_trigger_parses_like_the_http_body() -> None:
    """An envelope mapping with snake_case keys and a datetime event time gives the same PushEvent as the body."""
    [from_body] = parse_eventgrid(sample_bytes("eventgrid-image-pushed.json"))
    parsed = parse_eventgrid_envelope(trigger_envelope())
    assert isinstance(from_body, PushEvent)
    assert parsed == PushEvent(**{**{f: getattr(from_body, f) for f in PushEvent.__slots__},
                                  "occurred_at": "2024-05-14T09:12:47+00:00"})


def test_envelope_with_camel_case_keys_parses() -> None:
    """An envelope built with the Event Grid schema's own key names parses to the same event as the body."""
    [event] = sample("eventgrid-image-pushed.json")
    assert parse_eventgrid_envelope(event) == parse_eventgrid(encode([event]))[0]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"event_type": "Microsoft.ContainerRegistry.ImageQuarantined"},
         "eventType: unknown event type 'Microsoft.ContainerRegistry.ImageQuarantined'"),
        ({"data": None}, "data: expected an object, got null"),
        ({"id": ""}, "id: empty string"),
    ],
    ids=["unknown-type", "no-data", "empty-id"],
)
def test_invalid_envelope_is_a_rejected_event(changes: dict[str, Any], reason: str) -> None:
    """A bad envelope from the trigger is a RejectedEvent with a reason and the topic as origin."""
    parsed = parse_eventgrid_envelope(trigger_envelope(**changes))
    assert isinstance(parsed, RejectedEvent)
    assert (parsed.reason, parsed.origin) == (reason, ACR_TOPIC)


def test_envelope_blob_push_is_returned_for_triage_to_drop() -> None:
    """The one-event envelope cannot drop a blob push, so it returns it and triage answers "drop"."""
    data = mutate(trigger_envelope()["data"], ("target", "mediaType"), "application/octet-stream")
    parsed = parse_eventgrid_envelope(trigger_envelope(data=data))
    assert isinstance(parsed, PushEvent)
    assert triage(parsed).disposition == "drop"


# -- triage -----------------------------------------------------------------------------------------------

OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"


def blob_reason(media_type: str) -> str:
    return f"push of {GOOD_DIGEST} with media type {media_type!r} is a blob, not a manifest"


TRIAGE_CASES: list[tuple[str, PushEvent, Triage]] = [
    ("tagged-index", push_event(), Triage("decide", "tagged image push of team/app:1.0")),
    ("tagged-docker-manifest", push_event(media_type="application/vnd.docker.distribution.manifest.v2+json"),
     Triage("decide", "tagged image push of team/app:1.0")),
    ("tagged-media-type-with-parameters", push_event(media_type="Application/VND.OCI.Image.Manifest.v1+json; x=y"),
     Triage("decide", "tagged image push of team/app:1.0")),
    ("tagged-unknown-media-type", push_event(media_type=None), Triage("decide", "tagged image push of team/app:1.0")),
    ("tagged-acr-chart", push_event(media_type="application/vnd.acr.helm.chart", artifact="chart"),
     Triage("decide", "tagged chart push of team/app:1.0")),
    ("untagged-child", push_event(tag=None, media_type=OCI_MANIFEST),
     Triage("ignore", f"untagged push of {GOOD_DIGEST} (a child manifest of a multi-arch push)")),
    ("delete", push_event(action="delete"), Triage("ignore", "delete event")),
    ("delete-without-digest", push_event(action="delete", digest=None, media_type=None),
     Triage("ignore", "delete event")),
    ("layer-push", push_event(media_type=OCI_LAYER, tag=None), Triage("drop", blob_reason(OCI_LAYER))),
    ("octet-stream-push", push_event(media_type="application/octet-stream"),
     Triage("drop", blob_reason("application/octet-stream"))),
    ("config-push", push_event(media_type=DOCKER_CONFIG, tag=None), Triage("drop", blob_reason(DOCKER_CONFIG))),
]


@pytest.mark.parametrize(
    ("event", "expected"), [case[1:] for case in TRIAGE_CASES], ids=[case[0] for case in TRIAGE_CASES]
)
def test_triage(event: PushEvent, expected: Triage) -> None:
    """Tagged manifest pushes are decided, untagged pushes and deletes ignored, blob pushes dropped."""
    assert triage(event) == expected


# -- handshakes -------------------------------------------------------------------------------------------

VALIDATION_BODY = sample_bytes("eventgrid-subscription-validation.json")
VALIDATION_ANSWER = {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        (VALIDATION_BODY, {"aeg-event-type": "SubscriptionValidation"}, VALIDATION_ANSWER),
        (VALIDATION_BODY, {"AEG-EVENT-TYPE": "subscriptionvalidation"}, VALIDATION_ANSWER),
        (VALIDATION_BODY, {"Aeg-Event-Type": " SubscriptionValidation "}, VALIDATION_ANSWER),
        (VALIDATION_BODY, {}, VALIDATION_ANSWER),
        (encode(json.loads(VALIDATION_BODY)[0]), {}, VALIDATION_ANSWER),
        (VALIDATION_BODY.decode(), {"content-type": "application/json"}, VALIDATION_ANSWER),
        (sample_bytes("eventgrid-image-pushed.json"), {"aeg-event-type": "Notification"}, None),
        (sample_bytes("eventgrid-image-pushed.json"), {}, None),
        (b"not json at all", {"aeg-event-type": "Notification"}, None),
        (VALIDATION_BODY, {"aeg-event-type": "SubscriptionDeletion"}, None),
    ],
    ids=["header", "header-upper-case-name-lower-case-value", "header-mixed-case-padded", "body-only",
         "body-single-object", "text-body", "notification", "push-without-header",
         "notification-body-not-read", "deletion"],
)
def test_eventgrid_validation_response(
    body: bytes | str, headers: dict[str, str], expected: dict[str, str] | None
) -> None:
    """A subscription validation, told by header (any case) or by event type, is answered with its code; other
    deliveries get None."""
    assert eventgrid_validation_response(body, headers) == expected


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        (sample_bytes("eventgrid-image-pushed.json"), {"aeg-event-type": "SubscriptionValidation"},
         r"header aeg-event-type is 'SubscriptionValidation' "
         r"but the body holds no Microsoft.EventGrid.SubscriptionValidationEvent$"),
        (encode([mutate(json.loads(VALIDATION_BODY)[0], ("data", "validationCode"), DROP)]), {},
         r"^Event Grid validation: \[0\].data.validationCode: expected a non-empty string, got null$"),
        (encode(mutate(json.loads(VALIDATION_BODY)[0], ("data", "validationCode"), 5)), {},
         r"^Event Grid validation: data.validationCode: expected a non-empty string, got number 5$"),
        (b"{", {"aeg-event-type": "SubscriptionValidation"}, r"^Event Grid body: not valid JSON"),
        (b"7", {}, r"got number$"),
    ],
    ids=["header-without-validation-event", "missing-code", "code-number", "malformed", "number"],
)
def test_broken_validation_delivery_raises(body: bytes, headers: dict[str, str], message: str) -> None:
    """A validation delivery without a usable code, or an unreadable body, is an EventPayloadError."""
    with pytest.raises(EventPayloadError, match=message):
        eventgrid_validation_response(body, headers)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"WebHook-Request-Origin": "eventgrid.azure.net"}, {"WebHook-Allowed-Origin": "eventgrid.azure.net"}),
        ({"webhook-request-origin": "eventgrid.azure.net"}, {"WebHook-Allowed-Origin": "eventgrid.azure.net"}),
        ({"WEBHOOK-REQUEST-ORIGIN": "eventgrid.azure.net", "WebHook-Request-Rate": "120"},
         {"WebHook-Allowed-Origin": "eventgrid.azure.net", "WebHook-Allowed-Rate": "*"}),
        ({"webhook-request-origin": "eventemitter.example.com", "webhook-request-rate": "1"},
         {"WebHook-Allowed-Origin": "eventemitter.example.com", "WebHook-Allowed-Rate": "*"}),
    ],
    ids=["canonical-case", "lower-case", "upper-case-with-rate", "other-origin-with-rate"],
)
def test_cloudevents_options_response(headers: dict[str, str], expected: dict[str, str]) -> None:
    """The OPTIONS handshake echoes the requesting origin, and allows any rate only when a rate was asked for."""
    assert cloudevents_options_response(headers) == expected


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, r"header WebHook-Request-Origin is missing$"),
        ({"WebHook-Request-Origin": "  "}, r"header WebHook-Request-Origin is missing$"),
        ({"WebHook-Request-Origin": "evil.example\r\nSet-Cookie: x=y"}, r"is not a host name$"),
        ({"WebHook-Request-Origin": "two words"}, r"'two words' is not a host name$"),
    ],
    ids=["missing", "blank", "header-injection", "space"],
)
def test_cloudevents_options_without_a_usable_origin_raises(headers: dict[str, str], message: str) -> None:
    """An OPTIONS request without a plain origin host is refused rather than echoed."""
    with pytest.raises(EventPayloadError, match=message):
        cloudevents_options_response(headers)


# -- a real distribution registry -------------------------------------------------------------------------


class NotificationReceiver:
    """An HTTP endpoint on 127.0.0.1 that keeps every notification body a registry posts to it."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[str | None, bytes]] = []
        receiver = self

        class Handler(QuietRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                body = self.read_body()
                receiver.deliveries.append((self.headers.get("Content-Type"), body))
                self.send_body(200)

        self._http = LocalHttpServer(Handler, name="notification-receiver")
        self.url = f"{self._http.url}/api/registry-events"

    def __enter__(self) -> NotificationReceiver:
        self._http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.stop()

    def events(self) -> list[ParsedEvent]:
        return [event for content_type, body in list(self.deliveries)
                for event in parse_registry_notification(body, content_type)]

    def wait_for(self, done: Callable[[list[ParsedEvent]], bool], timeout: float = 15) -> list[ParsedEvent]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.events()
            if done(events):
                return events
            time.sleep(0.05)
        raise AssertionError(f"notifications did not arrive within {timeout} s: {self.events()}")


@pytest.fixture
def receiver_and_registry(tmp_path: Path) -> Iterator[tuple[NotificationReceiver, LocalRegistry]]:
    with (
        NotificationReceiver() as receiver,
        LocalRegistry(tmp_path / "registry", notify_url=receiver.url, token="test-token") as registry,
    ):
        yield receiver, registry


def skopeo_copy(layout: Path, tag: str, destination: str, *, all_images: bool) -> None:
    command = ["skopeo", "copy", *(["--all"] if all_images else []), "--dest-tls-verify=false",
               f"oci:{layout}:{tag}", f"docker://{destination}"]
    subprocess.run(command, check=True, capture_output=True, timeout=60)


def test_real_registry_multi_arch_push_notifications(
    tmp_path: Path, receiver_and_registry: tuple[NotificationReceiver, LocalRegistry]
) -> None:
    """What distribution 2.8 sends for `skopeo copy --all` of a 2-platform index parses to two untagged child
    pushes (ignored) and the tagged index (decided), with the blob pushes it also sends dropped."""
    receiver, registry = receiver_and_registry
    builder = ImageBuilder(tmp_path / "layout")
    index = multi(builder, ["linux/amd64", "linux/arm64"])
    builder.tag(index, "1.0")
    children = [entry["digest"] for entry in builder.document(index)["manifests"]]
    skopeo_copy(builder.root, "1.0", f"{registry.host}/team/app:1.0", all_images=True)

    events = receiver.wait_for(lambda events: any(isinstance(e, PushEvent) and e.tag == "1.0" for e in events))
    pushes = [event for event in events if isinstance(event, PushEvent)]
    assert len(pushes) == len(events) == 3
    assert {(e.digest, e.tag, triage(e).disposition) for e in pushes} == {
        (children[0], None, "ignore"), (children[1], None, "ignore"), (index.digest, "1.0", "decide"),
    }
    assert {(e.origin, e.repository, e.schema, e.user_agent is not None) for e in pushes} == {
        (registry.host, "team/app", "distribution", True)
    }
    raw_events = [event for _, body in receiver.deliveries for event in json.loads(body)["events"]]
    assert sum(event["target"].get("mediaType") == "application/octet-stream" for event in raw_events) >= 4


def test_real_registry_helm_chart_push_is_a_chart(
    tmp_path: Path, receiver_and_registry: tuple[NotificationReceiver, LocalRegistry]
) -> None:
    """A Helm chart pushed as an OCI artifact to distribution is a tagged chart push: its Helm config shows in
    the event's references."""
    receiver, registry = receiver_and_registry
    builder = ImageBuilder(tmp_path / "layout")
    chart = builder.helm_chart("demo", "0.1.0")
    builder.tag(chart, "0.1.0")
    skopeo_copy(builder.root, "0.1.0", f"{registry.host}/charts/demo:0.1.0", all_images=False)

    [event] = receiver.wait_for(lambda events: any(isinstance(e, PushEvent) and e.tag for e in events))
    assert isinstance(event, PushEvent)
    assert (event.digest, event.artifact, triage(event).disposition) == (chart.digest, "chart", "decide")
