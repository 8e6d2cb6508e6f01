"""Signatures, attestations, SBOMs and other artifacts: what a pushed manifest is when it is not an image to judge.

Pure: parsed manifests (importer.core.manifests), a tag and a parsed config in, an `Artifact` or None out.

    if needs_config(manifest):                      # an image config, and no filesystem layer: the config tells
        document = config_document(raw_config)      # read once; the same document gives the platform of an image
    found = classify(manifest, tag="sha256-….sig", config=document)   # Artifact | None (None: judge it)
    found.kind                                      # "signature"
    found.reason                                    # "cosign signature (…) of sha256:…, not a runnable image"
    referrer_of(manifest)                           # an untagged push, by its manifest alone: Artifact | None

Kinds (the `kind` of the verdict and outcome; "index" and "image" are the two kinds that are judged):

- `signature`: cosign simple-signing layers, a Notation signature (`application/vnd.cncf.notary.signature`), a
  Sigstore bundle;
- `attestation`: a DSSE envelope or an in-toto statement (`cosign attest`; BuildKit's attestation manifests);
- `sbom`: SPDX, CycloneDX or Syft documents (`cosign attach sbom`, `oras attach`);
- `referrers`: the OCI referrers tag schema's index: tag `<alg>-<hex>`, every entry an artifact, or no entry at all;
- `artifact`: any other manifest that is not a runnable image: a non-image config (Helm charts), an index with
  `artifactType` or `subject`, …

The content decides; names only corroborate. An image manifest is an artifact when its config is not an image config
(then it never needs its config read), or when its config is an image config that declares no platform (`os` or
`architecture` absent, empty or `unknown`, as cosign writes `"os": ""`) and none of its layers is a filesystem (tar)
layer — it has at least one layer, or an `artifactType` or `subject`. An image config that declares a platform makes a
runnable image, judged whatever the tag is called, whatever `artifactType` or `subject` it carries: a tag named like
`sha256-<hex>.sig` never lets an arm64 image escape the policy. A config that lacks a platform over filesystem layers
is a broken image, not an artifact: inspecting it fails as before. The media types (`artifactType`, then the layers,
then the config) say which kind; a cosign tag (`sha256-<hex>.sig`, `.att`, `.sbom`) names the subject when the
manifest has no `subject`, and the kind when the media types do not.

An index is an artifact when it has an `artifactType` or a `subject`, and a referrers index when it is tagged
`<alg>-<hex>` and lists only artifacts (every entry has an `artifactType`, or is an artifact manifest, and none
names a platform) or nothing.
An index of images under such a tag is judged like any other.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from importer.core.manifests import Descriptor, ImageManifest, Index, Manifest
from importer.core.media_types import (
    ATTESTATION_MEDIA_TYPES,
    COSIGN_SIMPLESIGNING,
    CYCLONEDX,
    CYCLONEDX_JSON,
    CYCLONEDX_XML,
    DOCKER_LAYER_PREFIX,
    DSSE_ENVELOPE,
    IMAGE_CONFIG_MEDIA_TYPES,
    IN_TOTO_LAYER,
    IN_TOTO_PREFIX,
    NOTARY_SIGNATURE,
    OCI_ARTIFACT_MANIFEST,
    OCI_LAYER_PREFIX,
    SBOM_MEDIA_TYPES,
    SIGNATURE_MEDIA_TYPES,
    SIGSTORE_BUNDLE,
    SIGSTORE_BUNDLE_VERSIONED_PREFIX,
    SYFT_JSON,
)
from importer.core.words import counted

__all__ = [
    "ARTIFACT",
    "ARTIFACT_KINDS",
    "ATTESTATION",
    "REFERRERS",
    "SBOM",
    "SIGNATURE",
    "Artifact",
    "classify",
    "cosign_tag_subject",
    "declares_no_platform",
    "is_filesystem_layer",
    "kind_of_media_type",
    "needs_config",
    "referrer_of",
    "referrers_tag_subject",
]

SIGNATURE = "signature"
ATTESTATION = "attestation"
SBOM = "sbom"
REFERRERS = "referrers"
ARTIFACT = "artifact"
# The verdict `kind`s of what is never judged as an image ("index" and "image" are judged).
ARTIFACT_KINDS = frozenset({SIGNATURE, ATTESTATION, SBOM, REFERRERS, ARTIFACT})

# cosign's tag scheme: `sha256-<hex>.sig` (signatures), `.att` (attestations), `.sbom` (SBOMs).
_COSIGN_TAG = re.compile(r"(sha256)-([0-9a-f]{64})\.(sig|att|sbom)")
_COSIGN_SUFFIX_KINDS = {"sig": SIGNATURE, "att": ATTESTATION, "sbom": SBOM}
# The OCI referrers tag schema: `<alg>-<ref>`, ref the digest's hex cut to 64 characters.
_REFERRERS_TAG = re.compile(r"([a-z0-9]{1,32})-([0-9a-f]{64})")
_UNKNOWN_PLATFORM_VALUES = ("", "unknown")
_NOUNS = {SIGNATURE: "signature", ATTESTATION: "attestation", SBOM: "SBOM", REFERRERS: "referrers index",
          ARTIFACT: "other artifact"}  # counted by importer.core.words


@dataclass(frozen=True, slots=True)
class Artifact:
    """What a manifest that is not judged is: its kind, what says so, and what it refers to when known."""

    kind: str  # one of ARTIFACT_KINDS
    media_type: str | None  # what tells: the artifactType, a layer's or the config's media type
    label: str  # "cosign signature", "Notation signature", "SPDX SBOM", "referrers index", "artifact"
    subject: str | None = None  # the digest it refers to: its `subject`, else what its tag names
    listing: Mapping[str, int] = field(default_factory=dict)  # a referrers index: how many of each kind it lists

    @property
    def reason(self) -> str:
        """The verdict's reason: what it is and what it refers to, e.g. "Notation signature
        (application/vnd.cncf.notary.signature) of sha256:…, not a runnable image"."""
        of = f" of {self.subject}" if self.subject else ""
        if self.kind == ARTIFACT:
            refers = f", refers to {self.subject}" if self.subject else ""
            return f"not a runnable image: artifact of type {self.media_type or 'unknown'}{refers}"
        if self.kind == REFERRERS:
            return f"{self.label}{of} listing {_describe_listing(self.listing)}, not a runnable image"
        return f"{self.label} ({self.media_type}){of}, not a runnable image"


