"""A chart archive read into a tree of charts: each chart's Chart.yaml and values.yaml, and its sub-charts.

    chart = load_chart(tgz_bytes, label="chart archive", location="", depth=0, budget=Budget())
    chart.name, chart.version, chart.app_version, chart.values, chart.subcharts
    check_config(config, chart)        # a registry's config blob must agree with Chart.yaml on name and version
    platforms_annotation(chart)        # ("linux/amd64", "linux/arm64")

Sub-charts are `charts/<sub>/` directories and `charts/*.tgz` archives, read the same way, at most
`MAX_SUBCHART_DEPTH` levels below the top chart and at most `MAX_NESTED_ARCHIVE_DEPTH` archives deep; each level
looks only at the files below it, so reading the tree costs the size of the paths times the depth at most. YAML is
read with `importer.core.yaml_input.load_outside_yaml` only (safe_load within bounds: aliases counted as copies, no
recursive aliases, numbers of at most 1000 characters); a Chart.yaml or values file that is not a mapping is
refused with a `ChartError` naming it. Our own annotation `platform-guard.io/platforms: "linux/amd64, linux/arm64"`
on the top chart says which platforms the chart needs; an unreadable one is a ChartError naming it. Messages quote
what the chart holds only as a short escaped excerpt (`importer.core.excerpts`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from importer.core.charts.archive import read_archive_files
from importer.core.charts.limits import MAX_NESTED_ARCHIVE_DEPTH, MAX_SUBCHART_DEPTH, Budget
from importer.core.charts.model import PLATFORMS_ANNOTATION, ChartError
from importer.core.excerpts import excerpt, excerpt_text
from importer.core.platforms import PlatformError
from importer.core.platforms import parse as parse_platform
from importer.core.yaml_input import YamlBoundError, describe_yaml_error, load_outside_yaml

__all__ = [
    "Chart",
    "annotation_text",
    "check_config",
    "kind_of",
    "load_chart",
    "load_yaml",
    "platforms_annotation",
    "scalar_text",
]


@dataclass(frozen=True, slots=True)
class Chart:
    """One chart of the archive (the top one or a bundled sub-chart), its YAML already read."""

    location: str  # prefix for source paths: "", "charts/redis/", "charts/redis-1.0.tgz!/"
    name: str
    version: str
    app_version: str | None
    annotations: Mapping[str, object]
    dependency_keys: Mapping[str, tuple[str, ...]]  # sub-chart name → keys its values sit under (name or aliases)
    values: Mapping[Any, Any]
    subcharts: tuple[Chart, ...] = field(default=())


def load_chart(data: bytes, *, label: str, location: str, depth: int, budget: Budget, level: int = 0) -> Chart:
    """Read one archive (the top chart, or a sub-chart archive `depth` archives and `level` charts down) into its
    chart tree."""
    files = read_archive_files(data, label, budget)
    return _chart_from_files(
        files, list(files), base="", location=location, label=label, depth=depth, level=level, budget=budget
    )


def _chart_from_files(
    files: Mapping[str, bytes], paths: list[str], *, base: str, location: str, label: str, depth: int, level: int,
    budget: Budget,
) -> Chart:
    """The chart in the directory `base` of an archive whose files are `files`; `paths` are those under `base`.

    Each level sorts out only the paths under it, without copying them, so the whole tree costs the paths' length
    times the depth at most.
    """
    chart_file = f"{location}{base}Chart.yaml"
    if f"{base}Chart.yaml" not in files:
        where = f"{location}{base}".rstrip("/") if location or base else label
        raise ChartError(f"{where}: no Chart.yaml in the chart directory")
    metadata = load_yaml(files[f"{base}Chart.yaml"], chart_file)
    if not isinstance(metadata, dict):
        raise ChartError(f"{chart_file}: expected a mapping, got {kind_of(metadata)}")
    values_file = f"{location}{base}values.yaml"
    values = load_yaml(files[f"{base}values.yaml"], values_file) if f"{base}values.yaml" in files else None
    if values is None:
        values = {}  # an empty values.yaml is fine for Helm
    if not isinstance(values, dict):
        raise ChartError(f"{values_file}: expected a mapping, got {kind_of(values)}")

    prefix = f"{base}charts/"
    directories: dict[str, list[str]] = {}
    archives: list[str] = []
    for path in paths:
        if not path.startswith(prefix):
            continue
        slash = path.find("/", len(prefix))
        if slash < 0:
            archives.append(path)
        else:
            directories.setdefault(path[len(prefix):slash], []).append(path)
    if (directories or archives) and level + 1 > MAX_SUBCHART_DEPTH:
        raise ChartError(f"{excerpt_text(location + prefix, 200)}: sub-charts nest deeper than {MAX_SUBCHART_DEPTH} "
                         "levels")
    subcharts: list[Chart] = []
    for directory in sorted(directories):
        subcharts.append(_chart_from_files(
            files, directories[directory], base=f"{prefix}{directory}/", location=location, label=label, depth=depth,
            level=level + 1, budget=budget,
        ))
    for path in sorted(archives):
        nested_label = f"{location}{path}"
        if depth + 1 > MAX_NESTED_ARCHIVE_DEPTH:
            raise ChartError(f"{nested_label}: sub-chart archives nest deeper than {MAX_NESTED_ARCHIVE_DEPTH} levels")
        subcharts.append(load_chart(
            files[path], label=nested_label, location=f"{nested_label}!/", depth=depth + 1, budget=budget,
            level=level + 1,
        ))
    return Chart(
        location=f"{location}{base}",
        name=_required_text(metadata, "name", chart_file),
        version=_required_text(metadata, "version", chart_file),
        app_version=_optional_text(metadata, "appVersion", chart_file),
        annotations=_annotations(metadata, chart_file),
        dependency_keys=_dependency_keys(metadata, chart_file),
        values=values,
        subcharts=tuple(subcharts),
    )


def load_yaml(raw: bytes, where: str) -> object:
    """The YAML document in `raw`, read within the bounds of `importer.core.yaml_input`; a ChartError naming `where`
    for text that is not YAML or is refused."""
    try:
        return load_outside_yaml(raw)
    except YamlBoundError as error:
        raise ChartError(f"{where}: {describe_yaml_error(error)}") from None
    except yaml.MarkedYAMLError as error:
        raise ChartError(f"{where}: not valid YAML: {describe_yaml_error(error)}") from None
    except yaml.YAMLError as error:
        raise ChartError(f"{where}: not valid YAML ({describe_yaml_error(error)})") from None
    except RecursionError:
        raise ChartError(f"{where}: YAML nests too deeply") from None


def kind_of(value: object) -> str:
    """What a YAML value is, for messages: "nothing", "list", "str", ..."""
    return "nothing" if value is None else type(value).__name__


def scalar_text(value: object) -> str | None:
    """A YAML scalar as text (numbers too: Helm users write `version: 1.0`); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _required_text(metadata: Mapping[str, object], key: str, where: str) -> str:
    text = scalar_text(metadata.get(key))
    if not text:
        raise ChartError(f"{where}: `{key}` must be a non-empty string, got {excerpt(metadata.get(key))}")
    return text


