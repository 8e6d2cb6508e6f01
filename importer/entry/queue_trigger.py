"""The Functions queue trigger's worker: one message the host delivered, decided as the local workers decide theirs.

    delivery = QueueDelivery(body=message.get_body(), message_id=message.id, dequeue_count=message.dequeue_count,
                             inserted_at=message.insertion_time)
    work_delivery(pipeline, delivery, max_dequeue_count=host_max_dequeue_count())   # returns: done; raises: again

On Azure the Functions host runs the queue's worker loop (docs/design.md, "Intake and workers"): it receives a message
and keeps it invisible while the function runs (the lease), makes it visible again `visibilityTimeout` after a try
that raised, counts the tries (`dequeue_count`), and when the try numbered `maxDequeueCount` raises, moves the message
to `<queue>-poison`, the dead letters. So a try here returns (the host deletes the message) or raises: TransientFailure
(tried again later) or GaveUp (the last try: the final `failed` outcome is recorded, which alerts once, and the host
moves the message to the poison queue). Each try goes through importer.app.attempt, as the local workers' tries do.

One queue, two kinds of message (host.json `messageEncoding: base64`: the host hands the decoded text over):
- an Event Grid event (Event Grid schema), which the registry's event subscription delivers straight into the queue
  (infra/event-subscription.bicep): admitted here as the intake admits (a rejection recorded at once, a blob push
  dropped), received when it entered the queue;
- an intake envelope of importer.adapters.queue.storage (`{"v": 1, "key": …, "body": …}`), which the HTTP routes put
  there (app/intake.py): its body is an admitted push event with the time the route received it.
A message that is neither is not ours: it fails every try and so ends in the poison queue, as the local workers
dead-letter such a message at once.

`maxDequeueCount` has one source, host.json (or the app setting that overrides it,
AzureFunctionsJobHost__extensions__queues__maxDequeueCount): `host_max_dequeue_count` reads what the host reads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from importer.app.attempt import COMPLETE, RETRY, Ending, attempt_event
from importer.app.pipeline import Pipeline, TransientFailure
from importer.core.bounded_json import loads as load_bounded_json
from importer.core.events import (
    ParsedEvent,
    PushEvent,
    event_from_json,
    ordering_key,
    parse_eventgrid_envelope,
    triage,
)
from importer.core.numbers import NumberError, parse_whole_number
from importer.ports.ledger import LedgerUnavailable

log = logging.getLogger("platform_guard.worker")

APP_ROOT = Path(__file__).resolve().parents[2]  # the deployed app's root: function_app.py, host.json, importer/
HOST_JSON = APP_ROOT / "host.json"
MAX_DEQUEUE_COUNT_OVERRIDE = "AzureFunctionsJobHost__extensions__queues__maxDequeueCount"
HOST_DEFAULT_MAX_DEQUEUE_COUNT = 5  # what the host uses when host.json does not say
MOST_DEQUEUE_COUNT = 1000
# The trigger's connection: the host reads PlatformGuardQueue__queueServiceUri (+ __credential, __clientId) for the
# managed identity, or PlatformGuardQueue as a connection string (Azurite). These are the host's settings, not ours.
QUEUE_CONNECTION = "PlatformGuardQueue"

__all__ = ["QUEUE_CONNECTION", "GaveUp", "QueueDelivery", "UnreadableMessage", "host_max_dequeue_count",
           "work_delivery"]


# A function is stopped after host.json's functionTimeout (5 minutes): a tag lease outlives it, then frees the tag.
TAG_LEASE_SECONDS = 330.0


class GaveUp(Exception):
    """The last try failed: the final `failed` outcome is recorded; raised so that the host dead-letters the message."""


class UnreadableMessage(ValueError):
    """Neither an Event Grid event nor an intake envelope: no try can fix it, the host dead-letters it."""


@dataclass(frozen=True, slots=True)
class QueueDelivery:
    """One message as the queue trigger hands it over."""

    body: bytes  # the decoded message text
    message_id: str
    dequeue_count: int  # tries so far, this one included (1 on the first)
    inserted_at: datetime | None = None  # when the message entered the queue


def host_max_dequeue_count(environ: Mapping[str, str] | None = None, host_json: Path = HOST_JSON) -> int:
    """The tries the host gives a message before moving it to the poison queue, read where the host reads it."""
    environ = os.environ if environ is None else environ
    raw: object = environ.get(MAX_DEQUEUE_COUNT_OVERRIDE, "")
    source = MAX_DEQUEUE_COUNT_OVERRIDE
    if not raw:
        queues = json.loads(host_json.read_text()).get("extensions", {}).get("queues", {})
        raw, source = queues.get("maxDequeueCount", HOST_DEFAULT_MAX_DEQUEUE_COUNT), str(host_json)
    text = str(raw) if isinstance(raw, int | str) and not isinstance(raw, bool) else repr(raw)
    try:  # strictly, as every numeric setting (importer.core.numbers)
        return parse_whole_number(text, least=1, most=MOST_DEQUEUE_COUNT)
    except NumberError as error:
        raise ValueError(f"maxDequeueCount in {source}: {error}") from None


def work_delivery(pipeline: Pipeline, delivery: QueueDelivery, *, max_dequeue_count: int) -> Ending | None:
    """Decide one delivered message. Returns when its message is done (None: rejected or dropped at admission);
    raises TransientFailure (try again) or GaveUp (last try: dead-letter it) for the host."""
    event, received_at, admitted = _read(delivery, pipeline)
    if not admitted:  # straight from Event Grid: admit it here, as the intake admits what the routes receive
        try:
            if pipeline.admit(event) is not None:
                return None
        except LedgerUnavailable as error:
            raise TransientFailure(f"ledger unavailable: {error}") from error
    assert isinstance(event, PushEvent), "admit records every rejected event"
    if triage(event).disposition == "drop":
        return None
    tries = max(1, delivery.dequeue_count)
    with _tag_lease(pipeline, event):
        ending = attempt_event(pipeline, event, received_at, attempt=tries,
                               last_try=lambda failure: tries >= max_dequeue_count)
    if ending.settle == COMPLETE:
        return ending
    where = f"message {delivery.message_id}, try {tries} of {max_dequeue_count}"
    if ending.settle == RETRY:
        raise TransientFailure(f"{ending.error} ({where}: the host delivers it again)")
    raise GaveUp(f"{ending.error} ({where}: given up, the host moves it to the poison queue)")


@contextlib.contextmanager
def _tag_lease(pipeline: Pipeline, event: PushEvent) -> Iterator[None]:
    """One function at a time per tag: Storage queues neither order nor group messages, so a leased claim on the
    tag's ordering key (owned by the event, so its own retry takes it over at once) keeps two pushes of one tag from
    being decided at the same moment. Busy: TransientFailure, and the host delivers the message again later."""
    key = ordering_key(event)
    if not key.startswith("tag:"):
        yield
        return
    claim = f"tag-lease:{key}"
    try:
        held = pipeline.ledger.claim_remediation(claim, lease_seconds=TAG_LEASE_SECONDS, now=time.time(),
                                                 owner=event.event_id)
    except LedgerUnavailable as error:
        raise TransientFailure(f"ledger unavailable: {error}") from error
    if not held:
        raise TransientFailure(f"another push of {event.repository}:{event.tag} is being decided; tried again later")
    try:
        yield
    finally:
        with contextlib.suppress(LedgerUnavailable):  # the lease runs out by itself
            pipeline.ledger.finish_remediation(claim, owner=event.event_id)


def _read(delivery: QueueDelivery, pipeline: Pipeline) -> tuple[ParsedEvent, str, bool]:
    """The message's event, when it was received, and whether it was already admitted (an intake envelope)."""
    try:
        document = load_bounded_json(delivery.body)  # a message nested past the limit is unreadable, not a crash
        if isinstance(document, dict) and "eventType" in document:
            return parse_eventgrid_envelope(document), _timestamp(delivery.inserted_at) or pipeline.now(), False
        if isinstance(document, dict) and "v" in document and "body" in document:
            from importer.adapters.queue.storage import ENVELOPE_VERSION  # loaded by the routes' messages only

            if document["v"] == ENVELOPE_VERSION:
                event, received_at = event_from_json(str(document["body"]))
                return event, received_at, True
        problem = "neither an Event Grid event nor a queued event"
    except ValueError as error:  # EventPayloadError too: the message is not JSON, or not an event
        problem = str(error)
    log.error("message %s is not ours to decide: %s", delivery.message_id, problem)
    raise UnreadableMessage(f"message {delivery.message_id}: {problem} (the host dead-letters it after its tries)")


def _timestamp(moment: datetime | None) -> str | None:
    """An ISO 8601 UTC timestamp as outcomes carry it (milliseconds, `Z`); a naive time is taken as UTC."""
    if moment is None:
        return None
    utc = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")
