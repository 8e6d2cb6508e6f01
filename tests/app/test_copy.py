"""The copy engine against real registries: whole copies, platform subsets, flatten, exclude, skip/mount/stream,
failures that must not write the tag, bounded memory, and `python -m importer copy` as users run it.

Images come from ImageBuilder and are pushed with skopeo (testbed.push); the target is read back with
our client, with skopeo (`inspect --raw`, `copy --all` to an OCI layout) and with plain HTTP. A small threaded
proxy in this file corrupts one blob on its way out of a real registry.
"""

from __future__ import annotations

import dataclasses
import http.client
import io
import json
import os
import random
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from importer.adapters.registry.oci import OciRegistry
from importer.app.copying import CopyError, CopyEvent, copy_image
from importer.core.manifests import Index, parse_manifest
from importer.core.platforms import Platform, parse
from importer.core.selection import build_index, plan_subset
from importer.entry.progress import ProgressBar
from importer.ports.registry import DigestMismatch, Registry
from testbed.http_server import LocalHttpServer, QuietRequestHandler
from testbed.images import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    Descriptor,
    ImageBuilder,
    canonical_json,
    multi,
    platform_json,
    single,
)
from testbed.push import fetch_manifest, list_tags, push, skopeo_copy, skopeo_inspect_raw
from testbed.registry import LocalRegistry

ROOT = Path(__file__).resolve().parents[2]
SOURCE_REPOSITORY = "team/app"
TARGET_REPOSITORY = "mirror/app"
THREE_PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7")
INDEX_ANNOTATIONS = {"org.opencontainers.image.source": "https://example.invalid/app"}
MIB = 1024 * 1024


# --- fixtures and helpers -------------------------------------------------------------------------------


@pytest.fixture
def source(registry: LocalRegistry) -> Iterator[OciRegistry]:
    with OciRegistry(registry.host) as client:
        yield client


@pytest.fixture
def target(target_registry: LocalRegistry) -> Iterator[OciRegistry]:
    with OciRegistry(target_registry.host) as client:
        yield client


def platforms(*specifiers: str) -> tuple[Platform, ...]:
    return tuple(parse(specifier) for specifier in specifiers)


def child_digests(raw: bytes) -> list[str]:
    return [entry["digest"] for entry in json.loads(raw)["manifests"]]


def tree_blobs(registry: Registry, repository: str, reference: str) -> list[tuple[str, int]]:
    """Every (blob digest, size) below a manifest, reading it (and its children) from `registry`."""
    fetched = registry.get_manifest(repository, reference)
    manifest = parse_manifest(fetched.raw, fetched.media_type)
    if isinstance(manifest, Index):
        return [blob for child in manifest.manifests for blob in tree_blobs(registry, repository, child.digest)]
    return [(blob.digest, blob.size) for blob in (manifest.config, *manifest.layers)]


def blob_present(registry_host: str, repository: str, digest: str) -> bool:
    """A plain HTTP HEAD on the blob, independent of the client under test."""
    connection = http.client.HTTPConnection(registry_host, timeout=10)
    try:
        connection.request("HEAD", f"/v2/{repository}/blobs/{digest}")
        return connection.getresponse().status == 200
    finally:
        connection.close()


def assert_complete(registry: Registry, repository: str, reference: str) -> None:
    """Every child manifest and every blob below `reference` is present in `repository` (a pull would work)."""
    missing = [digest for digest, _ in tree_blobs(registry, repository, reference)
               if not blob_present(registry.host, repository, digest)]
    assert not missing, f"blobs missing in {repository}: {missing}"


def assert_nothing_written(registry_host: str, client: OciRegistry) -> None:
    assert list_tags(registry_host, TARGET_REPOSITORY) == []
    assert list(client.catalog()) == []


def image_with_layer(builder: ImageBuilder, size: int, *, seed: int = 0) -> Descriptor:
    """A linux/amd64 image with one layer of `size` incompressible bytes (not a real tar: registries never look)."""
    layer = builder.add_blob(random.Random(seed).randbytes(size), OCI_LAYER)
    config = builder.add_blob(
        canonical_json({"architecture": "amd64", "os": "linux", "config": {},
                        "rootfs": {"type": "layers", "diff_ids": [layer.digest]}}),
        OCI_CONFIG,
    )
    document = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.to_json(), "layers": [layer.to_json()]}
    manifest = builder.add_blob(canonical_json(document), OCI_MANIFEST)
    return dataclasses.replace(manifest, platform=platform_json("linux/amd64"))


def nested(builder: ImageBuilder, levels: int) -> Descriptor:
    """`levels` indexes inside one another, the innermost holding two images."""
    descriptor = multi(builder, ["linux/amd64", "linux/arm64"])
    for _ in range(levels - 1):
        descriptor = builder.index([descriptor])
    return descriptor


