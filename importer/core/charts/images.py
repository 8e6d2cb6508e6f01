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
(YAML aliases repeated on purpose), or that instantiate more than `MAX_SUBCHART_INSTANCES` sub-charts (once per
name or alias, at every level) refuse the chart with a `ChartError`; an image lists at most `MAX_SOURCES_PER_IMAGE`
places, each a path of at most `MAX_SOURCE_PATH_CHARACTERS` (keys cut to `MAX_SOURCE_KEY_CHARACTERS`, unprintable
characters escaped), and at most `MAX_UNRESOLVED` values are listed as unresolved, each quoted as a short excerpt.
An image-like value of more than `MAX_IMAGE_REFERENCE_LENGTH` characters (with the global registry) is unresolved
without being built or parsed.

The work is linear in the values walked: whether a key of a sub-chart's effective values came from its own
values.yaml is looked up in an index of each mapping's keys built once (not by scanning the mapping per image), a
chart's annotation is read once however many times the chart is instantiated, and an image's platforms are an
ordered set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from importer.core.charts.limits import (
    MAX_IMAGE_REFERENCE_LENGTH,
    MAX_SOURCE_KEY_CHARACTERS,
    MAX_SOURCE_PATH_CHARACTERS,
    MAX_SOURCES_PER_IMAGE,
    MAX_UNRESOLVED,
    MAX_VALUES_DEPTH,
    Budget,
)
from importer.core.charts.model import ARTIFACTHUB_IMAGES_ANNOTATION, ChartError, ChartImage
from importer.core.charts.tree import Chart, annotation_text, kind_of, load_yaml, scalar_text
from importer.core.excerpts import excerpt, excerpt_text
from importer.core.platforms import PlatformError
from importer.core.platforms import parse as parse_platform
from importer.core.reference import DEFAULT_TAG, Reference, ReferenceError, names_registry, parse_reference

__all__ = ["discover_images"]

_MAX_SHOWN_VALUE = 80
_CUT = "..."


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
    platforms: dict[str, None]  # an ordered set
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
        self._keys_of: dict[int, dict[str, Any]] = {}  # id(mapping) -> its keys by their text, the first of each
        self._annotated: set[int] = set()  # id(chart) of the charts whose annotation was read
        self.unresolved: list[str] = []

    def add(self, reference: Reference, source: str, *, platforms: Sequence[str] = (), declared: bool) -> None:
        found = self._found.setdefault(reference, _Found({}, {}, declared))
        if len(found.sources) < MAX_SOURCES_PER_IMAGE:
            found.sources[source] = None
        found.platforms.update(dict.fromkeys(platforms))
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
        if id(chart) in self._annotated:  # a sub-chart used under several names: the same annotation, same sources
            return
        self._annotated.add(id(chart))
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
            image = entry["image"].strip()
            if len(image) > MAX_IMAGE_REFERENCE_LENGTH:
                raise ChartError(f"{source}: {excerpt(image)} is not an image reference: longer than "
                                 f"{MAX_IMAGE_REFERENCE_LENGTH} characters")
            try:
                reference = parse_reference(image)
            except ReferenceError as error:
                raise ChartError(f"{source}: {excerpt_text(str(error))}") from None
            raw_platforms = entry.get("platforms") or []
            if not isinstance(raw_platforms, list) or not all(isinstance(item, str) for item in raw_platforms):
                raise ChartError(f"{source}.platforms: expected a list of strings such as 'linux/amd64'")
            try:
                platforms = [str(parse_platform(item)) for item in raw_platforms]
            except PlatformError as error:
                raise ChartError(f"{source}.platforms: {excerpt_text(str(error))}") from None
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
                image = _string_image(text, scope.global_registry)
                if image is None:
                    self._unresolved(value, path, scope)
                else:
                    self._resolve(image, value, path, scope)
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
        """`text` (at most MAX_IMAGE_REFERENCE_LENGTH characters) as an image found at `path`, or as unresolved."""
        if text not in self._parsed:
            try:
                self._parsed[text] = None if "{{" in text else parse_reference(text)  # "{{": a template
            except ReferenceError:
                self._parsed[text] = None
        reference = self._parsed[text]
        if reference is None:
            self._unresolved(value, path, scope)
        elif not self.has_all_sources(reference):
            self.add(reference, self._source_path(path, scope), declared=False)

    def _unresolved(self, value: object, path: tuple[str | int, ...], scope: _ValuesScope) -> None:
        if len(self.unresolved) >= MAX_UNRESOLVED:
            return
        self.unresolved.append(f"{self._source_path(path, scope)}: {excerpt(value, _MAX_SHOWN_VALUE)}")

    def _source_path(self, path: Sequence[str | int], scope: _ValuesScope) -> str:
        """Where a value of the effective values was written: the chart's own values.yaml, or its parent's."""
        if scope.parent_file is not None and not self._has_path(scope.own_values, path):
            return f"{scope.parent_file}:{_render((scope.key_in_parent, *path))}"
        return f"{scope.file}:{_render(path)}"

    def _has_path(self, values: object, path: Sequence[str | int]) -> bool:
        """True when `path` (keys as text, list indexes) leads somewhere in `values`; each step is a lookup."""
        node = values
        for part in path:
            if isinstance(part, int):
                if not isinstance(node, list) or part >= len(node):
                    return False
                node = node[part]
            else:
                if not isinstance(node, dict):
                    return False
                keys = self._keys_of.get(id(node))
                if keys is None:  # once per mapping: a key's text to the first key with that text, as YAML ordered
                    keys = self._keys_of[id(node)] = {}
                    for key in node:
                        keys.setdefault(str(key), key)
                if part not in keys:
                    return False
                node = node[keys[part]]
        return True


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


def _string_image(text: str, global_registry: str | None) -> str | None:
    """The reference `text` names, with the global registry when it names none; None when that would be too long."""
    if global_registry and not names_registry(text):
        registry = global_registry.rstrip("/")
        if len(registry) + 1 + len(text) > MAX_IMAGE_REFERENCE_LENGTH:
            return None
        return f"{registry}/{text}"
    return text if len(text) <= MAX_IMAGE_REFERENCE_LENGTH else None


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
    if len(registry) + len(repository) + len(tag_text or "") + len(digest) + 3 > MAX_IMAGE_REFERENCE_LENGTH:
        raise _NotAReference(repository)  # checked before the text is built: `registry` may be long, and shared
    text = f"{registry.strip().strip('/')}/{repository.strip()}" if registry.strip() else repository.strip()
    if tag_text:
        text += f":{tag_text.strip()}"
    if digest:
        text += f"@{digest.strip()}"
    return text


def _render(path: Sequence[str | int]) -> str:
    """`a.b[0].image`: keys cut to MAX_SOURCE_KEY_CHARACTERS and escaped, the whole to MAX_SOURCE_PATH_CHARACTERS
    (keeping its end, which names the image); the cost is bounded by those limits, not by the keys."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        key = excerpt_text(part, MAX_SOURCE_KEY_CHARACTERS)
        text += f".{key}" if text else key
    if len(text) > MAX_SOURCE_PATH_CHARACTERS:
        text = _CUT + text[len(text) - MAX_SOURCE_PATH_CHARACTERS + len(_CUT):]
    return text


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
    if parent is not None:
        budget.take_instance(f"{parent.location}Chart.yaml")  # aliases at every level multiply instances
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

