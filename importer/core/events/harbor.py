"""Harbor's webhook payloads: the native ("Default") JSON and its CloudEvents, both carrying `event_data`.

Native (POSTed as `application/json`, told apart by its `type` and `event_data`):

    {"type": "PUSH_ARTIFACT", "occur_at": 1586922308, "operator": "admin",
     "event_data": {"resources": [{"digest": "sha256:…", "tag": "latest",
                                   "resource_url": "hub.harbor.com/test-webhook/debian:latest"}],
                    "repository": {"name": "debian", "namespace": "test-webhook",
                                   "repo_full_name": "test-webhook/debian", "repo_type": "private"}}}

CloudEvents (`application/cloudevents+json`): `type` `harbor.artifact.pushed` (…`.deleted`, …`.pulled`, …),
`source` `/projects/<id>/webhook/policies/<id>` (a path, not a host), `time`, extensions `operator` and
`requestid`, and `data` the same `event_data` object.

One `PushEvent` per resource. The origin is the host of the resource's `resource_url`: it is only matched against
the configured registries, never connected to. `resource_url` must name `repo_full_name`, so the host cannot be
paired with another repository than the one the event is about.

Event ids: the native payload has none, and Harbor gives each CloudEvent a fresh UUID. Harbor's job service
resends the same payload on a failed delivery, so the id is derived from what a redelivery repeats: the sha256
of the canonical JSON of the payload (for a CloudEvent: without its `id` and `requestid`) and the resource's
index, `harbor-<32 hex>-<index>`. A redelivery is then a `duplicate`; two different pushes differ in their
time, digest or tags.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime

from importer.core.events.fields import (
    EventError,
    as_object,
    join_path,
    json_type,
    read_digest,
    read_required_object,
    read_required_string,
    read_string,
    read_tag,
    show,
)
from importer.core.events.model import DELETE, IMAGE, PUSH, ParsedEvent, PushEvent, RejectedEvent
from importer.core.events.rejections import lenient_string
from importer.core.reference import (
    MAX_REPOSITORY_LENGTH,
    is_valid_host,
    is_valid_repository,
)

SCHEMA_HARBOR = "harbor"
SCHEMA_HARBOR_CLOUDEVENTS = "harbor-cloudevents"

# At most this many resources (Harbor) or tags (Quay) in one delivery: a push names one artifact and its tags.
MAX_RESOURCES_PER_DELIVERY = 256
_LATEST_UNIX_TIME = 253402300799  # 9999-12-31T23:59:59Z

# Native type → action; None: a notice that is not a push or delete, dropped silently.
HARBOR_EVENT_TYPES: Mapping[str, str | None] = {
    "PUSH_ARTIFACT": PUSH,
    "DELETE_ARTIFACT": DELETE,
    "PULL_ARTIFACT": None,
    "UPLOAD_CHART": None,  # ChartMuseum, not the OCI registry: Harbor 2.8 removed it
    "DOWNLOAD_CHART": None,
    "DELETE_CHART": None,
    "SCANNING_COMPLETED": None,
    "SCANNING_FAILED": None,
    "SCANNING_STOPPED": None,
    "QUOTA_EXCEED": None,
    "QUOTA_WARNING": None,
    "REPLICATION": None,
    "TAG_RETENTION": None,
}
# CloudEvents type → action; None: dropped silently (Harbor's formats/cloudevents.go names these).
HARBOR_CLOUDEVENT_TYPES: Mapping[str, str | None] = {
    "harbor.artifact.pushed": PUSH,
    "harbor.artifact.deleted": DELETE,
    "harbor.artifact.pulled": None,
    "harbor.tag.created": None,
    "harbor.quota.exceeded": None,
    "harbor.quota.warned": None,
    "harbor.replication.status.changed": None,
    "harbor.scan.failed": None,
    "harbor.scan.completed": None,
    "harbor.scan.stopped": None,
    "harbor.tag_retention.finished": None,
}


def is_harbor_payload(document: object) -> bool:
    """Whether a registry-notification body is Harbor's native JSON (an object with `type` and `event_data`)."""
    return isinstance(document, dict) and "event_data" in document and "type" in document


