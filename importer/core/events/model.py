"""The event model: what parsing a body yields, the action, artifact and schema names, and `triage`.

Per event of a valid body:
- `PushEvent`: a valid push or delete.
- `RejectedEvent`: one invalid event; its siblings still parse. The reason names the place in the body,
  e.g. "events[2].target.digest: 'sha256:xyz' is not a valid digest" (`[i]` in a JSON array, `events[i]` in
  a distribution envelope, no prefix for a single object).
- Nothing: pulls, mounts, ACR `quarantine` notices and blob pushes (a target whose media type is not a
  manifest, index or chart type, or whose URL is a blob URL) are dropped silently. `parse_eventgrid_envelope`
  returns its one event and cannot drop: `triage` says "drop" instead.
A body that is not an event payload at all (not JSON, wrong shape, too large, unsupported content type)
raises `EventPayloadError`; the caller answers HTTP 400.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from importer.core.media_types import OCI_INDEX, OCI_MANIFEST, PUSHABLE_MANIFEST_MEDIA_TYPES

SCHEMA_EVENTGRID = "eventgrid"
SCHEMA_CLOUDEVENTS = "cloudevents"
SCHEMA_DISTRIBUTION = "distribution"
SCHEMA_ACR_WEBHOOK = "acr-webhook"

PUSH = "push"
DELETE = "delete"
IMAGE = "image"
CHART = "chart"


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
    digest: str | None  # set for pushes, except Quay's (tags only: the pipeline resolves the tag); deletes may lack it
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


DELETE_EVENT_REASON = "delete event"  # the reason on a delete event's outcome, which names the deleted tag too


def triage(event: PushEvent) -> Triage:
    """Sort an event: decide on tagged manifest pushes, ignore deletes and untagged pushes, drop blob pushes.

    An unknown (absent) media type is treated as a manifest: inspecting it will tell.
    """
    if event.action == DELETE:
        return Triage("ignore", DELETE_EVENT_REASON)
    if event.media_type is not None and not is_manifest_media_type(event.media_type):
        return Triage("drop", f"push of {event.digest} with media type {event.media_type!r} is a blob, not a manifest")
    if event.tag is None:
        return Triage("ignore", f"untagged push of {event.digest} (a child manifest of a multi-arch push)")
    return Triage("decide", f"tagged {event.artifact} push of {event.repository}:{event.tag}")


def may_be_referrer(event: PushEvent) -> bool:
    """Whether an untagged push may be an OCI 1.1 referrer (a signature, an SBOM pushed by digest) rather than a child
    of a multi-arch push, worth one manifest read to tell (importer.app.pipeline): a push by digest whose media type
    is an OCI image manifest or index. Docker media types cannot carry `subject` or `artifactType`, and an absent
    media type is not worth a read on a path every child of every multi-arch push takes."""
    return (
        event.action == PUSH
        and event.tag is None
        and event.digest is not None
        and event.media_type is not None
        and bare_media_type(event.media_type) in (OCI_MANIFEST, OCI_INDEX)
    )


def is_manifest_media_type(media_type: str) -> bool:
    """Whether a push of this media type is a manifest, index or chart (rather than a layer, config or blob)."""
    return bare_media_type(media_type) in PUSHABLE_MANIFEST_MEDIA_TYPES


def bare_media_type(media_type: str) -> str:
    """A media type without its parameters, lower-cased: "Application/JSON; charset=utf-8" → "application/json"."""
    return media_type.split(";", 1)[0].strip().lower()


def event_to_json(event: PushEvent, *, received_at: str) -> str:
    """A push event as the intake queues it, with the time it was received (JSON text)."""
    return json.dumps({"received_at": received_at, "event": dataclasses.asdict(event)}, separators=(",", ":"))


def event_from_json(text: str) -> tuple[PushEvent, str]:
    """The push event and its receipt time from `event_to_json`'s text; ValueError naming what is wrong."""
    try:
        document = json.loads(text)
        fields = document["event"]
        received_at = document["received_at"]
        if not isinstance(fields, dict) or not isinstance(received_at, str):
            raise TypeError("event is not an object, or received_at not a string")
        return PushEvent(**fields), received_at
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"queued message is not a queued push event: {error}") from None


def ordering_key(event: PushEvent) -> str:
    """What one tag's events share (they are worked on one at a time, in order): origin/repository:tag.

    Events that are not decided per tag (untagged pushes, deletes) get a key of their own."""
    if event.tag is None or event.action != PUSH:
        return f"event:{event.event_id}"
    return f"tag:{event.origin}/{event.repository}:{event.tag}"
