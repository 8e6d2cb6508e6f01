"""The origin of a quarantined image, kept next to it in the registry: an OCI artifact whose subject is the image.

    raw = origin_artifact(origin, kept_tag="1.0.sha256-…", subject=descriptor)  # push by digest: digest_of(raw)
    read_origin_artifact(raw, subject_digest)                             # (origin, kept tag), or None

The artifact is an OCI image manifest (OCI 1.1 artifact guidance) with `artifactType`
`application/vnd.platform-guard.quarantine.v1+json`, the empty config `{}` as config and as its one layer, `subject`
the preserved image, and annotations holding the original repository, tag and digest and the quarantine tag the
image is kept under. It does not touch the image, so the image's digest stays. It is built deterministically (no
time in it), so preserving the same image under the same name again gives the same artifact.

Registries with the referrers API find it by `GET /v2/<name>/referrers/<digest>`; for the others it is listed in the
referrers tag schema's index (importer.core.referrers, importer.app.referrers). The ledger stays the source of truth:
this is for when it is not at hand.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Final

from importer.core.manifests import Descriptor, ImageManifest, ManifestError, parse_manifest
from importer.core.media_types import (
    OCI_EMPTY,
    OCI_MANIFEST,
    QUARANTINE_DIGEST_ANNOTATION,
    QUARANTINE_KEPT_TAG_ANNOTATION,
    QUARANTINE_ORIGIN_ARTIFACT,
    QUARANTINE_REPOSITORY_ANNOTATION,
    QUARANTINE_TAG_ANNOTATION,
)
from importer.core.quarantine_names import QuarantineOrigin
from importer.core.reference import is_valid_digest, is_valid_repository, is_valid_tag

EMPTY_BLOB: Final = b"{}"
EMPTY_DIGEST: Final = "sha256:" + hashlib.sha256(EMPTY_BLOB).hexdigest()
_EMPTY_DESCRIPTOR: Final = {
    "mediaType": OCI_EMPTY,
    "digest": EMPTY_DIGEST,
    "size": len(EMPTY_BLOB),
    "data": base64.b64encode(EMPTY_BLOB).decode("ascii"),
}


def digest_of(raw: bytes) -> str:
    """The sha256 digest of manifest bytes, to push them by digest."""
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def origin_artifact(origin: QuarantineOrigin, *, kept_tag: str, subject: Descriptor) -> bytes:
    """The artifact's manifest bytes (compact JSON, keys in a fixed order) about `subject`, the preserved image."""
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": QUARANTINE_ORIGIN_ARTIFACT,
        "config": _EMPTY_DESCRIPTOR,
        "layers": [_EMPTY_DESCRIPTOR],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
        "annotations": {
            QUARANTINE_REPOSITORY_ANNOTATION: origin.repository,
            QUARANTINE_TAG_ANNOTATION: origin.tag,
            QUARANTINE_DIGEST_ANNOTATION: origin.digest,
            QUARANTINE_KEPT_TAG_ANNOTATION: kept_tag,
        },
    }
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def read_origin_artifact(raw: bytes, subject_digest: str) -> tuple[QuarantineOrigin, str] | None:
    """(origin, quarantine tag) from an origin artifact about `subject_digest`, or None when `raw` is not one
    (another artifact, another subject, missing or invalid annotations, a digest that is not the subject's)."""
    try:
        manifest = parse_manifest(raw)
    except ManifestError:
        return None
    if not isinstance(manifest, ImageManifest) or manifest.artifact_type != QUARANTINE_ORIGIN_ARTIFACT:
        return None
    if manifest.subject is None or manifest.subject.digest != subject_digest:
        return None
    notes = manifest.annotations
    origin = QuarantineOrigin(
        repository=notes.get(QUARANTINE_REPOSITORY_ANNOTATION, ""),
        tag=notes.get(QUARANTINE_TAG_ANNOTATION, ""),
        digest=notes.get(QUARANTINE_DIGEST_ANNOTATION, ""),
    )
    kept_tag = notes.get(QUARANTINE_KEPT_TAG_ANNOTATION, "")
    if not (is_valid_repository(origin.repository) and is_valid_tag(origin.tag) and is_valid_tag(kept_tag)):
        return None
    if not is_valid_digest(origin.digest) or origin.digest != subject_digest:
        return None
    return origin, kept_tag