def _describe_listing(listing: Mapping[str, int]) -> str:
    parts = [counted(count, _NOUNS[kind]) for kind, count in listing.items() if count]
    return ", ".join(parts) or "nothing"


def _bare(media_type: str) -> str:
    return media_type.split(";", 1)[0].strip().lower()


def kind_of_media_type(media_type: str | None) -> str | None:
    """SIGNATURE, ATTESTATION or SBOM for a media type (artifactType, layer or config) known to be one; else None."""
    if not media_type:
        return None
    bare = _bare(media_type)
    if bare in SIGNATURE_MEDIA_TYPES or bare == SIGSTORE_BUNDLE or (
        bare.startswith(SIGSTORE_BUNDLE_VERSIONED_PREFIX) and bare.endswith("+json")
    ):
        return SIGNATURE
    if bare in ATTESTATION_MEDIA_TYPES or bare.startswith(IN_TOTO_PREFIX):
        return ATTESTATION
    if bare in SBOM_MEDIA_TYPES:
        return SBOM
    return None


def _label(kind: str, media_type: str) -> str:
    """How a reason names an artifact of this kind and media type."""
    bare = _bare(media_type)
    if bare == COSIGN_SIMPLESIGNING:
        return "cosign signature"
    if bare == NOTARY_SIGNATURE:
        return "Notation signature"
    if kind == SIGNATURE:
        return "Sigstore bundle signature" if "sigstore.bundle" in bare else "signature"
    if kind == ATTESTATION:
        return "in-toto attestation" if bare in (DSSE_ENVELOPE, IN_TOTO_LAYER) or bare.startswith(IN_TOTO_PREFIX) \
            else "attestation"
    if kind == SBOM:
        if bare in (CYCLONEDX, CYCLONEDX_JSON, CYCLONEDX_XML):
            return "CycloneDX SBOM"
        return "Syft SBOM" if bare == SYFT_JSON else "SPDX SBOM"
    return "artifact"


