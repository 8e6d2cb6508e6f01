"""The limits on reading one chart, and the `Budget` that charges a chart, all its nested archives and its values
against them (so that a hostile archive is refused early instead of filling memory).

    budget = Budget()                  # one per chart read, shared by every archive and values file in it
    budget.take_entry(label, name)     # ChartError past MAX_CHART_ENTRIES entries
    budget.take_node(where)            # ChartError past MAX_VALUES_NODES steps through values
    budget.bytes_left -= size          # decompressed bytes: the archive reader refuses below zero

Byte and entry limits count over the chart and its nested archives together: a nested archive counts once as
a file of its parent and once more for what it unpacks to.
"""

from __future__ import annotations

from dataclasses import dataclass

from importer.core.charts.model import ChartError

__all__ = [
    "MAX_CHART_ARCHIVE_BYTES",
    "MAX_CHART_ENTRIES",
    "MAX_CHART_FILE_BYTES",
    "MAX_CHART_UNPACKED_BYTES",
    "MAX_NESTED_ARCHIVE_DEPTH",
    "MAX_SOURCES_PER_IMAGE",
    "MAX_TAR_HEADER_BYTES",
    "MAX_UNRESOLVED",
    "MAX_VALUES_DEPTH",
    "MAX_VALUES_NODES",
    "Budget",
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


@dataclass(slots=True)
class Budget:
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