def _optional_text(metadata: Mapping[str, object], key: str, where: str) -> str | None:
    value = metadata.get(key)
    if value is None or value == "":
        return None
    text = scalar_text(value)
    if text is None:
        raise ChartError(f"{where}: `{key}` must be a string, got {kind_of(value)}")
    return text


def _annotations(metadata: Mapping[str, object], where: str) -> Mapping[str, object]:
    annotations = metadata.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise ChartError(f"{where}: `annotations` must be a mapping, got {kind_of(annotations)}")
    return annotations


def _dependency_keys(metadata: Mapping[str, object], where: str) -> dict[str, tuple[str, ...]]:
    dependencies = metadata.get("dependencies") or []
    if not isinstance(dependencies, list):
        raise ChartError(f"{where}: `dependencies` must be a list, got {kind_of(dependencies)}")
    keys: dict[str, list[str]] = {}
    for number, dependency in enumerate(dependencies):
        if not isinstance(dependency, dict) or not isinstance(dependency.get("name"), str):
            raise ChartError(f"{where}: dependencies[{number}] must be a mapping with a `name` string")
        alias = dependency.get("alias")
        key = alias if isinstance(alias, str) and alias else dependency["name"]
        keys.setdefault(dependency["name"], []).append(key)
    return {name: tuple(dict.fromkeys(aliases)) for name, aliases in keys.items()}


def check_config(config: Mapping[str, Any], chart: Chart) -> None:
    """Refuse a chart whose OCI config (Chart.yaml as JSON) disagrees with the archive on name or version."""
    if not isinstance(config, Mapping):
        raise ChartError(f"chart config: expected a JSON object, got {kind_of(config)}")
    for key, archived in (("name", chart.name), ("version", chart.version)):
        declared = scalar_text(config.get(key))
        if declared != archived:
            raise ChartError(
                f"chart config: {key} {excerpt(declared)} disagrees with {key} {excerpt(archived)} in the archive's "
                "Chart.yaml"
            )


# --- annotations -----------------------------------------------------------------------------------------


def annotation_text(chart: Chart, key: str) -> str | None:
    """The Chart.yaml annotation `key` (None when absent); ChartError when it is not a string."""
    value = chart.annotations.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ChartError(f"{chart.location}Chart.yaml: annotation {key!r} must be a string, got {kind_of(value)}")
    return value


def platforms_annotation(chart: Chart) -> tuple[str, ...]:
    """The platforms our annotation says the chart needs, normalised, each once; () without the annotation."""
    text = annotation_text(chart, PLATFORMS_ANNOTATION)
    if text is None:
        return ()
    where = f"{chart.location}Chart.yaml: annotation {PLATFORMS_ANNOTATION!r}"
    platforms: list[str] = []
    for item in text.split(","):
        if not item.strip():
            raise ChartError(f"{where}: {excerpt(text)} has an empty entry (expected e.g. 'linux/amd64, linux/arm64')")
        try:
            platforms.append(str(parse_platform(item.strip())))
        except PlatformError as error:
            raise ChartError(f"{where}: {excerpt_text(str(error))}") from None
    return tuple(dict.fromkeys(platforms))