class CorruptingProxy:
    """A loopback HTTP proxy in front of a registry that flips one byte of every GET body whose path ends in `digest`.

    Only GET and HEAD are forwarded (the copy only reads from its source); bodies are small enough to buffer.
    """

    def __init__(self, upstream: str, digest: str) -> None:
        self.upstream = upstream
        self.digest = digest
        self.corrupted = 0
        proxy = self

        class Handler(QuietRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                proxy.forward(self, "GET")

            def do_HEAD(self) -> None:
                proxy.forward(self, "HEAD")

        self._http = LocalHttpServer(Handler, name="corrupting-proxy")
        self.host = self._http.host

    def forward(self, handler: QuietRequestHandler, method: str) -> None:
        connection = http.client.HTTPConnection(self.upstream, timeout=10)
        try:
            forwarded = {name: value for name, value in handler.headers.items()
                         if name.lower() in ("accept", "authorization", "range")}
            connection.request(method, handler.path, headers=forwarded)
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        if method == "GET" and body and handler.path.split("?")[0].endswith(self.digest):
            middle = len(body) // 2
            body = body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1:]
            self.corrupted += 1
        handler.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                handler.send_header(name, value)
        length = str(len(body)) if method == "GET" else (response.getheader("Content-Length") or "0")
        handler.send_header("Content-Length", length)
        handler.end_headers()
        if method == "GET":
            handler.wfile.write(body)

    def __enter__(self) -> CorruptingProxy:
        self._http.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._http.stop()


# --- whole copies ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shape:
    id: str
    build: Callable[[ImageBuilder], Descriptor]
    platforms: tuple[str, ...]


SHAPES = [
    Shape("oci-image", lambda b: single(b, "linux/amd64", layers=2), ("linux/amd64",)),
    Shape("docker-image", lambda b: single(b, "linux/arm64", docker=True), ("linux/arm64",)),
    Shape("oci-index-with-attestations", lambda b: multi(b, THREE_PLATFORMS, attestations=True), THREE_PLATFORMS),
    Shape("docker-manifest-list", lambda b: multi(b, ["linux/amd64", "linux/arm/v7"], docker=True),
          ("linux/amd64", "linux/arm/v7")),
    Shape("four-nested-indexes", lambda b: nested(b, 4), ("linux/amd64", "linux/arm64")),
    Shape("helm-chart", lambda b: b.helm_chart("demo", "1.0.0"), ()),
]


@pytest.mark.parametrize("shape", SHAPES, ids=[shape.id for shape in SHAPES])
def test_whole_copy_keeps_the_digest_and_everything_below_it(
    builder: ImageBuilder, registry: LocalRegistry, target_registry: LocalRegistry,
    source: OciRegistry, target: OciRegistry, shape: Shape,
) -> None:
    """Without platforms or exclude, the target gets the same bytes under the tag, and every child and blob."""
    digest = push(builder, shape.build(builder), registry.host, SOURCE_REPOSITORY, "1")
    result = copy_image(source, SOURCE_REPOSITORY, "1", target, TARGET_REPOSITORY, "1")
    served = fetch_manifest(target_registry.host, TARGET_REPOSITORY, "1")
    assert (result.digest, result.source_digest, served.digest) == (digest, digest, digest)
    assert served.body == fetch_manifest(registry.host, SOURCE_REPOSITORY, "1").body
    assert result.media_type == served.media_type
    assert result.platforms == shape.platforms
    assert_complete(target, TARGET_REPOSITORY, "1")


@pytest.mark.parametrize(
    ("topology", "expected"),
    [
        ("same-client", "mounted"),
        ("same-host-other-client", "mounted"),
        ("other-registry", "uploaded"),
        ("same-repository", "skipped"),
    ],
    ids=["same-client-mounts", "same-host-other-client-mounts", "other-registry-streams", "same-repository-skips"],
)
def test_each_blob_is_skipped_mounted_or_streamed(
    builder: ImageBuilder, registry: LocalRegistry, source: OciRegistry, target: OciRegistry,
    topology: str, expected: str,
) -> None:
    """Blobs are mounted within one registry (0 bytes uploaded), streamed across registries, skipped when present."""
    push(builder, multi(builder, THREE_PLATFORMS, attestations=True), registry.host, SOURCE_REPOSITORY, "1")
    repository = SOURCE_REPOSITORY if topology == "same-repository" else TARGET_REPOSITORY
    with OciRegistry(registry.host) as same_host:
        destination = {"same-client": source, "same-host-other-client": same_host,
                       "other-registry": target, "same-repository": source}[topology]
        result = copy_image(source, SOURCE_REPOSITORY, "1", destination, repository, "2")
        assert_complete(destination, repository, "2")
    blobs = dict(tree_blobs(source, SOURCE_REPOSITORY, "1"))
    counts = {"skipped": result.stats.blobs_skipped, "mounted": result.stats.blobs_mounted,
              "uploaded": result.stats.blobs_uploaded}
    assert counts == {outcome: len(blobs) if outcome == expected else 0 for outcome in counts}
    assert result.stats.bytes_uploaded == (sum(blobs.values()) if expected == "uploaded" else 0)


