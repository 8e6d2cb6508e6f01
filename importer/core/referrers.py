"""Referrers: the signatures, attestations and SBOMs about a manifest, as the registries keep them. Pure.

    referrers_tag("sha256:ab…")                   # "sha256-ab…": the referrers tag schema's index of them
    cosign_tags("sha256:ab…")                     # ("sha256-ab….sig", "….att", "….sbom"): cosign's tag scheme
    referrers_in_index(raw_index)                 # the Referrers an API page or a referrers tag's index lists
    index_entry(raw, media_type)                  # the descriptor a referrers index lists for one referrer
    with_entries(existing_index_raw, [entry, …])  # that index with entries added (None: all listed already)
    signature_status(final, source, signed)       # "kept" | "lost" | "none" (docs/design.md, "Referrers")

Three ways a registry links an artifact to the manifest it is about (its subject):
- the OCI 1.1 referrers API (`GET /v2/<name>/referrers/<digest>`): the registry indexes each manifest's `subject`;
- the referrers tag schema, for registries without the API: an index tagged `<algorithm>-<hex>` lists them, kept up
  to date by whoever pushes a referrer (read, add, write back);
- cosign's tag scheme: tags `sha256-<hex>.sig`, `.att`, `.sbom`, whose manifests carry no `subject` at all.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from importer.core import media_types as mt
from importer.core.artifacts import SIGNATURE, kind_of_media_type
from importer.core.bounded_json import loads as load_bounded_json
from importer.core.manifests import ImageManifest, Index, ManifestError, parse_manifest

# One copy, quarantine or release carries at most this many referrers in all, signatures of signatures included,
# and follows referrers of referrers at most this many levels down. A signed image with an SBOM and provenance,
# each signed, is six; a registry that lists thousands for one digest is not giving us signatures worth keeping.
MAX_REFERRERS: Final = 1000
MAX_REFERRER_DEPTH: Final = 4

COSIGN_SIGNATURE_SUFFIX: Final = ".sig"
COSIGN_ATTESTATION_SUFFIX: Final = ".att"
COSIGN_SBOM_SUFFIX: Final = ".sbom"
COSIGN_TAG_SUFFIXES: Final = (COSIGN_SIGNATURE_SUFFIX, COSIGN_ATTESTATION_SUFFIX, COSIGN_SBOM_SUFFIX)

SIGNATURE_KEPT: Final = "kept"
SIGNATURE_LOST: Final = "lost"
SIGNATURE_NONE: Final = "none"


@dataclass(frozen=True, slots=True)
class Referrer:
    """One manifest about another: its descriptor as a referrers listing gives it, and the cosign tag it lives under
    (None for referrers found by `subject`: the API or the referrers tag's index)."""

    digest: str
    media_type: str
    size: int
    artifact_type: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    tag: str | None = None

    @property
    def is_signature(self) -> bool:
        """A signature (cosign `.sig`, Notation, a Sigstore bundle), as opposed to an attestation, SBOM or other."""
        if self.tag is not None and self.tag.endswith(COSIGN_SIGNATURE_SUFFIX):
            return True
        return kind_of_media_type(self.artifact_type) == SIGNATURE


def referrers_tag(digest: str) -> str:
    """The referrers tag schema's tag for `digest`: `<algorithm>-<hex>`, the hex cut to 64 digits."""
    algorithm, _, encoded = digest.partition(":")
    return f"{algorithm[:32]}-{encoded[:64]}"


def cosign_tags(digest: str) -> tuple[str, ...]:
    """The tags cosign keeps signatures, attestations and SBOMs of `digest` under (a sha256 digest; others: none)."""
    algorithm, _, encoded = digest.partition(":")
    if algorithm != "sha256":
        return ()
    return tuple(f"sha256-{encoded}{suffix}" for suffix in COSIGN_TAG_SUFFIXES)


def referrers_in_index(raw: bytes) -> tuple[Referrer, ...]:
    """The referrers an index lists (a referrers API page or a referrers tag's index); () when `raw` is not an index.

    Entries that are not manifests are left out: a referrer is a manifest.
    """
    try:
        index = parse_manifest(raw, mt.OCI_INDEX)
    except ManifestError:
        return ()
    if not isinstance(index, Index):
        return ()
    return tuple(
        Referrer(entry.digest, entry.media_type, entry.size, entry.artifact_type, dict(entry.annotations))
        for entry in index.manifests
        if entry.media_type in mt.MANIFEST_MEDIA_TYPES
    )


def index_entry(raw: bytes, media_type: str, digest: str) -> dict[str, object]:
    """The descriptor a referrers index lists for the referrer `raw` (digest `digest`): its media type, digest, size,
    `artifactType` (the manifest's, else its config's media type, as the distribution spec says) and annotations.

    ManifestError when `raw` is not a manifest."""
    manifest = parse_manifest(raw, media_type)
    artifact_type = manifest.artifact_type
    if artifact_type is None and isinstance(manifest, ImageManifest):
        artifact_type = manifest.config.media_type
    entry: dict[str, object] = {"mediaType": manifest.media_type, "digest": digest, "size": len(raw)}
    if artifact_type is not None:
        entry["artifactType"] = artifact_type
    if manifest.annotations:
        entry["annotations"] = dict(manifest.annotations)
    return entry


def with_entries(index_raw: bytes | None, entries: Sequence[Mapping[str, object]]) -> bytes | None:
    """The referrers tag's index with `entries` added in order, or None when it lists every one of them already.

    `index_raw` is what the tag holds now (None: nothing); what it lists is kept as it is. Content that is not an
    index is replaced: the tag belongs to the referrers schema.
    """
    listed: list[object] = []
    if index_raw is not None:
        try:
            existing = load_bounded_json(index_raw)  # the registry's content: refused past the depth limit
        except ValueError:
            existing = None
        if isinstance(existing, dict) and isinstance(existing.get("manifests"), list):
            listed = list(existing["manifests"])
    present = {item.get("digest") for item in listed if isinstance(item, dict)}
    added = [dict(entry) for entry in entries if entry.get("digest") not in present]
    if not added:
        return None
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [*listed, *added]}
    return json.dumps(index, separators=(",", ":")).encode("utf-8")


def signature_status(final_digest: str, source_digest: str, signed: Collection[str]) -> str:
    """Whether the upstream's signatures still cover what a tag points at after a copy.

    `signed`: the source digests that had at least one signature. `kept` when the digest the tag now points at is
    signed (its signatures came along); `lost` when it is not but the source manifest it was made from was (a
    filtered index has a new digest; a flattened child of a signed index may have none of its own); `none` when
    neither had any.
    """
    if final_digest in signed:
        return SIGNATURE_KEPT
    if source_digest in signed:
        return SIGNATURE_LOST
    return SIGNATURE_NONE
