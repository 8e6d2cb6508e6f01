"""Registry push notifications of every kind → one normalised `PushEvent`, plus the delivery handshakes.

Pure: bytes and header dicts in, values out; no I/O, no clock.

    for event in parse_eventgrid(body):            # or parse_cloudevents / parse_registry_notification
        if isinstance(event, RejectedEvent):
            record_rejection(event.event_id, event.reason)
        elif triage(event).disposition == "decide":
            handle(event)                          # tagged manifest push: inspect and decide

Inputs
- Event Grid schema (`parse_eventgrid`, or `parse_eventgrid_envelope` for the one event the Functions
  trigger hands over): `Microsoft.ContainerRegistry.ImagePushed|ImageDeleted|ChartPushed|ChartDeleted`.
- CloudEvents 1.0 structured mode (`parse_cloudevents`): one event or a batch, same ACR types and `data`.
- CNCF distribution notification envelopes `{"events": [...]}` and ACR classic webhook bodies (one event,
  no envelope), both through `parse_registry_notification`, told apart by shape.
The ACR `data`, a distribution event and a classic webhook body share one shape: `target`, `request`, `actor`.

Outcomes per event
- `PushEvent`: valid push or delete. `origin` names the sending registry (Event Grid `topic`, CloudEvents
  `source`, else `request.host`); it is for mapping onto a configured registry, never for connecting to.
- `RejectedEvent`: one event inside a valid payload that is itself invalid; its siblings still parse.
- Dropped silently (absent from the result): pulls, mounts, ACR `quarantine` notices and blob pushes
  (a target whose media type is not a manifest, index or chart type, or whose URL is a blob URL).
  `parse_eventgrid_envelope` returns a single event and cannot drop: `triage` says "drop" instead.
- `EventPayloadError`: the whole body is not an event payload (not JSON, wrong shape, over `MAX_BODY_BYTES`,
  unsupported content type); the caller answers HTTP 400.

Reasons name the place in the body, e.g. "events[2].target.digest: 'sha256:xyz' is not a valid digest";
paths are relative to the body: `[i]` in a JSON array, `events[i]` in a distribution envelope, none for a
single object.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from importer.core.media_types import HELM_MEDIA_TYPES, PUSHABLE_MANIFEST_MEDIA_TYPES
from importer.core.reference import MAX_REPOSITORY_LENGTH, is_valid_digest, is_valid_repository, is_valid_tag

MAX_BODY_BYTES = 1024 * 1024

SCHEMA_EVENTGRID = "eventgrid"
SCHEMA_CLOUDEVENTS = "cloudevents"
SCHEMA_DISTRIBUTION = "distribution"
SCHEMA_ACR_WEBHOOK = "acr-webhook"

PUSH = "push"
DELETE = "delete"
IMAGE = "image"
CHART = "chart"

ACR_EVENT_TYPES: Mapping[str, tuple[str, str]] = {
    "Microsoft.ContainerRegistry.ImagePushed": (PUSH, IMAGE),
    "Microsoft.ContainerRegistry.ImageDeleted": (DELETE, IMAGE),
    "Microsoft.ContainerRegistry.ChartPushed": (PUSH, CHART),
    "Microsoft.ContainerRegistry.ChartDeleted": (DELETE, CHART),
}
SUBSCRIPTION_VALIDATION_EVENT_TYPE = "Microsoft.EventGrid.SubscriptionValidationEvent"

# Action → (action, artifact or None when the media type decides); None as the value: dropped silently.
_DISTRIBUTION_ACTIONS: Mapping[str, tuple[str, str | None] | None] = {
    "push": (PUSH, None),
    "delete": (DELETE, None),
    "pull": None,
    "mount": None,
}
# `quarantine` tells scanners that ACR's quarantine policy holds a new image; it is not a push we act on.
_ACR_WEBHOOK_ACTIONS: Mapping[str, tuple[str, str | None] | None] = {
    "push": (PUSH, None),
    "delete": (DELETE, None),
    "chart_push": (PUSH, CHART),
    "chart_delete": (DELETE, CHART),
    "quarantine": None,
}

_CLOUDEVENTS_SINGLE = "application/cloudevents+json"
_CLOUDEVENTS_BATCH = "application/cloudevents-batch+json"

_EVENT_ID = re.compile(r"[^\x00-\x1f\x7f]{1,256}")
_HEADER_ORIGIN = re.compile(r"[\x21-\x7e]{1,255}")
_BLOB_URL_PATH = re.compile(r"/blobs/[^/]+$")


class EventPayloadError(ValueError):
    """The whole body is not an event payload; the message says what and where. Answer HTTP 400."""


@dataclass(frozen=True, slots=True)
class PushEvent:
    """One registry event, normalised: a push or delete of a manifest (or chart) in one repository."""

    event_id: str
    schema: str  # "eventgrid" | "cloudevents" | "distribution" | "acr-webhook"
    action: str  # "push" | "delete"
    origin: str  # Event Grid topic / CloudEvents source / request.host; "" when absent
    repository: str
    tag: str | None  # None when absent or empty
    digest: str | None  # always set for pushes; deletes may lack it
    media_type: str | None
    size: int | None
    artifact: str  # "image" | "chart"
    actor: str | None
    user_agent: str | None
    occurred_at: str | None  # the event's own timestamp, as sent


@dataclass(frozen=True, slots=True)
class RejectedEvent:
    """One event inside a valid payload that is itself invalid."""

    event_id: str  # its own id when usable, else "sha256-<hex>" of its canonical JSON
    reason: str  # what was wrong and where, e.g. "events[2].target.digest: ... is not a valid digest"
    origin: str  # as for PushEvent, "" when unknown


ParsedEvent = PushEvent | RejectedEvent


@dataclass(frozen=True, slots=True)
class Triage:
    """What to do with a parsed push event before any registry is read."""

    disposition: str  # "decide" | "ignore" | "drop"
    reason: str


# -- public parsers ---------------------------------------------------------------------------------------


def parse_eventgrid(body: bytes | str) -> list[ParsedEvent]:
    """Parse an Event Grid schema delivery: a JSON array of events, or one event object."""
    document = _load_json(body, "Event Grid body")
    if isinstance(document, dict) and "eventType" not in document:
        hint = " (a CloudEvents body goes to parse_cloudevents)" if "specversion" in document else ""
        raise EventPayloadError(
            f"Event Grid body: the object has no 'eventType', so it is not an Event Grid event{hint}"
        )
    return _parse_all(_eventgrid_items(document), _eventgrid_event, _lenient_origin_eventgrid)


def parse_eventgrid_envelope(envelope: Mapping[str, object]) -> ParsedEvent:
    """Parse the one event the Functions Event Grid trigger hands over, as a mapping of its fields.

    Keys: `id, topic, subject, eventType` (or `event_type`), `eventTime` (or `event_time`, a string or a
    datetime), `data`. Blob pushes are returned, not dropped: `triage` answers "drop" for them.
    """
    event: dict[str, object] = dict(envelope)
    for snake, camel in (("event_type", "eventType"), ("event_time", "eventTime"), ("data_version", "dataVersion")):
        if camel not in event and snake in event:
            event[camel] = event.pop(snake)
    event_time = event.get("eventTime")
    if isinstance(event_time, datetime):
        event["eventTime"] = event_time.isoformat()
    parsed = _parse_one(
        event, "", lambda raw, path: _eventgrid_event(raw, path, keep_blobs=True), _lenient_origin_eventgrid
    )
    assert parsed is not None, "keep_blobs=True never drops"
    return parsed


def parse_cloudevents(body: bytes | str, content_type: str | None) -> list[ParsedEvent]:
    """Parse CloudEvents 1.0 structured JSON: one event (`application/cloudevents+json`) or a batch
    (`application/cloudevents-batch+json`); with `application/json` or no content type, by shape."""
    media_type = _media_type(content_type)
    if media_type not in (None, "application/json", _CLOUDEVENTS_SINGLE, _CLOUDEVENTS_BATCH):
        raise EventPayloadError(
            f"CloudEvents body: unsupported content type {content_type!r} "
            f"(expected {_CLOUDEVENTS_SINGLE} or {_CLOUDEVENTS_BATCH})"
        )
    document = _load_json(body, "CloudEvents body")
    if isinstance(document, list):
        if media_type == _CLOUDEVENTS_SINGLE:
            raise EventPayloadError(
                f"CloudEvents body: content type {_CLOUDEVENTS_SINGLE} needs one event object, got an array"
            )
        items = [(raw, f"[{index}]") for index, raw in enumerate(document)]
    elif isinstance(document, dict):
        if media_type == _CLOUDEVENTS_BATCH:
            raise EventPayloadError(
                f"CloudEvents body: content type {_CLOUDEVENTS_BATCH} needs an array of events, got an object"
            )
        if "specversion" not in document:
            raise EventPayloadError("CloudEvents body: the object has no 'specversion', so it is not a CloudEvent")
        items = [(document, "")]
    else:
        raise EventPayloadError(
            f"CloudEvents body: expected one event object or an array of events, got {_json_type(document)}"
        )
    return _parse_all(items, _cloudevent, _lenient_origin_cloudevents)


def parse_registry_notification(body: bytes | str, content_type: str | None) -> list[ParsedEvent]:
    """Parse a CNCF distribution notification envelope `{"events": [...]}` or an ACR classic webhook body
    (one event object with `action`), told apart by shape. The content type must be a JSON type, if given."""
    media_type = _media_type(content_type)
    if media_type is not None and media_type != "application/json" and not media_type.endswith("+json"):
        raise EventPayloadError(
            f"registry notification body: unsupported content type {content_type!r} (expected JSON)"
        )
    document = _load_json(body, "registry notification body")
    if not isinstance(document, dict):
        raise EventPayloadError(f"registry notification body: expected an object, got {_json_type(document)}")
    if "events" in document:
        events = document["events"]
        if not isinstance(events, list):
            raise EventPayloadError(f"registry notification body: 'events' must be an array, got {_json_type(events)}")
        items = [(raw, f"events[{index}]") for index, raw in enumerate(events)]
        return _parse_all(items, _distribution_event, _lenient_origin_notification)
    if "action" in document:
        return _parse_all([(document, "")], _acr_webhook_event, _lenient_origin_notification)
    raise EventPayloadError(
        "registry notification body: neither a distribution envelope (an object with 'events') "
        "nor an ACR webhook body (an object with 'action')"
    )


# -- handshakes -------------------------------------------------------------------------------------------


def eventgrid_validation_response(body: bytes | str, headers: Mapping[str, str]) -> dict[str, str] | None:
    """The answer to an Event Grid subscription validation, or None when the delivery is not one.

    A delivery is a validation when header `aeg-event-type` says `SubscriptionValidation`, or, without that
    header, when it holds a `Microsoft.EventGrid.SubscriptionValidationEvent`. Answer HTTP 200 with the dict.
    """
    event_kind = _header(headers, "aeg-event-type")
    if event_kind is not None and event_kind.strip().lower() != "subscriptionvalidation":
        return None
    document = _load_json(body, "Event Grid body")
    for raw, path in _eventgrid_items(document):
        if isinstance(raw, dict) and raw.get("eventType") == SUBSCRIPTION_VALIDATION_EVENT_TYPE:
            data = raw.get("data")
            code = data.get("validationCode") if isinstance(data, dict) else None
            if not isinstance(code, str) or not code:
                where = _join(_join(path, "data"), "validationCode")
                raise EventPayloadError(
                    f"Event Grid validation: {where}: expected a non-empty string, got {_show(code)}"
                )
            return {"validationResponse": code}
    if event_kind is not None:
        raise EventPayloadError(
            f"Event Grid body: header aeg-event-type is {event_kind!r} "
            f"but the body holds no {SUBSCRIPTION_VALIDATION_EVENT_TYPE}"
        )
    return None


def cloudevents_options_response(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers answering the CloudEvents webhook abuse-protection handshake (an OPTIONS request).

    Echoes `WebHook-Request-Origin` as `WebHook-Allowed-Origin`, and allows any rate when one was asked for.
    """
    origin = _header(headers, "WebHook-Request-Origin")
    if origin is None or not origin.strip():
        raise EventPayloadError("CloudEvents OPTIONS handshake: header WebHook-Request-Origin is missing")
    origin = origin.strip()
    if not _HEADER_ORIGIN.fullmatch(origin):
        raise EventPayloadError(
            f"CloudEvents OPTIONS handshake: WebHook-Request-Origin {_show(origin)} is not a host name"
        )
    response = {"WebHook-Allowed-Origin": origin}
    if _header(headers, "WebHook-Request-Rate") is not None:
        response["WebHook-Allowed-Rate"] = "*"
    return response