def test_a_second_copy_skips_every_blob_and_writes_only_the_tag(
    builder: ImageBuilder, registry: LocalRegistry, source: OciRegistry, target: OciRegistry,
) -> None:
    """Copying again finds every blob and child manifest on the target: nothing uploaded, only the tag written."""
    push(builder, multi(builder, THREE_PLATFORMS, attestations=True), registry.host, SOURCE_REPOSITORY, "1")
    first = copy_image(source, SOURCE_REPOSITORY, "1", target, TARGET_REPOSITORY, "1")
    second = copy_image(source, SOURCE_REPOSITORY, "1", target, TARGET_REPOSITORY, "1")
    assert first.stats.blobs_uploaded == 12 and first.stats.manifests_written == 7
    assert dataclasses.asdict(second.stats) == {
        "blobs_skipped": 12, "blobs_mounted": 0, "blobs_uploaded": 0, "bytes_uploaded": 0, "manifests_written": 1,
    }
    assert second.digest == first.digest


def test_parallelism_does_not_change_the_result(
    builder: ImageBuilder, registry: LocalRegistry, target_registry: LocalRegistry,
    source: OciRegistry, target: OciRegistry,
) -> None:
    """One blob at a time and four at a time write the same manifest with the same counts."""
    index = builder.index([builder.image(platform, layers=3) for platform in THREE_PLATFORMS])
    push(builder, index, registry.host, SOURCE_REPOSITORY, "1")
    results = [
        copy_image(source, SOURCE_REPOSITORY, "1", target, f"mirror/parallel-{parallel}", "1",
                   platforms=platforms("linux/amd64", "linux/arm64"), parallel=parallel)
        for parallel in (1, 4)
    ]
    assert results[0] == results[1]
    assert results[0].stats.blobs_uploaded == 8
    for parallel in (1, 4):
        assert_complete(target, f"mirror/parallel-{parallel}", "1")


def test_digest_only_copy_pushes_no_tag(
    builder: ImageBuilder, registry: LocalRegistry, target_registry: LocalRegistry,
    source: OciRegistry, target: OciRegistry,
) -> None:
    """With target_tag None the result is pushed by digest and the target repository gets no tag."""
    digest = push(builder, multi(builder, THREE_PLATFORMS), registry.host, SOURCE_REPOSITORY, "1")
    result = copy_image(source, SOURCE_REPOSITORY, digest, target, TARGET_REPOSITORY, None)
    assert result.digest == digest
    assert list_tags(target_registry.host, TARGET_REPOSITORY) == []
    assert_complete(target, TARGET_REPOSITORY, digest)


# --- subsets, flatten, exclude --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "strict", "docker", "chosen"),
    [
        (("linux/arm64",), False, False, ("linux/arm64",)),
        (("linux/arm/v7", "linux/amd64"), False, False, ("linux/amd64", "linux/arm/v7")),
        (("linux/arm/v8",), False, False, ("linux/arm/v7",)),
        (("linux/arm/v7", "linux/arm/v8"), False, False, ("linux/arm/v7",)),
        (("linux/arm64/v8",), True, False, ("linux/arm64",)),
        (("linux/amd64", "linux/arm64"), False, True, ("linux/amd64", "linux/arm64")),
    ],
    ids=[
        "one-platform",
        "two-platforms-kept-in-index-order",
        "compatible-fallback-arm-v8-takes-v7",
        "two-requests-one-child",
        "strict-arm64-v8-is-arm64",
        "docker-manifest-list",
    ],
)
def test_subset_writes_a_new_index_with_the_chosen_children_and_their_attestations(
    builder: ImageBuilder, registry: LocalRegistry, target_registry: LocalRegistry, tmp_path: Path,
    source: OciRegistry, target: OciRegistry,
    requested: tuple[str, ...], strict: bool, docker: bool, chosen: tuple[str, ...],
) -> None:
    """The new index lists exactly the chosen children and their attestations, in order, and is pullable."""
    images = {platform: builder.image(platform, docker=docker) for platform in THREE_PLATFORMS}
    attestations = {platform: builder.attestation(image) for platform, image in images.items()}
    index = builder.index([*images.values(), *attestations.values()], docker=docker, annotations=INDEX_ANNOTATIONS)
    source_digest = push(builder, index, registry.host, SOURCE_REPOSITORY, "1")

    result = copy_image(source, SOURCE_REPOSITORY, "1", target, TARGET_REPOSITORY, "1",
                        platforms=platforms(*requested), strict=strict)

    served = fetch_manifest(target_registry.host, TARGET_REPOSITORY, "1")
    document = served.json()
    assert child_digests(served.body) == [images[p].digest for p in chosen] + [attestations[p].digest for p in chosen]
    assert (document["mediaType"], served.media_type, result.media_type) == (index.media_type,) * 3
    assert document["annotations"] == INDEX_ANNOTATIONS
    assert (result.digest, result.source_digest, result.platforms) == (served.digest, source_digest, chosen)
    assert_complete(target, TARGET_REPOSITORY, "1")
    reference = f"docker://{target_registry.host}/{TARGET_REPOSITORY}:1"
    assert skopeo_inspect_raw(reference) == served.body
    skopeo_copy(reference, f"oci:{tmp_path / 'pulled'}", "--all")


