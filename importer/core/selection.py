"""Which children of an index a copy or an import keeps, and the bytes of the smaller index: pure planning.

    kept = plan_subset(index, [parse("linux/amd64")])      # best child per platform, plus their attestations
    raw = build_index(index, raw_index, kept)              # the original bytes when nothing was left out
    plan = plan_import(fetched, exclude=("windows/*",))    # what a server-side import must bring in

The rules (docs/design.md, "Copying"): for each requested platform the best top-level image child
(`importer.core.platforms.best_candidate`, strict or compatible ranking); the BuildKit attestations of kept
children stay with them; `exclude` patterns drop matching image children and their attestations; nothing
dropped means the same bytes and digest. A platform nothing satisfies is a CopyError naming what is offered.
Each is linear in the number of children (an index may hold some 19,000 within the 4 MiB a manifest may have).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from importer.core.manifests import (
    ChildKind,
    Descriptor,
    FetchedManifest,
    Index,
    ManifestError,
    WalkBudget,
    classify_child,
    parse_manifest,
)
from importer.core.media_types import ATTESTATION_SUBJECT_ANNOTATION
from importer.core.platforms import (
    Platform,
    PlatformError,
    best_candidate,
    format_platform,
    matches_pattern,
    validate_pattern,
)

# One ACR import takes an index of at most this many children; a larger one is imported child by child.
MAX_IMPORT_MANIFESTS = 50


class CopyError(Exception):
    """A permanent problem with a copy request or the source's content; the message names the source."""


def plan_subset(
    index: Index, platforms: Sequence[Platform], *, strict: bool = False, exclude: Sequence[str] = ()
) -> tuple[Descriptor, ...]:
    """The children of `index` to keep, in their original order (see the module docstring for the rules).

    Raises CopyError when a requested platform is not offered (after exclusions), when exclusions leave no
    image, or when an exclude pattern is invalid.
    """
    check_exclude_patterns(exclude)
    children = index.manifests
    images = [position for position, child in enumerate(children) if classify_child(child) is ChildKind.IMAGE]
    allowed = [position for position in images if not _excluded(children[position], exclude)]
    if platforms:
        chosen: set[int] = set()
        candidates = [_platform_of(children[position]) for position in allowed]
        for requested in platforms:
            best = best_candidate(requested, candidates, strict=strict)
            if best is None:
                raise CopyError(_not_offered(requested, index, images, allowed, strict=strict, exclude=exclude))
            chosen.add(allowed[best])
        subjects = {children[position].digest for position in chosen}
        return tuple(
            child
            for position, child in enumerate(children)
            if position in chosen or (_is_attestation(child) and _subject(child) in subjects)
        )
    if images and not allowed:
        offered = _listed(children, images)
        raise CopyError(f"excluding {', '.join(exclude)} leaves no platform (offered: {offered})")
    dropped = set(images) - set(allowed)
    kept_digests = {children[position].digest for position in allowed}
    dropped_digests = {children[position].digest for position in dropped} - kept_digests
    return tuple(
        child
        for position, child in enumerate(children)
        if position not in dropped and not (_is_attestation(child) and _subject(child) in dropped_digests)
    )


def build_index(original: Index, raw_original: bytes, kept: Sequence[Descriptor]) -> bytes:
    """The bytes of a new index holding only `kept` (children of `original`), in the original order.

    Every top-level field of the original (media type, annotations, unknown fields) and every kept entry are
    carried over exactly as the original JSON has them. When nothing is left out, `raw_original` itself is
    returned, so the digest stays the same. ValueError when `kept` is empty, names a child the original does
    not have, or `raw_original` does not match `original`.
    """
    if not kept:
        raise ValueError("build_index: an index needs at least one child, none were kept")
    # Compared by value through hashable keys, not `in` on sequences: linear in the children, not quadratic.
    children = {_identity(child) for child in original.manifests}
    for child in kept:
        if _identity(child) not in children:
            raise ValueError(f"build_index: {child.digest} ({child.media_type}) is not a child of the original index")
    document = json.loads(raw_original)
    entries = document.get("manifests") if isinstance(document, dict) else None
    if not isinstance(entries, list) or len(entries) != len(original.manifests):
        raise ValueError("build_index: raw_original is not the index `original` was parsed from")
    wanted = {_identity(child) for child in kept}
    positions = [position for position, child in enumerate(original.manifests) if _identity(child) in wanted]
    if len(positions) == len(entries):
        return raw_original
    document["manifests"] = [entries[position] for position in positions]
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _identity(child: Descriptor) -> tuple[object, ...]:
    """A hashable stand-in for a descriptor: equal exactly when the descriptors are equal."""
    return (child.media_type, child.digest, child.size, child.platform, tuple(sorted(child.annotations.items())),
            child.artifact_type, child.platform_error)


def check_exclude_patterns(exclude: Sequence[str]) -> None:
    for pattern in exclude:
        try:
            validate_pattern(pattern)
        except PlatformError as error:
            raise CopyError(f"exclude: {error}") from None


def _platform_of(child: Descriptor) -> Platform:
    assert child.platform is not None  # only called for ChildKind.IMAGE entries
    return child.platform