# -- triage -----------------------------------------------------------------------------------------------


def is_manifest_media_type(media_type: str) -> bool:
    """Whether a push of this media type is a manifest, index or chart (rather than a layer, config or blob)."""
    return _bare_media_type(media_type) in PUSHABLE_MANIFEST_MEDIA_TYPES


def triage(event: PushEvent) -> Triage:
    """Sort an event: decide on tagged manifest pushes, ignore deletes and untagged pushes, drop blob pushes.

    An unknown (absent) media type is treated as a manifest: inspecting it will tell.
    """
    if event.action == DELETE:
        return Triage("ignore", "delete event")
    if event.media_type is not None and not is_manifest_media_type(event.media_type):
        return Triage("drop", f"push of {event.digest} with media type {event.media_type!r} is a blob, not a manifest")
    if event.tag is None:
        return Triage("ignore", f"untagged push of {event.digest} (a child manifest of a multi-arch push)")
    return Triage("decide", f"tagged {event.artifact} push of {event.repository}:{event.tag}")


# -- one event of each schema -----------------------------------------------------------------------------


class _EventError(Exception):
    """One event is invalid; `str()` is the reason with its path."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path or '(event)'}: {problem}")


_EventParser = Callable[[object, str], "PushEvent | None"]


def _eventgrid_event(raw: object, path: str, *, keep_blobs: bool = False) -> PushEvent | None:
    event = _as_object(raw, path)
    event_id = _event_id(event, path)
    origin = _string(event, "topic", path) or ""
    return _acr_event(
        event, path, schema=SCHEMA_EVENTGRID, event_id=event_id, origin=origin, type_key="eventType",
        time_key="eventTime", keep_blobs=keep_blobs,
    )


def _cloudevent(raw: object, path: str) -> PushEvent | None:
    event = _as_object(raw, path)
    event_id = _event_id(event, path)
    spec_version = _required_string(event, "specversion", path)
    if spec_version != "1.0":
        raise _EventError(
            _join(path, "specversion"), f"unsupported CloudEvents version {_show(spec_version)} (expected '1.0')"
        )
    origin = _required_string(event, "source", path)
    return _acr_event(
        event, path, schema=SCHEMA_CLOUDEVENTS, event_id=event_id, origin=origin, type_key="type", time_key="time",
        keep_blobs=False,
    )


def _acr_event(
    event: Mapping[str, object], path: str, *, schema: str, event_id: str, origin: str, type_key: str, time_key: str,
    keep_blobs: bool,
) -> PushEvent | None:
    """An ACR event in an envelope (Event Grid schema or CloudEvents): the envelope's type and time, ACR's `data`."""
    event_type = _required_string(event, type_key, path)
    if event_type not in ACR_EVENT_TYPES:
        raise _EventError(_join(path, type_key), f"unknown event type {_show(event_type)}")
    action, artifact = ACR_EVENT_TYPES[event_type]
    data_path = _join(path, "data")
    data = _required_object(event, "data", path)
    _check_data_action(data, data_path, action, f"event type {event_type!r}")
    occurred_at = _string(event, time_key, path) or _string(data, "timestamp", data_path)
    return _target_event(
        data, data_path, schema=schema, event_id=event_id, action=action, artifact=artifact,
        origin=origin, occurred_at=occurred_at, keep_blobs=keep_blobs,
    )


def _distribution_event(raw: object, path: str) -> PushEvent | None:
    return _notification_event(raw, path, SCHEMA_DISTRIBUTION, _DISTRIBUTION_ACTIONS)


def _acr_webhook_event(raw: object, path: str) -> PushEvent | None:
    return _notification_event(raw, path, SCHEMA_ACR_WEBHOOK, _ACR_WEBHOOK_ACTIONS)


def _notification_event(
    raw: object, path: str, schema: str, actions: Mapping[str, tuple[str, str | None] | None]
) -> PushEvent | None:
    event = _as_object(raw, path)
    action_name = _required_string(event, "action", path)
    if action_name not in actions:
        expected = ", ".join(actions)
        raise _EventError(_join(path, "action"), f"unknown action {_show(action_name)} (expected one of {expected})")
    meaning = actions[action_name]
    if meaning is None:
        return None
    action, artifact = meaning
    event_id = _event_id(event, path)
    return _target_event(
        event, path, schema=schema, event_id=event_id, action=action, artifact=artifact,
        origin=None, occurred_at=_string(event, "timestamp", path), keep_blobs=False,
    )


def _check_data_action(data: Mapping[str, object], path: str, action: str, said_by: str) -> None:
    """The ACR `data.action`, when present, must agree with what the envelope's event type says."""
    data_action = _string(data, "action", path)
    if data_action is None:
        return
    meaning = _ACR_WEBHOOK_ACTIONS.get(data_action)
    if meaning is None or meaning[0] != action:
        raise _EventError(_join(path, "action"), f"{_show(data_action)} contradicts {said_by}")