def _index_and_its_arm64(b: ImageBuilder) -> tuple[Descriptor, Descriptor]:
    arm64 = b.image("linux/arm64")
    return b.index([b.image("linux/amd64"), arm64, b.attestation(arm64)]), arm64


def _index_with_arm_v6_only(b: ImageBuilder) -> tuple[Descriptor, Descriptor]:
    arm_v6 = b.image("linux/arm/v6")
    return b.index([b.image("linux/amd64"), arm_v6]), arm_v6


def _single_image(b: ImageBuilder) -> tuple[Descriptor, Descriptor]:
    image = b.image("linux/amd64")
    return image, image


@pytest.mark.parametrize(
    ("build", "requested", "expected_platform"),
    [
        (_index_and_its_arm64, "linux/arm64", "linux/arm64"),
        (_index_with_arm_v6_only, "linux/arm/v7", "linux/arm/v6"),
        (_single_image, "linux/amd64", "linux/amd64"),
    ],
    ids=["index-to-its-arm64-manifest", "compatible-child-arm-v6-for-v7", "single-image-stays-as-is"],
)
def test_flatten_points_the_tag_at_the_chosen_manifest(
    builder: ImageBuilder, registry: LocalRegistry, target_registry: LocalRegistry,
    source: OciRegistry, target: OciRegistry,
    build: Callable[[ImageBuilder], tuple[Descriptor, Descriptor]], requested: str, expected_platform: str,
) -> None:
    """flatten=True tags the chosen child manifest itself (its own digest), with its blobs."""
    top, expected = build(builder)
    push(builder, top, registry.host, SOURCE_REPOSITORY, "1")

    result = copy_image(source, SOURCE_REPOSITORY, "1", target, TARGET_REPOSITORY, "1",
                        platforms=platforms(requested), flatten=True)

    served = fetch_manifest(target_registry.host, TARGET_REPOSITORY, "1")
    assert (result.digest, served.digest, served.media_type) == (expected.digest, expected.digest, OCI_MANIFEST)
    assert (result.platforms, result.source_digest) == ((expected_platform,), top.digest)
    assert_complete(target, TARGET_REPOSITORY, "1")


@pytest.mark.parametrize(
    ("exclude", "requested", "kept"),
    [
        (("windows/*",), (), ("linux/amd64", "linux/arm64")),
        (("windows",), ("linux/amd64",), ("linux/amd64",)),
        (("linux/arm64", "windows/amd64"), (), ("linux/amd64",)),
        (("s390x",), (), ("linux/amd64", "windows/amd64", "linux/arm64")),
    ],
    ids=["exclude-windows", "exclude-with-platforms", "exclude-two-patterns", "nothing-matches-same-digest"],
)
def test_exclude_drops_matching_platforms_and_their_attestations(
    builder: ImageBuilder, registry: LocalRegistry, target_registry: LocalRegistry,
    source: OciRegistry, target: OciRegistry,
    exclude: tuple[str, ...], requested: tuple[str, ...], kept: tuple[str, ...],
) -> None:
    """Image children matching an exclude pattern are left out with their attestations; the rest is kept."""
    images = {
        "linux/amd64": builder.image("linux/amd64"),
        "windows/amd64": builder.image("windows/amd64", os_version="10.0.20348.2340"),
        "linux/arm64": builder.image("linux/arm64"),
    }
    attestations = {platform: builder.attestation(image) for platform, image in images.items()}
    index = builder.index([*images.values(), *attestations.values()])
    source_digest = push(builder, index, registry.host, SOURCE_REPOSITORY, "1")

    result = copy_image(source, SOURCE_REPOSITORY, "1", target, TARGET_REPOSITORY, "1",
                        platforms=platforms(*requested), exclude=exclude)

    served = fetch_manifest(target_registry.host, TARGET_REPOSITORY, "1")
    assert child_digests(served.body) == [images[p].digest for p in kept] + [attestations[p].digest for p in kept]
    assert result.platforms == kept
    assert (result.digest == source_digest) == (len(kept) == len(images))
    assert_complete(target, TARGET_REPOSITORY, "1")


