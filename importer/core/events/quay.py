"""Quay's `repo_push` repository notification, as its webhook method POSTs it:

    {"repository": "mynamespace/repository", "namespace": "mynamespace", "name": "repository",
     "docker_url": "quay.io/mynamespace/repository", "homepage": "https://quay.io/repository/…",
     "updated_tags": ["latest"]}

Told apart by `updated_tags`. Older Quay releases sent `updated_tags` as an object of tag → image id; its keys are
the tags then (the values are not manifest digests and are not kept). Tags only, no digests: each updated tag
gives one `PushEvent` with `digest` None, to be resolved on the registry by its tag.

The origin is the host of `docker_url`, which must name `repository`: only matched against the configured
registries, never connected to. The body carries no id: the event id is `quay-<32 hex>-<index>`, the sha256 of
the canonical body and the tag's index, so a redelivery is a duplicate (docs in harbor.py).

Quay's webhook method has no header to configure: the webhook token goes in the endpoint URL's `code` query
parameter, which every event route accepts.
"""

from __future__ import annotations

from collections.abc import Mapping

from importer.core.events.fields import EventError, json_type, read_required_string, read_string, show
from importer.core.events.harbor import (
    MAX_RESOURCES_PER_DELIVERY,
    delivery_id,
    read_bounded_list,
    registry_host_of,
    too_many,
)
from importer.core.events.model import IMAGE, PUSH, ParsedEvent, PushEvent, RejectedEvent
from importer.core.events.rejections import lenient_string
from importer.core.reference import MAX_REPOSITORY_LENGTH, is_valid_host, is_valid_repository, is_valid_tag

SCHEMA_QUAY = "quay"


def is_quay_payload(document: object) -> bool:
    """Whether a registry-notification body is Quay's `repo_push` (an object with `updated_tags`)."""
    return isinstance(document, dict) and "updated_tags" in document


def read_quay_payload(document: Mapping[str, object]) -> list[ParsedEvent]:
    """Quay's `repo_push` → one tagged PushEvent (digest None) per updated tag."""
    base_id = delivery_id("quay", document)
    try:
        repository = read_required_string(document, "repository", "", max_length=MAX_REPOSITORY_LENGTH)
        if not is_valid_repository(repository):
            raise EventError("repository", f"{show(repository)} is not a valid repository name")
        namespace = read_string(document, "namespace", "")
        if namespace is not None and not repository.startswith(f"{namespace}/"):
            raise EventError("repository", f"{show(repository)} is not in namespace {show(namespace)}")
        # `name` is not compared: Quay's own documented example has "name": "repository" for "dgangaia/test".
        read_string(document, "name", "")
        read_string(document, "homepage", "")
        read_string(document, "visibility", "")
        origin = registry_host_of(read_required_string(document, "docker_url", ""), repository, "docker_url")
        tags = _updated_tags(document)
    except EventError as problem:
        return [RejectedEvent(event_id=f"{base_id}-0", reason=str(problem), origin=_lenient_origin(document))]
    events: list[ParsedEvent] = []
    for index, tag in enumerate(tags):
        event_id = f"{base_id}-{index}"
        if not isinstance(tag, str) or not is_valid_tag(tag):
            shown = show(tag) if isinstance(tag, str) else f"expected a string, got {json_type(tag)}"
            problem = f"{shown} is not a valid tag" if isinstance(tag, str) else shown
            events.append(RejectedEvent(event_id=event_id, reason=f"updated_tags[{index}]: {problem}", origin=origin))
            continue
        events.append(PushEvent(
            event_id=event_id, schema=SCHEMA_QUAY, action=PUSH, origin=origin, repository=repository, tag=tag,
            digest=None, media_type=None, size=None, artifact=IMAGE, actor=None, user_agent=None, occurred_at=None,
        ))
    return events


def _updated_tags(document: Mapping[str, object]) -> list[object]:
    value = document.get("updated_tags")
    if isinstance(value, Mapping):  # older Quay: {tag: image id}
        if len(value) > MAX_RESOURCES_PER_DELIVERY:
            raise EventError("updated_tags", too_many(len(value)))
        return list(value)
    return read_bounded_list(document, "updated_tags", "")


def _lenient_origin(document: Mapping[str, object]) -> str:
    host = lenient_string(document, "docker_url").partition("/")[0]
    return host if is_valid_host(host) else ""

