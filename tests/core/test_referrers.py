"""Tests for importer.core.referrers: tag names, referrers indexes, index entries and the signature status."""

from __future__ import annotations

import json

import pytest

from importer.core import media_types as mt
from importer.core.manifests import ManifestError
from importer.core.referrers import (
    Referrer,
    cosign_tags,
    index_entry,
    referrers_in_index,
    referrers_tag,
    signature_status,
    with_entries,
)

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32
THIRD = "sha256:" + "ef" * 32
EMPTY = {"mediaType": mt.OCI_EMPTY, "digest": "sha256:" + "44" * 32, "size": 2}


def _notation_signature(subject: str = DIGEST) -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "artifactType": mt.NOTARY_SIGNATURE, "config": EMPTY,
        "layers": [{"mediaType": "application/jose+json", "digest": OTHER, "size": 10}],
        "subject": {"mediaType": mt.OCI_MANIFEST, "digest": subject, "size": 500},
        "annotations": {"io.cncf.notary.x509chain.thumbprint#S256": "[]"},
    }).encode()


def _index(*entries: dict[str, object]) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": list(entries)}).encode()


@pytest.mark.parametrize(
    ("digest", "tag"),
    [(DIGEST, "sha256-" + "ab" * 32), ("sha512:" + "0f" * 64, "sha512-" + "0f" * 32)],
    ids=["sha256", "sha512-cut-to-64"],
)
def test_referrers_tag(digest: str, tag: str) -> None:
    """The referrers tag schema's tag: `<algorithm>-<hex>`, the hex cut to 64 digits."""
    assert referrers_tag(digest) == tag


@pytest.mark.parametrize(
    ("digest", "tags"),
    [
        (DIGEST, ("sha256-" + "ab" * 32 + ".sig", "sha256-" + "ab" * 32 + ".att", "sha256-" + "ab" * 32 + ".sbom")),
        ("sha512:" + "0f" * 64, ()),
    ],
    ids=["sha256", "sha512-has-none"],
)
def test_cosign_tags(digest: str, tags: tuple[str, ...]) -> None:
    """Cosign keeps signatures, attestations and SBOMs of a sha256 digest under three tags."""
    assert cosign_tags(digest) == tags


SIGNATURES = {
    "notation": (Referrer(DIGEST, mt.OCI_MANIFEST, 1, artifact_type=mt.NOTARY_SIGNATURE), True),
    "sigstore-bundle": (Referrer(DIGEST, mt.OCI_MANIFEST, 1, artifact_type=mt.SIGSTORE_BUNDLE_V03), True),
    "cosign-oci-1-1": (Referrer(DIGEST, mt.OCI_MANIFEST, 1, artifact_type=mt.COSIGN_ARTIFACT_SIGNATURE), True),
    "cosign-sig-tag": (Referrer(DIGEST, mt.OCI_MANIFEST, 1, tag="sha256-" + "ab" * 32 + ".sig"), True),
    "cosign-att-tag": (Referrer(DIGEST, mt.OCI_MANIFEST, 1, tag="sha256-" + "ab" * 32 + ".att"), False),
    "sbom": (Referrer(DIGEST, mt.OCI_MANIFEST, 1, artifact_type="application/spdx+json"), False),
    "no-type": (Referrer(DIGEST, mt.OCI_MANIFEST, 1), False),
}


@pytest.mark.parametrize(("referrer", "expected"), SIGNATURES.values(), ids=SIGNATURES.keys())
def test_which_referrers_are_signatures(referrer: Referrer, expected: bool) -> None:
    assert referrer.is_signature is expected


def test_an_index_entry_is_built_from_the_referrer_itself() -> None:
    """artifactType and annotations come from the manifest; an image manifest without one gets its config's type."""
    raw = _notation_signature()
    entry = index_entry(raw, mt.OCI_MANIFEST, OTHER)
    assert entry == {"mediaType": mt.OCI_MANIFEST, "digest": OTHER, "size": len(raw),
                     "artifactType": mt.NOTARY_SIGNATURE,
                     "annotations": {"io.cncf.notary.x509chain.thumbprint#S256": "[]"}}
    plain = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                        "config": {"mediaType": "application/vnd.example.sbom", "digest": THIRD, "size": 3},
                        "layers": []}).encode()
    assert index_entry(plain, mt.OCI_MANIFEST, THIRD)["artifactType"] == "application/vnd.example.sbom"
    with pytest.raises(ManifestError):
        index_entry(b"[]", mt.OCI_MANIFEST, THIRD)


ENTRY = {"mediaType": mt.OCI_MANIFEST, "digest": OTHER, "size": 10, "artifactType": mt.NOTARY_SIGNATURE}
KEPT = {"mediaType": mt.OCI_MANIFEST, "digest": THIRD, "size": 20, "artifactType": "application/spdx+json"}
INDEX_CASES = {
    "nothing-there": (None, [ENTRY], [OTHER]),
    "adds-after-what-is-listed": (_index(KEPT), [ENTRY], [THIRD, OTHER]),
    "listed-already": (_index(KEPT, ENTRY), [ENTRY], None),
    "not-an-index-is-replaced": (b"not json", [ENTRY], [OTHER]),
    "a-list-is-replaced": (b"[1, 2]", [ENTRY], [OTHER]),
    "two-at-once": (None, [ENTRY, KEPT], [OTHER, THIRD]),
    "one-new-one-listed": (_index(ENTRY), [ENTRY, KEPT], [OTHER, THIRD]),
}


@pytest.mark.parametrize(("existing", "entries", "listed"), INDEX_CASES.values(), ids=INDEX_CASES.keys())
def test_with_entries(existing: bytes | None, entries: list[dict[str, object]], listed: list[str] | None) -> None:
    """The referrers tag's index gains each entry once; what it listed stays, first; None when nothing is new."""
    updated = with_entries(existing, entries)
    if listed is None:
        assert updated is None
    else:
        assert updated is not None
        assert [referrer.digest for referrer in referrers_in_index(updated)] == listed


LISTINGS = {
    "api-page": (_index(ENTRY, KEPT), [(OTHER, mt.NOTARY_SIGNATURE), (THIRD, "application/spdx+json")]),
    "empty": (_index(), []),
    "blobs-are-not-referrers": (_index({"mediaType": "application/octet-stream", "digest": OTHER, "size": 1}), []),
    "not-an-index": (_notation_signature(), []),
    "not-json": (b"<html>", []),
}


@pytest.mark.parametrize(("raw", "expected"), LISTINGS.values(), ids=LISTINGS.keys())
def test_referrers_in_index(raw: bytes, expected: list[tuple[str, str]]) -> None:
    assert [(referrer.digest, referrer.artifact_type) for referrer in referrers_in_index(raw)] == expected


STATUSES = {
    "whole-index-signed": (DIGEST, DIGEST, {DIGEST}, "kept"),
    "filtered-index-of-signed": (OTHER, DIGEST, {DIGEST}, "lost"),
    "flattened-signed-child": (OTHER, DIGEST, {OTHER}, "kept"),
    "flattened-unsigned-child-of-signed-index": (OTHER, DIGEST, {DIGEST}, "lost"),
    "nothing-signed": (OTHER, DIGEST, set(), "none"),
    "unrelated-signature": (OTHER, DIGEST, {THIRD}, "none"),
}


@pytest.mark.parametrize(("final", "source", "signed", "status"), STATUSES.values(), ids=STATUSES.keys())
def test_signature_status(final: str, source: str, signed: set[str], status: str) -> None:
    assert signature_status(final, source, signed) == status
