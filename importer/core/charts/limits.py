"""The limits on reading one chart, and the `Budget` that charges a chart, all its nested archives and its values
against them (so that a hostile archive is refused early instead of filling memory).

    budget = Budget()                  # one per chart read, shared by every archive and values file in it
    budget.take_entry(label, name)     # ChartError past MAX_CHART_ENTRIES entries
    budget.take_node(where)            # ChartError past MAX_VALUES_NODES steps through values
    budget.take_instance(where)        # ChartError past MAX_SUBCHART_INSTANCES sub-charts instantiated
    budget.bytes_left -= size          # decompressed bytes: the archive reader refuses below zero

Byte and entry limits count over the chart and its nested archives together: a nested archive counts once as
a file of its parent and once more for what it unpacks to. A step is one entry of a values mapping or list. Helm
instantiates a sub-chart once per name or alias it is used under, at every level, so ten aliases on each of six
levels make a million instances of the last one: instances are counted against `MAX_SUBCHART_INSTANCES`.
Each YAML file of a chart is also read within the bounds of `importer.core.yaml_input` (aliases counted as copies).
"""

from __future__ import annotations

from dataclasses import dataclass

from importer.core.charts.model import ChartError
from importer.core.excerpts import excerpt

__all__ = [
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
    "Budget",
]

MAX_CHART_ARCHIVE_BYTES = 10 * 1024 * 1024  # the compressed chart, as downloaded
MAX_CHART_UNPACKED_BYTES = 50 * 1024 * 1024  # decompressed tar bytes over the chart and all its nested archives
MAX_CHART_FILE_BYTES = 5 * 1024 * 1024  # one entry; Helm's own default limit per file is 5 MiB too
MAX_CHART_ENTRIES = 5000  # entries over the chart and all its nested archives
MAX_NESTED_ARCHIVE_DEPTH = 3  # charts/a.tgz holding charts/b.tgz holding charts/c.tgz, and no deeper
MAX_SUBCHART_DEPTH = 10  # sub-charts of sub-charts, as directories or archives, below the top chart
MAX_SUBCHART_INSTANCES = 10_000  # sub-charts as Helm instantiates them: each name or alias, at every level
MAX_TAR_HEADER_BYTES = 64 * 1024  # pax and GNU long-name headers before one entry
MAX_VALUES_DEPTH = 64
MAX_VALUES_NODES = 200_000
MAX_SOURCES_PER_IMAGE = 20  # places listed per image (YAML aliases can repeat one image thousands of times)
MAX_SOURCE_KEY_CHARACTERS = 64  # of one key in a source path ("values.yaml:a.b.image"); a longer key is cut
MAX_SOURCE_PATH_CHARACTERS = 256  # of a whole source path; a longer one keeps its end
MAX_IMAGE_REFERENCE_LENGTH = 1024  # an image-like value longer than this is not a reference (it is unresolved)
MAX_UNRESOLVED = 100  # image-like values listed as not being references


@dataclass(slots=True)
class Budget:
    """What one chart, with all its nested archives and values, may still use."""

    entries_left: int = MAX_CHART_ENTRIES
    bytes_left: int = MAX_CHART_UNPACKED_BYTES
    nodes_left: int = MAX_VALUES_NODES
    instances_left: int = MAX_SUBCHART_INSTANCES

    def take_entry(self, label: str, name: str) -> None:
        self.entries_left -= 1
        if self.entries_left < 0:
            raise ChartError(f"{label}: entry {excerpt(name, 200)}: more than {MAX_CHART_ENTRIES} entries in the chart")

    def take_node(self, where: str) -> None:
        self.nodes_left -= 1
        if self.nodes_left < 0:
            raise ChartError(
                f"{where}: values take more than {MAX_VALUES_NODES} steps to walk (YAML aliases repeated on purpose?)"
            )

    def take_instance(self, where: str) -> None:
        self.instances_left -= 1
        if self.instances_left < 0:
            raise ChartError(
                f"{where}: more than {MAX_SUBCHART_INSTANCES} sub-chart instances (each name or alias a sub-chart is "
                "used under counts, at every level)"
            )
