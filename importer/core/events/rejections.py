"""One bad event does not sink its batch: each event is read on its own, and an invalid one becomes a
`RejectedEvent` whose id and origin are read leniently (whatever is usable, never raising)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping

from importer.core.events.fields import EventError, is_usable_event_id, text_problem
from importer.core.events.model import ParsedEvent, PushEvent, RejectedEvent

# Reads one event at its path: a PushEvent, None when the event is dropped silently; raises EventError.
EventReader = Callable[[object, str], PushEvent | None]
# Reads the origin of an event that failed to parse, "" when there is none to be had.
LenientOrigin = Callable[[object], str]


def parse_all(
    items: list[tuple[object, str]], read: EventReader, lenient_origin: LenientOrigin
) -> list[ParsedEvent]:
    """Each (event, path) read on its own; dropped events are left out."""
    parsed = (parse_one(raw, path, read, lenient_origin) for raw, path in items)
    return [event for event in parsed if event is not None]


def parse_one(raw: object, path: str, read: EventReader, lenient_origin: LenientOrigin) -> ParsedEvent | None:
    try:
        return read(raw, path)
    except EventError as problem:
        return RejectedEvent(event_id=_rejected_event_id(raw), reason=str(problem), origin=lenient_origin(raw))


def lenient_string(raw: object, *keys: str) -> str:
    """The string at `raw[keys[0]][keys[1]]...`, or "" when any step is missing, of another type, or not text
    fit to keep (an unsafe character, or too long: see fields.text_problem)."""
    value = raw
    for key in keys:
        if not isinstance(value, Mapping):
            return ""
        value = value.get(key)
    return value if isinstance(value, str) and text_problem(value) is None else ""


def _rejected_event_id(raw: object) -> str:
    """The event's own id when usable, else a stable id from the sha256 of its canonical JSON."""
    if isinstance(raw, Mapping):
        candidate = raw.get("id")
        if is_usable_event_id(candidate):
            return str(candidate)
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256-" + hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
