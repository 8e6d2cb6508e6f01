"""Hostile text and hostile nesting in event bodies, through every parser of importer.core.events.

Every string an event carries (ids, origins, subjects, names, media types, times, user agents, actors) must be
printable Unicode text of bounded length: a lone surrogate, a control character, a bidi control or an over-long
value rejects that one event with a reason naming the field, and the rejected event's id, origin and reason are
themselves safe to store and to print. A body nested deeper than MAX_JSON_DEPTH arrays and objects is refused as a
whole (EventPayloadError, answered 400), measured before any parser recurses into it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from importer.core.bounded_json import MAX_JSON_DEPTH
from importer.core.events import (
    EventPayloadError,
    ParsedEvent,
    PushEvent,
    RejectedEvent,
    eventgrid_validation_response,
    parse_cloudevents,
    parse_eventgrid,
    parse_eventgrid_envelope,
    parse_registry_notification,
)
from importer.core.safe_text import unsafe_character

DATA = Path(__file__).parents[1] / "data" / "events"


def sample(name: str) -> Any:
    return json.loads((DATA / name).read_bytes())


# schema → (one valid event, how a list of events becomes a body, the parser, the path prefix of event 0)
SCHEMAS: dict[str, tuple[dict[str, Any], Callable[[list[Any]], Any], Callable[[bytes], list[ParsedEvent]], str]] = {
    "distribution": (
        sample("distribution-skopeo-copy-all.json")["events"][2],
        lambda events: {"events": events},
        lambda body: parse_registry_notification(body, "application/json"),
        "events[0].",
    ),
    "acr-webhook": (
        sample("acr-webhook-push.json"),
        lambda events: events[0],
        lambda body: parse_registry_notification(body, "application/json"),
        "",
    ),
    "eventgrid": (
        sample("eventgrid-image-pushed.json")[0],
        lambda events: events,
        parse_eventgrid,
        "[0].",
    ),
    "cloudevents": (
        sample("cloudevents-image-pushed.json"),
        lambda events: events,
        lambda body: parse_cloudevents(body, "application/cloudevents-batch+json"),
        "[0].",
    ),
}

TARGET_FIELDS = ["target.repository", "target.tag", "target.digest", "target.mediaType"]
REQUEST_FIELDS = ["request.host", "request.useragent", "actor.name"]
# schema → the string fields that reach an outcome, a log line or a terminal
FIELDS: dict[str, list[str]] = {
    "distribution": ["id", "timestamp", *TARGET_FIELDS, "target.url", "target.references.0.mediaType",
                     *REQUEST_FIELDS],
    "acr-webhook": ["id", "timestamp", *TARGET_FIELDS, *REQUEST_FIELDS],
    "eventgrid": ["id", "topic", "subject", "eventType", "eventTime", "data.action",
                  *(f"data.{field}" for field in TARGET_FIELDS), "data.request.useragent", "data.actor.name"],
    "cloudevents": ["id", "source", "subject", "type", "time", "specversion", "data.action",
                    *(f"data.{field}" for field in TARGET_FIELDS), "data.request.useragent", "data.actor.name"],
}
BAD_TEXT = {
    "lone-surrogate": "\ud800",
    "escape-sequence": "a\x1b[2Jb",
    "bell": "ci\x07",
    "forged-line": "ci\r\nINFO forged",
    "c1-csi": "ci\x9b2J",
    "delete": "ci\x7f",
    "bidi-override": "ci\u202egnp.exe",
    "bidi-isolate": "ci\u2066x",
    "line-separator": "ci\u2028x",
    "over-long": "a" * 2000,
}


def put(document: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A deep copy of `document` with `value` at the dotted path (a digit is a list index)."""
    result = copy.deepcopy(document)
    *parents, last = dotted.split(".")
    node: Any = result
    for key in parents:
        node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
    node[int(last) if last.isdigit() else last] = value
    return result