def _target_event(
    event: Mapping[str, object],
    path: str,
    *,
    schema: str,
    event_id: str,
    action: str,
    artifact: str | None,
    origin: str | None,
    occurred_at: str | None,
    keep_blobs: bool,
) -> PushEvent | None:
    """Read the shared `target`/`request`/`actor` shape; None for a blob push unless `keep_blobs`."""
    target_path = _join(path, "target")
    target = _required_object(event, "target", path)
    media_type = _string(target, "mediaType", target_path)
    url = _string(target, "url", target_path)
    if action == PUSH and not keep_blobs and _is_blob_push(media_type, url):
        return None
    repository = _repository(target, target_path)
    digest = _digest(target, target_path, required=action == PUSH)
    tag = _tag(target, target_path)
    size = _size(target, target_path)
    references = _reference_media_types(target, target_path)

    request_path = _join(path, "request")
    request = _object(event, "request", path) or {}
    user_agent = _string(request, "useragent", request_path) or None
    if origin is None:
        origin = _string(request, "host", request_path) or ""
    actor_path = _join(path, "actor")
    actor = _object(event, "actor", path) or {}
    actor_name = _string(actor, "name", actor_path) or None

    if artifact is None:
        helm = media_type is not None and _bare_media_type(media_type) in HELM_MEDIA_TYPES
        artifact = CHART if helm or references & HELM_MEDIA_TYPES else IMAGE
    return PushEvent(
        event_id=event_id,
        schema=schema,
        action=action,
        origin=origin,
        repository=repository,
        tag=tag,
        digest=digest,
        media_type=media_type,
        size=size,
        artifact=artifact,
        actor=actor_name,
        user_agent=user_agent,
        occurred_at=occurred_at,
    )


