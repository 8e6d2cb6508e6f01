"""Helm charts: reading archives safely (bytes, files, a real registry), the images they reference, `chart-images`."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tarfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from importer.adapters.registry.oci import OciRegistry
from importer.app.chart_reading import read_chart_from_registry
from importer.core.charts import (
    MAX_CHART_ARCHIVE_BYTES,
    MAX_CHART_ENTRIES,
    MAX_CHART_FILE_BYTES,
    ChartError,
    ChartInfo,
    read_chart_archive,
)
from importer.entry.chart_file import read_chart_file
from importer.ports.registry import NotFound
from testbed.charts import (
    ChartSpec,
    RawEntry,
    chart_archive,
    chart_artifact,
    chart_config,
    many_entries,
    minimal_chart_entries,
    nested_archives,
    nested_bomb,
    push_chart,
    raw_archive,
)
from testbed.images import ImageBuilder, deterministic_gzip, multi, single
from testbed.push import push
from testbed.registry import LocalRegistry, free_port

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024
DIGEST = "sha256:" + "ab" * 32
ESCAPE_TARGET = "/etc/platform-guard-test-escape"


def images_of(info: ChartInfo) -> dict[str, tuple[str, ...]]:
    """Reference → where it was found."""
    return {image.reference: image.sources for image in info.images}


def values_chart(values: dict[str, object] | str, app_version: str | None = None) -> bytes:
    return chart_archive(ChartSpec("app", "1.0.0", app_version=app_version, values=values))


def tree(root: Path) -> list[tuple[str, int]]:
    return sorted((str(path.relative_to(root)), path.stat().st_size if path.is_file() else -1)
                  for path in root.rglob("*"))


@contextlib.contextmanager
def nothing_written(root: Path) -> Iterator[None]:
    """Run the block in an empty working directory under `root`; fail if anything under `root` changed."""
    workdir = root / "cwd"
    workdir.mkdir()
    before = tree(root)
    with contextlib.chdir(workdir):
        yield
    assert tree(root) == before
    assert not os.path.lexists(ESCAPE_TARGET)


# --- image discovery: values conventions -------------------------------------------------------------------

VALUES_CASES = [
    pytest.param({"image": {"registry": "ghcr.io", "repository": "team/api", "tag": "1.4.2"}}, None,
                 {"ghcr.io/team/api:1.4.2": ("values.yaml:image",)}, id="map-registry-repository-tag"),
    pytest.param({"image": {"repository": "bitnami/redis"}}, "7.2.4",
                 {"docker.io/bitnami/redis:7.2.4": ("values.yaml:image",)}, id="map-without-tag-gets-app-version"),
    pytest.param({"image": {"repository": "nginx", "tag": ""}}, None,
                 {"docker.io/library/nginx:latest": ("values.yaml:image",)},
                 id="map-empty-tag-without-app-version-is-latest"),
    pytest.param({"image": {"repository": "bitnami/redis", "tag": 7.2},
                  "db": {"image": {"repository": "postgres", "tag": 16}}}, None,
                 {"docker.io/bitnami/redis:7.2": ("values.yaml:image",),
                  "docker.io/library/postgres:16": ("values.yaml:db.image",)}, id="map-numeric-tags-become-strings"),
    pytest.param({"image": {"repository": "team/api", "digest": DIGEST}}, "9.9",
                 {f"docker.io/team/api@{DIGEST}": ("values.yaml:image",)}, id="map-digest-only-is-pinned"),
    pytest.param({"image": {"repository": "team/api", "tag": "1.0", "digest": DIGEST}}, None,
                 {f"docker.io/team/api:1.0@{DIGEST}": ("values.yaml:image",)}, id="map-tag-and-digest"),
    pytest.param({"image": {"name": "quay.io/jetstack/cert-manager-controller", "tag": "v1.14.0"}}, None,
                 {"quay.io/jetstack/cert-manager-controller:v1.14.0": ("values.yaml:image",)},
                 id="map-name-for-repository"),
    pytest.param({"image": "busybox:1.36", "proxy": {"image": "registry.k8s.io/pause:3.9"}}, None,
                 {"docker.io/library/busybox:1.36": ("values.yaml:image",),
                  "registry.k8s.io/pause:3.9": ("values.yaml:proxy.image",)}, id="strings-repo-tag-and-with-registry"),
    pytest.param({"backend": {"sidecars": [
                     {"name": "log", "image": "fluent/fluent-bit:3.0"},
                     {"name": "mesh", "image": {"repository": "envoyproxy/envoy", "tag": "v1.30.1"}}]}}, None,
                 {"docker.io/fluent/fluent-bit:3.0": ("values.yaml:backend.sidecars[0].image",),
                  "docker.io/envoyproxy/envoy:v1.30.1": ("values.yaml:backend.sidecars[1].image",)},
                 id="nested-lists-of-maps"),
    pytest.param({"initImage": "alpine:3.19", "sidecar_image": "quay.io/a/sidecar:2",
                  "jobs": {"kubectl-image": {"repository": "bitnami/kubectl", "tag": "1.29"}}}, None,
                 {"docker.io/library/alpine:3.19": ("values.yaml:initImage",),
                  "quay.io/a/sidecar:2": ("values.yaml:sidecar_image",),
                  "docker.io/bitnami/kubectl:1.29": ("values.yaml:jobs.kubectl-image",)}, id="suffix-image-keys"),
    pytest.param({"images": {"controller": {"repository": "x/controller", "tag": "1"}, "webhook": "x/webhook:1",
                             "pullPolicy": "Always"},
                  "extraImages": ["quay.io/a/b:1"]}, None,
                 {"docker.io/x/controller:1": ("values.yaml:images.controller",),
                  "docker.io/x/webhook:1": ("values.yaml:images.webhook",),
                  "quay.io/a/b:1": ("values.yaml:extraImages[0]",)}, id="images-map-and-list"),
    pytest.param({"global": {"imageRegistry": "mirror.example.com"},
                  "image": {"registry": "docker.io", "repository": "bitnami/redis", "tag": "7"}}, None,
                 {"mirror.example.com/bitnami/redis:7": ("values.yaml:image",)},
                 id="global-imageRegistry-overrides-registry"),
    pytest.param({"global": {"image": {"registry": "mirror.example.com"}},
                  "image": {"repository": "team/api", "tag": "1"}}, None,
                 {"mirror.example.com/team/api:1": ("values.yaml:image",)}, id="global-image-registry"),
    pytest.param({"global": {"imageRegistry": "mirror.example.com"},
                  "a": {"image": "team/api:1"}, "b": {"image": "quay.io/x/y:2"}}, None,
                 {"mirror.example.com/team/api:1": ("values.yaml:a.image",), "quay.io/x/y:2": ("values.yaml:b.image",)},
                 id="global-registry-fills-bare-strings"),
    pytest.param({"image": {"repository": ""}, "extra": {"image": ""}, "pullPolicy": "IfNotPresent",
                  "imagePullSecrets": [{"name": "creds"}], "useImage": True}, None, {},
                 id="empty-and-non-image-keys-ignored"),
    pytest.param({"a": {"image": "redis:7"}, "b": {"image": {"repository": "library/redis", "tag": "7"}}}, None,
                 {"docker.io/library/redis:7": ("values.yaml:a.image", "values.yaml:b.image")},
                 id="same-image-in-two-places-once"),
]


@pytest.mark.parametrize(("values", "app_version", "expected"), VALUES_CASES)
def test_values_conventions(values: dict[str, object], app_version: str | None,
                            expected: dict[str, tuple[str, ...]]) -> None:
    """Values conventions yield these normalised references, each with the values path it came from, as heuristics."""
    info = read_chart_archive(values_chart(values, app_version))
    assert images_of(info) == expected
    assert all(image.heuristic and image.source == "values" and image.platforms == () for image in info.images)
    assert info.unresolved == ()


def test_image_fields_are_split_out() -> None:
    """Each image carries its registry, repository, tag and digest apart from the reference."""
    info = read_chart_archive(values_chart({"a": {"image": {"repository": "team/api", "tag": "1.0", "digest": DIGEST}},
                                            "b": {"image": {"repository": "team/web", "digest": DIGEST}}}))
    fields = [(image.registry, image.repository, image.tag, image.digest) for image in info.images]
    assert fields == [("docker.io", "team/api", "1.0", DIGEST), ("docker.io", "team/web", None, DIGEST)]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ("image: '{{ .Values.registry }}/app:1'\n", "values.yaml:image: '{{ .Values.registry }}/app:1'"),
        ("worker:\n  image: Not A Reference\n", "values.yaml:worker.image: 'Not A Reference'"),
        ("image:\n  repository: team/api\n  tag: [1, 2]\n",
         "values.yaml:image: {'repository': 'team/api', 'tag': [1, 2]}"),
    ],
    ids=["template", "not-a-reference", "tag-is-a-list"],
)
def test_unreadable_image_values_are_reported(values: str, expected: str) -> None:
    """Image-like values that are templates or not references are listed as unresolved, not guessed at."""
    info = read_chart_archive(values_chart(values))
    assert info.images == () and info.unresolved == (expected,)


# --- image discovery: annotations --------------------------------------------------------------------------

ARTIFACTHUB_IMAGES = """\
- name: app
  image: ghcr.io/team/app:2.0
  platforms: [linux/x86_64, linux/aarch64]
