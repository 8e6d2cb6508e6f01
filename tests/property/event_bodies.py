"""Event bodies of the four schemas, valid in shape and hostile in their values, for the parser and intake properties.

    body, content_type = data.draw(event_bodies("eventgrid"))   # also "cloudevents", "distribution", "acr-webhook"
    envelope = data.draw(eventgrid_envelopes())                  # what the Functions Event Grid trigger hands over

Two kinds of document, half and half: hostile anywhere (every field usually valid, sometimes hostile: lone
surrogates, control characters, huge strings, wrong JSON types, deep nesting, huge arrays), or valid with exactly
one value corrupted, an identifier half the time (so the event gets past every other check to that one). Whole
bodies are sometimes corrupted at the byte level (truncated, invalid UTF-8, a byte-order mark). Origins are drawn
from `CONFIGURED_REGISTRY`, the Azure resource id of `CONFIGURED_ACR`, and hosts nobody configured, so that the
intake property sees events it queues and events it records at once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

from importer.core.events import (
    ACR_EVENT_TYPES,
    ParsedEvent,
    parse_cloudevents,
    parse_eventgrid,
    parse_registry_notification,
)
from importer.core.media_types import (
    ACR_HELM_CHART,
    DOCKER_LAYER,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    HELM_CHART_LAYER,
    HELM_CONFIG,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
)
from tests.property.hostile import (
    LONE_SURROGATES,
    RawJson,
    Shapes,
    deep_value,
    dump_json,
    json_values,
    mostly,
    nesting_depths,
    one_value_corrupted,
)

CONFIGURED_REGISTRY = "127.0.0.1:5000"
CONFIGURED_ACR = "contoso.azurecr.io"
ACR_RESOURCE_ID = (
    "/subscriptions/5f3c9a2e-8d41-4b7a-9c60-1e2f3a4b5c6d/resourceGroups/rg"
    "/providers/Microsoft.ContainerRegistry/registries/contoso"
)
SCHEMAS = ("eventgrid", "cloudevents", "distribution", "acr-webhook")
# Each schema's parser, as the routes call it: (body, content type) in, parsed events out.
PARSERS: dict[str, Callable[[bytes | str, str | None], list[ParsedEvent]]] = {
    "eventgrid": lambda body, _content_type: parse_eventgrid(body),
    "cloudevents": parse_cloudevents,
    "distribution": parse_registry_notification,
    "acr-webhook": parse_registry_notification,
}

MEDIA_TYPES = (
    OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, ACR_HELM_CHART, HELM_CONFIG, HELM_CHART_LAYER,
    OCI_CONFIG, DOCKER_LAYER, "application/octet-stream", "Application/Vnd.OCI.Image.Index.v1+JSON; charset=utf-8",
)
CONTENT_TYPES = (
    None, "", "application/json", "application/cloudevents+json", "application/cloudevents-batch+json",
    "application/cloudevents+json; charset=utf-8", "application/vnd.docker.distribution.events.v1+json",
    "application/vnd.docker.distribution.events.v2+json", "text/plain", "application/xml", "application/json\x00",
)


# -- valid values ---------------------------------------------------------------------------------------------------

_COMPONENT = st.from_regex(r"[a-z0-9]{1,8}(?:[._-][a-z0-9]{1,6}){0,2}", fullmatch=True)
REPOSITORIES = st.lists(_COMPONENT, min_size=1, max_size=4).map("/".join)
TAGS = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,20}", fullmatch=True)
DIGESTS = st.one_of(
    st.binary(min_size=32, max_size=32).map(lambda raw: "sha256:" + raw.hex()),
    st.binary(min_size=64, max_size=64).map(lambda raw: "sha512:" + raw.hex()),
)
EVENT_IDS = st.one_of(st.uuids().map(str), st.from_regex(r"[A-Za-z0-9-]{1,40}", fullmatch=True))
TIMESTAMPS = st.datetimes(timezones=st.just(UTC)).map(lambda moment: moment.isoformat())
ORIGIN_HOSTS = st.sampled_from((CONFIGURED_REGISTRY, CONFIGURED_ACR, "127.0.0.1:5001", "other.example", "LOCALHOST"))
TOPICS = st.sampled_from((ACR_RESOURCE_ID, ACR_RESOURCE_ID.upper(), ACR_RESOURCE_ID.replace("contoso", "other")))


def _acr_body(shapes: Shapes, actions: tuple[str, ...]) -> dict[str, st.SearchStrategy[Any]]:
    """The shared `target`/`request`/`actor` body of ACR data, distribution events and ACR webhooks."""
    field, obj = shapes.field, shapes.obj
    urls = st.builds(lambda repository, kind, digest: f"http://{CONFIGURED_REGISTRY}/v2/{repository}/{kind}/{digest}",
                     REPOSITORIES, st.sampled_from(("manifests", "blobs")), DIGESTS)
    target = obj({
        "mediaType": field(st.sampled_from(MEDIA_TYPES)),
        "size": field(st.integers(0, 10**9)),
        "digest": field(DIGESTS),
        "length": field(st.integers(0, 10**9)),
        "repository": field(REPOSITORIES),
        "tag": field(TAGS),
        "url": field(urls),
        "references": field(st.lists(obj({"mediaType": field(st.sampled_from(MEDIA_TYPES))}, extra=False),
                                     max_size=3)),
    })
    return {
        "action": field(st.sampled_from(actions)),
        "target": target,
        "request": obj({"id": field(EVENT_IDS), "host": field(ORIGIN_HOSTS), "method": field(st.just("PUT")),
                        "useragent": field(st.just("docker/24.0.7"))}),
        "actor": obj({"name": field(st.just("ci-pipeline"))}),
        "timestamp": field(TIMESTAMPS),
    }


def _eventgrid_event(shapes: Shapes) -> st.SearchStrategy[Any]:
    field = shapes.field
    return shapes.obj({
        "id": field(EVENT_IDS),
        "topic": field(TOPICS),
        "subject": field(st.just("team/app:1.0")),
        "eventType": field(st.sampled_from(tuple(ACR_EVENT_TYPES))),
        "eventTime": field(TIMESTAMPS),
        "data": shapes.obj(_acr_body(shapes, ("push", "delete", "chart_push", "chart_delete", "quarantine"))),
        "dataVersion": field(st.just("1.0")),
        "metadataVersion": field(st.just("1")),
    })


def _cloudevent(shapes: Shapes) -> st.SearchStrategy[Any]:
    field = shapes.field
    return shapes.obj({
        "specversion": field(st.sampled_from(("1.0", "0.3", "1.0 "))),
        "id": field(EVENT_IDS),
        "source": field(TOPICS),
        "type": field(st.sampled_from(tuple(ACR_EVENT_TYPES))),
        "time": field(TIMESTAMPS),
        "subject": field(st.just("team/app:1.0")),
        "data": shapes.obj(_acr_body(shapes, ("push", "delete", "chart_push", "chart_delete"))),
    })


def _notification_event(shapes: Shapes, actions: tuple[str, ...]) -> st.SearchStrategy[Any]:
    return shapes.obj({"id": shapes.field(EVENT_IDS), **_acr_body(shapes, actions)})


# Keys whose values become identifiers that reach storage and terminals: corrupted half the time.
_IDENTIFIER_KEYS = frozenset({"id", "repository", "tag", "digest", "topic", "source", "host", "name", "useragent",
                              "mediaType", "timestamp", "eventTime", "time"})


def _several(event: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(event, min_size=0, max_size=5)


_DOCUMENTS: dict[str, Callable[[Shapes], st.SearchStrategy[Any]]] = {
    "eventgrid": lambda shapes: st.one_of(_eventgrid_event(shapes), _several(_eventgrid_event(shapes))),
    "cloudevents": lambda shapes: st.one_of(_cloudevent(shapes), _several(_cloudevent(shapes))),
    "distribution": lambda shapes: shapes.obj(
        {"events": shapes.field(_several(_notification_event(shapes, ("push", "delete", "pull", "mount"))))}
    ),
    "acr-webhook": lambda shapes: _notification_event(shapes, ("push", "delete", "chart_push", "chart_delete",
                                                                "quarantine")),
}


@functools.cache
def event_documents(schema: str) -> st.SearchStrategy[Any]:
    """Documents of `schema`: hostile anywhere, or valid with exactly one value corrupted."""
    hostile = _DOCUMENTS[schema](Shapes(hostile=True))
    corrupted = _DOCUMENTS[schema](Shapes(hostile=False)).flatmap(
        lambda document: one_value_corrupted(document, favoured=_IDENTIFIER_KEYS)
    )
    return st.one_of(hostile, corrupted)


# -- bodies ---------------------------------------------------------------------------------------------------------


def _encode(document: Any, encoding: str, ensure_ascii: bool) -> bytes | str:
    text = dump_json(document, ensure_ascii=ensure_ascii)
    if encoding == "str":
        return text
    raw = text.encode("utf-8", "surrogatepass")  # raw lone surrogates become invalid UTF-8, as a sender could send
    return b"\xef\xbb\xbf" + raw if encoding == "bom" else raw


def _corrupt(body: bytes | str, how: str, position: int) -> bytes | str:
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    cut = position % (len(raw) + 1)
    if how == "truncate":
        return raw[:cut]
    if how == "invalid-utf8":
        return raw[:cut] + b"\xc3\x28\xff" + raw[cut:]
    return body


@functools.cache
def event_bodies(schema: str) -> st.SearchStrategy[tuple[bytes | str, str | None]]:
    """(body, content type) for `schema`: the document encoded in one of several ways, sometimes corrupted."""
    encoded = st.builds(_encode, event_documents(schema), st.sampled_from(("utf-8", "str", "bom")), st.booleans())
    body = mostly(encoded, st.builds(_corrupt, encoded, st.sampled_from(("truncate", "invalid-utf8")), st.integers()),
                  valid_share=6)
    content_type = mostly(st.sampled_from(_CONTENT_TYPES_BY_SCHEMA[schema]), st.sampled_from(CONTENT_TYPES))
    return st.tuples(body, content_type)


_CONTENT_TYPES_BY_SCHEMA = {
    "eventgrid": ("application/json",),
    "cloudevents": ("application/cloudevents+json", "application/cloudevents-batch+json", "application/json", None),
    "distribution": ("application/vnd.docker.distribution.events.v1+json", "application/json", None),
    "acr-webhook": ("application/json", None),
}


@dataclass(frozen=True, slots=True)
class Envelope:
    """A trigger envelope to build: its fields, and fields to set to lists nested `depth` deep (built by `fields()`,
    never drawn: Hypothesis prints what it draws by recursing, and would overflow on such a list)."""

    base: dict[str, Any]
    deep: tuple[tuple[str, int], ...] = ()

    def fields(self) -> dict[str, Any]:
        return {**self.base, **{key: deep_value(depth) for key, depth in self.deep}}


@functools.cache
def eventgrid_envelopes() -> st.SearchStrategy[Envelope]:
    """What the Functions Event Grid trigger hands `parse_eventgrid_envelope`: decoded JSON fields, snake or camel
    case, `eventTime` sometimes a datetime, values hostile (deep nesting as real nested lists)."""
    keys = st.sampled_from(("id", "topic", "data", "eventType", "subject"))
    value = st.one_of(json_values(with_raw=False), st.sampled_from(LONE_SURROGATES))
    event = st.one_of(
        _eventgrid_event(Shapes(hostile=True)),
        _eventgrid_event(Shapes(hostile=False)).flatmap(
            lambda event: one_value_corrupted(event, favoured=_IDENTIFIER_KEYS)
        ),
    ).filter(lambda document: isinstance(document, dict)).map(_without_raw_json)
    renamed = st.builds(_snake_case, event, st.booleans(), st.datetimes(timezones=st.just(UTC)))
    overrides = st.dictionaries(keys, value, max_size=2)
    deep = st.lists(st.tuples(keys, nesting_depths()), max_size=1).map(tuple)
    return st.builds(lambda envelope, extra, nested: Envelope({**envelope, **extra}, nested), renamed, overrides, deep)


def _snake_case(event: dict[str, Any], snake: bool, moment: datetime) -> dict[str, Any]:
    if not snake:
        return event
    renamed = {"event_type" if key == "eventType" else "data_version" if key == "dataVersion" else key: value
               for key, value in event.items() if key != "eventTime"}
    renamed["event_time"] = moment
    return renamed


def _without_raw_json(value: Any) -> Any:
    """A decoded document has no raw JSON text in it: put in what json.loads would have made of the piece."""
    if isinstance(value, RawJson):
        return value.text[:64]
    if isinstance(value, dict):
        return {key: _without_raw_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_raw_json(item) for item in value]
    return value