# --- refusals: nothing is written -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "options", "message"),
    [
        (lambda b: multi(b, THREE_PLATFORMS), {"platforms": platforms("linux/s390x")},
         r"team/app:1: platform linux/s390x is not offered; offered: linux/amd64, linux/arm64, linux/arm/v7$"),
        (lambda b: multi(b, THREE_PLATFORMS), {"platforms": platforms("linux/arm/v8"), "strict": True},
         r"team/app:1: platform linux/arm/v8 is not offered \(strict match\)"),
        (lambda b: multi(b, ["linux/amd64", "windows/amd64"]),
         {"platforms": platforms("windows/amd64"), "exclude": ("windows/*",)},
         r"team/app:1: platform windows/amd64 is offered only by children excluded by windows/\* \(windows/amd64\); "
         r"the others offer: linux/amd64$"),
        (lambda b: multi(b, ["linux/amd64", "linux/arm64"]), {"exclude": ("linux/*",)},
         r"team/app:1: excluding linux/\* leaves no platform \(offered: linux/amd64, linux/arm64\)"),
        (lambda b: multi(b, THREE_PLATFORMS), {"platforms": platforms("linux/amd64", "linux/arm64"), "flatten": True},
         r"flatten needs exactly one platform, got 2"),
        (lambda b: multi(b, THREE_PLATFORMS), {"exclude": ("linux//arm",)}, r"exclude: platform pattern 'linux//arm'"),
        (lambda b: single(b, "linux/amd64"), {"platforms": platforms("linux/arm64")},
         r"team/app:1: platform linux/arm64 is not offered; it is a single image for linux/amd64"),
        (lambda b: single(b, "linux/amd64"), {"exclude": ("linux/amd64",)},
         r"team/app:1: excluding linux/amd64 leaves nothing"),
        (lambda b: nested(b, 5), {}, r"team/app:1: indexes nest deeper than 4 levels \(at sha256:"),
    ],
    ids=[
        "platform-not-offered",
        "strict-refuses-fallback",
        "requested-platform-excluded",
        "exclude-leaves-nothing",
        "flatten-with-two-platforms",
        "invalid-exclude-pattern",
        "single-image-other-platform",
        "single-image-excluded",
        "five-nested-indexes",
    ],
)
def test_refused_copies_raise_copy_error_and_write_nothing(
    builder: ImageBuilder, registry: LocalRegistry, target_registry: LocalRegistry,
    source: OciRegistry, target: OciRegistry,
    build: Callable[[ImageBuilder], Descriptor], options: dict[str, Any], message: str,
) -> None:
    """A request that cannot be met raises CopyError naming the source and the problem, before any write."""
    push(builder, build(builder), registry.host, SOURCE_REPOSITORY, "1")
    with pytest.raises(CopyError, match=message):
        copy_image(source, SOURCE_REPOSITORY, "1", target, TARGET_REPOSITORY, "1", **options)
    assert_nothing_written(target_registry.host, target)


@pytest.mark.parametrize(
    ("corrupt", "layer_size"),
    [("layer", 64), ("config", 64), ("child-manifest", 64), ("streamed-layer", 5 * MIB)],
    ids=["layer", "config", "child-manifest", "streamed-5mib-layer"],
)
def test_a_blob_that_does_not_match_its_digest_aborts_before_the_tag(
    builder: ImageBuilder, registry: LocalRegistry, target_registry: LocalRegistry, target: OciRegistry,
    corrupt: str, layer_size: int,
) -> None:
    """A source serving content that does not match its digest makes the copy fail with DigestMismatch, untagged."""
    amd64 = image_with_layer(builder, layer_size) if corrupt == "streamed-layer" else builder.image("linux/amd64")
    index = builder.index([amd64, builder.image("linux/arm64", layers=3)])
    push(builder, index, registry.host, SOURCE_REPOSITORY, "1")
    manifest = builder.document(amd64)
    digest = {"layer": manifest["layers"][0]["digest"], "streamed-layer": manifest["layers"][0]["digest"],
              "config": manifest["config"]["digest"], "child-manifest": amd64.digest}[corrupt]
    with CorruptingProxy(registry.host, digest) as proxy, OciRegistry(proxy.host) as through_proxy:
        with pytest.raises(DigestMismatch, match=digest):
            copy_image(through_proxy, SOURCE_REPOSITORY, "1", target, TARGET_REPOSITORY, "1")
        assert proxy.corrupted >= 1
    assert list_tags(target_registry.host, TARGET_REPOSITORY) == []
    assert target.head_manifest(TARGET_REPOSITORY, index.digest) is None
    assert not blob_present(target_registry.host, TARGET_REPOSITORY, digest)


# --- memory and progress ----------------------------------------------------------------------------------