- name: helper
  image: busybox:1.36
  whitelisted: true
"""


def test_annotation_images_are_declared_with_their_platforms() -> None:
    """Images of the artifacthub.io/images annotation are not heuristic and keep their (normalised) platforms."""
    spec = ChartSpec("app", "1.0.0", annotations={"artifacthub.io/images": ARTIFACTHUB_IMAGES})
    info = read_chart_archive(chart_archive(spec))
    assert [(i.reference, i.platforms, i.sources, i.heuristic) for i in info.images] == [
        ("docker.io/library/busybox:1.36", (), ("Chart.yaml:artifacthub.io/images[1]",), False),
        ("ghcr.io/team/app:2.0", ("linux/amd64", "linux/arm64"), ("Chart.yaml:artifacthub.io/images[0]",), False),
    ]
    assert info.images[0].source == "annotation"


def test_annotation_and_values_find_the_same_image_once() -> None:
    """An image both declared and found in values is one entry: not heuristic, annotation platforms, both sources."""
    spec = ChartSpec("app", "1.0.0", annotations={"artifacthub.io/images": ARTIFACTHUB_IMAGES},
                     values={"image": {"registry": "ghcr.io", "repository": "team/app", "tag": "2.0"}})
    image = next(i for i in read_chart_archive(chart_archive(spec)).images if i.repository == "team/app")
    assert (image.heuristic, image.platforms) == (False, ("linux/amd64", "linux/arm64"))
    assert image.sources == ("Chart.yaml:artifacthub.io/images[0]", "values.yaml:image")


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [(None, ()), ("linux/amd64, linux/arm64/v8", ("linux/amd64", "linux/arm64")),
     ("linux/x86_64,linux/amd64,linux/armhf", ("linux/amd64", "linux/arm/v7"))],
    ids=["absent", "two-platforms-normalised", "aliases-deduplicated"],
)
def test_platforms_annotation(annotation: str | None, expected: tuple[str, ...]) -> None:
    """platform-guard.io/platforms gives the chart's platforms, normalised and deduplicated."""
    annotations = {"platform-guard.io/platforms": annotation} if annotation is not None else {}
    assert read_chart_archive(chart_archive(ChartSpec("app", annotations=annotations))).platforms == expected