def _is_blob_push(media_type: str | None, url: str | None) -> bool:
    # Distribution's target.url ends in /blobs/<digest> or /manifests/<reference>; a repository may itself
    # have a path segment called "blobs", so only the last two segments count.
    if url is not None and _BLOB_URL_PATH.search(urlsplit(url).path):
        return True
    return media_type is not None and not is_manifest_media_type(media_type)


# -- fields -----------------------------------------------------------------------------------------------


def _event_id(event: Mapping[str, object], path: str) -> str:
    value = _required_string(event, "id", path)
    if not _EVENT_ID.fullmatch(value):
        raise _EventError(
            _join(path, "id"), f"{_show(value)} is not a usable event id (1 to 256 characters, no control characters)"
        )
    return value


def _repository(target: Mapping[str, object], path: str) -> str:
    value = _required_string(target, "repository", path)
    if len(value) > MAX_REPOSITORY_LENGTH:
        raise _EventError(
            _join(path, "repository"),
            f"{_show(value)} is {len(value)} characters, longer than {MAX_REPOSITORY_LENGTH}",
        )
    if not is_valid_repository(value):
        raise _EventError(_join(path, "repository"), f"{_show(value)} is not a valid repository name")
    return value


def _tag(target: Mapping[str, object], path: str) -> str | None:
    value = _string(target, "tag", path)
    if not value:
        return None
    if not is_valid_tag(value):
        raise _EventError(_join(path, "tag"), f"{_show(value)} is not a valid tag")
    return value


