"""Contract tests for Harbor's webhook payloads (native JSON and CloudEvents) and Quay's `repo_push`.

The valid bodies follow the payloads their projects document: Harbor's "Configure Webhook Notifications" page
(goharbor/website, docs/working-with-projects/project-configuration/configure-webhooks.md: the PUSH_ARTIFACT
example) and the CloudEvents example in Harbor's src/pkg/notifier/formats/cloudevents.go (type
`harbor.artifact.pushed`, source `/projects/<id>/webhook/policies/<id>`, extensions `requestid` and `operator`,
data = event_data); Red Hat Quay's "Repository Notifications" chapter (`repo_push`: repository, namespace, name,
docker_url, homepage, updated_tags) and the older coreos quay-docs form of `updated_tags` (tag → image id).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from importer.core.events import (
    SCHEMA_HARBOR,
    SCHEMA_HARBOR_CLOUDEVENTS,
    SCHEMA_QUAY,
    EventPayloadError,
    PushEvent,
    RejectedEvent,
    parse_cloudevents,
    parse_registry_notification,
    triage,
)
from importer.core.events.harbor import MAX_RESOURCES_PER_DELIVERY

D1 = "sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8"
D2 = "sha256:dde8e930c7b6a490f728e66292bc9bce42efc9bbb5278bae40e4f30f6e00fe8c"


def harbor(resources: list[Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """Harbor's documented PUSH_ARTIFACT example."""
    body: dict[str, Any] = {
        "type": "PUSH_ARTIFACT",
        "occur_at": 1586922308,
        "operator": "admin",
        "event_data": {
            "resources": resources if resources is not None else [
                {"digest": D1, "tag": "latest", "resource_url": "hub.harbor.com/test-webhook/debian:latest"}
            ],
            "repository": {"date_created": 1586922308, "name": "debian", "namespace": "test-webhook",
                           "repo_full_name": "test-webhook/debian", "repo_type": "private"},
        },
    }
    body.update(overrides)
    return body