def test_memory_stays_far_below_the_layer_size(
    builder: ImageBuilder, registry: LocalRegistry, source: OciRegistry, target: OciRegistry,
) -> None:
    """A 64 MiB layer is streamed across registries with a peak of traced memory under 8 MiB."""
    layer_size = 64 * MIB
    push(builder, image_with_layer(builder, layer_size, seed=64), registry.host, SOURCE_REPOSITORY, "big")
    tracemalloc.start()
    try:
        result = copy_image(source, SOURCE_REPOSITORY, "big", target, TARGET_REPOSITORY, "big")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.stats.bytes_uploaded > layer_size
    assert peak < 8 * MIB, f"peak traced memory {peak / MIB:.1f} MiB"
    assert_complete(target, TARGET_REPOSITORY, "big")
    again = copy_image(source, SOURCE_REPOSITORY, "big", target, TARGET_REPOSITORY, "big")
    assert (again.stats.blobs_skipped, again.stats.bytes_uploaded) == (result.stats.blobs_uploaded, 0)  # HEAD of a big blob


def test_progress_events_account_for_every_blob_and_byte(
    builder: ImageBuilder, registry: LocalRegistry, source: OciRegistry, target: OciRegistry,
) -> None:
    """Progress starts with the plan, streams every uploaded byte, reports each blob once, and ends with the tag."""
    push(builder, multi(builder, THREE_PLATFORMS, attestations=True), registry.host, SOURCE_REPOSITORY, "1")
    events: list[CopyEvent] = []
    result = copy_image(source, SOURCE_REPOSITORY, "1", target, TARGET_REPOSITORY, "1", progress=events.append)
    blobs = dict(tree_blobs(source, SOURCE_REPOSITORY, "1"))
    assert events[0] == CopyEvent("planned", size=sum(blobs.values()), blobs=len(blobs))
    assert sum(event.size for event in events if event.kind == "streamed") == result.stats.bytes_uploaded
    assert sorted(event.digest for event in events if event.kind == "blob") == sorted(blobs)
    assert events[-1] == CopyEvent("manifest", digest=result.digest, size=len(builder.blob(result.digest)),
                                   outcome="written")


@pytest.mark.parametrize(
    ("enabled", "expected"),
    [(True, "\rcopying [.....]  0.0/2.0 MB    0%  0/2 blobs\rcopying [#####]  2.0/2.0 MB  100%  2/2 blobs\n"),
     (False, "")],
    ids=["terminal-draws-in-place", "not-a-terminal-stays-silent"],
)
def test_progress_bar_draws_only_when_enabled(enabled: bool | None, expected: str) -> None:
    """The bar redraws one line with carriage returns and ends it; on a pipe it writes nothing."""
    stream = io.StringIO()
    bar = ProgressBar("copying", stream=stream, enabled=enabled, width=5, interval=3600)
    bar.start(2_000_000, 2)
    bar.advance(1_000_000, items=1)  # within the interval: not drawn
    bar.advance(1_000_000, items=1)
    bar.finish()
    assert stream.getvalue() == expected


# --- the pure parts ---------------------------------------------------------------------------------------


def _index(builder: ImageBuilder, children: list[Descriptor], **options: Any) -> tuple[Index, bytes]:
    raw = builder.blob(builder.index(children, **options).digest)
    parsed = parse_manifest(raw)
    assert isinstance(parsed, Index)
    return parsed, raw


def test_plan_subset_with_exclude_only_keeps_entries_that_are_not_platforms(builder: ImageBuilder) -> None:
    """Exclude alone drops matching images and their attestations, and keeps artifacts, platformless and nested."""
    amd64, windows = builder.image("linux/amd64"), builder.image("windows/amd64")
    children = [amd64, windows, builder.attestation(amd64), builder.attestation(windows),
                builder.artifact(subject=amd64), builder.without_platform(builder.image("linux/arm64")),
                builder.index([builder.image("linux/s390x")])]
    index, _ = _index(builder, children)
    kept = plan_subset(index, (), exclude=("windows/*",))
    assert [child.digest for child in kept] == [children[i].digest for i in (0, 2, 4, 5, 6)]


def test_plan_subset_with_platforms_keeps_only_chosen_images_and_their_attestations(builder: ImageBuilder) -> None:
    """Choosing platforms drops every other entry: other images, artifacts, platformless children, nested indexes."""
    amd64, arm64 = builder.image("linux/amd64"), builder.image("linux/arm64")
    children = [builder.index([builder.image("linux/amd64", seed="nested")]), amd64, arm64,
                builder.artifact(subject=amd64), builder.attestation(arm64), builder.attestation(amd64)]
    index, _ = _index(builder, children)
    kept = plan_subset(index, platforms("linux/amd64"))
    assert [child.digest for child in kept] == [amd64.digest, children[5].digest]


