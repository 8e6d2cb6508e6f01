"""Helm charts: read a chart archive safely and list the container images it references.

    info = read_chart_archive(tgz_bytes)                         # pure: bytes in, ChartInfo out
    info = read_chart_file("redis-18.1.0.tgz")                   # a local archive (for the CLI)
    info = read_chart_from_registry(registry, "charts/redis", "18.1.0")
    info.name, info.version, info.platforms                      # platforms: our annotation, normalised
    for image in info.images:                                    # deduplicated, sorted by reference
        image.reference, image.platforms, image.sources, image.heuristic
    print(format_chart_table(info))                              # what `python -m importer chart-images` prints

Reading. The archive is opened in memory and never extracted: the gzip stream is decompressed in small
reads and handed to `tarfile` in stream mode, and only `Chart.yaml`, `values.yaml` and sub-charts
(`charts/<sub>/…` directories and `charts/*.tgz` archives, read the same way, at most
`MAX_NESTED_ARCHIVE_DEPTH` archives deep) are kept. Every entry is checked before its data is read, and
any of these refuses the whole chart with a `ChartError` naming the archive and the entry:
an absolute path, a `..` component or a backslash; an entry outside the chart's top-level directory;
a symbolic or hard link, a device, fifo or sparse file; a name that appears twice; more than
`MAX_CHART_FILE_BYTES` in one entry; more than `MAX_CHART_ENTRIES` entries or `MAX_CHART_UNPACKED_BYTES`
decompressed bytes over all archives of the chart together (headers included: a nested archive counts
once as a file of its parent and once more for what it unpacks to); tar extension headers (pax, GNU long
names) over `MAX_TAR_HEADER_BYTES` for one entry. YAML is read with `yaml.safe_load` only; a values file
that is not a mapping, and values that nest deeper than `MAX_VALUES_DEPTH` or take more than
`MAX_VALUES_NODES` steps to walk (YAML aliases repeated on purpose), are refused too.

Images, the union of:
- the `artifacthub.io/images` annotation of each Chart.yaml (a YAML list of `{name, image, platforms?}`):
  declared by the chart's author, so `heuristic` is False and the image's `platforms` are kept;
- values conventions (best-effort, `heuristic` True): under keys `image`, `…Image`, `…_image`, `…-image`,
  a map `{registry?, repository (or name), tag?, digest?}` or a string `"repo:tag"`, and every entry of
  `images` / `…Images` maps and lists, anywhere in the values, lists included. For maps,
  `global.imageRegistry` (else `global.image.registry`) replaces the registry, as Bitnami-style charts do; a
  string naming no registry gets it too. No registry means docker.io. A map with no tag gets the chart's
  `appVersion` (else `latest`); with a digest and no tag, the image is pinned by digest alone. A numeric
  YAML tag becomes its string (`1.10` reads as `1.1`: YAML made it a float already).
- Sub-charts see their values as Helm merges them: the parent's `<name or alias>:` section and the parent's
  `global` win over the sub-chart's own values. A source path names the sub-chart's file when the key is
  there, else the parent's section (`values.yaml:redis.image`). Disabled sub-charts are listed all the same.
Templates are not rendered (there is no Helm here): an image built in a template from other values is not
seen, and image-like values that are templates or not references end up in `ChartInfo.unresolved`.

Our own annotation `platform-guard.io/platforms: "linux/amd64, linux/arm64"` on the top chart says which
platforms the chart needs (`ChartInfo.platforms`); an unreadable one is a ChartError naming it.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import reprlib
import tarfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from importer.core.media_types import HELM_CHART_LAYER, HELM_CONFIG
from importer.core.manifests import MAX_CONFIG_BYTES, ImageManifest, ManifestError, parse_manifest
from importer.core.platforms import PlatformError
from importer.core.platforms import parse as parse_platform
from importer.core.reference import DEFAULT_TAG, Reference, ReferenceError, parse_reference
from importer.ports.registry import Registry, TooLarge

__all__ = [
    "ARTIFACTHUB_IMAGES_ANNOTATION",
    "ChartError",
    "ChartImage",
    "ChartInfo",
    "format_chart_table",
    "MAX_CHART_ARCHIVE_BYTES",
    "MAX_CHART_ENTRIES",
    "MAX_CHART_FILE_BYTES",
    "MAX_CHART_UNPACKED_BYTES",
    "MAX_NESTED_ARCHIVE_DEPTH",
    "MAX_TAR_HEADER_BYTES",
    "MAX_VALUES_DEPTH",
    "MAX_SOURCES_PER_IMAGE",
    "MAX_UNRESOLVED",
    "MAX_VALUES_NODES",
    "PLATFORMS_ANNOTATION",
    "read_chart_archive",
    "read_chart_file",
    "read_chart_from_registry",
]

MAX_CHART_ARCHIVE_BYTES = 10 * 1024 * 1024  # the compressed chart, as downloaded
MAX_CHART_UNPACKED_BYTES = 50 * 1024 * 1024  # decompressed tar bytes over the chart and all its nested archives
MAX_CHART_FILE_BYTES = 5 * 1024 * 1024  # one entry; Helm's own default limit per file is 5 MiB too
MAX_CHART_ENTRIES = 5000  # entries over the chart and all its nested archives
MAX_NESTED_ARCHIVE_DEPTH = 3  # charts/a.tgz holding charts/b.tgz holding charts/c.tgz, and no deeper
MAX_TAR_HEADER_BYTES = 64 * 1024  # pax and GNU long-name headers before one entry
MAX_VALUES_DEPTH = 64
MAX_VALUES_NODES = 200_000
MAX_SOURCES_PER_IMAGE = 20  # places listed per image (YAML aliases can repeat one image thousands of times)
MAX_UNRESOLVED = 100  # image-like values listed as not being references

ARTIFACTHUB_IMAGES_ANNOTATION = "artifacthub.io/images"
PLATFORMS_ANNOTATION = "platform-guard.io/platforms"

_TOP_ARCHIVE_LABEL = "chart archive"
_GZIP_MAGIC = b"\x1f\x8b"
_TAR_BLOCK = tarfile.BLOCKSIZE
_READ_AHEAD = tarfile.RECORDSIZE  # tarfile's stream mode reads this much at a time, so a window may run over by it
_WANTED_FILE = re.compile(r"(?:charts/[^/]+/)*(?:Chart\.yaml|values\.yaml|charts/[^/]+\.tgz)")
_DRIVE_LETTER = re.compile(r"[A-Za-z]:")
_MAX_SHOWN_VALUE = 80
_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = _MAX_SHOWN_VALUE


class ChartError(ValueError):
    """A chart that cannot be read, or is refused; the message names the archive, entry or file and what is wrong."""


@dataclass(frozen=True, slots=True)
class ChartImage:
    """One image a chart references, with every place it was found."""

    reference: str  # normalised: "docker.io/bitnami/redis:7.2.4", "…@sha256:…" or "…:7.2.4@sha256:…"
    registry: str
    repository: str
    tag: str | None
    digest: str | None
    platforms: tuple[str, ...]  # from the artifacthub.io/images annotation, normalised; else ()
    sources: tuple[str, ...]  # "Chart.yaml:artifacthub.io/images[0]", "charts/redis/values.yaml:image"; at most 20
    heuristic: bool  # True when found only in values (by convention), never declared in an annotation

    @property
    def source(self) -> str:
        """"annotation" when a chart declares the image, else "values"."""
        return "values" if self.heuristic else "annotation"

    def as_dict(self) -> dict[str, Any]:
        """The image as a JSON-ready dict (field order as declared, plus `source`)."""
        return {
            "reference": self.reference,
            "registry": self.registry,
            "repository": self.repository,
            "tag": self.tag,
            "digest": self.digest,
            "platforms": list(self.platforms),
            "source": self.source,
            "sources": list(self.sources),
            "heuristic": self.heuristic,
        }


@dataclass(frozen=True, slots=True)
class ChartInfo:
    """What a chart says about itself and the images it references."""

    name: str
    version: str
    app_version: str | None
    platforms: tuple[str, ...]  # from our platform-guard.io/platforms annotation, normalised; else ()
    images: tuple[ChartImage, ...]  # sorted by reference
    subcharts: tuple[str, ...]  # bundled sub-charts by the name values address them with; nested as "a/b"
    unresolved: tuple[str, ...] = ()  # image-like values that are not references: "path: value"; at most 100

    def as_dict(self) -> dict[str, Any]:
        """The chart as a JSON-ready dict."""
        return {
            "name": self.name,
            "version": self.version,
            "app_version": self.app_version,
            "platforms": list(self.platforms),
            "subcharts": list(self.subcharts),
            "images": [image.as_dict() for image in self.images],
            "unresolved": list(self.unresolved),
        }


# --- public entry points ---------------------------------------------------------------------------------


def read_chart_archive(data: bytes, *, config: Mapping[str, Any] | None = None) -> ChartInfo:
    """Read a chart archive (`.tgz` bytes) and list its images; pure, nothing touches the disk.

    `config` is the chart's OCI config blob (Chart.yaml as JSON) when the chart came from a registry: its
    name and version must agree with the archive's Chart.yaml, or the chart is refused.
    """
    if len(data) > MAX_CHART_ARCHIVE_BYTES:
        raise ChartError(f"{_TOP_ARCHIVE_LABEL}: {len(data)} bytes is over the {MAX_CHART_ARCHIVE_BYTES} byte limit")
    budget = _Budget()
    chart = _load_archive(data, label=_TOP_ARCHIVE_LABEL, location="", depth=0, budget=budget)
    if config is not None:
        _check_config(config, chart)
    collector = _Collector(budget)
    subcharts: list[str] = []
    _discover(chart, chart.values, collector, subcharts, budget)
    return ChartInfo(
        name=chart.name,
        version=chart.version,
        app_version=chart.app_version,
        platforms=_platforms_annotation(chart),
        images=collector.images(),
        subcharts=tuple(subcharts),
        unresolved=tuple(collector.unresolved),
    )


def read_chart_file(path: str | os.PathLike[str]) -> ChartInfo:
    """Read a local chart archive (`helm package` output); ChartError when it is missing, too big or refused."""
    location = Path(path)
    try:
        with location.open("rb") as stream:
            data = stream.read(MAX_CHART_ARCHIVE_BYTES + 1)
    except OSError as error:
        raise ChartError(f"{location}: cannot read the chart archive ({error.strerror or error})") from None
    if len(data) > MAX_CHART_ARCHIVE_BYTES:
        raise ChartError(f"{location}: more than the {MAX_CHART_ARCHIVE_BYTES} bytes a chart archive may have")
    try:
        return read_chart_archive(data)
    except ChartError as error:
        raise ChartError(f"{location}: {error}") from None


def read_chart_from_registry(registry: Registry, repository: str, reference: str) -> ChartInfo:
    """Fetch a chart pushed as an OCI artifact (`helm push`) and read it with `read_chart_archive`.

    ChartError when the manifest is not a Helm chart, or its config or chart layer is refused;
    RegistryError (from the registry) when something cannot be fetched.
    """
    name = f"{registry.host}/{repository}{'@' if ':' in reference else ':'}{reference}"
    fetched = registry.get_manifest(repository, reference)
    try:
        manifest = parse_manifest(fetched.raw, fetched.media_type)
    except ManifestError as error:
        raise ChartError(f"{name}: {error}") from None
    if not isinstance(manifest, ImageManifest) or manifest.config.media_type != HELM_CONFIG:
        what = "an index" if not isinstance(manifest, ImageManifest) else f"config {manifest.config.media_type!r}"
        raise ChartError(f"{name}: not a Helm chart ({what}; a chart has config {HELM_CONFIG!r})")
    layers = [layer for layer in manifest.layers if layer.media_type == HELM_CHART_LAYER]
    if len(layers) != 1:
        raise ChartError(f"{name}: expected one {HELM_CHART_LAYER} layer, found {len(layers)}")
    layer = layers[0]
    if layer.size > MAX_CHART_ARCHIVE_BYTES:
        raise ChartError(f"{name}: chart layer of {layer.size} bytes is over the {MAX_CHART_ARCHIVE_BYTES} byte limit")
    if manifest.config.size > MAX_CONFIG_BYTES:
        raise ChartError(f"{name}: config of {manifest.config.size} bytes is over the {MAX_CONFIG_BYTES} byte limit")
    try:
        config_raw = registry.get_blob(repository, manifest.config.digest, max_bytes=MAX_CONFIG_BYTES)
        data = registry.get_blob(repository, layer.digest, max_bytes=MAX_CHART_ARCHIVE_BYTES)
    except TooLarge as error:  # the descriptor understated the size: our limit, so bad input rather than a fault
        raise ChartError(f"{name}: {error}") from None
    try:
        config = json.loads(config_raw)
    except (ValueError, RecursionError):
        raise ChartError(f"{name}: the chart config {manifest.config.digest} is not valid JSON") from None
    if not isinstance(config, dict):
        raise ChartError(f"{name}: the chart config {manifest.config.digest} is not a JSON object")
    try:
        return read_chart_archive(data, config=config)
    except ChartError as error:
        raise ChartError(f"{name}: {error}") from None


def format_chart_table(info: ChartInfo) -> str:
    """The chart in a heading line, its images as a fixed-width table, then its sub-charts and unresolved values."""
    heading = f"chart {info.name} {info.version}" + (f" (app {info.app_version})" if info.app_version else "")
    heading += f"  platforms: {', '.join(info.platforms) or '— (no platform-guard.io/platforms annotation)'}"
    lines = [heading]
    if info.images:
        # FOUND IN goes last: it is the one column without a bounded width.
        rows = [("REFERENCE", "PLATFORMS", "HEURISTIC", "FOUND IN")]
        rows += [
            (image.reference, ",".join(image.platforms) or "—", "yes" if image.heuristic else "no",
             ", ".join(image.sources))
            for image in info.images
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        lines += ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3] for row in rows]
    else:
        lines.append("no images found")
    if info.subcharts:
        lines.append(f"sub-charts: {', '.join(info.subcharts)}")
    lines += [f"not a reference (templates are not rendered): {item}" for item in info.unresolved]
    return "\n".join(lines)


# --- reading archives ------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Budget:
    """What one chart, with all its nested archives and values, may still use."""

    entries_left: int = MAX_CHART_ENTRIES
    bytes_left: int = MAX_CHART_UNPACKED_BYTES
    nodes_left: int = MAX_VALUES_NODES

    def take_entry(self, label: str, name: str) -> None:
        self.entries_left -= 1
        if self.entries_left < 0:
            raise ChartError(f"{label}: entry {name!r}: more than {MAX_CHART_ENTRIES} entries in the chart")

    def take_node(self, where: str) -> None:
        self.nodes_left -= 1
        if self.nodes_left < 0:
            raise ChartError(
                f"{where}: values take more than {MAX_VALUES_NODES} steps to walk (YAML aliases repeated on purpose?)"
            )


class _GuardedStream(io.RawIOBase):
    """Decompressed tar bytes for `tarfile`, charged to the chart's budget and to the current read window.

    The window bounds what tarfile may pull for one step (the headers before an entry, or an entry's data):
    tarfile reads pax and GNU long-name headers whole, so without it one header could take the whole budget.
    """

    def __init__(self, source: gzip.GzipFile, budget: _Budget, label: str) -> None:
        super().__init__()
        self._source = source
        self._budget = budget
        self._label = label
        self._window_used = 0
        self._window_limit = 0
        self._refusal = ""

    def readable(self) -> bool:
        return True

    def allow(self, size: int, refusal: str) -> None:
        """Let the next step pull `size` bytes (plus tarfile's read-ahead); past that, refuse with `refusal`."""
        self._window_used = 0
        self._window_limit = size + _READ_AHEAD
        self._refusal = refusal

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._source.read(len(buffer))
        except (OSError, EOFError, zlib.error) as error:  # BadGzipFile is an OSError; EOFError: truncated
            raise ChartError(f"{self._label}: broken gzip data ({error})") from None
        size = len(data)
        self._window_used += size
        self._budget.bytes_left -= size
        if self._budget.bytes_left < 0:
            raise ChartError(f"{self._label}: the chart unpacks to more than {MAX_CHART_UNPACKED_BYTES} bytes")
        if self._window_used > self._window_limit:
            raise ChartError(f"{self._label}: {self._refusal}")
        buffer[:size] = data
        return size


def _padded(size: int) -> int:
    return -(-size // _TAR_BLOCK) * _TAR_BLOCK


def _read_wanted_files(data: bytes, label: str, budget: _Budget) -> dict[str, bytes]:
    """The files of one archive that describe charts, by path inside the chart directory; every entry checked."""
    if not data.startswith(_GZIP_MAGIC):
        raise ChartError(f"{label}: not a gzip archive (a chart is a .tgz)")
    stream = _GuardedStream(gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb"), budget, label)
    wanted: dict[str, bytes] = {}
    seen: set[str] = set()
    top: str | None = None
    too_long_headers = f"tar extension headers (pax, GNU long names) over {MAX_TAR_HEADER_BYTES} bytes"
    stream.allow(MAX_TAR_HEADER_BYTES, f"{too_long_headers} before the first entry")
    try:
        with tarfile.open(fileobj=stream, mode="r|") as archive:
            member = archive.next()
            while member is not None:
                budget.take_entry(label, member.name)
                relative, top = _checked_path(member, label, top)
                if member.size > MAX_CHART_FILE_BYTES:
                    raise ChartError(
                        f"{label}: entry {member.name!r}: {member.size} bytes is over the {MAX_CHART_FILE_BYTES} "
                        "byte limit for one file"
                    )
                if member.size > budget.bytes_left:
                    raise ChartError(
                        f"{label}: entry {member.name!r}: the chart unpacks to more than "
                        f"{MAX_CHART_UNPACKED_BYTES} bytes"
                    )
                if member.isfile() and relative is not None:
                    if relative in seen:
                        raise ChartError(f"{label}: entry {member.name!r} appears twice")
                    seen.add(relative)
                    if _WANTED_FILE.fullmatch(relative):
                        stream.allow(member.size, f"entry {member.name!r}: more data than its header says")
                        content = archive.extractfile(member)
                        assert content is not None  # a regular file always has content
                        wanted[relative] = content.read()
                stream.allow(
                    _padded(member.size) + MAX_TAR_HEADER_BYTES, f"{too_long_headers} after entry {member.name!r}"
                )
                member = archive.next()
    except tarfile.TarError as error:
        raise ChartError(f"{label}: not a readable tar archive ({error})") from None
    except RecursionError:  # tarfile follows chained extension headers recursively
        raise ChartError(f"{label}: tar extension headers chained too deeply") from None
    if top is None:
        raise ChartError(f"{label}: no chart directory in the archive")
    return wanted


def _checked_path(member: tarfile.TarInfo, label: str, top: str | None) -> tuple[str | None, str | None]:
    """(path inside the chart directory, or None for a directory entry; the chart directory); refuses the rest.

    `top` is the chart directory the entries so far were in (None before the first one that names it).
    """
    name = member.name

    def refuse(problem: str) -> ChartError:
        return ChartError(f"{label}: entry {name!r}: {problem}")

    if not name:
        raise refuse("empty name")
    if "\\" in name:
        raise refuse("backslash in the path")
    if name.startswith("/") or _DRIVE_LETTER.match(name):
        raise refuse("absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise refuse("'..' in the path")
    if member.issym():
        raise refuse(f"symbolic link (to {member.linkname!r})")
    if member.islnk():
        raise refuse(f"hard link (to {member.linkname!r})")
    if member.ischr() or member.isblk():
        raise refuse("device file")
    if member.isfifo():
        raise refuse("fifo")
    if member.issparse():
        raise refuse("sparse file")
    if not (member.isfile() or member.isdir()):
        raise refuse(f"unsupported entry type {member.type!r}")
    if not parts:
        if member.isdir():  # "./", as `tar -C dir .` writes it
            return None, top
        raise refuse("empty name")
    if top is None:
        if len(parts) == 1 and member.isfile():
            raise refuse("a file outside any chart directory (a chart archive holds one top-level directory)")
        top = parts[0]
    elif parts[0] != top:
        raise refuse(f"outside the chart directory {top!r}")
    if len(parts) == 1:
        if member.isfile():
            raise refuse(f"a file where the chart directory {top!r} should be")
        return None, top
    return "/".join(parts[1:]), top


# --- charts from files -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Chart:
    """One chart of the archive (the top one or a bundled sub-chart), its YAML already read."""

    location: str  # prefix for source paths: "", "charts/redis/", "charts/redis-1.0.tgz!/"
    name: str
    version: str
    app_version: str | None
    annotations: Mapping[str, object]
    dependency_keys: Mapping[str, tuple[str, ...]]  # sub-chart name → keys its values sit under (name or aliases)
    values: Mapping[Any, Any]
    subcharts: tuple[_Chart, ...] = field(default=())


def _load_archive(data: bytes, *, label: str, location: str, depth: int, budget: _Budget) -> _Chart:
    files = _read_wanted_files(data, label, budget)
    return _chart_from_files(files, base="", location=location, label=label, depth=depth, budget=budget)


def _chart_from_files(
    files: Mapping[str, bytes], *, base: str, location: str, label: str, depth: int, budget: _Budget
) -> _Chart:
    chart_file = f"{location}{base}Chart.yaml"
    if f"{base}Chart.yaml" not in files:
        where = f"{location}{base}".rstrip("/") if location or base else label
        raise ChartError(f"{where}: no Chart.yaml in the chart directory")
    metadata = _load_yaml(files[f"{base}Chart.yaml"], chart_file)
    if not isinstance(metadata, dict):
        raise ChartError(f"{chart_file}: expected a mapping, got {_kind(metadata)}")
    values_file = f"{location}{base}values.yaml"
    values = _load_yaml(files[f"{base}values.yaml"], values_file) if f"{base}values.yaml" in files else None
    if values is None:
        values = {}  # an empty values.yaml is fine for Helm
    if not isinstance(values, dict):
        raise ChartError(f"{values_file}: expected a mapping, got {_kind(values)}")

    subcharts: list[_Chart] = []
    prefix = f"{base}charts/"
    directories = sorted({path[len(prefix):].split("/", 1)[0] for path in files
                          if path.startswith(prefix) and "/" in path[len(prefix):]})
    archives = sorted(path for path in files if path.startswith(prefix) and "/" not in path[len(prefix):])
    for directory in directories:
        subcharts.append(_chart_from_files(
            files, base=f"{prefix}{directory}/", location=location, label=label, depth=depth, budget=budget
        ))
    for path in archives:
        nested_label = f"{location}{path}"
        if depth + 1 > MAX_NESTED_ARCHIVE_DEPTH:
            raise ChartError(f"{nested_label}: sub-chart archives nest deeper than {MAX_NESTED_ARCHIVE_DEPTH} levels")
        subcharts.append(_load_archive(
            files[path], label=nested_label, location=f"{nested_label}!/", depth=depth + 1, budget=budget
        ))
    return _Chart(
        location=f"{location}{base}",
        name=_required_text(metadata, "name", chart_file),
        version=_required_text(metadata, "version", chart_file),
        app_version=_optional_text(metadata, "appVersion", chart_file),
        annotations=_annotations(metadata, chart_file),
        dependency_keys=_dependency_keys(metadata, chart_file),
        values=values,
        subcharts=tuple(subcharts),
    )


def _load_yaml(raw: bytes, where: str) -> object:
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise ChartError(f"{where}: not valid YAML ({' '.join(str(error).split())})") from None
    except RecursionError:
        raise ChartError(f"{where}: YAML nests too deeply") from None


def _kind(value: object) -> str:
    return "nothing" if value is None else type(value).__name__


def _scalar_text(value: object) -> str | None:
    """A YAML scalar as text (numbers too: Helm users write `version: 1.0`); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _required_text(metadata: Mapping[str, object], key: str, where: str) -> str:
    text = _scalar_text(metadata.get(key))
    if not text:
        raise ChartError(f"{where}: `{key}` must be a non-empty string, got {metadata.get(key)!r}")
    return text


def _optional_text(metadata: Mapping[str, object], key: str, where: str) -> str | None:
    value = metadata.get(key)
    if value is None or value == "":
        return None
    text = _scalar_text(value)
    if text is None:
        raise ChartError(f"{where}: `{key}` must be a string, got {_kind(value)}")
    return text


def _annotations(metadata: Mapping[str, object], where: str) -> Mapping[str, object]:
    annotations = metadata.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise ChartError(f"{where}: `annotations` must be a mapping, got {_kind(annotations)}")
    return annotations


def _dependency_keys(metadata: Mapping[str, object], where: str) -> dict[str, tuple[str, ...]]:
    dependencies = metadata.get("dependencies") or []
    if not isinstance(dependencies, list):
        raise ChartError(f"{where}: `dependencies` must be a list, got {_kind(dependencies)}")
    keys: dict[str, list[str]] = {}
    for number, dependency in enumerate(dependencies):
        if not isinstance(dependency, dict) or not isinstance(dependency.get("name"), str):
            raise ChartError(f"{where}: dependencies[{number}] must be a mapping with a `name` string")
        alias = dependency.get("alias")
        key = alias if isinstance(alias, str) and alias else dependency["name"]
        keys.setdefault(dependency["name"], []).append(key)
    return {name: tuple(dict.fromkeys(aliases)) for name, aliases in keys.items()}


def _check_config(config: Mapping[str, Any], chart: _Chart) -> None:
    if not isinstance(config, Mapping):
        raise ChartError(f"chart config: expected a JSON object, got {_kind(config)}")
    for key, archived in (("name", chart.name), ("version", chart.version)):
        declared = _scalar_text(config.get(key))
        if declared != archived:
            raise ChartError(
                f"chart config: {key} {declared!r} disagrees with {key} {archived!r} in the archive's Chart.yaml"
            )


# --- annotations -----------------------------------------------------------------------------------------


def _annotation_text(chart: _Chart, key: str) -> str | None:
    value = chart.annotations.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ChartError(f"{chart.location}Chart.yaml: annotation {key!r} must be a string, got {_kind(value)}")
    return value


def _platforms_annotation(chart: _Chart) -> tuple[str, ...]:
    text = _annotation_text(chart, PLATFORMS_ANNOTATION)
    if text is None:
        return ()
    where = f"{chart.location}Chart.yaml: annotation {PLATFORMS_ANNOTATION!r}"
    platforms: list[str] = []
    for item in text.split(","):
        if not item.strip():
            raise ChartError(f"{where}: {text!r} has an empty entry (expected e.g. 'linux/amd64, linux/arm64')")
        try:
            platforms.append(str(parse_platform(item.strip())))
        except PlatformError as error:
            raise ChartError(f"{where}: {error}") from None
    return tuple(dict.fromkeys(platforms))


# --- discovering images ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Found:
    sources: dict[str, None]  # an ordered set
    platforms: list[str]
    declared: bool


@dataclass(frozen=True, slots=True)
class _ValuesScope:
    """How to read image values of one chart: where they are, and the chart's defaults."""

    file: str  # "values.yaml", "charts/redis/values.yaml"
    app_version: str | None
    global_registry: str | None
    own_values: Mapping[Any, Any]  # the chart's values.yaml, to tell whether a key came from it
    parent_file: str | None  # where a key the chart does not have came from
    key_in_parent: str


class _Collector:
    """Images found so far, merged by normalised reference, and image-like values that were not references."""

    def __init__(self, budget: _Budget) -> None:
        self._budget = budget
        self._found: dict[Reference, _Found] = {}
        self._parsed: dict[str, Reference | None] = {}  # values repeat images (YAML aliases, sub-chart copies)
        self.unresolved: list[str] = []

    def add(self, reference: Reference, source: str, *, platforms: Sequence[str] = (), declared: bool) -> None:
        found = self._found.setdefault(reference, _Found({}, [], declared))
        if len(found.sources) < MAX_SOURCES_PER_IMAGE:
            found.sources[source] = None
        found.platforms.extend(platform for platform in platforms if platform not in found.platforms)
        found.declared = found.declared or declared

    def has_all_sources(self, reference: Reference) -> bool:
        """True when `reference` already lists as many places as it may (so there is no need to name another)."""
        found = self._found.get(reference)
        return found is not None and len(found.sources) >= MAX_SOURCES_PER_IMAGE

    def images(self) -> tuple[ChartImage, ...]:
        return tuple(
            ChartImage(
                reference=str(reference),
                registry=reference.registry,
                repository=reference.repository,
                tag=reference.tag,
                digest=reference.digest,
                platforms=tuple(found.platforms),
                sources=tuple(found.sources),
                heuristic=not found.declared,
            )
            for reference, found in sorted(self._found.items(), key=lambda item: str(item[0]))
        )

    # -- the artifacthub.io/images annotation --

    def annotation_images(self, chart: _Chart) -> None:
        text = _annotation_text(chart, ARTIFACTHUB_IMAGES_ANNOTATION)
        if text is None:
            return
        where = f"{chart.location}Chart.yaml:{ARTIFACTHUB_IMAGES_ANNOTATION}"
        entries = _load_yaml(text.encode(), where)
        if entries is None:
            return
        if not isinstance(entries, list):
            raise ChartError(f"{where}: expected a YAML list of {{name, image, platforms}}, got {_kind(entries)}")
        for number, entry in enumerate(entries):
            self._budget.take_node(where)
            source = f"{where}[{number}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("image"), str):
                raise ChartError(f"{source}: expected a mapping with an `image` string")
            try:
                reference = parse_reference(entry["image"].strip())
            except ReferenceError as error:
                raise ChartError(f"{source}: {error}") from None
            raw_platforms = entry.get("platforms") or []
            if not isinstance(raw_platforms, list) or not all(isinstance(item, str) for item in raw_platforms):
                raise ChartError(f"{source}.platforms: expected a list of strings such as 'linux/amd64'")
            try:
                platforms = [str(parse_platform(item)) for item in raw_platforms]
            except PlatformError as error:
                raise ChartError(f"{source}.platforms: {error}") from None
            self.add(reference, source, platforms=platforms, declared=True)

    # -- values conventions --

    def values_images(self, values: Mapping[Any, Any], scope: _ValuesScope, *, skip: frozenset[str]) -> None:
        for key, value in values.items():
            if key in skip:
                continue
            self._walk_entry(key, value, (), scope, depth=1)

    def _walk(self, node: object, path: tuple[str | int, ...], scope: _ValuesScope, depth: int) -> None:
        if depth > MAX_VALUES_DEPTH:
            raise ChartError(f"{scope.file}:{_render(path)}: values nest deeper than {MAX_VALUES_DEPTH} levels")
        if isinstance(node, dict):
            for key, value in node.items():
                self._walk_entry(key, value, path, scope, depth)
        elif isinstance(node, list):
            for number, item in enumerate(node):
                self._budget.take_node(scope.file)
                self._walk(item, (*path, number), scope, depth + 1)

    def _walk_entry(
        self, key: object, value: object, path: tuple[str | int, ...], scope: _ValuesScope, depth: int
    ) -> None:
        self._budget.take_node(scope.file)
        here = (*path, str(key))
        if isinstance(key, str) and _is_image_key(key):
            self._candidate(value, here, scope, depth + 1)
        elif isinstance(key, str) and _is_images_key(key) and isinstance(value, dict | list):
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for item_key, item in items:
                self._budget.take_node(scope.file)
                item_path = (*here, item_key if isinstance(item_key, int) else str(item_key))
                self._candidate(item, item_path, scope, depth + 1, in_map=True)
        else:
            self._walk(value, here, scope, depth + 1)

    def _candidate(
        self, value: object, path: tuple[str | int, ...], scope: _ValuesScope, depth: int, *, in_map: bool = False
    ) -> None:
        """A value found where an image is expected: a reference, an image map, or something to look into.

        `in_map`: an entry of an `images` map or list, where a string counts only if it looks like a reference
        (has "/", ":" or "@"), so that neighbours such as `pullPolicy: Always` are not taken for images.
        """
        if depth > MAX_VALUES_DEPTH:
            raise ChartError(f"{scope.file}:{_render(path)}: values nest deeper than {MAX_VALUES_DEPTH} levels")
        if isinstance(value, str):
            text = value.strip()
            if text and (not in_map or any(mark in text for mark in "/:@")):
                self._resolve(_string_image(text, scope.global_registry), value, path, scope)
        elif isinstance(value, dict) and _image_map_repository(value) is not None:
            try:
                text = _map_image(value, scope)
            except _NotAReference:
                self._unresolved(value, path, scope)
            else:
                if text is not None:  # None: an optional image left empty on purpose
                    self._resolve(text, value, path, scope)
        elif isinstance(value, list):
            for number, item in enumerate(value):
                self._budget.take_node(scope.file)
                self._candidate(item, (*path, number), scope, depth + 1, in_map=in_map)
        elif isinstance(value, dict):
            self._walk(value, path, scope, depth)

    def _resolve(self, text: str, value: object, path: tuple[str | int, ...], scope: _ValuesScope) -> None:
        if text not in self._parsed:
            try:
                self._parsed[text] = None if "{{" in text else parse_reference(text)  # "{{": a template
            except ReferenceError:
                self._parsed[text] = None
        reference = self._parsed[text]
        if reference is None:
            self._unresolved(value, path, scope)
        elif not self.has_all_sources(reference):
            self.add(reference, _source_path(path, scope), declared=False)

    def _unresolved(self, value: object, path: tuple[str | int, ...], scope: _ValuesScope) -> None:
        if len(self.unresolved) >= MAX_UNRESOLVED:
            return
        shown = _SHORT_REPR.repr(value)  # bounded: a value may be an alias bomb
        if len(shown) > _MAX_SHOWN_VALUE:
            shown = shown[: _MAX_SHOWN_VALUE - 3] + "..."
        self.unresolved.append(f"{_source_path(path, scope)}: {shown}")


class _NotAReference(Exception):
    """An image map whose fields cannot make a reference (a list as the tag, a number as the repository, ...)."""


def _is_image_key(key: str) -> bool:
    return key == "image" or key.endswith(("Image", "_image", "-image"))


def _is_images_key(key: str) -> bool:
    return key == "images" or key.endswith(("Images", "_images", "-images"))


def _image_map_repository(value: Mapping[Any, Any]) -> object | None:
    """The repository of an image map (`repository`, else `name` next to a tag, registry or digest), or None."""
    if "repository" in value:
        return value["repository"]
    if "name" in value and ("tag" in value or "registry" in value or "digest" in value):
        return value["name"]
    return None


def _has_registry(text: str) -> bool:
    first, slash, _ = text.partition("/")
    return bool(slash) and ("." in first or ":" in first or first == "localhost")


def _string_image(text: str, global_registry: str | None) -> str:
    if global_registry and not _has_registry(text):
        return f"{global_registry.rstrip('/')}/{text}"
    return text


def _map_image(value: Mapping[Any, Any], scope: _ValuesScope) -> str | None:
    """`registry/repository[:tag][@digest]` of an image map; None when its repository is empty."""
    repository = _image_map_repository(value)
    if repository is None or repository == "":
        return None
    registry = scope.global_registry or value.get("registry") or ""
    digest = value.get("digest") or ""
    tag = value.get("tag")
    tag_text = None if tag is None or tag == "" else _scalar_text(tag)
    if not isinstance(repository, str) or not isinstance(registry, str) or not isinstance(digest, str):
        raise _NotAReference(repository)
    if tag not in (None, "") and tag_text is None:
        raise _NotAReference(tag)
    if tag_text is None and not digest:
        tag_text = scope.app_version or DEFAULT_TAG
    text = f"{registry.strip().strip('/')}/{repository.strip()}" if registry.strip() else repository.strip()
    if tag_text:
        text += f":{tag_text.strip()}"
    if digest:
        text += f"@{digest.strip()}"
    return text


def _render(path: Sequence[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _has_path(values: object, path: Sequence[str | int]) -> bool:
    node = values
    for part in path:
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                return False
            node = node[part]
        else:
            if not isinstance(node, dict):
                return False
            matching = [key for key in node if str(key) == part]
            if not matching:
                return False
            node = node[matching[0]]
    return True


def _source_path(path: Sequence[str | int], scope: _ValuesScope) -> str:
    if scope.parent_file is not None and not _has_path(scope.own_values, path):
        return f"{scope.parent_file}:{_render((scope.key_in_parent, *path))}"
    return f"{scope.file}:{_render(path)}"


def _global_registry(values: Mapping[Any, Any]) -> str | None:
    settings = values.get("global")
    if not isinstance(settings, dict):
        return None
    candidates = [settings.get("imageRegistry")]
    image = settings.get("image")
    if isinstance(image, dict):
        candidates.append(image.get("registry"))
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip() and "{{" not in candidate:
            return candidate.strip()
    return None


def _coalesce(own: Mapping[Any, Any], override: object, budget: _Budget, where: str, depth: int = 1) -> dict[Any, Any]:
    """Helm's merge: `override` (the parent's section) wins key by key over `own`; a null deletes the key."""
    merged = dict(own)
    if not isinstance(override, dict):
        return merged
    if depth > MAX_VALUES_DEPTH:
        raise ChartError(f"{where}: values nest deeper than {MAX_VALUES_DEPTH} levels")
    for key, value in override.items():
        budget.take_node(where)
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _coalesce(merged[key], value, budget, where, depth + 1)
        else:
            merged[key] = value
    return merged


def _discover(
    chart: _Chart,
    values: Mapping[Any, Any],
    collector: _Collector,
    subcharts: list[str],
    budget: _Budget,
    *,
    parent: _Chart | None = None,
    key_in_parent: str = "",
    name_prefix: str = "",
) -> None:
    """Collect the images of `chart` (whose effective values are `values`) and of its sub-charts, depth first."""
    collector.annotation_images(chart)
    keyed = [(child, key) for child in chart.subcharts for key in chart.dependency_keys.get(child.name, (child.name,))]
    scope = _ValuesScope(
        file=f"{chart.location}values.yaml",
        app_version=chart.app_version,
        global_registry=_global_registry(values),
        own_values=chart.values,
        parent_file=f"{parent.location}values.yaml" if parent is not None else None,
        key_in_parent=key_in_parent,
    )
    # A sub-chart's section is read with the sub-chart; globals are read with the chart that set them.
    skip = frozenset(key for _, key in keyed) | ({"global"} if parent is not None else frozenset())
    collector.values_images(values, scope, skip=skip)
    parent_globals = values.get("global")
    for child, key in keyed:
        where = f"{chart.location}values.yaml:{key}"
        child_values = _coalesce(child.values, values.get(key), budget, where)
        if isinstance(parent_globals, dict):
            own_globals = child_values.get("global")
            child_values["global"] = _coalesce(own_globals if isinstance(own_globals, dict) else {},
                                               parent_globals, budget, where)
        subcharts.append(f"{name_prefix}{key}")
        _discover(child, child_values, collector, subcharts, budget, parent=chart, key_in_parent=key,
                  name_prefix=f"{name_prefix}{key}/")
