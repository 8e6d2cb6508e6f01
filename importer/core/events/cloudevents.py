"""CloudEvents 1.0 structured mode: one event (`application/cloudevents+json`) or a batch
(`application/cloudevents-batch+json`), with ACR's event types and `data`; `source` is the origin. Harbor's
CloudEvents (`harbor.artifact.pushed`, …) are read by harbor.py: their origin is the host of each resource's URL."""

from __future__ import annotations

from importer.core.events.acr import read_acr_event
from importer.core.events.fields import (
    EventError,
    as_object,
    content_media_type,
    join_path,
    json_type,
    load_json,
    read_event_id,
    read_required_string,
    read_string,
    show,
)
from importer.core.events.harbor import is_harbor_cloudevent, read_harbor_cloudevent
from importer.core.events.model import SCHEMA_CLOUDEVENTS, EventPayloadError, ParsedEvent, PushEvent
from importer.core.events.rejections import lenient_string, parse_all

_CLOUDEVENTS_SINGLE = "application/cloudevents+json"
_CLOUDEVENTS_BATCH = "application/cloudevents-batch+json"


def parse_cloudevents(body: bytes | str, content_type: str | None) -> list[ParsedEvent]:
    """Parse CloudEvents 1.0 structured JSON: one event (`application/cloudevents+json`) or a batch
    (`application/cloudevents-batch+json`); with `application/json` or no content type, by shape."""
    media_type = content_media_type(content_type)
    if media_type not in (None, "application/json", _CLOUDEVENTS_SINGLE, _CLOUDEVENTS_BATCH):
        raise EventPayloadError(
            f"CloudEvents body: unsupported content type {content_type!r} "
            f"(expected {_CLOUDEVENTS_SINGLE} or {_CLOUDEVENTS_BATCH})"
        )
    document = load_json(body, "CloudEvents body")
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
            f"CloudEvents body: expected one event object or an array of events, got {json_type(document)}"
        )
    events: list[ParsedEvent] = []
    for raw, path in items:  # Harbor's CloudEvents (harbor.py) give one event per resource of their data
        events.extend(read_harbor_cloudevent(raw, path) if is_harbor_cloudevent(raw) else
                      parse_all([(raw, path)], _cloudevent, _lenient_origin))
    return events


def _cloudevent(raw: object, path: str) -> PushEvent | None:
    event = as_object(raw, path)
    event_id = read_event_id(event, path)
    spec_version = read_required_string(event, "specversion", path)
    if spec_version != "1.0":
        raise EventError(
            join_path(path, "specversion"), f"unsupported CloudEvents version {show(spec_version)} (expected '1.0')"
        )
    origin = read_required_string(event, "source", path)
    read_string(event, "subject", path)  # not kept, but it names the image: it must be printable text too
    return read_acr_event(
        event, path, schema=SCHEMA_CLOUDEVENTS, event_id=event_id, origin=origin, type_key="type", time_key="time",
        keep_blobs=False,
    )


def _lenient_origin(raw: object) -> str:
    return lenient_string(raw, "source")