def _excluded(child: Descriptor, exclude: Sequence[str]) -> bool:
    return any(matches_pattern(pattern, _platform_of(child)) for pattern in exclude)


def _is_attestation(child: Descriptor) -> bool:
    return classify_child(child) is ChildKind.ATTESTATION


def _subject(child: Descriptor) -> str | None:
    return child.annotations.get(ATTESTATION_SUBJECT_ANNOTATION)


def _describe(child: Descriptor) -> str:
    return format_platform(_platform_of(child), with_os_version=True)


LISTED_PLATFORMS = 20  # an error message names at most this many distinct platforms


def _listed(children: Sequence[Descriptor], positions: Sequence[int]) -> str:
    """The distinct platforms of the children at `positions`, in order, at most LISTED_PLATFORMS of them."""
    names = list(dict.fromkeys(_describe(children[position]) for position in positions))
    more = f", and {len(names) - LISTED_PLATFORMS} more" if len(names) > LISTED_PLATFORMS else ""
    return ", ".join(names[:LISTED_PLATFORMS]) + more


def _not_offered(
    requested: Platform, index: Index, images: list[int], allowed: list[int], *, strict: bool, exclude: Sequence[str]
) -> str:
    children = index.manifests
    offered = _listed(children, allowed) or "no image"
    kept = set(allowed)
    excluded = [position for position in images if position not in kept]
    wanted = format_platform(requested, with_os_version=True)
    match = " (strict match)" if strict else ""
    if best_candidate(requested, [_platform_of(children[position]) for position in excluded], strict=strict) is None:
        return f"platform {wanted} is not offered{match}; offered: {offered}"
    names = _listed(children, excluded)
    return (
        f"platform {wanted} is offered{match} only by children excluded by {', '.join(exclude)} ({names}); "
        f"the others offer: {offered}"
    )


@dataclass(frozen=True, slots=True)
class ImportPlan:
    """What to ask ACR to import for one upstream manifest, and what the tag will point at afterwards.

    shape     "whole": the upstream manifest as it is; "single": one child (flatten); "assembled": the kept
              children, after which the caller puts `manifest` (a new or too-large index) with the registry client.
    imports   digests to import from the upstream repository, each by digest, in order.
    digest    what the tag must point at in the end; `media_type` is its media type.
    manifest  the index bytes to put (shape "assembled" only), whose digest is `digest`.
    """

    shape: Literal["whole", "single", "assembled"]
    imports: tuple[str, ...]
    digest: str
    media_type: str
    manifest: bytes | None = None


def plan_import(
    upstream: FetchedManifest,
    *,
    platforms: Sequence[Platform] = (),
    strict: bool = False,
    exclude: Sequence[str] = (),
    flatten: bool = False,
    max_manifests: int = MAX_IMPORT_MANIFESTS,
) -> ImportPlan:
    """Decide which digests to import so the target gets what `copy_image` with the same options would write.

    The children are chosen by `importer.app.copying.plan_subset` and a filtered index is built by
    `build_index`, exactly as the copy engine does. A single image (not an index) is imported whole: its
    platform was checked against its config when the upstream was inspected. An index whose subset leaves
    everything in is imported whole, unless it lists more than `max_manifests` children, which one ACR import
    does not take: then its children are imported one by one and the original bytes are put ("assembled").
    Raises CopyError when the options cannot be met (platform not offered, flatten without exactly one
    platform, bad pattern, an index over the walk budget, importer.core.manifests.WalkBudget) and ManifestError
    when `upstream` is not a manifest.
    """
    if flatten and len(platforms) != 1:
        requested = ", ".join(map(str, platforms)) or "none"
        raise CopyError(f"flatten needs exactly one platform, got {len(platforms)} ({requested})")
    manifest = parse_manifest(upstream.raw, upstream.media_type)
    if not isinstance(manifest, Index):
        return ImportPlan("whole", (upstream.digest,), upstream.digest, upstream.media_type)
    try:  # the same budget a copy of it would count against (the top index's entries, to begin with)
        WalkBudget(upstream.digest).visit(len(manifest.manifests), upstream.digest)
    except ManifestError as error:
        raise CopyError(str(error)) from None
    if flatten:
        kept = plan_subset(manifest, platforms, strict=strict, exclude=exclude)
        child = next(entry for entry in kept if classify_child(entry) is ChildKind.IMAGE)
        return ImportPlan("single", (child.digest,), child.digest, child.media_type)
    kept = plan_subset(manifest, platforms, strict=strict, exclude=exclude) if platforms or exclude else ()
    raw = build_index(manifest, upstream.raw, kept) if kept else upstream.raw
    if raw == upstream.raw and len(manifest.manifests) <= max_manifests:
        return ImportPlan("whole", (upstream.digest,), upstream.digest, upstream.media_type)
    children: Sequence[Descriptor] = kept or manifest.manifests
    digest = upstream.digest if raw == upstream.raw else "sha256:" + hashlib.sha256(raw).hexdigest()
    return ImportPlan(
        "assembled",
        tuple(dict.fromkeys(child.digest for child in children)),
        digest,
        upstream.media_type,
        manifest=raw,
    )


