"""Helm chart archives for tests, built in code: charts with values, annotations and sub-charts, and hostile ones.

    spec = ChartSpec("shop", "1.0.0", app_version="2.1", values={"image": {"repository": "team/shop"}},
                     subcharts=(ChartSpec("redis", "18.0.0"),), packaged=(ChartSpec("common", "2.0.0"),))
    archive = chart_archive(spec)                                  # `helm package` output: shop/Chart.yaml, ...
    push_chart(builder, archive, chart_config(spec), registry.host, "charts/shop", "1.0.0")
    declared = ChartSpec("web", annotations={ARTIFACTHUB_IMAGES: artifacthub_images(
        ArtifactHubImage("web", "registry.example/team/web:1.0", ("linux/amd64", "linux/arm64")))})
    descriptor = chart_descriptor(builder, declared)               # stored only; push it with testbed.push.push
    bomb = raw_archive([RawEntry("x/Chart.yaml", b"name: x"), RawEntry("x/big", zeros=100 * 1024 * 1024)])

Everything is deterministic (the helpers of `testbed.images`: sorted entries, owner 0:0, mtime 0,
gzip without name or time). `raw_archive` writes any tar entry as given (`../x`, absolute paths, links,
devices, pax headers of any size) and streams runs of zeros through the compressor, so an archive that
unpacks to 100 MiB costs about 100 KiB of memory to build. Nothing here reads archives back.
"""

from __future__ import annotations

import tarfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from importer.core.charts.model import (  # noqa: F401  (re-exported: the Chart.yaml annotation declaring the images)
    ARTIFACTHUB_IMAGES_ANNOTATION as ARTIFACTHUB_IMAGES,
)
from testbed.images import (
    HELM_CHART_LAYER,
    HELM_CONFIG,
    OCI_MANIFEST,
    Descriptor,
    ImageBuilder,
    canonical_json,
    chart_tag,
    deterministic_gzip,
    deterministic_tar,
)
from testbed.push import push

_ZERO_CHUNK = bytes(1024 * 1024)
_END_OF_ARCHIVE = bytes(2 * tarfile.BLOCKSIZE)


@dataclass(frozen=True, slots=True)
class ChartSpec:
    """A chart to build: its Chart.yaml fields, its values, its sub-charts and any other files."""

    name: str
    version: str = "0.1.0"
    app_version: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    dependencies: Sequence[Mapping[str, str]] = ()  # Chart.yaml `dependencies` entries: {name, alias?, ...}
    values: Mapping[str, Any] | str | None = None  # a mapping is dumped as YAML, a string written as is, None: no file
    subcharts: Sequence[ChartSpec] = ()  # bundled as directories: charts/<name>/
    packaged: Sequence[ChartSpec] = ()  # bundled as archives: charts/<name>-<version>.tgz
    files: Mapping[str, bytes] = field(default_factory=dict)  # more files, paths relative to the chart directory
    with_chart_yaml: bool = True

    def metadata(self) -> dict[str, Any]:
        """Chart.yaml as a mapping, in Helm's key order."""
        chart: dict[str, Any] = {"apiVersion": "v2", "name": self.name, "version": self.version, "type": "application"}
        if self.app_version is not None:
            chart["appVersion"] = self.app_version
        if self.dependencies:
            chart["dependencies"] = [dict(dependency) for dependency in self.dependencies]
        if self.annotations:
            chart["annotations"] = dict(self.annotations)
        return chart


@dataclass(frozen=True, slots=True)
class ArtifactHubImage:
    """One entry of the `artifacthub.io/images` annotation: a name, an image reference and, optionally, platforms."""

    name: str
    image: str
    platforms: Sequence[str] = ()


def artifacthub_images(*images: ArtifactHubImage) -> str:
    """The value of the `artifacthub.io/images` annotation (a YAML list of `{name, image, platforms?}`) for `images`."""
    entries: list[dict[str, Any]] = []
    for image in images:
        entry: dict[str, Any] = {"name": image.name, "image": image.image}
        if image.platforms:
            entry["platforms"] = list(image.platforms)
        entries.append(entry)
    return yaml.safe_dump(entries, sort_keys=False)


def chart_files(spec: ChartSpec) -> dict[str, bytes]:
    """The files of a chart directory, by path relative to it (sub-charts included)."""
    files: dict[str, bytes] = {}
    if spec.with_chart_yaml:
        files["Chart.yaml"] = yaml.safe_dump(spec.metadata(), sort_keys=False).encode()
    if isinstance(spec.values, str):
        files["values.yaml"] = spec.values.encode()
    elif spec.values is not None:
        files["values.yaml"] = yaml.safe_dump(dict(spec.values), sort_keys=False).encode()
    for subchart in spec.subcharts:
        for path, content in chart_files(subchart).items():
            files[f"charts/{subchart.name}/{path}"] = content
    for packaged in spec.packaged:
        files[f"charts/{packaged.name}-{packaged.version}.tgz"] = chart_archive(packaged)
    files.update(spec.files)
    return files


def chart_archive(spec: ChartSpec) -> bytes:
    """The chart as `helm package` writes it: a gzipped tar of `<name>/…`."""
    files = {f"{spec.name}/{path}": content for path, content in chart_files(spec).items()}
    return deterministic_gzip(deterministic_tar(files))


def chart_config(spec: ChartSpec) -> dict[str, Any]:
    """The OCI config blob `helm push` writes: Chart.yaml as JSON."""
    return spec.metadata()


