"""Read a chart archive from this machine (`helm package` output), for the CLI's `check` and `chart-images` verbs.

    is_chart_file("redis-18.1.0.tgz")               # True: a file here, or a name ending .tgz or .tar.gz
    info = read_chart_file("redis-18.1.0.tgz")      # ChartInfo, as importer.core.charts.read_chart_archive gives it

At most `MAX_CHART_ARCHIVE_BYTES` are read from the file; a missing, unreadable, larger or refused archive is a
`ChartError` whose message starts with the path. The chart code is loaded only when an archive is read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importer.core.charts import ChartInfo

__all__ = ["is_chart_file", "read_chart_file"]

CHART_ARCHIVE_SUFFIXES = (".tgz", ".tar.gz")


def is_chart_file(target: str) -> bool:
    """Whether `target`, as given on the command line, names a chart archive on this machine rather than a reference:
    a file that exists, or a name ending in .tgz or .tar.gz (whose absence reading it then reports)."""
    return Path(target).is_file() or target.endswith(CHART_ARCHIVE_SUFFIXES)


def read_chart_file(path: str | os.PathLike[str]) -> ChartInfo:
    """Read a local chart archive (`helm package` output); ChartError when it is missing, too big or refused."""
    from importer.core.charts import MAX_CHART_ARCHIVE_BYTES, ChartError, read_chart_archive

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