def shown_path(prefix: str, dotted: str) -> str:
    """How a reason names the field: "events[0].target.references[0].mediaType"."""
    parts: list[str] = []
    for key in dotted.split("."):
        if key.isdigit():
            parts[-1] += f"[{key}]"
        else:
            parts.append(key)
    return prefix + ".".join(parts)


def assert_safe(text: str) -> None:
    """Storable (UTF-8) and printable: no character a terminal would act on."""
    assert unsafe_character(text) is None, text
    text.encode("utf-8")


CASES = {
    f"{schema}-{field}-{bad}": (schema, field, value)
    for schema, fields in FIELDS.items()
    for field in fields
    for bad, value in BAD_TEXT.items()
}


@pytest.mark.parametrize(("schema", "field", "value"), CASES.values(), ids=CASES.keys())
def test_hostile_text_in_any_field_rejects_that_event_naming_the_field(schema: str, field: str, value: str) -> None:
    """The event is rejected with a reason that names the field; its sibling still parses; what is kept is safe."""
    event, wrap, parse, prefix = SCHEMAS[schema]
    bad = put(event, field, value)
    events = [bad] if schema == "acr-webhook" else [bad, event]

    parsed = parse(json.dumps(wrap(events)).encode())

    rejected = parsed[0]
    assert isinstance(rejected, RejectedEvent), rejected
    assert rejected.reason.startswith(shown_path(prefix, field) + ":"), rejected.reason
    for kept in (rejected.event_id, rejected.reason, rejected.origin):
        assert_safe(kept)
    assert all(isinstance(sibling, PushEvent) for sibling in parsed[1:])


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("\ud800", "'\\ud800' is not printable text: a lone surrogate \\ud800 at character 1"),
        ("ci\x1b[2J", "'ci\\x1b[2J' is not printable text: a control character \\x1b at character 3"),
        ("ci\u202e", "'ci\\u202e' is not printable text: a bidi control \\u202e at character 3"),
        ("ci\u2029", "'ci\\u2029' is not printable text: a line separator \\u2029 at character 3"),
        ("a" * 1025, "is 1025 characters, longer than 1024"),
    ],
    ids=["surrogate", "escape", "bidi", "paragraph-separator", "over-long"],
)
def test_rejection_reason_says_what_is_wrong_and_where(value: str, problem: str) -> None:
    """The reason shows the value escaped and names the character, its kind and its position."""
    event, wrap, parse, _ = SCHEMAS["eventgrid"]
    [rejected] = parse(json.dumps(wrap([put(event, "data.actor.name", value)])).encode())
    assert isinstance(rejected, RejectedEvent)
    assert rejected.reason.startswith("[0].data.actor.name: ") and rejected.reason.endswith(problem), rejected.reason


@pytest.mark.parametrize(
    ("event_id", "length_ok"),
    [("e" * 256, True), ("e" * 257, False), ("é" * 256, True), ("\u00a0id", True), ("id\x85", False)],
    ids=["256-characters", "257-characters", "non-ascii-printable", "nbsp-is-printable", "c1-next-line"],
)
def test_event_id_bounds(event_id: str, length_ok: bool) -> None:
    """An event id is 1 to 256 printable characters; non-ASCII text is fine."""
    event, wrap, parse, _ = SCHEMAS["distribution"]
    [parsed] = parse(json.dumps(wrap([put(event, "id", event_id)])).encode())
    assert isinstance(parsed, PushEvent) is length_ok
    if length_ok:
        assert parsed.event_id == event_id


def test_rejected_event_with_hostile_id_gets_a_derived_id_and_no_origin_it_cannot_keep() -> None:
    """An unusable id becomes "sha256-…" of the event; an unprintable origin becomes ""."""
    event, wrap, parse, _ = SCHEMAS["eventgrid"]
    bad = put(put(event, "id", "\ud800"), "topic", "/subscriptions/\x1b[2J")
    [rejected] = parse(json.dumps(wrap([bad])).encode())
    assert isinstance(rejected, RejectedEvent)
    assert rejected.event_id.startswith("sha256-") and rejected.origin == ""