def is_filesystem_layer(media_type: str) -> bool:
    """Whether a layer is a filesystem changeset (OCI or Docker tar, compressed or not): what runnable images are
    made of, and what a signature, attestation or SBOM never is."""
    bare = _bare(media_type)
    return bare.startswith(OCI_LAYER_PREFIX) or bare.startswith(DOCKER_LAYER_PREFIX)


def declares_no_platform(config: Mapping[str, object]) -> bool:
    """Whether an image config declares no platform: `os` or `architecture` absent, empty or `unknown` (a value of
    another type is a broken config, not an absent platform: inspecting it says what is wrong)."""
    values = [config.get(key) for key in ("os", "architecture")]
    texts = [value for value in values if isinstance(value, str)]
    if len(texts) + values.count(None) != len(values):
        return False
    return None in values or any(text.strip().lower() in _UNKNOWN_PLATFORM_VALUES for text in texts)


def cosign_tag_subject(tag: str | None) -> tuple[str, str] | None:
    """(subject digest, kind) a cosign tag names: `sha256-<hex>.sig` → ("sha256:<hex>", "signature"); else None."""
    match = _COSIGN_TAG.fullmatch(tag or "")
    if match is None:
        return None
    algorithm, hex_digest, suffix = match.groups()
    return f"{algorithm}:{hex_digest}", _COSIGN_SUFFIX_KINDS[suffix]


def referrers_tag_subject(tag: str | None) -> str | None:
    """The subject a referrers tag (`<alg>-<hex>`) names, as a digest; "" for a tag of that shape whose digest it
    only shows in part (the hex of a digest longer than 64 digits is cut); None for any other tag."""
    match = _REFERRERS_TAG.fullmatch(tag or "")
    if match is None:
        return None
    algorithm, hex_digest = match.groups()
    return f"{algorithm}:{hex_digest}" if algorithm == "sha256" else ""


def needs_config(manifest: Manifest) -> bool:
    """Whether telling an artifact from an image needs the manifest's config: an image manifest whose config is an
    image config and none of whose layers is a filesystem layer — with at least one layer, or with an
    `artifactType` or `subject` that says it is an artifact (a bare config with no layers and no such mark is a
    broken image, as before). Everything else is told by the manifest alone."""
    return (
        isinstance(manifest, ImageManifest)
        and manifest.config.media_type in IMAGE_CONFIG_MEDIA_TYPES
        and not any(is_filesystem_layer(layer.media_type) for layer in manifest.layers)
        and (bool(manifest.layers) or manifest.artifact_type is not None or manifest.subject is not None)
    )


def classify(
    manifest: Manifest, *, tag: str | None = None, config: Mapping[str, object] | None = None
) -> Artifact | None:
    """What `manifest` (pushed under `tag`, when known) is when it is not an image to judge; None to judge it.

    `config`: the parsed image config, which `needs_config(manifest)` manifests must be given (ValueError otherwise);
    it is ignored for the others.
    """
    if isinstance(manifest, Index):
        return _classify_index(manifest, tag)
    if manifest.config.media_type not in IMAGE_CONFIG_MEDIA_TYPES:
        return _describe(manifest, tag, cosign_shaped=False)
    if not needs_config(manifest):
        return None  # filesystem layers (or none at all): an image, judged by its config's platform
    if config is None:
        raise ValueError("classify: this manifest's config must be read to tell an artifact from an image")
    if not declares_no_platform(config):
        return None  # a declared platform: runnable somewhere (a Wasm image, say), so judged
    return _describe(manifest, tag, cosign_shaped=True)