@pytest.mark.parametrize(
    ("keep", "same_bytes"),
    [((0, 1, 2), True), ((2, 0), False), ((1,), False)],
    ids=["all-kept-returns-the-original-bytes", "order-of-kept-does-not-matter", "one-child"],
)
def test_build_index_keeps_fields_and_entries_exactly(
    builder: ImageBuilder, keep: tuple[int, ...], same_bytes: bool
) -> None:
    """The new index carries every top-level field and kept entry as written, children in the original order."""
    images = [builder.image(platform) for platform in THREE_PLATFORMS]
    document = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [{**image.to_json(), "x-extra": n} for n, image in enumerate(images)],
                "annotations": INDEX_ANNOTATIONS, "x-unknown-field": [1, 2]}
    raw = json.dumps(document, indent=3).encode()
    index = parse_manifest(raw)
    assert isinstance(index, Index)
    built = build_index(index, raw, [index.manifests[n] for n in keep])
    assert (built == raw) == same_bytes
    rebuilt = json.loads(built)
    assert rebuilt == {**document, "manifests": [document["manifests"][n] for n in sorted(keep)]}


@pytest.mark.parametrize("kept", ["none", "foreign-child"], ids=["empty", "not-a-child-of-the-original"])
def test_build_index_refuses_children_it_cannot_write(builder: ImageBuilder, kept: str) -> None:
    """An empty selection or a child the original does not list is a programming error (ValueError)."""
    index, raw = _index(builder, [builder.image("linux/amd64")])
    stranger = parse_manifest(builder.blob(builder.index([builder.image("linux/arm64")]).digest))
    assert isinstance(stranger, Index)
    with pytest.raises(ValueError, match="none were kept" if kept == "none" else "not a child"):
        build_index(index, raw, [] if kept == "none" else list(stranger.manifests))


# --- the command line -------------------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("PLATFORM_GUARD_")}
    return subprocess.run([sys.executable, "-m", "importer", "copy", *args], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=60)


def test_cli_copy_json_prints_the_result_and_reuses_the_source_tag(
    builder: ImageBuilder, registry: LocalRegistry, target_registry: LocalRegistry, target: OciRegistry,
) -> None:
    """`copy SRC DST --platform P --json` exits 0 and prints the CopyResult; DST without a tag takes SRC's tag."""
    source_digest = push(builder, multi(builder, THREE_PLATFORMS, attestations=True), registry.host,
                         SOURCE_REPOSITORY, "1.0")
    completed = run_cli(f"{registry.host}/{SOURCE_REPOSITORY}:1.0", f"{target_registry.host}/{TARGET_REPOSITORY}",
                        "--platform", "linux/arm64", "--platform", "linux/amd64", "--json")
    assert completed.returncode == 0, completed.stderr
    served = fetch_manifest(target_registry.host, TARGET_REPOSITORY, "1.0")
    copied_bytes = sum(size for _, size in tree_blobs(target, TARGET_REPOSITORY, "1.0"))
    assert json.loads(completed.stdout) == {
        "digest": served.digest,
        "media_type": served.media_type,
        "platforms": ["linux/amd64", "linux/arm64"],
        "stats": {"blobs_skipped": 0, "blobs_mounted": 0, "blobs_uploaded": 8, "bytes_uploaded": copied_bytes,
                  "manifests_written": 5},
        "source_digest": source_digest,
        "referrers_copied": 0,
        "signatures": "none",
    }


def test_cli_copy_prints_a_summary_line(
    builder: ImageBuilder, registry: LocalRegistry, target_registry: LocalRegistry,
) -> None:
    """Without --json, one summary line names source, target, digest, platforms and what happened to the blobs."""
    digest = push(builder, multi(builder, ["linux/amd64", "linux/arm64"]), registry.host, SOURCE_REPOSITORY, "1")
    completed = run_cli(f"{registry.host}/{SOURCE_REPOSITORY}:1", f"{target_registry.host}/{TARGET_REPOSITORY}:2",
                        "--all", "--exclude", "windows/*")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == (
        f"copied {registry.host}/{SOURCE_REPOSITORY}:1 → {target_registry.host}/{TARGET_REPOSITORY}:2  "
        f"digest {digest}  platforms linux/amd64, linux/arm64  blobs: 0 skipped, 0 mounted, 4 uploaded, 0.0 MB  referrers: 0\n"
    )
    assert completed.stderr == ""  # not a terminal: no progress bar


@pytest.mark.parametrize(
    ("source_path", "options", "code", "message"),
    [
        ("team/app:1", ["--platform", "linux/s390x"], 2,
         "platform linux/s390x is not offered; it is a single image for linux/amd64"),
        ("team/app:1", ["--platform", "linux/amd64", "--all"], 2, "give --all or --platform, not both"),
        ("team/app:1", ["--flatten"], 2, "flatten needs exactly one platform, got 0"),
        ("team/app:1", ["--platform", "linux/"], 2, "platform specifier 'linux/'"),
        ("team/app:1", ["--exclude", "a/b/c/d"], 2, "platform pattern 'a/b/c/d'"),
        ("team/app:1", ["--parallel", "0"], 2, "expected a whole number from 1 to 64"),
        ("team/App:1", [], 2, "invalid image reference"),
        ("team/missing:1", [], 3, "team/missing:1: not found"),
    ],
    ids=["platform-not-offered", "all-with-platform", "flatten-without-platform", "bad-platform",
         "bad-exclude-pattern", "parallel-zero", "bad-source-reference", "missing-source-is-a-registry-error"],
)
def test_cli_copy_exit_codes(
    builder: ImageBuilder, registry: LocalRegistry, target_registry: LocalRegistry,
    source_path: str, options: list[str], code: int, message: str,
) -> None:
    """Usage problems and platforms not offered exit 2, registry errors exit 3; the message says what is wrong."""
    push(builder, single(builder, "linux/amd64"), registry.host, SOURCE_REPOSITORY, "1")
    completed = run_cli(f"{registry.host}/{source_path}", f"{target_registry.host}/{TARGET_REPOSITORY}", *options)
    assert completed.returncode == code, completed.stderr
    assert message in completed.stderr
    assert list_tags(target_registry.host, TARGET_REPOSITORY) == []