def is_harbor_cloudevent(raw: object) -> bool:
    """Whether one CloudEvent is Harbor's (its `type` starts with `harbor.`)."""
    return isinstance(raw, Mapping) and isinstance(raw.get("type"), str) and raw["type"].startswith("harbor.")


def read_harbor_payload(document: Mapping[str, object]) -> list[ParsedEvent]:
    """Harbor's native payload → one event per resource ([] for notices that are not pushes or deletes)."""
    base_id = delivery_id("harbor", document)
    try:
        event_type = read_required_string(document, "type", "")
        if event_type not in HARBOR_EVENT_TYPES:
            raise EventError("type", f"unknown Harbor event type {show(event_type)}")
        action = HARBOR_EVENT_TYPES[event_type]
        if action is None:
            return []
        occurred_at = _unix_time(document, "occur_at", "")
        actor = read_string(document, "operator", "") or None
        event_data = read_required_object(document, "event_data", "")
    except EventError as problem:
        return [_rejected(base_id, problem, _lenient_origin(document, "event_data"))]
    return read_event_data(
        event_data, "event_data", schema=SCHEMA_HARBOR, base_id=base_id, action=action, actor=actor,
        occurred_at=occurred_at,
    )


def read_harbor_cloudevent(raw: object, path: str) -> list[ParsedEvent]:
    """One Harbor CloudEvent → one event per resource of its `data` ([] for types that are not pushes or deletes)."""
    repeated = {key: value for key, value in raw.items() if key not in ("id", "requestid")} if isinstance(
        raw, Mapping) else raw
    base_id = delivery_id("harbor", repeated)
    try:
        event = as_object(raw, path)
        spec_version = read_required_string(event, "specversion", path)
        if spec_version != "1.0":
            raise EventError(
                join_path(path, "specversion"), f"unsupported CloudEvents version {show(spec_version)} (expected '1.0')"
            )
        read_required_string(event, "id", path, max_length=256)
        read_required_string(event, "source", path)  # /projects/<id>/webhook/policies/<id>: not a host, not the origin
        event_type = read_required_string(event, "type", path)
        if event_type not in HARBOR_CLOUDEVENT_TYPES:
            raise EventError(join_path(path, "type"), f"unknown Harbor event type {show(event_type)}")
        action = HARBOR_CLOUDEVENT_TYPES[event_type]
        if action is None:
            return []
        read_string(event, "requestid", path)
        occurred_at = read_string(event, "time", path)
        actor = read_string(event, "operator", path) or None
        data = read_required_object(event, "data", path)
    except EventError as problem:
        return [_rejected(base_id, problem, _lenient_origin(raw, "data"))]
    return read_event_data(
        data, join_path(path, "data"), schema=SCHEMA_HARBOR_CLOUDEVENTS, base_id=base_id, action=action, actor=actor,
        occurred_at=occurred_at,
    )


def read_event_data(
    event_data: Mapping[str, object], path: str, *, schema: str, base_id: str, action: str, actor: str | None,
    occurred_at: str | None,
) -> list[ParsedEvent]:
    """`event_data` (`resources` and `repository`) → one PushEvent per resource; an invalid resource is rejected on
    its own, an invalid `repository` or `resources` rejects the delivery."""
    try:
        repository_path = join_path(path, "repository")
        repository_object = read_required_object(event_data, "repository", path)
        repository = _read_repository_name(repository_object, "repo_full_name", repository_path)
        for key in ("name", "namespace", "repo_type"):
            read_string(repository_object, key, repository_path)
        resources = read_bounded_list(event_data, "resources", path)
    except EventError as problem:
        return [_rejected(base_id, problem, _lenient_origin(event_data, None))]
    events: list[ParsedEvent] = []
    for index, raw in enumerate(resources):
        item_path = f"{join_path(path, 'resources')}[{index}]"
        event_id = f"{base_id}-{index}"
        try:
            events.append(_read_resource(raw, item_path, schema=schema, event_id=event_id, action=action,
                                         repository=repository, actor=actor, occurred_at=occurred_at))
        except EventError as problem:
            events.append(RejectedEvent(event_id=event_id, reason=str(problem), origin=_resource_host(raw)))
    return events