@pytest.mark.parametrize(
    ("annotations", "message"),
    [
        ({"platform-guard.io/platforms": "linux/amd64,,linux/arm64"}, "'platform-guard.io/platforms'.*empty entry"),
        ({"platform-guard.io/platforms": "linux/amd64/v2/extra"}, "'platform-guard.io/platforms'.*4 segments"),
        ({"artifacthub.io/images": "image: nginx\n"}, "artifacthub.io/images: expected a YAML list"),
        ({"artifacthub.io/images": "- name: x\n"}, r"artifacthub.io/images\[0\]: expected a mapping with an `image`"),
        ({"artifacthub.io/images": "- image: Not/Valid\n"}, r"artifacthub.io/images\[0\]: .*Not/Valid"),
        ({"artifacthub.io/images": "- image: nginx\n  platforms: [nope]\n"}, r"images\[0\].platforms: .*'nope'"),
        ({"artifacthub.io/images": "- image: [\n"}, "artifacthub.io/images: not valid YAML"),
    ],
    ids=["platforms-empty-entry", "platforms-too-many-segments", "images-not-a-list", "images-entry-without-image",
         "images-bad-reference", "images-bad-platform", "images-not-yaml"],
)
def test_invalid_annotations_are_refused(annotations: dict[str, str], message: str) -> None:
    """An annotation that cannot be read refuses the chart with an error naming the annotation."""
    with pytest.raises(ChartError, match=message):
        read_chart_archive(chart_archive(ChartSpec("app", annotations=annotations)))