def referrer_of(manifest: Manifest) -> Artifact | None:
    """What an untagged push is when its manifest alone says it is an artifact (no config is read): it has a
    `subject` or an `artifactType`, a config that is not an image config, or only signature, attestation or SBOM
    layers; None otherwise (a child of a multi-arch push, say)."""
    if isinstance(manifest, Index):
        return _classify_index(manifest, None)
    if manifest.subject is not None or manifest.artifact_type is not None:
        return _describe(manifest, None, cosign_shaped=False)
    if manifest.config.media_type not in IMAGE_CONFIG_MEDIA_TYPES:
        return _describe(manifest, None, cosign_shaped=False)
    if manifest.layers and all(kind_of_media_type(layer.media_type) for layer in manifest.layers):
        return _describe(manifest, None, cosign_shaped=True)
    return None


def _classify_index(index: Index, tag: str | None) -> Artifact | None:
    if index.artifact_type is not None or index.subject is not None:
        kind = kind_of_media_type(index.artifact_type) or ARTIFACT
        media_type = index.artifact_type
        subject = index.subject.digest if index.subject is not None else None
        return Artifact(kind, media_type, _label(kind, media_type or ""), subject)
    subject = referrers_tag_subject(tag)
    if subject is None or not all(_is_artifact_entry(entry) for entry in index.manifests):
        return None
    listing = Counter(kind_of_media_type(entry.artifact_type) or ARTIFACT for entry in index.manifests)
    ordered = {kind: listing[kind] for kind in (SIGNATURE, ATTESTATION, SBOM, ARTIFACT) if listing[kind]}
    return Artifact(REFERRERS, index.media_type, "referrers index", subject or None, ordered)


def _is_artifact_entry(entry: Descriptor) -> bool:
    """A referrers listing's entry: an `artifactType` (or an artifact manifest) and no platform. An entry that names
    a platform is an image a client would pick and run, whatever else it says."""
    has_platform = entry.platform is not None or entry.platform_error is not None
    return (entry.artifact_type is not None or entry.media_type == OCI_ARTIFACT_MANIFEST) and not has_platform


def _first_kind(media_types: Iterable[str | None]) -> tuple[str, str] | None:
    for media_type in media_types:
        kind = kind_of_media_type(media_type)
        if kind is not None and media_type is not None:
            return kind, media_type
    return None


def _describe(manifest: ImageManifest, tag: str | None, *, cosign_shaped: bool) -> Artifact:
    """The Artifact a manifest already known not to be an image is: its kind from its media types (artifactType,
    then its layers when they agree, then its config), else from a cosign tag, else ARTIFACT."""
    cosign = cosign_tag_subject(tag)
    subject = manifest.subject.digest if manifest.subject is not None else (cosign[0] if cosign else None)
    layer_kinds = {kind_of_media_type(layer.media_type) for layer in manifest.layers}
    found = _first_kind([manifest.artifact_type])
    if found is None and len(layer_kinds) == 1 and None not in layer_kinds:
        found = _first_kind(layer.media_type for layer in manifest.layers)
    if found is None:
        found = _first_kind([manifest.config.media_type])
    if found is None and cosign is not None and cosign_shaped:
        # cosign's own scheme, layers of a type we do not know: the tag says which kind
        layer_type = manifest.layers[0].media_type if manifest.layers else manifest.config.media_type
        found = cosign[1], layer_type
    if found is None:
        media_type = manifest.artifact_type or (
            manifest.config.media_type if manifest.config.media_type not in IMAGE_CONFIG_MEDIA_TYPES
            else manifest.layers[0].media_type if manifest.layers else manifest.config.media_type
        )
        return Artifact(ARTIFACT, media_type, "artifact", subject)
    kind, media_type = found
    label = _label(kind, media_type)
    if cosign is not None and cosign_shaped and not label.startswith("cosign"):
        label = f"cosign {_NOUNS[kind]}"  # `cosign attest` / `attach sbom`: the media type says the format
    return Artifact(kind, media_type, label, subject)