def _digest(target: Mapping[str, object], path: str, *, required: bool) -> str | None:
    value = _required_string(target, "digest", path) if required else _string(target, "digest", path)
    if value is None:
        return None
    if not is_valid_digest(value):
        raise _EventError(
            _join(path, "digest"),
            f"{_show(value)} is not a valid digest"
            " (expected sha256:<64 lower-case hex> or sha512:<128 lower-case hex>)",
        )
    return value


def _size(target: Mapping[str, object], path: str) -> int | None:
    for key in ("size", "length"):
        value = target.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise _EventError(_join(path, key), f"expected an integer, got {_show(value)}")
        if value < 0:
            raise _EventError(_join(path, key), f"{value} is negative")
        return value
    return None


def _reference_media_types(target: Mapping[str, object], path: str) -> frozenset[str]:
    """Media types of `target.references` (distribution with `includereferences`), lower-cased."""
    references = target.get("references")
    if references is None:
        return frozenset()
    references_path = _join(path, "references")
    if not isinstance(references, list):
        raise _EventError(references_path, f"expected an array, got {_json_type(references)}")
    found: set[str] = set()
    for index, reference in enumerate(references):
        item_path = f"{references_path}[{index}]"
        media_type = _string(_as_object(reference, item_path), "mediaType", item_path)
        if media_type is not None:
            found.add(_bare_media_type(media_type))
    return frozenset(found)


