"""ACR's event vocabulary, and the ACR event inside an Event Grid or CloudEvents envelope.

The envelope's type says push or delete, image or chart (`ACR_EVENT_TYPES`); its `data` is the shared
`target`/`request`/`actor` body, whose own `action`, when present, must agree.
"""

from __future__ import annotations

from collections.abc import Mapping

from importer.core.events.fields import (
    EventError,
    join_path,
    read_required_object,
    read_required_string,
    read_string,
    show,
)
from importer.core.events.model import CHART, DELETE, IMAGE, PUSH, PushEvent
from importer.core.events.target import read_target_event

ACR_EVENT_TYPES: Mapping[str, tuple[str, str]] = {
    "Microsoft.ContainerRegistry.ImagePushed": (PUSH, IMAGE),
    "Microsoft.ContainerRegistry.ImageDeleted": (DELETE, IMAGE),
    "Microsoft.ContainerRegistry.ChartPushed": (PUSH, CHART),
    "Microsoft.ContainerRegistry.ChartDeleted": (DELETE, CHART),
}

# ACR webhook action → (action, artifact or None when the media type decides); None as the value: dropped
# silently. `quarantine` tells scanners that ACR's quarantine policy holds a new image; it is not a push we act on.
ACR_WEBHOOK_ACTIONS: Mapping[str, tuple[str, str | None] | None] = {
    "push": (PUSH, None),
    "delete": (DELETE, None),
    "chart_push": (PUSH, CHART),
    "chart_delete": (DELETE, CHART),
    "quarantine": None,
}


def read_acr_event(
    event: Mapping[str, object], path: str, *, schema: str, event_id: str, origin: str, type_key: str, time_key: str,
    keep_blobs: bool,
) -> PushEvent | None:
    """An ACR event in an envelope (Event Grid schema or CloudEvents): the envelope's type and time, ACR's `data`."""
    event_type = read_required_string(event, type_key, path)
    if event_type not in ACR_EVENT_TYPES:
        raise EventError(join_path(path, type_key), f"unknown event type {show(event_type)}")
    action, artifact = ACR_EVENT_TYPES[event_type]
    data_path = join_path(path, "data")
    data = read_required_object(event, "data", path)
    _check_data_action(data, data_path, action, f"event type {event_type!r}")
    occurred_at = read_string(event, time_key, path) or read_string(data, "timestamp", data_path)
    return read_target_event(
        data, data_path, schema=schema, event_id=event_id, action=action, artifact=artifact,
        origin=origin, occurred_at=occurred_at, keep_blobs=keep_blobs,
    )


def _check_data_action(data: Mapping[str, object], path: str, action: str, said_by: str) -> None:
    """The ACR `data.action`, when present, must agree with what the envelope's event type says."""
    data_action = read_string(data, "action", path)
    if data_action is None:
        return
    meaning = ACR_WEBHOOK_ACTIONS.get(data_action)
    if meaning is None or meaning[0] != action:
        raise EventError(join_path(path, "action"), f"{show(data_action)} contradicts {said_by}")
