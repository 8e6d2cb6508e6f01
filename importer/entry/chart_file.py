"""Read a chart archive from this machine (`helm package` output), for the CLI's `chart-images` verb.

    info = read_chart_file("redis-18.1.0.tgz")      # ChartInfo, as importer.core.charts.read_chart_archive gives it

At most `MAX_CHART_ARCHIVE_BYTES` are read from the file; a missing, unreadable, larger or refused archive is a
`ChartError` whose message starts with the path.
"""

from __future__ import annotations

import os
from pathlib import Path

from importer.core.charts import MAX_CHART_ARCHIVE_BYTES, ChartError, ChartInfo, read_chart_archive

__all__ = ["read_chart_file"]


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

