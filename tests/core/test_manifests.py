"""Manifest parsing and child classification: which index entries count as platforms (pure, no registry)."""

from __future__ import annotations

import json

import pytest

from importer.core.manifests import (
    ChildKind,
    ImageManifest,
    Index,
    ManifestError,
    classify_child,
    parse_descriptor,
    parse_manifest,
    platform_from_config,
)
from importer.core.media_types import DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST
from importer.core.platforms import parse

DIGEST = "sha256:" + "a" * 64
CONFIG = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": DIGEST, "size": 10}


def entry(**fields: object) -> dict[str, object]:
    return {"mediaType": OCI_MANIFEST, "digest": DIGEST, "size": 100, **fields}


@pytest.mark.parametrize(
    ("descriptor", "expected"),
    [
        (entry(platform={"os": "linux", "architecture": "amd64"}), ChildKind.IMAGE),
        (entry(platform={"os": "linux", "architecture": "arm64", "variant": "v8"}), ChildKind.IMAGE),
        (
            entry(
                platform={"os": "unknown", "architecture": "unknown"},
                annotations={"vnd.docker.reference.type": "attestation-manifest"},
            ),
            ChildKind.ATTESTATION,
        ),
        (entry(platform={"os": "unknown", "architecture": "unknown"}), ChildKind.UNKNOWN_PLATFORM),
        (entry(), ChildKind.NO_PLATFORM),
        (entry(artifactType="application/spdx+json", platform={"os": "linux", "architecture": "amd64"}), ChildKind.ARTIFACT),
        (entry(mediaType=OCI_INDEX), ChildKind.INDEX),
        (entry(mediaType="application/vnd.example.thing"), ChildKind.ARTIFACT),
        (entry(mediaType=DOCKER_MANIFEST, platform={"os": "linux", "architecture": "arm", "variant": "v7"}), ChildKind.IMAGE),
    ],
    ids=[
        "image-amd64",
        "image-arm64-v8",
        "buildkit-attestation",
        "unknown-unknown-without-annotation",
        "no-platform-is-reported-not-assumed-amd64",
        "oci-artifact-type",
        "nested-index",
        "unknown-media-type",
        "docker-manifest-child",
    ],
)
def test_classify_child(descriptor: dict[str, object], expected: ChildKind) -> None:
    """Only runnable image entries with a known platform count as platforms."""
    assert classify_child(parse_descriptor(descriptor, "manifests[0]")) is expected


def test_arm64_v8_entry_normalises_to_arm64() -> None:
    """An index entry `arm64/v8` is the same platform as plain `arm64` (kaniko / containers-image bug)."""
    child = parse_descriptor(entry(platform={"os": "linux", "architecture": "arm64", "variant": "v8"}), "m")
    assert child.platform == parse("linux/arm64")


@pytest.mark.parametrize(
    ("body", "header", "expected_type", "expected_media"),
    [
        ({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry()]}, None, Index, OCI_INDEX),
        ({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST_LIST, "manifests": []}, None, Index, DOCKER_MANIFEST_LIST),
        ({"schemaVersion": 2, "manifests": []}, OCI_INDEX, Index, OCI_INDEX),
        ({"schemaVersion": 2, "manifests": []}, None, Index, OCI_INDEX),
        ({"schemaVersion": 2, "config": CONFIG, "layers": []}, None, ImageManifest, OCI_MANIFEST),
        ({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": CONFIG, "layers": []}, None, ImageManifest, DOCKER_MANIFEST),
    ],
    ids=["oci-index", "docker-list", "oci-index-type-from-header", "oci-index-inferred", "oci-manifest-inferred", "docker-manifest"],
)
def test_parse_manifest(body: dict[str, object], header: str | None, expected_type: type, expected_media: str) -> None:
    """Every index and manifest media type parses, with the media type taken from the body, header or shape."""
    manifest = parse_manifest(json.dumps(body).encode(), header)
    assert isinstance(manifest, expected_type)
    assert manifest.media_type == expected_media


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "expected a JSON object"),
        (json.dumps({"schemaVersion": 2, "mediaType": "application/x-unknown"}).encode(), "unknown manifest media type"),
        (json.dumps({"schemaVersion": 1, "mediaType": OCI_INDEX, "manifests": []}).encode(), "schemaVersion must be 2"),
        (json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": "x"}).encode(), "manifests: expected a list"),
        (
            json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry(digest="sha256:xyz")]}).encode(),
            "manifests[0].digest",
        ),
        (
            json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry(size=-1)]}).encode(),
            "manifests[0].size",
        ),
        (json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}).encode(), "config: expected an object"),
    ],
    ids=["malformed-json", "not-an-object", "unknown-media-type", "schema-version-1", "manifests-not-a-list", "bad-child-digest", "negative-size", "manifest-without-config"],
)
def test_parse_manifest_rejects(raw: bytes, message: str) -> None:
    """A manifest that cannot be understood raises ManifestError saying what and where."""
    with pytest.raises(ManifestError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_manifest(raw, None)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"os": "linux", "architecture": "amd64"}, "linux/amd64"),
        ({"os": "linux", "architecture": "aarch64"}, "linux/arm64"),
        ({"os": "linux", "architecture": "arm", "variant": "v6"}, "linux/arm/v6"),
        ({"os": "windows", "architecture": "amd64", "os.version": "10.0.17763.5576"}, "windows/amd64"),
    ],
    ids=["amd64", "aarch64-alias", "arm-v6", "windows-with-version"],
)
def test_platform_from_config(config: dict[str, str], expected: str) -> None:
    """A single image's platform comes from its config blob, normalised."""
    assert str(platform_from_config(json.dumps(config).encode())) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [(b"\x1f\x8b binary", "not valid JSON"), (b'"text"', "expected a JSON object"), (b"{}", "config:"), (b" " * (1024 * 1024 + 1), "over the")],
    ids=["binary", "json-string", "no-os-or-architecture", "over-1-mib"],
)
def test_platform_from_config_rejects(raw: bytes, message: str) -> None:
    """A config that is not an image config JSON object gives a ManifestError."""
    with pytest.raises(ManifestError, match=message):
        platform_from_config(raw)


@pytest.mark.parametrize(
    "body",
    [
        {"schemaVersion": 2, "mediaType": ["x" * 1000] * 10_000},
        {"schemaVersion": 2, "mediaType": "application/vnd.\x1b[2J" + "y" * 1_000_000},
        {"schemaVersion": "\x1b[2J" * 100_000, "mediaType": "application/vnd.oci.image.manifest.v1+json"},
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
         "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "z" * 500_000,
                        "size": 1}]},
    ],
    ids=["huge-media-type-list", "huge-media-type-with-escape", "huge-schema-version", "huge-child-digest"],
)
def test_errors_quote_outside_values_short_and_escaped(body: dict[str, object]) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(json.dumps(body).encode())
    message = str(caught.value)
    assert len(message) < 400 and "\x1b" not in message, message[:400]