def harbor_cloudevent(data: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """The CloudEvent Harbor's formatter documents, as a push."""
    event: dict[str, Any] = {
        "specversion": "1.0",
        "requestid": "2eedfab8-61d3-4f3c-8ec3-8f82d1ec4c84",
        "id": "4b2f89a6-548d-4c12-9993-a1f5790b97d2",
        "source": "/projects/1/webhook/policies/3",
        "type": "harbor.artifact.pushed",
        "datacontenttype": "application/json",
        "time": "2023-03-06T06:08:43Z",
        "data": data if data is not None else harbor()["event_data"],
        "operator": "robot$library+ci",
    }
    event.update(overrides)
    return event


def quay(**overrides: Any) -> dict[str, Any]:
    """Red Hat Quay's documented repo_push example (its `name` really is "repository")."""
    body: dict[str, Any] = {
        "name": "repository",
        "repository": "dgangaia/test",
        "namespace": "dgangaia",
        "docker_url": "quay.io/dgangaia/test",
        "homepage": "https://quay.io/repository/dgangaia/repository",
        "updated_tags": ["latest"],
    }
    body.update(overrides)
    return body


def notification(body: object) -> list[Any]:
    return parse_registry_notification(json.dumps(body), "application/json")


def cloudevent(body: object) -> list[Any]:
    return parse_cloudevents(json.dumps(body), "application/cloudevents+json")


def pushes(events: list[Any]) -> list[tuple[str, str, str, str | None, str | None]]:
    assert all(isinstance(event, PushEvent) for event in events), events
    return [(e.schema, e.origin, e.repository, e.tag, e.digest) for e in events]


# -- valid: the documented payloads and their variations -----------------------------------------------------

R = "test-webhook/debian"
H = "hub.harbor.com"
VALID: dict[str, tuple[Any, Any, list[tuple[str, str, str, str | None, str | None]]]] = {
    "harbor-documented-example": (notification, harbor(), [(SCHEMA_HARBOR, H, R, "latest", D1)]),
    "harbor-several-resources": (notification, harbor([
        {"digest": D1, "tag": "latest", "resource_url": f"{H}/{R}:latest"},
        {"digest": D1, "tag": "1.0", "resource_url": f"{H}/{R}:1.0"},
        {"digest": D2, "tag": "2.0", "resource_url": f"{H}/{R}:2.0"},
    ]), [(SCHEMA_HARBOR, H, R, "latest", D1), (SCHEMA_HARBOR, H, R, "1.0", D1), (SCHEMA_HARBOR, H, R, "2.0", D2)]),
    "harbor-digest-only": (notification, harbor([{"digest": D2, "resource_url": f"{H}/{R}@{D2}"}]),
                           [(SCHEMA_HARBOR, H, R, None, D2)]),
    "harbor-digest-in-tag-field": (notification, harbor([{"digest": D2, "tag": D2, "resource_url": f"{H}/{R}@{D2}"}]),
                                   [(SCHEMA_HARBOR, H, R, None, D2)]),
    "harbor-host-with-port": (notification, harbor([{"digest": D1, "tag": "v1",
                                                     "resource_url": f"127.0.0.1:5000/{R}:v1"}]),
                              [(SCHEMA_HARBOR, "127.0.0.1:5000", R, "v1", D1)]),
    "harbor-cloudevent-documented": (cloudevent, harbor_cloudevent(), [(SCHEMA_HARBOR_CLOUDEVENTS, H, R, "latest", D1)]),
    "harbor-cloudevents-batch": (
        lambda body: parse_cloudevents(json.dumps(body), "application/cloudevents-batch+json"),
        [harbor_cloudevent(), harbor_cloudevent(id="other", time="2023-03-06T06:09:00Z")],
        [(SCHEMA_HARBOR_CLOUDEVENTS, H, R, "latest", D1)] * 2),
    "quay-documented-example": (notification, quay(), [(SCHEMA_QUAY, "quay.io", "dgangaia/test", "latest", None)]),
    "quay-several-tags": (notification, quay(updated_tags=["latest", "1.0", "1.0.1"]),
                          [(SCHEMA_QUAY, "quay.io", "dgangaia/test", tag, None) for tag in ("latest", "1.0", "1.0.1")]),
    "quay-older-tag-object": (notification, quay(updated_tags={"latest": "b750fe79269d2ec9a3c593ef05b4332b"}),
                              [(SCHEMA_QUAY, "quay.io", "dgangaia/test", "latest", None)]),
    "quay-no-tags": (notification, quay(updated_tags=[]), []),
}


@pytest.mark.parametrize(("parse", "body", "expected"), VALID.values(), ids=VALID.keys())
def test_documented_payloads_give_one_push_per_resource_or_tag(parse: Any, body: Any, expected: Any) -> None:
    events = parse(body)
    assert pushes(events) == expected
    assert len({event.event_id for event in events}) == len(events)  # one id per resource or tag


def test_harbor_fields_are_kept() -> None:
    [event] = notification(harbor())
    assert (event.action, event.actor, event.occurred_at, event.artifact) == ("push", "admin", "2020-04-15T03:45:08Z",
                                                                              "image")
    assert triage(event).disposition == "decide"
    [event] = cloudevent(harbor_cloudevent())
    assert (event.actor, event.occurred_at) == ("robot$library+ci", "2023-03-06T06:08:43Z")


def test_quay_pushes_are_tagged_without_a_digest_and_decided() -> None:
    events = notification(quay(updated_tags=["a", "b"]))
    assert [(e.tag, e.digest, triage(e).disposition) for e in events] == [("a", None, "decide"), ("b", None, "decide")]


# -- event ids: stable per delivery, so a redelivery is a duplicate -------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: notification(harbor()), lambda: notification(quay(updated_tags=["x", "y"])),
], ids=["harbor", "quay"])
def test_a_redelivery_has_the_same_event_ids(make: Any) -> None:
    first, again = make(), make()
    assert [e.event_id for e in first] == [e.event_id for e in again]


def test_harbor_event_ids_do_not_depend_on_key_order_or_whitespace() -> None:
    body = harbor()
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=4)
    assert parse_registry_notification(reordered, None)[0].event_id == notification(body)[0].event_id