# --- sub-charts --------------------------------------------------------------------------------------------

REDIS = ChartSpec(
    "redis", "18.0.0", app_version="7.2.4",
    annotations={
        "artifacthub.io/images": "- name: redis\n  image: docker.io/bitnami/redis:7.2.4\n  platforms: [linux/amd64]\n"
    },
    values={"image": {"registry": "docker.io", "repository": "bitnami/redis"},
            "metrics": {"image": {"repository": "bitnami/redis-exporter", "tag": "1.58.0"}}},
)


@pytest.mark.parametrize(
    ("bundling", "prefix"),
    [({"subcharts": (REDIS,)}, "charts/redis/"), ({"packaged": (REDIS,)}, "charts/redis-18.0.0.tgz!/")],
    ids=["directory", "nested-tgz"],
)
def test_subchart_images(bundling: dict[str, tuple[ChartSpec, ...]], prefix: str) -> None:
    """Images of a bundled sub-chart are found, as a directory or as a nested archive, with the path inside it."""
    spec = ChartSpec("shop", "1.0.0", app_version="2.0", values={"image": {"repository": "team/shop"}}, **bundling)
    info = read_chart_archive(chart_archive(spec))
    assert images_of(info) == {
        "docker.io/team/shop:2.0": ("values.yaml:image",),
        "docker.io/bitnami/redis:7.2.4": (f"{prefix}Chart.yaml:artifacthub.io/images[0]", f"{prefix}values.yaml:image"),
        "docker.io/bitnami/redis-exporter:1.58.0": (f"{prefix}values.yaml:metrics.image",),
    }
    assert info.subcharts == ("redis",)
    redis = next(image for image in info.images if image.repository == "bitnami/redis")
    assert (redis.heuristic, redis.platforms) == (False, ("linux/amd64",))


def test_parent_values_and_globals_reach_subcharts() -> None:
    """A parent's section for a sub-chart (by alias) and its globals override the sub-chart's own values."""
    spec = ChartSpec(
        "shop", "1.0.0", dependencies=[{"name": "redis", "version": "18.0.0", "alias": "cache"}],
        values={"global": {"imageRegistry": "mirror.example.com"},
                "cache": {"image": {"tag": "7.4.0"},
                          "sentinel": {"image": {"repository": "bitnami/sentinel", "tag": "7"}}}},
        subcharts=(ChartSpec("redis", "18.0.0", values={"global": {"imageRegistry": ""},
                                                        "image": {"repository": "bitnami/redis", "tag": "7.2.4"}}),),
    )
    info = read_chart_archive(chart_archive(spec))
    assert images_of(info) == {
        "mirror.example.com/bitnami/redis:7.4.0": ("charts/redis/values.yaml:image",),
        "mirror.example.com/bitnami/sentinel:7": ("values.yaml:cache.sentinel.image",),
    }
    assert info.subcharts == ("cache",)


def test_nested_subcharts_up_to_the_depth_limit() -> None:
    """Archives nested three deep are read, and their sub-charts are named by nesting."""
    info = read_chart_archive(nested_archives(3))
    assert (info.name, info.subcharts) == ("level0", ("level1", "level1/level2", "level1/level2/level3"))


@pytest.mark.parametrize(
    ("archive", "expected"),
    [
        (raw_archive([RawEntry("./", type=tarfile.DIRTYPE),
                      *[RawEntry(f"./{entry.name}", entry.content, entry.type)
                        for entry in minimal_chart_entries("dot")]]), ("dot", "1.0.0")),
        (raw_archive(minimal_chart_entries("empty", values=b"")), ("empty", "1.0.0")),
        (raw_archive(minimal_chart_entries("novalues", values=None)), ("novalues", "1.0.0")),
        (chart_archive(ChartSpec("numbers", "1.0")), ("numbers", "1.0")),
    ],
    ids=["dot-slash-prefixed-entries", "empty-values-file", "no-values-file", "version-as-yaml-number"],
)
def test_unusual_but_valid_archives(archive: bytes, expected: tuple[str, str]) -> None:
    """Archives that tar tools or chart authors produce legitimately are read."""
    info = read_chart_archive(archive)
    assert (info.name, info.version) == expected


