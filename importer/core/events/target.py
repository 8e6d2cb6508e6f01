"""The body every schema carries, `target`, `request` and `actor`, read into one `PushEvent`.

ACR's `data` (inside an Event Grid or CloudEvents envelope), a distribution event and an ACR webhook body
all have this shape. `origin` comes from the envelope when it has one, else from `request.host`: it names
the sending registry and is only matched later against the configured registries, never connected to.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from importer.core.events.fields import (
    join_path,
    read_digest,
    read_object,
    read_reference_media_types,
    read_repository,
    read_required_object,
    read_size,
    read_string,
    read_tag,
)
from importer.core.events.model import CHART, IMAGE, PUSH, PushEvent, bare_media_type, is_manifest_media_type
from importer.core.media_types import HELM_MEDIA_TYPES

_BLOB_URL_PATH = re.compile(r"/blobs/[^/]+$")


def read_target_event(
    event: Mapping[str, object],
    path: str,
    *,
    schema: str,
    event_id: str,
    action: str,
    artifact: str | None,
    origin: str | None,
    occurred_at: str | None,
    keep_blobs: bool,
) -> PushEvent | None:
    """Read the shared `target`/`request`/`actor` shape; None for a blob push unless `keep_blobs`.

    `artifact` None: the media type (or those of `target.references`) says whether it is a chart.
    `origin` None: `request.host`.
    """
    target_path = join_path(path, "target")
    target = read_required_object(event, "target", path)
    media_type = read_string(target, "mediaType", target_path)
    url = read_string(target, "url", target_path)
    if action == PUSH and not keep_blobs and _is_blob_push(media_type, url):
        return None
    repository = read_repository(target, target_path)
    digest = read_digest(target, target_path, required=action == PUSH)
    tag = read_tag(target, target_path)
    size = read_size(target, target_path)
    references = read_reference_media_types(target, target_path)

    request_path = join_path(path, "request")
    request = read_object(event, "request", path) or {}
    user_agent = read_string(request, "useragent", request_path) or None
    if origin is None:
        origin = read_string(request, "host", request_path) or ""
    actor_path = join_path(path, "actor")
    actor = read_object(event, "actor", path) or {}
    actor_name = read_string(actor, "name", actor_path) or None

    if artifact is None:
        helm = media_type is not None and bare_media_type(media_type) in HELM_MEDIA_TYPES
        artifact = CHART if helm or references & HELM_MEDIA_TYPES else IMAGE
    return PushEvent(
        event_id=event_id,
        schema=schema,
        action=action,
        origin=origin,
        repository=repository,
        tag=tag,
        digest=digest,
        media_type=media_type,
        size=size,
        artifact=artifact,
        actor=actor_name,
        user_agent=user_agent,
        occurred_at=occurred_at,
    )


def _is_blob_push(media_type: str | None, url: str | None) -> bool:
    # Distribution's target.url ends in /blobs/<digest> or /manifests/<reference>; a repository may itself
    # have a path segment called "blobs", so only the last two segments count.
    if url is not None and _BLOB_URL_PATH.search(urlsplit(url).path):
        return True
    return media_type is not None and not is_manifest_media_type(media_type)
