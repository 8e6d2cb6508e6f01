"""Tests for importer.core.quarantine_origin: the artifact that keeps a quarantined image's origin next to it."""

from __future__ import annotations

import json

import pytest

from importer.core.manifests import Descriptor, ImageManifest, parse_manifest
from importer.core.media_types import OCI_EMPTY, OCI_INDEX, OCI_MANIFEST, QUARANTINE_ORIGIN_ARTIFACT
from importer.core.quarantine_names import QuarantineOrigin, quarantine_tag
from importer.core.quarantine_origin import EMPTY_DIGEST, origin_artifact, read_origin_artifact

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32
SUBJECT = Descriptor(OCI_MANIFEST, DIGEST, 1234)
ORIGIN = QuarantineOrigin("team/" + "long-name-" * 24 + "end", "v" * 100, DIGEST)
KEPT = quarantine_tag(ORIGIN.tag, DIGEST)
RAW = origin_artifact(ORIGIN, kept_tag=KEPT, subject=SUBJECT)


def test_the_artifact_refers_to_the_image_and_reads_back() -> None:
    """An OCI 1.1 artifact: artifactType, the empty config and layer, the image as subject, the origin annotated;
    built the same way every time, and read back whole."""
    manifest = parse_manifest(RAW)
    assert isinstance(manifest, ImageManifest) and manifest.media_type == OCI_MANIFEST
    assert manifest.artifact_type == QUARANTINE_ORIGIN_ARTIFACT and not manifest.is_image
    assert (manifest.config.media_type, manifest.config.digest, manifest.config.size) == (OCI_EMPTY, EMPTY_DIGEST, 2)
    assert [layer.digest for layer in manifest.layers] == [EMPTY_DIGEST]
    assert manifest.subject is not None and (manifest.subject.digest, manifest.subject.size) == (DIGEST, 1234)
    assert origin_artifact(ORIGIN, kept_tag=KEPT, subject=SUBJECT) == RAW
    assert read_origin_artifact(RAW, DIGEST) == (ORIGIN, KEPT)


def _changed(**changes: object) -> bytes:
    document = json.loads(RAW)
    for key, value in changes.items():
        if key.startswith("io."):
            document["annotations"][key] = value
        else:
            document[key] = value
    return json.dumps(document).encode()


NOT_ORIGINS = {
    "another-subject": (RAW, OTHER),
    "another-artifact-type": (_changed(artifactType="application/vnd.example+json"), DIGEST),
    "no-subject": (_changed(subject=None), DIGEST),
    "invalid-repository": (_changed(**{"io.platform-guard.quarantine.repository": "Team/App"}), DIGEST),
    "invalid-tag": (_changed(**{"io.platform-guard.quarantine.tag": "-x"}), DIGEST),
    "digest-not-the-subject": (_changed(**{"io.platform-guard.quarantine.digest": OTHER}), DIGEST),
    "no-kept-tag": (_changed(**{"io.platform-guard.quarantine.kept-tag": ""}), DIGEST),
    "not-json": (b"{", DIGEST),
    "an-index": (json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).encode(), DIGEST),
}


@pytest.mark.parametrize(("raw", "subject"), NOT_ORIGINS.values(), ids=NOT_ORIGINS.keys())
def test_what_is_not_an_origin_of_this_image_reads_as_none(raw: bytes, subject: str) -> None:
    """Other artifacts, other subjects, and annotations that are missing or invalid give nothing."""
    assert read_origin_artifact(raw, subject) is None
