"""Read a Helm chart archive: `.tgz` bytes in, the chart and the images it references out (`ChartInfo`).

    info = read_chart_archive(tgz_bytes)                    # pure: nothing touches the disk or the network
    info = read_chart_archive(tgz_bytes, config=config)     # from a registry: the config must agree

The steps live next door: `archive` (the safe tar reading), `tree` (Chart.yaml, values, sub-charts), `images`
(what the chart references). The compressed archive may be at most `MAX_CHART_ARCHIVE_BYTES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from importer.core.charts.images import discover_images
from importer.core.charts.limits import MAX_CHART_ARCHIVE_BYTES, Budget
from importer.core.charts.model import ChartError, ChartInfo
from importer.core.charts.tree import check_config, load_chart, platforms_annotation

__all__ = ["read_chart_archive"]

_TOP_ARCHIVE_LABEL = "chart archive"


def read_chart_archive(data: bytes, *, config: Mapping[str, Any] | None = None) -> ChartInfo:
    """Read a chart archive (`.tgz` bytes) and list its images; pure, nothing touches the disk.

    `config` is the chart's OCI config blob (Chart.yaml as JSON) when the chart came from a registry: its
    name and version must agree with the archive's Chart.yaml, or the chart is refused.
    """
    if len(data) > MAX_CHART_ARCHIVE_BYTES:
        raise ChartError(f"{_TOP_ARCHIVE_LABEL}: {len(data)} bytes is over the {MAX_CHART_ARCHIVE_BYTES} byte limit")
    budget = Budget()
    chart = load_chart(data, label=_TOP_ARCHIVE_LABEL, location="", depth=0, budget=budget)
    if config is not None:
        check_config(config, chart)
    images, subcharts, unresolved = discover_images(chart, budget)
    return ChartInfo(
        name=chart.name,
        version=chart.version,
        app_version=chart.app_version,
        platforms=platforms_annotation(chart),
        images=images,
        subcharts=subcharts,
        unresolved=unresolved,
    )