def test_config_must_agree_with_the_archive() -> None:
    """A registry config naming another chart or version than the archive's Chart.yaml refuses the chart."""
    spec = ChartSpec("shop", "1.0.0")
    assert read_chart_archive(chart_archive(spec), config=chart_config(spec)).name == "shop"
    with pytest.raises(ChartError, match="chart config: version '2.0.0' disagrees with version '1.0.0'"):
        read_chart_archive(chart_archive(spec), config={**chart_config(spec), "version": "2.0.0"})


# --- hostile and broken archives ---------------------------------------------------------------------------


def with_entry(entry: RawEntry) -> Callable[[], bytes]:
    return lambda: raw_archive([*minimal_chart_entries(), entry])


ALIAS_BOMB = "a0: &a0 {image: {repository: x/y}}\n" + "".join(
    f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]\n" for n in range(1, 10)
)

HOSTILE = [
    ("traversal-dotdot", with_entry(RawEntry("bad/../../escaped", b"x")),
     r"entry 'bad/../../escaped': '..' in the path"),
    ("traversal-leading-dotdot", with_entry(RawEntry("../escaped", b"x")), r"entry '../escaped': '..' in the path"),
    ("absolute-path", with_entry(RawEntry(ESCAPE_TARGET, b"x")), f"entry '{ESCAPE_TARGET}': absolute path"),
    ("backslash", with_entry(RawEntry("bad\\..\\..\\escaped", b"x")), r"backslash in the path"),
    ("drive-letter", with_entry(RawEntry("C:/escaped", b"x")), r"entry 'C:/escaped': absolute path"),
    ("symlink", with_entry(RawEntry("bad/link", type=tarfile.SYMTYPE, linkname="/etc/passwd")),
     r"entry 'bad/link': symbolic link \(to '/etc/passwd'\)"),
    ("hardlink", with_entry(RawEntry("bad/link", type=tarfile.LNKTYPE, linkname="bad/Chart.yaml")),
     r"entry 'bad/link': hard link"),
    ("char-device", with_entry(RawEntry("bad/tty", type=tarfile.CHRTYPE)), r"entry 'bad/tty': device file"),
    ("block-device", with_entry(RawEntry("bad/sda", type=tarfile.BLKTYPE)), r"entry 'bad/sda': device file"),
    ("fifo", with_entry(RawEntry("bad/pipe", type=tarfile.FIFOTYPE)), r"entry 'bad/pipe': fifo"),
    ("outside-chart-directory", with_entry(RawEntry("other/values.yaml", b"a: 1")),
     r"entry 'other/values.yaml': outside the chart directory 'bad'"),
    ("file-at-archive-root", lambda: raw_archive([RawEntry("Chart.yaml", b"name: x\nversion: 1\n")]),
     r"entry 'Chart.yaml': a file outside any chart directory"),
    ("duplicate-entry", with_entry(RawEntry("bad/values.yaml", b"image: evil/override:1\n")),
     r"entry 'bad/values.yaml' appears twice"),
    ("not-gzip", lambda: b"PK\x03\x04 a zip file, not a chart", "not a gzip archive"),
    ("not-tar", lambda: deterministic_gzip(b"just some text\n" * 100), "not a readable tar archive"),
    ("truncated-gzip", lambda: raw_archive([*minimal_chart_entries(), RawEntry("bad/x", zeros=MiB)])[:-64],
     "broken gzip data"),
    ("empty-archive", lambda: deterministic_gzip(b""), "not a readable tar archive"),
    ("chart-yaml-missing", lambda: raw_archive([RawEntry("bad/values.yaml", b"a: 1\n")]), "no Chart.yaml"),
    ("chart-yaml-not-a-mapping", lambda: raw_archive([RawEntry("bad/Chart.yaml", b"- name\n")]),
     "Chart.yaml: expected a mapping, got list"),
    ("chart-yaml-without-version", lambda: raw_archive([RawEntry("bad/Chart.yaml", b"name: bad\n")]),
     "Chart.yaml: `version` must be a non-empty string"),
    ("values-not-a-mapping", lambda: raw_archive(minimal_chart_entries(values=b"- a\n- b\n")),
     "values.yaml: expected a mapping, got list"),
    ("values-not-yaml", lambda: raw_archive(minimal_chart_entries(values=b"a: [\n")), "values.yaml: not valid YAML"),
    ("values-python-tag",
     lambda: raw_archive(minimal_chart_entries(values=b"a: !!python/object/apply:os.system [x]\n")),
     "values.yaml: not valid YAML"),
    ("values-alias-bomb", lambda: values_chart(ALIAS_BOMB),
     "values.yaml: this value expands to more than 1000000 YAML nodes"),
    ("values-nest-too-deep", lambda: values_chart("a: " + "[" * 100 + "]" * 100 + "\n"), "nest deeper than 64 levels"),
    ("too-many-entries", lambda: many_entries(MAX_CHART_ENTRIES), f"more than {MAX_CHART_ENTRIES} entries"),
    ("huge-entry", with_entry(RawEntry("bad/big", zeros=100 * MiB)),
     f"entry 'bad/big': 104857600 bytes is over the {MAX_CHART_FILE_BYTES} byte limit"),
    ("over-the-total-budget", lambda: raw_archive([*minimal_chart_entries(),
                                                   *[RawEntry(f"bad/big{n}", zeros=5 * MiB) for n in range(11)]]),
     "the chart unpacks to more than 52428800 bytes"),
    ("nested-archive-bomb", lambda: nested_bomb(2, 10, 4 * MiB), "the chart unpacks to more than 52428800 bytes"),
    ("nested-too-deep", lambda: nested_archives(4), "sub-chart archives nest deeper than 3 levels"),
    ("hostile-nested-archive", lambda: chart_archive(ChartSpec("shop", files={
        "charts/evil-1.0.0.tgz": raw_archive([*minimal_chart_entries("evil"),
                                              RawEntry("evil/link", type=tarfile.SYMTYPE, linkname="/")])})),
     r"^charts/evil-1.0.0.tgz: entry 'evil/link': symbolic link"),
    ("pax-header-bomb", with_entry(RawEntry("bad/x", b"x", pax_headers={"comment": "x" * MiB})),
     "tar extension headers .* over 65536 bytes"),
    ("archive-over-10-mib", lambda: b"\x1f\x8b" + bytes(MAX_CHART_ARCHIVE_BYTES), "over the 10485760 byte limit"),
]