def test_a_harbor_cloudevent_resent_with_a_fresh_uuid_is_the_same_event() -> None:
    """Harbor gives each CloudEvent a new UUID id and a request id: neither decides the event id."""
    first = cloudevent(harbor_cloudevent())
    again = cloudevent(harbor_cloudevent(id="9c1c2d1e-0000-4000-8000-000000000000", requestid="other"))
    assert first[0].event_id == again[0].event_id


def test_different_pushes_have_different_ids() -> None:
    one = notification(harbor())[0].event_id
    assert notification(harbor(occur_at=1586922309))[0].event_id != one
    assert notification(quay(updated_tags=["other"]))[0].event_id != notification(quay())[0].event_id


# -- dropped notices -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    harbor(type="PULL_ARTIFACT"), harbor(type="SCANNING_COMPLETED"), harbor(type="QUOTA_WARNING"),
], ids=["pull", "scan", "quota"])
def test_harbor_notices_that_are_not_pushes_are_dropped(body: Any) -> None:
    assert notification(body) == []


@pytest.mark.parametrize("event_type", ["harbor.artifact.pulled", "harbor.scan.completed"])
def test_harbor_cloudevents_that_are_not_pushes_are_dropped(event_type: str) -> None:
    assert cloudevent(harbor_cloudevent(type=event_type)) == []


def test_a_harbor_delete_is_a_delete_and_ignored() -> None:
    [event] = notification(harbor(type="DELETE_ARTIFACT"))
    assert event.action == "delete" and triage(event).disposition == "ignore"


# -- hostile bodies: a RejectedEvent with a reason naming the place, never a traceback ------------------------

def _without(body: dict[str, Any], *path: str) -> dict[str, Any]:
    body = copy.deepcopy(body)
    node = body
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return body


def _resource(**fields: Any) -> dict[str, Any]:
    return harbor([{"digest": D1, "tag": "latest", "resource_url": f"{H}/{R}:latest", **fields}])


HOSTILE: dict[str, tuple[Any, Any, str]] = {
    "harbor-unknown-type": (notification, harbor(type="PUSH_EVERYTHING"), "type: unknown Harbor event type"),
    "harbor-type-not-string": (notification, harbor(type=7), "type: expected a string"),
    "harbor-occur-at-string": (notification, harbor(occur_at="yesterday"), "occur_at: expected seconds"),
    "harbor-occur-at-bool": (notification, harbor(occur_at=True), "occur_at: expected seconds"),
    "harbor-event-data-array": (notification, harbor(event_data=[]), "event_data: expected an object"),
    "harbor-no-repository": (notification, _without(harbor(), "event_data", "repository"),
                             "event_data.repository: missing"),
    "harbor-no-full-name": (notification, _without(harbor(), "event_data", "repository", "repo_full_name"),
                            "event_data.repository.repo_full_name: missing"),
    "harbor-bad-repository-name": (notification, harbor([], event_data={
        "resources": [], "repository": {"repo_full_name": "Test/UPPER"}}), "is not a valid repository name"),
    "harbor-resources-not-list": (notification, harbor({"digest": D1}), "event_data.resources: expected an array"),  # type: ignore[arg-type]
    "harbor-no-resources": (notification, _without(harbor(), "event_data", "resources"),
                            "event_data.resources: missing"),
    "harbor-too-many-resources": (notification, harbor([{"digest": D1}] * (MAX_RESOURCES_PER_DELIVERY + 1)),
                                  f"more than the {MAX_RESOURCES_PER_DELIVERY}"),
    "harbor-resource-not-object": (notification, harbor(["x"]), "event_data.resources[0]: expected an object"),
    "harbor-no-digest": (notification, harbor([{"tag": "1", "resource_url": f"{H}/{R}:1"}]),
                         "event_data.resources[0].digest: missing"),
    "harbor-bad-digest": (notification, _resource(digest="sha256:xyz"), "resources[0].digest: 'sha256:xyz' is not a"),
    "harbor-bad-tag": (notification, _resource(tag="-bad tag"), "resources[0].tag: '-bad tag' is not a valid tag"),
    "harbor-tag-control-character": (notification, _resource(tag="a\u202eb"), "resources[0].tag: "),
    "harbor-no-resource-url": (notification, harbor([{"digest": D1, "tag": "1"}]), "resource_url: missing"),
    "harbor-url-with-scheme": (notification, _resource(resource_url=f"https://{H}/{R}:latest"),
                               "does not start with a registry host"),
    "harbor-url-other-repository": (notification, _resource(resource_url=f"{H}/other/repo:latest"),
                                    "names repository 'other/repo', not 'test-webhook/debian'"),
    "harbor-url-bad-host": (notification, _resource(resource_url=f"evil host/{R}:latest"),
                            "does not start with a registry host"),
    "harbor-ce-bad-specversion": (cloudevent, harbor_cloudevent(specversion="0.3"), "unsupported CloudEvents version"),
    "harbor-ce-unknown-type": (cloudevent, harbor_cloudevent(type="harbor.artifact.exploded"), "unknown Harbor event"),
    "harbor-ce-no-data": (cloudevent, _without(harbor_cloudevent(), "data"), "data: missing"),
    "harbor-ce-no-id": (cloudevent, _without(harbor_cloudevent(), "id"), "id: missing"),
    "quay-no-repository": (notification, _without(quay(), "repository"), "repository: missing"),
    "quay-bad-repository": (notification, quay(repository="../etc"), "is not a valid repository name"),
    "quay-wrong-namespace": (notification, quay(namespace="someone"), "is not in namespace 'someone'"),
    "quay-no-docker-url": (notification, _without(quay(), "docker_url"), "docker_url: missing"),
    "quay-docker-url-other-repository": (notification, quay(docker_url="quay.io/other/test"), "names repository"),
    "quay-docker-url-no-host": (notification, quay(docker_url="dgangaia/test"), "names repository 'test'"),
    "quay-tags-not-list": (notification, quay(updated_tags="latest"), "updated_tags: expected an array"),
    "quay-too-many-tags": (notification, quay(updated_tags=[f"t{i}" for i in range(MAX_RESOURCES_PER_DELIVERY + 1)]),
                           f"more than the {MAX_RESOURCES_PER_DELIVERY}"),
}