def _as_object(value: object, path: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise _EventError(path, f"expected an object, got {_json_type(value)}")
    return value


def _object(parent: Mapping[str, object], key: str, path: str) -> Mapping[str, object] | None:
    value = parent.get(key)
    return None if value is None else _as_object(value, _join(path, key))


def _required_object(parent: Mapping[str, object], key: str, path: str) -> Mapping[str, object]:
    value = _object(parent, key, path)
    if value is None:
        raise _EventError(_join(path, key), "missing" if key not in parent else "expected an object, got null")
    return value


def _string(parent: Mapping[str, object], key: str, path: str) -> str | None:
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _EventError(_join(path, key), f"expected a string, got {_show(value)}")
    return value


def _required_string(parent: Mapping[str, object], key: str, path: str) -> str:
    """A string that must be present and non-empty."""
    value = _string(parent, key, path)
    if value is None:
        raise _EventError(_join(path, key), "missing" if key not in parent else "expected a string, got null")
    if not value:
        raise _EventError(_join(path, key), "empty string")
    return value


# -- plumbing ---------------------------------------------------------------------------------------------


def _eventgrid_items(document: object) -> list[tuple[object, str]]:
    """The events of an Event Grid body (an array, or one object) with their paths."""
    if isinstance(document, list):
        return [(raw, f"[{index}]") for index, raw in enumerate(document)]
    if isinstance(document, dict):
        return [(document, "")]
    raise EventPayloadError(
        f"Event Grid body: expected an array of events or one event object, got {_json_type(document)}"
    )


def _parse_all(
    items: list[tuple[object, str]], parse: _EventParser, lenient_origin: Callable[[object], str]
) -> list[ParsedEvent]:
    parsed = (_parse_one(raw, path, parse, lenient_origin) for raw, path in items)
    return [event for event in parsed if event is not None]


def _parse_one(
    raw: object, path: str, parse: _EventParser, lenient_origin: Callable[[object], str]
) -> ParsedEvent | None:
    try:
        return parse(raw, path)
    except _EventError as problem:
        return RejectedEvent(event_id=_rejected_event_id(raw), reason=str(problem), origin=lenient_origin(raw))


def _rejected_event_id(raw: object) -> str:
    """The event's own id when usable, else a stable id from the sha256 of its canonical JSON."""
    if isinstance(raw, Mapping):
        candidate = raw.get("id")
        if isinstance(candidate, str) and _EVENT_ID.fullmatch(candidate):
            return candidate
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256-" + hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def _lenient_string(raw: object, *keys: str) -> str:
    value = raw
    for key in keys:
        if not isinstance(value, Mapping):
            return ""
        value = value.get(key)
    return value if isinstance(value, str) else ""


def _lenient_origin_eventgrid(raw: object) -> str:
    return _lenient_string(raw, "topic")


def _lenient_origin_cloudevents(raw: object) -> str:
    return _lenient_string(raw, "source")


def _lenient_origin_notification(raw: object) -> str:
    return _lenient_string(raw, "request", "host")


def _load_json(body: bytes | str, what: str) -> object:
    """Decode a body after checking its size; every failure is an EventPayloadError naming `what`."""
    size = len(body.encode("utf-8", "surrogatepass")) if isinstance(body, str) else len(body)
    if size > MAX_BODY_BYTES:
        raise EventPayloadError(f"{what}: {size} bytes, larger than the {MAX_BODY_BYTES}-byte limit")
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno}"
        raise EventPayloadError(f"{what}: not valid JSON ({error.msg} at {where})") from None
    except UnicodeError as error:
        raise EventPayloadError(f"{what}: not UTF-8 text ({error})") from None
    except RecursionError:
        raise EventPayloadError(f"{what}: JSON nested too deeply") from None
    except ValueError as error:
        raise EventPayloadError(f"{what}: not valid JSON ({error})") from None


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON value")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _media_type(content_type: str | None) -> str | None:
    if content_type is None or not content_type.strip():
        return None
    return _bare_media_type(content_type)


def _bare_media_type(media_type: str) -> str:
    return media_type.split(";", 1)[0].strip().lower()


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _show(value: object) -> str:
    """A value for an error message: strings quoted, other JSON values by type, both kept short."""
    if isinstance(value, str):
        shown = repr(value)
        return shown if len(shown) <= 80 else shown[:77] + "...'"
    if value is None:
        return "null"
    if isinstance(value, (bool, int, float)):
        return f"{_json_type(value)} {json.dumps(value)}"
    return _json_type(value)
