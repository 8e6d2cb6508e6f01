"""Event Grid schema deliveries: a JSON array of events or one event object, and the one event the
Functions Event Grid trigger hands over. Types `Microsoft.ContainerRegistry.ImagePushed|ImageDeleted|
ChartPushed|ChartDeleted`; `topic` is the origin."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from importer.core.events.acr import read_acr_event
from importer.core.events.fields import as_object, json_type, load_json, read_event_id, read_string
from importer.core.events.model import SCHEMA_EVENTGRID, EventPayloadError, ParsedEvent, PushEvent
from importer.core.events.rejections import lenient_string, parse_all, parse_one


def parse_eventgrid(body: bytes | str) -> list[ParsedEvent]:
    """Parse an Event Grid schema delivery: a JSON array of events, or one event object."""
    document = load_json(body, "Event Grid body")
    if isinstance(document, dict) and "eventType" not in document:
        hint = " (a CloudEvents body goes to parse_cloudevents)" if "specversion" in document else ""
        raise EventPayloadError(
            f"Event Grid body: the object has no 'eventType', so it is not an Event Grid event{hint}"
        )
    return parse_all(eventgrid_items(document), _eventgrid_event, _lenient_origin)


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
    parsed = parse_one(event, "", lambda raw, path: _eventgrid_event(raw, path, keep_blobs=True), _lenient_origin)
    assert parsed is not None, "keep_blobs=True never drops"
    return parsed


def eventgrid_items(document: object) -> list[tuple[object, str]]:
    """The events of an Event Grid body (an array, or one object) with their paths."""
    if isinstance(document, list):
        return [(raw, f"[{index}]") for index, raw in enumerate(document)]
    if isinstance(document, dict):
        return [(document, "")]
    raise EventPayloadError(
        f"Event Grid body: expected an array of events or one event object, got {json_type(document)}"
    )


def _eventgrid_event(raw: object, path: str, *, keep_blobs: bool = False) -> PushEvent | None:
    event = as_object(raw, path)
    event_id = read_event_id(event, path)
    origin = read_string(event, "topic", path) or ""
    read_string(event, "subject", path)  # not kept, but it names the image: it must be printable text too
    return read_acr_event(
        event, path, schema=SCHEMA_EVENTGRID, event_id=event_id, origin=origin, type_key="eventType",
        time_key="eventTime", keep_blobs=keep_blobs,
    )


def _lenient_origin(raw: object) -> str:
    return lenient_string(raw, "topic")