@pytest.mark.parametrize(("parse", "body", "reason"), HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_bodies_are_rejected_with_a_reason(parse: Any, body: Any, reason: str) -> None:
    events = parse(body)
    rejected = [event for event in events if isinstance(event, RejectedEvent)]
    assert rejected, events
    assert reason in rejected[0].reason
    assert rejected[0].event_id  # stable and printable
    assert len(parse(body)) == len(events) and parse(body)[0].event_id == events[0].event_id


def test_one_bad_resource_does_not_sink_its_siblings() -> None:
    events = notification(harbor([
        {"digest": D1, "tag": "ok", "resource_url": f"{H}/{R}:ok"},
        {"digest": "sha256:nope", "tag": "bad", "resource_url": f"{H}/{R}:bad"},
    ]))
    assert isinstance(events[0], PushEvent) and isinstance(events[1], RejectedEvent)
    assert events[1].reason.startswith("event_data.resources[1].digest:") and events[1].origin == H


def test_one_bad_quay_tag_does_not_sink_its_siblings() -> None:
    events = notification(quay(updated_tags=["ok", "not a tag", 5]))
    assert [type(e).__name__ for e in events] == ["PushEvent", "RejectedEvent", "RejectedEvent"]
    assert "updated_tags[1]: 'not a tag' is not a valid tag" == events[1].reason
    assert "updated_tags[2]: expected a string, got number" == events[2].reason


def test_bodies_that_are_no_event_payload_raise_the_payload_error() -> None:
    with pytest.raises(EventPayloadError, match="Harbor webhook body"):
        notification({"type": "PUSH_ARTIFACT"})  # no event_data: not recognised as anything
    with pytest.raises(EventPayloadError, match="not valid JSON"):
        parse_registry_notification(b'{"type": "PUSH_ARTIFACT", "event_data": {', "application/json")


def test_the_origin_is_only_the_host_named_by_the_url() -> None:
    """The parser reads a host out of the body and hands it on as `origin`, to be matched against configured
    registries (tests/entry/test_harbor_quay_route.py shows an unconfigured one rejected without a connection)."""
    [event] = notification(_resource(resource_url=f"attacker.example:443/{R}:latest"))
    assert event.origin == "attacker.example:443"
