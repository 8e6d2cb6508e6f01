"""Properties of manifest, index and image config parsing (importer.core.manifests) over hostile documents.

For any bytes a registry can serve: `parse_manifest` returns an Index or ImageManifest or raises ManifestError, and
`platform_from_config` returns a Platform or raises ManifestError, within the bounds of `tests.property.hostile`.
What parses is usable: every descriptor has a valid digest and a non-negative size, `classify_child` answers for
every index entry without raising, and an entry's unreadable platform is reported, not raised.
"""

from __future__ import annotations

import functools
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from importer.core.manifests import (
    MAX_CONFIG_BYTES,
    ChildKind,
    Descriptor,
    ImageManifest,
    Index,
    ManifestError,
    classify_child,
    parse_manifest,
    platform_from_config,
)
from importer.core.media_types import (
    ATTESTATION_ANNOTATION,
    ATTESTATION_VALUE,
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    HELM_CONFIG,
    IN_TOTO_LAYER,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
)
from importer.core.platforms import Platform
from importer.core.reference import is_valid_digest
from tests.property.event_bodies import DIGESTS
from tests.property.hostile import (
    Shapes,
    bounded,
    deep_json,
    dump_json,
    huge_text,
    mostly,
    one_value_corrupted,
    tricky_text,
)

MEDIA_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST, OCI_CONFIG, DOCKER_CONFIG,
               HELM_CONFIG, OCI_LAYER, DOCKER_LAYER, IN_TOTO_LAYER, "application/vnd.oci.image.index.v1+json; x=y")
OPERATING_SYSTEMS = ("linux", "windows", "darwin", "freebsd", "unknown", "Linux", "macos", "LINUX")
ARCHITECTURES = ("amd64", "arm64", "arm", "386", "x86_64", "aarch64", "armhf", "riscv64", "ppc64le", "s390x",
                 "unknown", "AMD64")
VARIANTS = ("", "v5", "v6", "v7", "v8", "8", "v2", "v3")
OS_VERSIONS = ("10.0.17763.1234", "10.0.20348.2113", "")
# Keys whose values decide what a document is: corrupted half the time when one value is.
_DECIDING_KEYS = frozenset({"mediaType", "digest", "size", "platform", "os", "architecture", "variant",
                            "os.version", "os.features", "schemaVersion", "manifests", "config", "annotations",
                            "artifactType"})


def _platform_fields(shapes: Shapes) -> dict[str, st.SearchStrategy[Any]]:
    field = shapes.field
    return {
        "os": field(st.sampled_from(OPERATING_SYSTEMS)),
        "architecture": field(st.sampled_from(ARCHITECTURES)),
        "variant": field(st.sampled_from(VARIANTS)),
        "os.version": field(st.sampled_from(OS_VERSIONS)),
        "os.features": field(st.lists(st.sampled_from(("win32k", "sse4")), max_size=2)),
    }


def _platform(shapes: Shapes) -> st.SearchStrategy[Any]:
    return shapes.obj(_platform_fields(shapes), extra=False)


def _descriptor(shapes: Shapes, media_types: tuple[str, ...] = MEDIA_TYPES) -> st.SearchStrategy[Any]:
    field = shapes.field
    annotations = st.one_of(
        st.dictionaries(st.sampled_from(("org.opencontainers.image.ref.name", "x")), st.just("v"), max_size=2),
        st.just({ATTESTATION_ANNOTATION: ATTESTATION_VALUE, "vnd.docker.reference.digest": "sha256:" + "c" * 64}),
    )
    return shapes.obj(
        {"mediaType": field(st.sampled_from(media_types)), "digest": field(DIGESTS),
         "size": field(st.integers(0, 10**6))},
        optional={
            "platform": field(_platform(shapes)),
            "annotations": field(annotations),
            "artifactType": field(st.just("application/vnd.example+json")),
        },
    )


def _index(shapes: Shapes) -> st.SearchStrategy[Any]:
    field = shapes.field
    return shapes.obj(
        {"schemaVersion": field(st.just(2)), "manifests": field(st.lists(_descriptor(shapes), min_size=1, max_size=6))},
        optional={
            "mediaType": field(st.sampled_from((OCI_INDEX, DOCKER_MANIFEST_LIST))),
            "annotations": field(st.just({"org.opencontainers.image.created": "2024-01-01"})),
        },
    )


def _image_manifest(shapes: Shapes) -> st.SearchStrategy[Any]:
    field = shapes.field
    return shapes.obj(
        {"schemaVersion": field(st.just(2)), "config": _descriptor(shapes, (OCI_CONFIG, DOCKER_CONFIG, HELM_CONFIG))},
        optional={
            "mediaType": field(st.sampled_from((OCI_MANIFEST, DOCKER_MANIFEST))),
            "layers": field(st.lists(_descriptor(shapes, (OCI_LAYER, DOCKER_LAYER)), max_size=3)),
            "subject": field(_descriptor(shapes, (OCI_MANIFEST,))),
        },
    )


