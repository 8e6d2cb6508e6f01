"""Manifests, indexes and image configs: parse them and tell which index children are runnable platforms.

Pure: bytes in, values out, no I/O.

    manifest = parse_manifest(raw, media_type_from_header)
    if isinstance(manifest, Index):
        for child in manifest.manifests:
            classify_child(child)          # ChildKind.IMAGE, ATTESTATION, NO_PLATFORM, ...
    else:
        platform_from_config(config_bytes) # the platform of a single image, from its config blob
        # or, to read a config once for two questions (importer.core.artifacts needs it too):
        document = config_document(config_bytes, where="sha256:…: config")
        platform_of_config(document, where="sha256:…: config")

Children that are never a platform (docs/design.md, Index entries that are not platforms): BuildKit attestations (annotation
`vnd.docker.reference.type: attestation-manifest`), platform `unknown/unknown`, anything with an
`artifactType`, a child whose media type is not an image manifest or index, and a child with no
platform at all (reported, never assumed to be linux/amd64 as some tools do). A child manifest whose
config is not an image config is an artifact too; that needs the child itself (`config_kind`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from importer.core.bounded_json import loads as load_bounded_json
from importer.core.excerpts import excerpt, json_excerpt
from importer.core.media_types import (
    ATTESTATION_ANNOTATION,
    ATTESTATION_VALUE,
    IMAGE_CONFIG_MEDIA_TYPES,
    IMAGE_MANIFEST_MEDIA_TYPES,
    INDEX_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
)
from importer.core.platforms import Platform, PlatformError, from_oci, is_unknown
from importer.core.reference import is_valid_digest

MAX_CONFIG_BYTES = 1024 * 1024
# A walk over one manifest's graph (inspection, a copy, a re-import): indexes nest at most this many levels, the top
# one counted, and at most this many descriptors are visited in all. Real images are far below both: a
# multi-platform index of 20 platforms with their attestations, each image of 30 layers, is about 700 descriptors.
MAX_INDEX_DEPTH = 4
MAX_WALK_DESCRIPTORS = 4096


@dataclass(frozen=True, slots=True)
class FetchedManifest:
    """A manifest's exact bytes, its media type and its verified digest."""

    raw: bytes
    media_type: str
    digest: str


class ManifestError(ValueError):
    """A manifest, index or config that cannot be understood; the message says what and where."""


class WalkBudget:
    """The one budget of one walk over a manifest graph: every descriptor visited counts, nesting is bounded.

        budget = WalkBudget(top_digest)
        budget.visit(len(index.manifests), index_digest)   # ManifestError once more than `limit` were visited
        budget.check_depth(depth + height - 1, child_digest)

    Walks memoise by digest, so each distinct manifest is read, parsed and counted once however often it is
    referenced; the budget bounds what is left: distinct content, which costs a registry request each. So the work
    of a walk is linear in the content, and at most `limit` descriptors, whatever the graph's shape.
    """

    def __init__(self, root: str, *, limit: int = MAX_WALK_DESCRIPTORS, max_depth: int = MAX_INDEX_DEPTH) -> None:
        self.root = root
        self.limit = limit
        self.max_depth = max_depth
        self.visited = 0

    def visit(self, count: int, where: str) -> None:
        """Count `count` more descriptors, met in manifest `where`; ManifestError past the limit."""
        self.visited += count
        if self.visited > self.limit:
            at = "" if where == self.root else f" (at {where})"
            raise ManifestError(
                f"{self.root}: more than the {self.limit} descriptors one walk may visit{at}: the manifest graph is "
                "too large to read"
            )

    def check_depth(self, levels: int, where: str) -> None:
        """ManifestError when a path of `levels` nested indexes, the last one being `where`'s, is too deep."""
        if levels > self.max_depth:
            raise ManifestError(f"index nests deeper than {self.max_depth} levels (at {where})")


class ChildKind(enum.Enum):
    """What an index entry is, as far as platforms are concerned."""

    IMAGE = "image"  # a runnable image for the platform its entry names
    INDEX = "index"  # a nested index
    ATTESTATION = "attestation"
    ARTIFACT = "artifact"
    NO_PLATFORM = "no-platform"
    UNKNOWN_PLATFORM = "unknown-platform"


@dataclass(frozen=True, slots=True)
class Descriptor:
    """An OCI content descriptor, with its platform parsed when it has one."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    artifact_type: str | None = None
    platform_error: str | None = None  # the entry had a platform object we could not read


@dataclass(frozen=True, slots=True)
class Index:
    """An OCI image index or a Docker manifest list."""

    media_type: str
    manifests: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)
    artifact_type: str | None = None
    subject: Descriptor | None = None  # OCI 1.1: an index may refer to another manifest too


@dataclass(frozen=True, slots=True)
class ImageManifest:
    """An OCI image manifest or a Docker v2 manifest (also used by artifacts such as Helm charts)."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)
    artifact_type: str | None = None
    subject: Descriptor | None = None

    @property
    def is_image(self) -> bool:
        """True when the config is an image config (otherwise this is an artifact: a chart, an SBOM, ...)."""
        return self.artifact_type is None and self.config.media_type in IMAGE_CONFIG_MEDIA_TYPES


Manifest = Index | ImageManifest


def _load_json(raw: bytes, what: str) -> object:
    # Registries store any blob: a manifest or config may nest deeper than anything should walk it.
    try:
        return load_bounded_json(raw)
    except ValueError as error:  # JsonTooDeep, JSONDecodeError, UnicodeDecodeError, integers over the digit limit
        raise ManifestError(f"{what} is not valid JSON ({error})") from None


