"""Read a Helm chart pushed to a registry as an OCI artifact (`helm push`), through the Registry port.

    info = read_chart_from_registry(registry, "charts/redis", "18.1.0")       # a tag, or a digest
    info.name, info.version, info.images                                     # as read_chart_archive gives them

The manifest must be an image manifest with the Helm config media type and exactly one chart layer; the layer
is downloaded with a cap of `MAX_CHART_ARCHIVE_BYTES`, the config with `MAX_CONFIG_BYTES`, and both are read in
memory by `importer.core.charts.read_chart_archive` (docs/design.md, Charts).
"""

from __future__ import annotations

from importer.core.bounded_json import loads as load_bounded_json
from importer.core.charts import MAX_CHART_ARCHIVE_BYTES, ChartError, ChartInfo, read_chart_archive
from importer.core.excerpts import excerpt
from importer.core.manifests import MAX_CONFIG_BYTES, ImageManifest, ManifestError, parse_manifest
from importer.core.media_types import HELM_CHART_LAYER, HELM_CONFIG
from importer.core.reference import is_digest
from importer.ports.registry import Registry, TooLarge

__all__ = ["read_chart_from_registry"]


def read_chart_from_registry(registry: Registry, repository: str, reference: str) -> ChartInfo:
    """Fetch a chart pushed as an OCI artifact (`helm push`) and read it with `read_chart_archive`.

    ChartError when the manifest is not a Helm chart, or its config or chart layer is refused;
    RegistryError (from the registry) when something cannot be fetched.
    """
    name = f"{registry.host}/{repository}{'@' if is_digest(reference) else ':'}{reference}"
    fetched = registry.get_manifest(repository, reference)
    try:
        manifest = parse_manifest(fetched.raw, fetched.media_type)
    except ManifestError as error:
        raise ChartError(f"{name}: {error}") from None
    if not isinstance(manifest, ImageManifest) or manifest.config.media_type != HELM_CONFIG:
        what = ("an index" if not isinstance(manifest, ImageManifest)
                else f"config {excerpt(manifest.config.media_type)}")
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
        config = load_bounded_json(config_raw)
    except ValueError:  # not JSON, or nested past the depth limit
        raise ChartError(f"{name}: the chart config {manifest.config.digest} is not valid JSON") from None
    if not isinstance(config, dict):
        raise ChartError(f"{name}: the chart config {manifest.config.digest} is not a JSON object")
    try:
        return read_chart_archive(data, config=config)
    except ChartError as error:
        raise ChartError(f"{name}: {error}") from None