def _config(shapes: Shapes) -> st.SearchStrategy[Any]:
    fields = _platform_fields(shapes) | {"rootfs": st.just({"type": "layers", "diff_ids": []}),
                                         "config": st.just({"Env": ["PATH=/bin"]})}
    return shapes.obj(fields)


def _documents(shape: Any) -> st.SearchStrategy[Any]:
    """Hostile anywhere, or valid with exactly one value corrupted (a deciding key half the time)."""
    return st.one_of(
        shape(Shapes(hostile=True)),
        shape(Shapes(hostile=False)).flatmap(lambda document: one_value_corrupted(document, favoured=_DECIDING_KEYS)),
    )


def _as_bytes(document: Any, ensure_ascii: bool) -> bytes:
    return dump_json(document, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")


@functools.cache
def manifest_bytes() -> st.SearchStrategy[bytes]:
    documents = st.one_of(_documents(_index), _documents(_image_manifest))
    encoded = st.builds(_as_bytes, documents, st.booleans())
    text = st.one_of(tricky_text(), huge_text())
    not_json = st.one_of(st.binary(max_size=64), text.map(lambda value: value.encode("utf-8", "surrogatepass")))
    return mostly(encoded, not_json, valid_share=8)


@functools.cache
def config_bytes() -> st.SearchStrategy[bytes]:
    too_big = st.integers(MAX_CONFIG_BYTES - 2, MAX_CONFIG_BYTES + 2).map(
        lambda size: b'{"os":"' + b"a" * (size - 9) + b'"}')
    return mostly(st.builds(_as_bytes, _documents(_config), st.booleans()), st.one_of(st.binary(max_size=64), too_big),
                  valid_share=8)


HEADER_MEDIA_TYPES = st.one_of(st.none(), st.sampled_from(MEDIA_TYPES), tricky_text(12))


def check_descriptor(descriptor: Descriptor) -> None:
    assert is_valid_digest(descriptor.digest), descriptor
    assert descriptor.size >= 0, descriptor
    assert descriptor.platform is None or isinstance(descriptor.platform, Platform), descriptor


# Configs and manifests whose platform objects nest deep: their error messages repr the whole object.
DEEP_PLATFORM_INDEX = (
    '{"schemaVersion":2,"mediaType":"' + OCI_INDEX + '","manifests":[{"mediaType":"' + OCI_MANIFEST + '",'
    '"digest":"sha256:' + "a" * 64 + '","size":1,"platform":{"os":"linux","architecture":' + deep_json(60) + "}}]}"
).encode()
DEEP_FEATURES_CONFIG = ('{"os":"linux","architecture":"amd64","os.features":' + deep_json(60) + "}").encode()


@given(raw=manifest_bytes(), header=HEADER_MEDIA_TYPES)
@example(raw=DEEP_PLATFORM_INDEX, header=OCI_INDEX)
@example(raw=b"[" * 100_000, header=OCI_INDEX)
def test_any_manifest_parses_or_is_refused_with_a_manifest_error(raw: bytes, header: str | None) -> None:
    """Hostile manifest bytes: an Index or ImageManifest whose descriptors are usable, or ManifestError."""
    manifest = bounded(lambda: parse_manifest(raw, header), allowed=(ManifestError,), what="manifest")
    if isinstance(manifest, ManifestError):
        assert str(manifest)
        return
    if isinstance(manifest, Index):
        for child in manifest.manifests:
            check_descriptor(child)
            assert isinstance(classify_child(child), ChildKind)
            assert child.platform is None or child.platform_error is None, child
    else:
        assert isinstance(manifest, ImageManifest)
        for descriptor in (manifest.config, *manifest.layers):
            check_descriptor(descriptor)
        assert isinstance(manifest.is_image, bool)


@given(raw=config_bytes())
@example(raw=DEEP_FEATURES_CONFIG)
@example(raw=b'{"os":"linux","architecture":"' + b"\\ud800" * 1000 + b'"}')
def test_any_config_gives_a_platform_or_a_manifest_error(raw: bytes) -> None:
    """Hostile image configs (the platform-from-config path): a normalised Platform, or ManifestError."""
    platform = bounded(lambda: platform_from_config(raw), allowed=(ManifestError,), what="config")
    if isinstance(platform, Platform):
        assert platform.os and platform.architecture, platform
        assert platform.os == platform.os.lower() and platform.architecture == platform.architecture.lower()
