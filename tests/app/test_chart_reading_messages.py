"""A chart read from a registry (importer.app.chart_reading): what the registry holds is quoted cut short and escaped.

A real distribution registry on loopback stores the artifacts; what they hold is chosen by whoever pushed them.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from importer.adapters.registry.oci import OciRegistry
from importer.app.chart_reading import read_chart_from_registry
from importer.core.charts import ChartError
from testbed.charts import ChartSpec, chart_archive, chart_artifact, chart_config, push_chart
from testbed.images import ImageBuilder
from testbed.push import push
from testbed.registry import LocalRegistry

HUGE = 200_000


def _config_media_type(builder: ImageBuilder, host: str) -> None:
    spec = ChartSpec("bad", "1")
    media_type = "application/vnd.example." + "a" * HUGE + "+json"
    push(builder, chart_artifact(builder, chart_archive(spec), chart_config(spec), config_media_type=media_type),
         host, "charts/bad", "1", via="raw")


def _config_name(builder: ImageBuilder, host: str) -> None:
    push_chart(builder, chart_archive(ChartSpec("bad", "1")), {"name": "\x1b[2J" + "n" * HUGE, "version": "1"},
               host, "charts/bad", "1")


@pytest.mark.parametrize(
    ("setup", "start"),
    [(_config_media_type, "not a Helm chart (config 'application/vnd.example.aaaa"),
     (_config_name, "chart config: name '\\x1b[2Jnnnn")],
    ids=["config-media-type-of-200000-characters", "config-name-of-200000-characters"],
)
def test_registry_content_is_quoted_short(registry: LocalRegistry, builder: ImageBuilder,
                                          setup: Callable[[ImageBuilder, str], None], start: str) -> None:
    """The ChartError names the reference and quotes at most a short, escaped excerpt of what the registry holds."""
    setup(builder, registry.host)
    with OciRegistry(registry.host) as client, pytest.raises(ChartError) as refused:
        read_chart_from_registry(client, "charts/bad", "1")
    message = str(refused.value)
    assert message.startswith(f"{registry.host}/charts/bad:1: {start}"), message[:300]
    assert len(message) < 400, message[:400]
    assert message.isprintable(), message[:400]
