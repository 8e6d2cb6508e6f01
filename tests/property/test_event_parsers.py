"""Properties of the event parsers (importer.core.events) over hostile bodies of all four schemas.

For any body: the parser returns parsed events or raises EventPayloadError (its one documented error: the route
answers 400), within the CPU and memory bounds of `tests.property.hostile`, however deep in a stack it is called.
Every parsed event is usable as is: no string of it holds a control character, a bidi control, a line separator or
a lone surrogate (so it can be stored, queued and printed), an event id is at most 256 characters and any other
string at most 1,024, and a PushEvent carries a valid repository, tag and digest. The trigger's envelope parser
(`parse_eventgrid_envelope`) never raises at all: a bad envelope is one RejectedEvent.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from importer.core.events import (
    SCHEMA_ACR_WEBHOOK,
    SCHEMA_CLOUDEVENTS,
    SCHEMA_DISTRIBUTION,
    SCHEMA_EVENTGRID,
    EventPayloadError,
    ParsedEvent,
    PushEvent,
    RejectedEvent,
    parse_eventgrid_envelope,
)
from importer.core.reference import MAX_REPOSITORY_LENGTH, is_valid_digest, is_valid_repository, is_valid_tag
from tests.property.event_bodies import PARSERS, SCHEMAS, Envelope, event_bodies, eventgrid_envelopes
from tests.property.hostile import (
    CALLER_FRAMES,
    bounded,
    deep_json,
    is_scalar_values_only,
    unsafe_characters_in,
)

MAX_EVENT_ID_LENGTH = 256
MAX_TEXT_LENGTH = 1024
GOOD_DIGEST = "sha256:" + "a" * 64

EXPECTED_SCHEMAS = {
    "eventgrid": {SCHEMA_EVENTGRID},
    "cloudevents": {SCHEMA_CLOUDEVENTS},
    "distribution": {SCHEMA_DISTRIBUTION, SCHEMA_ACR_WEBHOOK},  # told apart by shape, so either may come out
    "acr-webhook": {SCHEMA_DISTRIBUTION, SCHEMA_ACR_WEBHOOK},
}


def problems_with(event: ParsedEvent, schemas: set[str]) -> list[str]:
    """What is wrong with one parsed event; empty when it can be stored, queued and printed as it is.

    The rule of docs/security.md for the strings of an event: none holds a control character, a bidi control, a line
    separator or a lone surrogate; an event id is 1 to 256 characters, a repository at most 255, any other at most
    MAX_TEXT_LENGTH (a rejection's reason too: what it quotes is cut short).
    """
    problems: list[str] = []
    for field in dataclasses.fields(event):
        value = getattr(event, field.name)
        if not isinstance(value, str):
            continue
        if unsafe_characters_in(value):
            problems.append(f"{field.name} {value[:80]!r} holds {unsafe_characters_in(value)}")
        if len(value) > MAX_TEXT_LENGTH:
            problems.append(f"{field.name} is {len(value)} characters, over {MAX_TEXT_LENGTH}")
    if not 1 <= len(event.event_id) <= MAX_EVENT_ID_LENGTH:
        problems.append(f"event_id is {len(event.event_id)} characters, not 1 to {MAX_EVENT_ID_LENGTH}")
    if isinstance(event, PushEvent):
        if event.schema not in schemas:
            problems.append(f"schema {event.schema!r}, expected one of {sorted(schemas)}")
        if not (is_valid_repository(event.repository) and len(event.repository) <= MAX_REPOSITORY_LENGTH):
            problems.append(f"repository {event.repository[:80]!r} is not a repository name")
        if event.tag is not None and not is_valid_tag(event.tag):
            problems.append(f"tag {event.tag[:80]!r} is not a tag")
        if event.digest is not None and not is_valid_digest(event.digest):
            problems.append(f"digest {event.digest[:80]!r} is not a digest")
        if event.action == "push" and event.digest is None:
            problems.append("a push without a digest")
    elif not event.reason:
        problems.append("a rejection without a reason")
    return problems


def check_parsed(outcome: list[ParsedEvent] | Exception, schemas: set[str]) -> None:
    if isinstance(outcome, Exception):
        assert str(outcome), "an EventPayloadError must say what is wrong"
        assert is_scalar_values_only(str(outcome)), f"the error message holds a lone surrogate: {str(outcome)[:200]!r}"
        return
    assert isinstance(outcome, list)
    for event in outcome:
        assert isinstance(event, PushEvent | RejectedEvent), event
        assert not problems_with(event, schemas), (problems_with(event, schemas), event)


# Worst inputs of the classes this suite keeps closed, run on every CI run besides the drawn ones.
LONE_SURROGATE_ID = (
    '[{"id":"\\ud800","topic":"t","eventType":"Microsoft.ContainerRegistry.ImagePushed","data":{"target":'
    '{"repository":"team/app","tag":"1","digest":"sha256:' + "a" * 64 + '","mediaType":'
    '"application/vnd.oci.image.index.v1+json"}}}]'
)


@pytest.mark.parametrize("schema", SCHEMAS, ids=SCHEMAS)
@given(data=st.data())
def test_any_body_parses_or_is_refused_with_a_payload_error(schema: str, data: st.DataObject) -> None:
    """Hostile bodies of each schema: parsed events that are safe to use, or EventPayloadError; never anything else,
    and never super-linear time or memory, however deep in a stack the parser is called."""
    body, content_type = data.draw(event_bodies(schema), label="body, content type")
    frames = data.draw(st.sampled_from(CALLER_FRAMES), label="caller frames")
    outcome = bounded(lambda: PARSERS[schema](body, content_type), allowed=(EventPayloadError,), stack_frames=frames,
                      what=schema)
    check_parsed(outcome, EXPECTED_SCHEMAS[schema])


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(LONE_SURROGATE_ID, None, id="lone-surrogate-event-id"),
        pytest.param(LONE_SURROGATE_ID.replace("\\ud800", "\\u009b2J"), None, id="c1-control-event-id"),
        pytest.param(LONE_SURROGATE_ID.replace('"t"', '"\\udfff"'), None, id="lone-surrogate-origin"),
    ],
)
@pytest.mark.parametrize("schema", SCHEMAS, ids=SCHEMAS)
def test_worst_known_bodies(schema: str, body: str, content_type: str | None) -> None:
    """The identifiers of issue 12 (item 2), fed to every parser: they parse safely or are refused."""
    outcome = bounded(lambda: PARSERS[schema](body, content_type), allowed=(EventPayloadError,), what=schema)
    check_parsed(outcome, EXPECTED_SCHEMAS[schema])


# Where JSON nested near the recursion limit went in: as an event id, a whole event, an object, an envelope key.
DEEP_SHAPES = {
    "event-id": lambda depth: '{"id":' + deep_json(depth) + ',"topic":"t","eventType":"x","data":{},'
                              '"specversion":"1.0","action":"push"}',
    "batch-item": lambda depth: "[" + deep_json(depth) + "]",
    "distribution-event": lambda depth: '{"events":[' + deep_json(depth) + "]}",
    "webhook-target": lambda depth: '{"action":"push","id":"e","target":' + deep_json(depth, kind="object") + "}",
}


@pytest.mark.parametrize("shape", DEEP_SHAPES, ids=list(DEEP_SHAPES))
@pytest.mark.parametrize("schema", SCHEMAS, ids=SCHEMAS)
def test_json_nested_near_the_recursion_limit_never_escapes(schema: str, shape: str) -> None:
    """Issue 12 item 3, swept: every nesting depth from 900 to 1010. Where the recursion runs out depends on the depth
    and on how deep the caller already is; sweeping the depth from a fresh stack covers callers up to ~90 frames
    deep, where a drawn depth would hit the few crashing depths only by luck."""
    for depth in range(900, 1011):
        body = DEEP_SHAPES[shape](depth)
        outcome = bounded(lambda body=body: PARSERS[schema](body, None), allowed=(EventPayloadError,), peak_bytes=None,
                          what=f"{schema}: {shape} nested {depth} deep")
        check_parsed(outcome, EXPECTED_SCHEMAS[schema])


@given(envelope=eventgrid_envelopes(), frames=st.sampled_from(CALLER_FRAMES))
@example(envelope=Envelope({"eventType": "Microsoft.ContainerRegistry.ImagePushed"}, (("id", 980),)), frames=0)
@example(envelope=Envelope({"id": "\ud800", "topic": "t", "eventType": "Microsoft.ContainerRegistry.ImagePushed",
                            "data": {"target": {"repository": "team/app", "tag": "1", "digest": GOOD_DIGEST}}}),
         frames=0)
def test_any_trigger_envelope_is_one_parsed_event(envelope: Envelope, frames: int) -> None:
    """The Functions trigger's one event: always exactly one PushEvent or RejectedEvent, safe to use, never raising."""
    fields = envelope.fields()
    outcome = bounded(lambda: parse_eventgrid_envelope(fields), allowed=(), stack_frames=frames, what="envelope")
    assert isinstance(outcome, PushEvent | RejectedEvent)
    assert not problems_with(outcome, {SCHEMA_EVENTGRID}), (problems_with(outcome, {SCHEMA_EVENTGRID}), outcome)
