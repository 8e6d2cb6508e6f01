"""What reading a chart gives: `ChartInfo` with its `ChartImage`s, the `ChartError` that refuses a chart, and the
Chart.yaml annotation keys that name images and platforms.

    info = read_chart_archive(tgz_bytes)            # importer.core.charts
    info.name, info.version, info.platforms         # platforms: our annotation, normalised
    for image in info.images:                       # deduplicated, sorted by reference
        image.reference, image.platforms, image.sources, image.heuristic
    json.dumps(info.as_dict())

Values only: reading an archive into them is `importer.core.charts.reading`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ARTIFACTHUB_IMAGES_ANNOTATION", "PLATFORMS_ANNOTATION", "ChartError", "ChartImage", "ChartInfo"]

ARTIFACTHUB_IMAGES_ANNOTATION = "artifacthub.io/images"
PLATFORMS_ANNOTATION = "platform-guard.io/platforms"


class ChartError(ValueError):
    """A chart that cannot be read, or is refused; the message names the archive, entry or file and what is wrong."""


@dataclass(frozen=True, slots=True)
class ChartImage:
    """One image a chart references, with every place it was found."""

    reference: str  # normalised: "docker.io/bitnami/redis:7.2.4", "…@sha256:…" or "…:7.2.4@sha256:…"
    registry: str
    repository: str
    tag: str | None
    digest: str | None
    platforms: tuple[str, ...]  # from the artifacthub.io/images annotation, normalised; else ()
    sources: tuple[str, ...]  # "Chart.yaml:artifacthub.io/images[0]", "charts/redis/values.yaml:image"; at most 20
    heuristic: bool  # True when found only in values (by convention), never declared in an annotation

    @property
    def source(self) -> str:
        """"annotation" when a chart declares the image, else "values"."""
        return "values" if self.heuristic else "annotation"

    def as_dict(self) -> dict[str, Any]:
        """The image as a JSON-ready dict (field order as declared, plus `source`)."""
        return {
            "reference": self.reference,
            "registry": self.registry,
            "repository": self.repository,
            "tag": self.tag,
            "digest": self.digest,
            "platforms": list(self.platforms),
            "source": self.source,
            "sources": list(self.sources),
            "heuristic": self.heuristic,
        }


@dataclass(frozen=True, slots=True)
class ChartInfo:
    """What a chart says about itself and the images it references."""

    name: str
    version: str
    app_version: str | None
    platforms: tuple[str, ...]  # from our platform-guard.io/platforms annotation, normalised; else ()
    images: tuple[ChartImage, ...]  # sorted by reference
    subcharts: tuple[str, ...]  # bundled sub-charts by the name values address them with; nested as "a/b"
    unresolved: tuple[str, ...] = ()  # image-like values that are not references: "path: value"; at most 100

    def as_dict(self) -> dict[str, Any]:
        """The chart as a JSON-ready dict."""
        return {
            "name": self.name,
            "version": self.version,
            "app_version": self.app_version,
            "platforms": list(self.platforms),
            "subcharts": list(self.subcharts),
            "images": [image.as_dict() for image in self.images],
            "unresolved": list(self.unresolved),
        }

