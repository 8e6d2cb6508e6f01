"""The container images a chart references: declared in Chart.yaml annotations, or found in values by convention.

    images, subcharts, unresolved = discover_images(load_chart(tgz_bytes, ...), Budget())
    for image in images:                 # ChartImage, deduplicated, sorted by reference
        image.reference, image.platforms, image.sources, image.heuristic

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
seen, and image-like values that are templates or not references end up in `unresolved`.

Limits: values that nest deeper than `MAX_VALUES_DEPTH` or take more than `MAX_VALUES_NODES` steps to walk
(YAML aliases repeated on purpose) refuse the chart with a `ChartError`; an image lists at most
`MAX_SOURCES_PER_IMAGE` places, and at most `MAX_UNRESOLVED` values are listed as unresolved.
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from importer.core.charts.limits import MAX_SOURCES_PER_IMAGE, MAX_UNRESOLVED, MAX_VALUES_DEPTH, Budget
from importer.core.charts.model import ARTIFACTHUB_IMAGES_ANNOTATION, ChartError, ChartImage
from importer.core.charts.tree import Chart, annotation_text, kind_of, load_yaml, scalar_text
from importer.core.platforms import PlatformError
from importer.core.platforms import parse as parse_platform
from importer.core.reference import DEFAULT_TAG, Reference, ReferenceError, names_registry, parse_reference

__all__ = ["discover_images"]

_MAX_SHOWN_VALUE = 80
_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = _MAX_SHOWN_VALUE


def discover_images(chart: Chart, budget: Budget) -> tuple[tuple[ChartImage, ...], tuple[str, ...], tuple[str, ...]]:
    """The images of `chart` and its sub-charts; the sub-charts, by the names values address them with (nested as
    "a/b"); and the image-like values that are not references, as "path: value"."""
    collector = _Collector(budget)
    subcharts: list[str] = []
    _discover(chart, chart.values, collector, subcharts, budget)
    return collector.images(), tuple(subcharts), tuple(collector.unresolved)


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

    def __init__(self, budget: Budget) -> None:
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

    def annotation_images(self, chart: Chart) -> None:
        text = annotation_text(chart, ARTIFACTHUB_IMAGES_ANNOTATION)
        if text is None:
            return
        where = f"{chart.location}Chart.yaml:{ARTIFACTHUB_IMAGES_ANNOTATION}"
        entries = load_yaml(text.encode(), where)
        if entries is None:
            return
        if not isinstance(entries, list):
            raise ChartError(f"{where}: expected a YAML list of {{name, image, platforms}}, got {kind_of(entries)}")
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


def _string_image(text: str, global_registry: str | None) -> str:
    if global_registry and not names_registry(text):
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
    tag_text = None if tag is None or tag == "" else scalar_text(tag)
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


def _coalesce(own: Mapping[Any, Any], override: object, budget: Budget, where: str, depth: int = 1) -> dict[Any, Any]:
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
    chart: Chart,
    values: Mapping[Any, Any],
    collector: _Collector,
    subcharts: list[str],
    budget: Budget,
    *,
    parent: Chart | None = None,
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