def _string(obj: Mapping[str, object], key: str, where: str, *, required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise ManifestError(f"{where}.{key}: expected a non-empty string, got {excerpt(value)}")
    return value


def _annotations(obj: Mapping[str, object], where: str) -> dict[str, str]:
    value = obj.get("annotations") or {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ManifestError(f"{where}.annotations: expected a map of strings")
    return value


def parse_descriptor(obj: object, where: str) -> Descriptor:
    """Parse one descriptor object; `where` names it in errors (e.g. "manifests[2]")."""
    if not isinstance(obj, dict):
        raise ManifestError(f"{where}: expected an object, got {type(obj).__name__}")
    media_type = _string(obj, "mediaType", where)
    digest = _string(obj, "digest", where)
    assert media_type is not None and digest is not None
    if not is_valid_digest(digest):
        raise ManifestError(f"{where}.digest: {excerpt(digest)} is not a valid sha256/sha512 digest")
    size = obj.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestError(f"{where}.size: expected a non-negative integer, got {excerpt(size)}")
    platform: Platform | None = None
    platform_error: str | None = None
    raw_platform = obj.get("platform")
    if raw_platform is not None:
        if not isinstance(raw_platform, dict):
            platform_error = f"{where}.platform: expected an object"
        else:
            try:
                platform = from_oci(raw_platform)
            except PlatformError as error:
                platform_error = f"{where}.platform: {error}"
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        platform=platform,
        annotations=_annotations(obj, where),
        artifact_type=_string(obj, "artifactType", where, required=False),
        platform_error=platform_error,
    )


def _media_type_of(body: Mapping[str, object], header_media_type: str | None) -> str:
    declared = body.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise ManifestError(f"mediaType: expected a string, got {excerpt(declared)}")
    header = (header_media_type or "").split(";")[0].strip() or None
    if declared:
        return declared
    if header in MANIFEST_MEDIA_TYPES:
        return header
    # OCI allows omitting mediaType; infer it from the shape as the spec suggests.
    if "manifests" in body:
        return OCI_INDEX
    if "config" in body:
        return OCI_MANIFEST
    return header or "(none)"


def parse_manifest(raw: bytes, header_media_type: str | None = None) -> Manifest:
    """Parse manifest bytes into an Index or ImageManifest; ManifestError says what is wrong."""
    body = _load_json(raw, "manifest")
    if not isinstance(body, dict):
        raise ManifestError(f"manifest: expected a JSON object, got {type(body).__name__}")
    media_type = _media_type_of(body, header_media_type)
    if media_type not in MANIFEST_MEDIA_TYPES:
        raise ManifestError(f"manifest: unknown manifest media type {excerpt(media_type)}")
    if body.get("schemaVersion") != 2:
        raise ManifestError(f"manifest: schemaVersion must be 2, got {excerpt(body.get('schemaVersion'))}")
    annotations = _annotations(body, "manifest")
    artifact_type = _string(body, "artifactType", "manifest", required=False)
    raw_subject = body.get("subject")
    subject = parse_descriptor(raw_subject, "subject") if raw_subject is not None else None
    if media_type in INDEX_MEDIA_TYPES:
        children = body.get("manifests")
        if not isinstance(children, list):
            raise ManifestError("manifests: expected a list of descriptors")
        return Index(
            media_type=media_type,
            manifests=tuple(parse_descriptor(child, f"manifests[{n}]") for n, child in enumerate(children)),
            annotations=annotations,
            artifact_type=artifact_type,
            subject=subject,
        )
    layers = body.get("layers", [])
    if not isinstance(layers, list):
        raise ManifestError("layers: expected a list of descriptors")
    return ImageManifest(
        media_type=media_type,
        config=parse_descriptor(body.get("config"), "config"),
        layers=tuple(parse_descriptor(layer, f"layers[{n}]") for n, layer in enumerate(layers)),
        annotations=annotations,
        artifact_type=artifact_type,
        subject=subject,
    )


def classify_child(child: Descriptor) -> ChildKind:
    """Tell what an index entry is; only ChildKind.IMAGE entries may count as platforms."""
    if child.annotations.get(ATTESTATION_ANNOTATION) == ATTESTATION_VALUE:
        return ChildKind.ATTESTATION
    if child.artifact_type is not None:
        return ChildKind.ARTIFACT
    if child.media_type in INDEX_MEDIA_TYPES:
        return ChildKind.INDEX
    if child.media_type not in IMAGE_MANIFEST_MEDIA_TYPES:
        return ChildKind.ARTIFACT
    if child.platform is None:
        return ChildKind.NO_PLATFORM
    if is_unknown(child.platform):
        return ChildKind.UNKNOWN_PLATFORM
    return ChildKind.IMAGE


def config_document(raw: bytes, *, where: str = "config") -> Mapping[str, object]:
    """An image config blob as a JSON object (at most MAX_CONFIG_BYTES); ManifestError names `where` and what is
    wrong. Read once, it answers both what the manifest is (importer.core.artifacts) and its platform."""
    if len(raw) > MAX_CONFIG_BYTES:
        raise ManifestError(f"{where}: {len(raw)} bytes is over the {MAX_CONFIG_BYTES} byte limit")
    body = _load_json(raw, where)
    if not isinstance(body, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {json_excerpt(body)}")
    return body


def platform_of_config(document: Mapping[str, object], *, where: str = "config") -> Platform:
    """The platform an image config declares (`os`, `architecture`, `variant`, `os.version`, `os.features`);
    ManifestError names `where` and the field: `sha256:…: config: 'architecture' must be a non-empty string, got 64`."""
    try:
        return from_oci(document)
    except PlatformError as error:
        raise ManifestError(f"{where}: {error}") from None


def platform_from_config(raw: bytes, *, where: str = "config") -> Platform:
    """The platform an image config blob declares: `config_document`, then `platform_of_config`."""
    return platform_of_config(config_document(raw, where=where), where=where)