# -- hostile and odd archives ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RawEntry:
    """One tar entry written exactly as described: any name, type and link, with content or a run of zeros."""

    name: str
    content: bytes = b""
    type: bytes = tarfile.REGTYPE
    linkname: str = ""
    zeros: int = 0  # a regular file of this many zero bytes, streamed instead of `content`
    pax_headers: Mapping[str, str] = field(default_factory=dict)  # written as a pax extended header before it


def raw_archive(entries: Sequence[RawEntry], *, compress: bool = True) -> bytes:
    """A tar (gzipped unless `compress=False`) of `entries` in the order given, ended like tar ends archives."""
    if not compress:
        return b"".join(_tar_pieces(entries))
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: gzip framing, with mtime 0 and no name
    chunks = [compressor.compress(piece) for piece in _tar_pieces(entries)]
    chunks.append(compressor.flush())
    return b"".join(chunks)


def _tar_pieces(entries: Sequence[RawEntry]) -> Iterator[bytes]:
    for entry in entries:
        info = tarfile.TarInfo(entry.name)
        info.type = entry.type
        info.linkname = entry.linkname
        info.mtime = 0
        info.uid = info.gid = 0
        info.mode = 0o755 if entry.type == tarfile.DIRTYPE else 0o644
        info.pax_headers = dict(entry.pax_headers)
        data_size = entry.zeros or len(entry.content)
        info.size = data_size if entry.type in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
        header_format = tarfile.PAX_FORMAT if entry.pax_headers else tarfile.GNU_FORMAT
        yield info.tobuf(format=header_format, encoding="utf-8", errors="surrogateescape")
        if info.size == 0:
            continue
        if entry.zeros:
            remaining = entry.zeros
            while remaining:
                piece = _ZERO_CHUNK if remaining >= len(_ZERO_CHUNK) else bytes(remaining)
                remaining -= len(piece)
                yield piece
        else:
            yield entry.content
        padding = -info.size % tarfile.BLOCKSIZE
        if padding:
            yield bytes(padding)
    yield _END_OF_ARCHIVE


def minimal_chart_entries(name: str = "bad", *, values: bytes | None = b"replicaCount: 1\n") -> list[RawEntry]:
    """The entries of a small valid chart, to add a hostile entry to."""
    entries = [
        RawEntry(f"{name}/", type=tarfile.DIRTYPE),
        RawEntry(f"{name}/Chart.yaml", f"name: {name}\nversion: 1.0.0\n".encode()),
    ]
    if values is not None:
        entries.append(RawEntry(f"{name}/values.yaml", values))
    return entries


def nested_archives(depth: int, *, name: str = "level") -> bytes:
    """A chart whose sub-chart archive holds a sub-chart archive, `depth` archives below the top one."""
    spec = ChartSpec(f"{name}{depth}", "1.0.0")
    for level in range(depth - 1, -1, -1):
        spec = ChartSpec(f"{name}{level}", "1.0.0", packaged=(spec,))
    return chart_archive(spec)


def nested_bomb(levels: int, fanout: int, leaf_zeros: int) -> bytes:
    """An archive bomb made of sub-charts: each level bundles `fanout` copies of the level below as archives.

    The leaf chart holds one file of `leaf_zeros` zero bytes, so the whole unpacks to about
    `fanout ** levels * leaf_zeros` bytes while the top archive stays small.
    """
    archive = raw_archive([*minimal_chart_entries("leaf"), RawEntry("leaf/data.bin", zeros=leaf_zeros)])
    for level in range(1, levels + 1):
        copies = {f"charts/copy{number}.tgz": archive for number in range(fanout)}
        archive = chart_archive(ChartSpec(f"bomb{level}", "1.0.0", files=copies))
    return archive


def many_entries(count: int, *, name: str = "many") -> bytes:
    """A chart with `count` empty template files besides Chart.yaml (so `count + 2` entries with its directory)."""
    entries = minimal_chart_entries(name, values=None)
    entries += [RawEntry(f"{name}/templates/file{number:05}.yaml") for number in range(count)]
    return raw_archive(entries)


# -- pushing --------------------------------------------------------------------------------------------


def chart_artifact(
    builder: ImageBuilder,
    archive: bytes,
    config: Mapping[str, Any],
    *,
    config_media_type: str = HELM_CONFIG,
    layer_media_type: str = HELM_CHART_LAYER,
) -> Descriptor:
    """Store a chart archive as `helm push` would (config, one layer, an OCI manifest) in `builder`'s layout."""
    layer = builder.add_blob(archive, layer_media_type)
    config_blob = builder.add_blob(canonical_json(config), config_media_type)
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_blob.to_json(),
        "layers": [layer.to_json()],
        "annotations": {
            "org.opencontainers.image.title": str(config.get("name", "")),
            "org.opencontainers.image.version": str(config.get("version", "")),
        },
    }
    return builder.add_blob(canonical_json(document), OCI_MANIFEST)


def chart_descriptor(builder: ImageBuilder, spec: ChartSpec) -> Descriptor:
    """Store the chart `spec` describes as `helm push` would (see `chart_artifact`); push it under
    `chart_tag(spec.version)`."""
    return chart_artifact(builder, chart_archive(spec), chart_config(spec))


def push_chart(
    builder: ImageBuilder,
    archive: bytes,
    config: Mapping[str, Any],
    registry_host: str,
    repository: str,
    version: str,
) -> str:
    """Push a chart archive to `repository` under the tag `helm push` uses for `version`; returns its digest."""
    descriptor = chart_artifact(builder, archive, config)
    return push(builder, descriptor, registry_host, repository, chart_tag(version), via="raw")
