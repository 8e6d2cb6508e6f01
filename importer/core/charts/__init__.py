"""Helm charts: read a chart archive safely, in memory, and list the container images it references.

    info = read_chart_archive(tgz_bytes)                         # pure: bytes in, ChartInfo out
    info.name, info.version, info.platforms                      # platforms: our annotation, normalised
    for image in info.images:                                    # deduplicated, sorted by reference
        image.reference, image.platforms, image.sources, image.heuristic

From a registry: `importer.app.chart_reading.read_chart_from_registry`; from a local file:
`importer.entry.chart_file.read_chart_file`; as a table for a terminal: `importer.entry.terminal.format_chart_table`.

Hostile archives (links, `..` paths, archive bombs, oversized files, YAML alias bombs, sub-charts nested or
aliased without end) are refused with a `ChartError` naming the archive and the entry (docs/design.md, Charts),
quoting what the chart holds only as a short escaped excerpt. Templates are not rendered: an image
built in a template from other values is not seen.

Where it lives: `model` (ChartInfo, ChartImage, ChartError), `limits` (the MAX_* limits and the budget),
`archive` (the safe tar reading), `tree` (Chart.yaml, values and sub-charts), `images` (what a chart
references), `reading` (`read_chart_archive`).
"""

from __future__ import annotations

from importer.core.charts.limits import (
    MAX_CHART_ARCHIVE_BYTES,
    MAX_CHART_ENTRIES,
    MAX_CHART_FILE_BYTES,
    MAX_CHART_UNPACKED_BYTES,
    MAX_IMAGE_REFERENCE_LENGTH,
    MAX_NESTED_ARCHIVE_DEPTH,
    MAX_SOURCE_KEY_CHARACTERS,
    MAX_SOURCE_PATH_CHARACTERS,
    MAX_SOURCES_PER_IMAGE,
    MAX_SUBCHART_DEPTH,
    MAX_SUBCHART_INSTANCES,
    MAX_TAR_HEADER_BYTES,
    MAX_UNRESOLVED,
    MAX_VALUES_DEPTH,
    MAX_VALUES_NODES,
)
from importer.core.charts.model import (
    ARTIFACTHUB_IMAGES_ANNOTATION,
    PLATFORMS_ANNOTATION,
    ChartError,
    ChartImage,
    ChartInfo,
)
from importer.core.charts.reading import read_chart_archive

__all__ = [
    "ARTIFACTHUB_IMAGES_ANNOTATION",
    "MAX_CHART_ARCHIVE_BYTES",
    "MAX_CHART_ENTRIES",
    "MAX_CHART_FILE_BYTES",
    "MAX_CHART_UNPACKED_BYTES",
    "MAX_IMAGE_REFERENCE_LENGTH",
    "MAX_NESTED_ARCHIVE_DEPTH",
    "MAX_SOURCE_KEY_CHARACTERS",
    "MAX_SOURCE_PATH_CHARACTERS",
    "MAX_SOURCES_PER_IMAGE",
    "MAX_SUBCHART_DEPTH",
    "MAX_SUBCHART_INSTANCES",
    "MAX_TAR_HEADER_BYTES",
    "MAX_UNRESOLVED",
    "MAX_VALUES_DEPTH",
    "MAX_VALUES_NODES",
    "PLATFORMS_ANNOTATION",
    "ChartError",
    "ChartImage",
    "ChartInfo",
    "read_chart_archive",
]