@pytest.mark.parametrize(("build", "message"), [case[1:] for case in HOSTILE], ids=[case[0] for case in HOSTILE])
def test_hostile_archives_are_refused_without_writing(tmp_path: Path, build: Callable[[], bytes], message: str) -> None:
    """A hostile or broken archive is refused with a ChartError naming the entry, and nothing lands on disk."""
    archive = build()
    with nothing_written(tmp_path), pytest.raises(ChartError, match=message):
        read_chart_archive(archive)


@pytest.mark.parametrize(
    "case", ["huge-entry", "over-the-total-budget", "nested-archive-bomb", "pax-header-bomb", "values-alias-bomb"]
)
def test_bombs_are_refused_quickly_in_little_memory(case: str) -> None:
    """Decompression, header and alias bombs are refused within seconds, using a few MiB at most (tracemalloc)."""
    build = next(entry[1] for entry in HOSTILE if entry[0] == case)
    archive = build()
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(ChartError):
            read_chart_archive(archive)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 10
    assert peak < 8 * MiB, f"peak {peak / MiB:.1f} MiB"


def test_huge_entry_is_refused_before_reading_it() -> None:
    """A 100 MiB entry (compressed to ~100 KiB) is refused from its header: under 1 MiB allocated, under a second."""
    archive = raw_archive([*minimal_chart_entries(), RawEntry("bad/big", zeros=100 * MiB)])
    assert len(archive) < MiB
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(ChartError, match="entry 'bad/big'"):
            read_chart_archive(archive)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 1
    assert peak < MiB, f"peak {peak / MiB:.1f} MiB"