def _read_resource(
    raw: object, path: str, *, schema: str, event_id: str, action: str, repository: str, actor: str | None,
    occurred_at: str | None,
) -> PushEvent:
    resource = as_object(raw, path)
    digest = read_digest(resource, path, required=action == PUSH)
    # Harbor names an artifact pushed or pulled by digest with its digest in `tag`: that is no tag.
    tag = None if digest is not None and resource.get("tag") == digest else read_tag(resource, path)
    resource_url = read_required_string(resource, "resource_url", path)
    origin = registry_host_of(resource_url, repository, join_path(path, "resource_url"))
    return PushEvent(
        event_id=event_id, schema=schema, action=action, origin=origin, repository=repository, tag=tag,
        digest=digest, media_type=None, size=None, artifact=IMAGE, actor=actor, user_agent=None,
        occurred_at=occurred_at,
    )


# -- shared with quay.py ----------------------------------------------------------------------------------------


def registry_host_of(url: str, repository: str, path: str) -> str:
    """The host of `<host>/<repository>[:<tag>|@<digest>]`, checked to name `repository`: only ever matched against
    the configured registries, never connected to."""
    host, slash, rest = url.partition("/")
    if not slash or not is_valid_host(host):
        raise EventError(path, f"{show(url)} does not start with a registry host (expected <host>/{repository})")
    named = rest
    for separator in ("@", ":"):
        if separator in named:
            named = named.split(separator, 1)[0]
    if named != repository:
        raise EventError(path, f"{show(url)} names repository {show(named)}, not {show(repository)}")
    return host


def read_bounded_list(parent: Mapping[str, object], key: str, path: str) -> list[object]:
    """A required array of at most MAX_RESOURCES_PER_DELIVERY entries."""
    value = parent.get(key)
    where = join_path(path, key)
    if value is None:
        raise EventError(where, "missing" if key not in parent else "expected an array, got null")
    if not isinstance(value, list):
        raise EventError(where, f"expected an array, got {json_type(value)}")
    if len(value) > MAX_RESOURCES_PER_DELIVERY:
        raise EventError(where, too_many(len(value)))
    return value


def too_many(count: int) -> str:
    return f"{count} entries, more than the {MAX_RESOURCES_PER_DELIVERY} one delivery may carry"


def _rejected(base_id: str, problem: EventError, origin: str) -> RejectedEvent:
    """The whole delivery is invalid: one rejection, with the id its first event would have had."""
    return RejectedEvent(event_id=f"{base_id}-0", reason=str(problem), origin=origin)


def delivery_id(prefix: str, document: object) -> str:
    """`<prefix>-<32 hex>`: the sha256 of the canonical JSON of what a redelivery repeats."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return f"{prefix}-{hashlib.sha256(canonical.encode('utf-8', 'surrogatepass')).hexdigest()[:32]}"


def _read_repository_name(parent: Mapping[str, object], key: str, path: str) -> str:
    value = read_required_string(parent, key, path, max_length=MAX_REPOSITORY_LENGTH)
    if not is_valid_repository(value):
        raise EventError(join_path(path, key), f"{show(value)} is not a valid repository name")
    return value


def _unix_time(parent: Mapping[str, object], key: str, path: str) -> str | None:
    value = parent.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _LATEST_UNIX_TIME:
        raise EventError(join_path(path, key), f"expected seconds since 1970 as an integer, got {show(value)}")
    return datetime.fromtimestamp(value, UTC).isoformat().replace("+00:00", "Z")


def _resource_host(raw: object) -> str:
    url = lenient_string(raw, "resource_url")
    host = url.partition("/")[0]
    return host if "/" in url and is_valid_host(host) else ""


def _lenient_origin(raw: object, data_key: str | None) -> str:
    """The host of the first resource's URL, when there is a usable one: what a rejection names as its origin."""
    data = raw.get(data_key) if data_key is not None and isinstance(raw, Mapping) else raw
    resources = data.get("resources") if isinstance(data, Mapping) else None
    if isinstance(resources, list) and resources:
        return _resource_host(resources[0])
    return ""
