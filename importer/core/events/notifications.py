"""Registry notifications without an envelope type: CNCF distribution notification envelopes
`{"events": [...]}` and ACR classic webhook bodies (one event object with `action`), told apart by shape.
Each event is the shared `target`/`request`/`actor` body; `request.host` is the origin. Harbor's native webhook
bodies (`type` and `event_data`, harbor.py) and Quay's `repo_push` (`updated_tags`, quay.py) come here too."""

from __future__ import annotations

from collections.abc import Mapping

from importer.core.events.acr import ACR_WEBHOOK_ACTIONS
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
from importer.core.events.harbor import is_harbor_payload, read_harbor_payload
from importer.core.events.model import (
    DELETE,
    PUSH,
    SCHEMA_ACR_WEBHOOK,
    SCHEMA_DISTRIBUTION,
    EventPayloadError,
    ParsedEvent,
    PushEvent,
)
from importer.core.events.quay import is_quay_payload, read_quay_payload
from importer.core.events.rejections import lenient_string, parse_all
from importer.core.events.target import read_target_event

# Action → (action, artifact or None when the media type decides); None as the value: dropped silently.
_DISTRIBUTION_ACTIONS: Mapping[str, tuple[str, str | None] | None] = {
    "push": (PUSH, None),
    "delete": (DELETE, None),
    "pull": None,
    "mount": None,
}


def parse_registry_notification(body: bytes | str, content_type: str | None) -> list[ParsedEvent]:
    """Parse a CNCF distribution notification envelope `{"events": [...]}`, an ACR classic webhook body
    (one event object with `action`), a Harbor webhook body or a Quay `repo_push`, told apart by shape. The
    content type must be a JSON type, if given."""
    media_type = content_media_type(content_type)
    if media_type is not None and media_type != "application/json" and not media_type.endswith("+json"):
        raise EventPayloadError(
            f"registry notification body: unsupported content type {content_type!r} (expected JSON)"
        )
    document = load_json(body, "registry notification body")
    if not isinstance(document, dict):
        raise EventPayloadError(f"registry notification body: expected an object, got {json_type(document)}")
    if "events" in document:
        events = document["events"]
        if not isinstance(events, list):
            raise EventPayloadError(f"registry notification body: 'events' must be an array, got {json_type(events)}")
        items = [(raw, f"events[{index}]") for index, raw in enumerate(events)]
        return parse_all(items, _distribution_event, _lenient_origin)
    if "action" in document:
        return parse_all([(document, "")], _acr_webhook_event, _lenient_origin)
    if is_harbor_payload(document):
        return read_harbor_payload(document)
    if is_quay_payload(document):
        return read_quay_payload(document)
    raise EventPayloadError(
        "registry notification body: neither a distribution envelope (an object with 'events') nor an ACR webhook "
        "body (an object with 'action'), a Harbor webhook body (an object with 'type' and 'event_data') or a Quay "
        "repo_push notification (an object with 'updated_tags')"
    )


def _distribution_event(raw: object, path: str) -> PushEvent | None:
    return _notification_event(raw, path, SCHEMA_DISTRIBUTION, _DISTRIBUTION_ACTIONS)


def _acr_webhook_event(raw: object, path: str) -> PushEvent | None:
    return _notification_event(raw, path, SCHEMA_ACR_WEBHOOK, ACR_WEBHOOK_ACTIONS)


def _notification_event(
    raw: object, path: str, schema: str, actions: Mapping[str, tuple[str, str | None] | None]
) -> PushEvent | None:
    event = as_object(raw, path)
    action_name = read_required_string(event, "action", path)
    if action_name not in actions:
        expected = ", ".join(actions)
        raise EventError(join_path(path, "action"), f"unknown action {show(action_name)} (expected one of {expected})")
    meaning = actions[action_name]
    if meaning is None:
        return None
    action, artifact = meaning
    event_id = read_event_id(event, path)
    return read_target_event(
        event, path, schema=schema, event_id=event_id, action=action, artifact=artifact,
        origin=None, occurred_at=read_string(event, "timestamp", path), keep_blobs=False,
    )


def _lenient_origin(raw: object) -> str:
    return lenient_string(raw, "request", "host")