def test_chart_file(tmp_path: Path) -> None:
    """A local .tgz is read like its bytes; a missing one is a ChartError naming the path."""
    path = tmp_path / "shop-1.0.0.tgz"
    path.write_bytes(chart_archive(ChartSpec("shop", "1.0.0", values={"image": "team/shop:1"})))
    assert images_of(read_chart_file(path)) == {"docker.io/team/shop:1": ("values.yaml:image",)}
    with pytest.raises(ChartError, match=f"{tmp_path / 'missing.tgz'}: cannot read"):
        read_chart_file(tmp_path / "missing.tgz")


# --- from a registry ---------------------------------------------------------------------------------------

SHOP = ChartSpec(
    "shop", "1.2.0+build.7", app_version="3.1",
    annotations={"artifacthub.io/images": ARTIFACTHUB_IMAGES, "platform-guard.io/platforms": "linux/amd64,linux/arm64"},
    values={"image": {"repository": "team/shop"}, "worker": {"image": "team/worker:3.1"}},
    packaged=(REDIS,),
)


def test_chart_from_registry_reads_like_the_archive(registry: LocalRegistry, builder: ImageBuilder) -> None:
    """A chart pushed as an OCI artifact reads the same as its archive (the `+` of the version is `_` in the tag)."""
    archive = chart_archive(SHOP)
    push_chart(builder, archive, chart_config(SHOP), registry.host, "charts/shop", SHOP.version)
    with OciRegistry(registry.host) as client:
        info = read_chart_from_registry(client, "charts/shop", "1.2.0_build.7")
    assert info == read_chart_archive(archive)
    assert (info.version, info.platforms, len(info.images)) == ("1.2.0+build.7", ("linux/amd64", "linux/arm64"), 6)


def _push_image(builder: ImageBuilder, host: str) -> None:
    push(builder, single(builder, "linux/amd64"), host, "charts/bad", "1")


def _push_index(builder: ImageBuilder, host: str) -> None:
    push(builder, multi(builder, ["linux/amd64", "linux/arm64"]), host, "charts/bad", "1")


def _push_disagreeing_config(builder: ImageBuilder, host: str) -> None:
    archive = chart_archive(ChartSpec("bad", "1"))
    push_chart(builder, archive, {"name": "other", "version": "1"}, host, "charts/bad", "1")


def _push_hostile_layer(builder: ImageBuilder, host: str) -> None:
    archive = raw_archive([*minimal_chart_entries(), RawEntry("bad/link", type=tarfile.SYMTYPE, linkname="/etc")])
    push_chart(builder, archive, {"name": "bad", "version": "1.0.0"}, host, "charts/bad", "1")


def _push_wrong_layer_type(builder: ImageBuilder, host: str) -> None:
    spec = ChartSpec("bad", "1")
    artifact = chart_artifact(builder, chart_archive(spec), chart_config(spec), layer_media_type="application/x-tar")
    push(builder, artifact, host, "charts/bad", "1", via="raw")


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (_push_image, "not a Helm chart \\(config 'application/vnd.oci.image.config.v1\\+json'"),
        (_push_index, "not a Helm chart \\(an index"),
        (_push_disagreeing_config, "chart config: name 'other' disagrees with name 'bad'"),
        (_push_hostile_layer, "entry 'bad/link': symbolic link"),
        (_push_wrong_layer_type, "expected one application/vnd.cncf.helm.chart.content.v1.tar\\+gzip layer, found 0"),
    ],
    ids=["image-not-chart", "index-not-chart", "config-disagrees", "hostile-chart-layer", "no-chart-layer"],
)
def test_registry_refusals(registry: LocalRegistry, builder: ImageBuilder,
                           setup: Callable[[ImageBuilder, str], None], message: str) -> None:
    """What is not a readable Helm chart in the registry is a ChartError naming the reference."""
    setup(builder, registry.host)
    with OciRegistry(registry.host) as client:
        with pytest.raises(ChartError, match=f"{registry.host}/charts/bad:1: .*{message}"):
            read_chart_from_registry(client, "charts/bad", "1")