@pytest.mark.parametrize("value", ["\ud800", "a\x1b]0;pwned\x07", "x" * 2000], ids=["surrogate", "osc", "over-long"])
def test_functions_trigger_envelope_with_hostile_text_is_rejected(value: str) -> None:
    """The one event the Functions Event Grid trigger hands over is validated the same way."""
    envelope = {**sample("eventgrid-image-pushed.json")[0], "subject": value}
    parsed = parse_eventgrid_envelope(envelope)
    assert isinstance(parsed, RejectedEvent) and parsed.reason.startswith("subject:")
    assert_safe(parsed.reason)


def test_validation_code_must_be_printable_text() -> None:
    """The subscription validation code is echoed to the sender: it must be printable text too."""
    body = json.dumps([{"id": "v", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
                        "data": {"validationCode": "abc\x1b[2J"}}])
    with pytest.raises(EventPayloadError, match=r"validationCode: 'abc\\x1b\[2J' is not printable text"):
        eventgrid_validation_response(body.encode(), {})


# -- nesting depth ------------------------------------------------------------------------------------------


def nested(depth: int, kind: str) -> str:
    """JSON text of `depth` levels of arrays or objects around a 1 (text: json.dumps itself stops near 1,000)."""
    return ("[" * depth + "1" + "]" * depth) if kind == "array" else ('{"k":' * depth + "1" + "}" * depth)


def event_with_extra(schema: str, depth: int, kind: str) -> bytes:
    """A valid event of `schema` whose unknown field `extra` nests so that the whole body is `depth` deep."""
    event, wrap, _, _ = SCHEMAS[schema]
    container_depth = {"distribution": 3, "acr-webhook": 1, "eventgrid": 2, "cloudevents": 2}[schema]
    text = json.dumps(wrap([put(event, "extra", "EXTRA")]))
    return text.replace('"EXTRA"', nested(depth - container_depth, kind)).encode()


DEPTH_CASES = {
    f"{schema}-{kind}-{depth}": (schema, kind, depth)
    for schema in SCHEMAS
    for kind in ("array", "object")
    for depth in (MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 976, 990, 5000)
}


@pytest.mark.parametrize(("schema", "kind", "depth"), DEPTH_CASES.values(), ids=DEPTH_CASES.keys())
def test_body_deeper_than_the_limit_is_refused_and_one_within_it_parses(schema: str, kind: str, depth: int) -> None:
    """Up to MAX_JSON_DEPTH levels the event parses; past it the whole body is an EventPayloadError naming the
    limit — never a RecursionError, at any depth."""
    _, _, parse, _ = SCHEMAS[schema]
    body = event_with_extra(schema, depth, kind)
    if depth <= MAX_JSON_DEPTH:
        [parsed] = parse(body)
        assert isinstance(parsed, PushEvent)
    else:
        with pytest.raises(EventPayloadError, match=rf"JSON nested too deeply \(more than {MAX_JSON_DEPTH} levels"):
            parse(body)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH - 2, MAX_JSON_DEPTH - 1, 100, 900],
                         ids=["deepest-allowed", "one-too-deep", "100", "900"])
def test_deep_event_in_place_of_an_object_is_rejected_or_refused(depth: int) -> None:
    """An event that is itself a deep array (the envelope adds two levels): rejected with a derived id within the
    limit, the whole body refused past it — before any parser or json.dumps of the rejected event recurses."""
    body = ('{"events": [' + nested(depth, "array") + "]}").encode()
    if depth + 2 <= MAX_JSON_DEPTH:
        [rejected] = parse_registry_notification(body, None)
        assert isinstance(rejected, RejectedEvent) and rejected.event_id.startswith("sha256-")
    else:
        with pytest.raises(EventPayloadError, match="nested too deeply"):
            parse_registry_notification(body, None)