def test_concurrent_copies_of_one_image_into_one_repository_all_succeed(
    builder: ImageBuilder, registry: LocalRegistry, tmp_path: Path
) -> None:
    """Two events re-importing the same image into one repository at once both end with the complete image."""
    from concurrent.futures import ThreadPoolExecutor

    with LocalRegistry(tmp_path / "target-race") as target_registry:
        for round_number in range(4):
            index = multi(builder, ["linux/amd64", "linux/arm64"], seed=f"race-{round_number}")
            push(builder, index, registry.host, SOURCE_REPOSITORY, f"r{round_number}")

            def copy(_: int, tag: str = f"r{round_number}") -> str:
                with OciRegistry(registry.host) as source, OciRegistry(target_registry.host) as target:
                    return copy_image(source, SOURCE_REPOSITORY, tag, target, TARGET_REPOSITORY, tag).digest

            with ThreadPoolExecutor(max_workers=3) as pool:
                digests = list(pool.map(copy, range(3)))
            assert digests == [index.digest] * 3
            with OciRegistry(target_registry.host) as target:
                assert_complete(target, TARGET_REPOSITORY, f"r{round_number}")


COPY_REFERRERS = {
    "default-carries-them": ((), 3, "kept"),
    "no-referrers-leaves-them": (("--no-referrers",), 0, None),
}


@pytest.mark.parametrize(("flags", "copied", "signatures"), COPY_REFERRERS.values(), ids=COPY_REFERRERS.keys())
def test_cli_copy_carries_signatures_unless_told_not_to(
    builder: ImageBuilder, registry: LocalRegistry, target_registry: LocalRegistry,
    flags: tuple[str, ...], copied: int, signatures: str | None,
) -> None:
    """`copy` brings the signatures of what it copies unchanged and counts them in `--json`; `--no-referrers` skips."""
    from testbed.images import cosign_tag
    from testbed.signatures import signed_index

    index, children, _ = signed_index(builder, registry.host, SOURCE_REPOSITORY, "1.0", ["linux/amd64", "linux/arm64"])
    completed = run_cli(f"{registry.host}/{SOURCE_REPOSITORY}:1.0", f"{target_registry.host}/{TARGET_REPOSITORY}",
                        *flags, "--json")
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert (result["digest"], result["referrers_copied"], result["signatures"]) == (index.digest, copied, signatures)
    tags = set(list_tags(target_registry.host, TARGET_REPOSITORY))
    assert (cosign_tag(children[0], "sig") in tags) is bool(copied)


PLATFORM_FLAGS = {
    "repeated": (("--platform", "linux/arm64", "--platform", "linux/amd64"), 0),
    "comma-separated": (("--platform", "linux/arm64,linux/amd64"), 0),
    "comma-separated-with-spaces": (("--platform", "linux/arm64, linux/amd64"), 0),
    "both-ways": (("--platform", "linux/arm64", "--platform", "linux/amd64,linux/arm64"), 0),
    "empty-entry": (("--platform", "linux/arm64,"), 2),
}


@pytest.mark.parametrize(("flags", "exit_code"), PLATFORM_FLAGS.values(), ids=PLATFORM_FLAGS.keys())
def test_cli_copy_takes_platforms_repeated_or_comma_separated(
    builder: ImageBuilder, registry: LocalRegistry, target_registry: LocalRegistry,
    flags: tuple[str, ...], exit_code: int,
) -> None:
    """`--platform` is taken as docker, skopeo and crane take it: repeated, comma-separated, or both."""
    push(builder, multi(builder, THREE_PLATFORMS), registry.host, SOURCE_REPOSITORY, "1.0")
    completed = run_cli(f"{registry.host}/{SOURCE_REPOSITORY}:1.0", f"{target_registry.host}/{TARGET_REPOSITORY}",
                        *flags, "--json", "--no-referrers")
    assert completed.returncode == exit_code, completed.stderr
    if exit_code == 0:
        assert json.loads(completed.stdout)["platforms"] == ["linux/amd64", "linux/arm64"]
    else:
        assert completed.stderr.startswith("error:") and "Traceback" not in completed.stderr