def test_missing_chart_is_a_registry_error(registry: LocalRegistry) -> None:
    """A chart tag that does not exist is the registry's NotFound, not a ChartError."""
    with OciRegistry(registry.host) as client, pytest.raises(NotFound):
        read_chart_from_registry(client, "charts/none", "1.0.0")


# --- the chart-images command ------------------------------------------------------------------------------


def run(*args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_GUARD_")}
    return subprocess.run([sys.executable, "-m", "importer", *args], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=60)


def test_chart_images_table_from_a_tgz(tmp_path: Path) -> None:
    """`chart-images FILE.tgz` prints the chart, then one row per image: reference, platforms, heuristic, found in."""
    path = tmp_path / "shop.tgz"
    path.write_bytes(chart_archive(SHOP))
    result = run("chart-images", str(path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "chart shop 1.2.0+build.7 (app 3.1)  platforms: linux/amd64, linux/arm64"
    assert lines[1].split() == ["REFERENCE", "PLATFORMS", "HEURISTIC", "FOUND", "IN"]
    rows = {line.split()[0]: line.split() for line in lines[2:8]}
    assert rows["ghcr.io/team/app:2.0"][1:] == ["linux/amd64,linux/arm64", "no", "Chart.yaml:artifacthub.io/images[0]"]
    assert rows["docker.io/team/shop:3.1"][1:] == ["—", "yes", "values.yaml:image"]
    assert lines[8] == "sub-charts: redis"


def test_chart_images_json_from_a_registry(registry: LocalRegistry, builder: ImageBuilder) -> None:
    """`chart-images REF --json` reads the chart from the registry and prints the chart and its images."""
    push_chart(builder, chart_archive(SHOP), chart_config(SHOP), registry.host, "charts/shop", SHOP.version)
    result = run("chart-images", f"{registry.host}/charts/shop:1.2.0_build.7", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document == read_chart_archive(chart_archive(SHOP)).as_dict()
    redis = next(image for image in document["images"] if image["repository"] == "bitnami/redis")
    assert redis == {
        "reference": "docker.io/bitnami/redis:7.2.4", "registry": "docker.io", "repository": "bitnami/redis",
        "tag": "7.2.4", "digest": None, "platforms": ["linux/amd64"], "source": "annotation",
        "sources": ["charts/redis-18.0.0.tgz!/Chart.yaml:artifacthub.io/images[0]",
                    "charts/redis-18.0.0.tgz!/values.yaml:image"],
        "heuristic": False,
    }


@pytest.mark.parametrize(
    ("target", "code", "message"),
    [
        (lambda tmp, host: str(tmp / "evil.tgz"), 2, "entry 'bad/../../escaped': '..' in the path"),
        (lambda tmp, host: str(tmp / "missing.tgz"), 2, "missing.tgz: cannot read the chart archive"),
        (lambda tmp, host: str(tmp), 2, "is a directory"),
        (lambda tmp, host: f"{host}/charts/bad:1", 2, "not a Helm chart"),
        (lambda tmp, host: f"{host}/Charts/Bad:1", 2, "must be lower-case"),
        (lambda tmp, host: f"{host}/charts/none:1", 3, "charts/none"),
        (lambda tmp, host: f"127.0.0.1:{free_port()}/charts/shop:1", 3, "127.0.0.1:"),
    ],
    ids=["hostile-tgz", "missing-tgz", "directory", "image-not-chart", "invalid-reference", "missing-tag",
         "unreachable-registry"],
)
def test_chart_images_exit_codes(tmp_path: Path, registry: LocalRegistry, builder: ImageBuilder,
                                 target: Callable[[Path, str], str], code: int, message: str) -> None:
    """Refused or unreadable charts exit 2, registry and network errors exit 3, each with a message, no traceback."""
    (tmp_path / "evil.tgz").write_bytes(with_entry(RawEntry("bad/../../escaped", b"x"))())
    _push_image(builder, registry.host)
    result = run("chart-images", target(tmp_path, registry.host))
    assert result.returncode == code, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_chart_images_help() -> None:
    """`chart-images --help` describes the command and its exit codes."""
    result = run("chart-images", "--help")
    assert result.returncode == 0 and "usage: platform-guard chart-images" in result.stdout
    assert "3 registry or network error" in " ".join(result.stdout.split())
