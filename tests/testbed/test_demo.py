"""The demo (`scripts/demo`, `python -m importer demo`) run for real: two distribution registries, skopeo pushes, the
local host. It must exit 0, and its Helm chart must make the chart manager import the image the chart references
from the upstream registry into the guarded one, on the platforms the chart declares.

The demo runs once (about 5 s) in a directory the test owns, so that what it leaves behind — its ledger and the
guarded registry's storage — is read afterwards: the ledger through the SQLite adapter, the registry by starting a
new registry process on that storage and asking `python -m importer check` about the image.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from importer.adapters.ledger.sqlite import SqliteLedger
from importer.core.outcome import Outcome
from testbed.demo import CHART_IMAGE, CHART_NAME, CHART_VERSION, DEMO_POLICY, run_demo
from testbed.registry import LocalRegistry

ROOT = Path(__file__).resolve().parents[2]
CHART_REPOSITORY = f"charts/{CHART_NAME}"


@dataclass(frozen=True)
class DemoRun:
    """What one run of the demo left: its exit code, its output lines and its directory."""

    code: int
    lines: tuple[str, ...]
    root: Path

    def outcomes(self) -> list[Outcome]:
        ledger = SqliteLedger(self.root / "ledger.db")
        try:
            return list(reversed(ledger.outcomes(limit=10_000)))
        finally:
            ledger.close()

    def chart_push(self) -> Outcome:
        [chart] = [o for o in self.outcomes() if (o.repository, o.tag) == (CHART_REPOSITORY, CHART_VERSION)]
        return chart


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    root = tmp_path_factory.mktemp("demo")
    lines: list[str] = []
    code = run_demo(out=lines.append, root=root)
    return DemoRun(code, tuple(lines), root)


def _exits_zero(run: DemoRun) -> None:
    assert run.code == 0, "\n".join(run.lines)


def _chart_push_summarises_one_import(run: DemoRun) -> None:
    chart = run.chart_push()
    assert chart.result == "reimported", chart.reason
    assert chart.reason == f"chart {CHART_NAME} {CHART_VERSION}: 1 image: 0 compliant, 1 imported; 0 failed"


def _chart_image_has_its_own_outcome(run: DemoRun) -> None:
    chart = run.chart_push()
    [image] = [o for o in run.outcomes() if o.event_id == f"{chart.event_id}/image/1"]
    assert (image.repository, image.tag, image.result) == (CHART_IMAGE.repository, CHART_IMAGE.tag, "reimported")
    assert image.platforms == CHART_IMAGE.platforms
    assert image.source is not None and f"/{CHART_IMAGE.upstream_repository}:{CHART_IMAGE.tag}@sha256:" in image.source
    # Declared in the annotation and found in values: both places are named.
    assert image.reason is not None and "Chart.yaml:artifacthub.io/images[0]" in image.reason
    assert "values.yaml:image" in image.reason


def _import_push_is_judged_compliant(run: DemoRun) -> None:
    chart = run.chart_push()
    pushes = [o for o in run.outcomes() if (o.repository, o.tag) == (CHART_IMAGE.repository, CHART_IMAGE.tag)
              and not o.event_id.startswith(f"{chart.event_id}/")]
    assert [o.result for o in pushes] == ["compliant"], pushes


def _table_shows_the_import(run: DemoRun) -> None:
    rows = [line for line in run.lines if "reimported" in line]
    assert any(f"/{CHART_REPOSITORY}:{CHART_VERSION}@" in row and "1 image: 0 compliant, 1 imported" in row
               for row in rows), "\n".join(run.lines)
    assert any(f"/{CHART_IMAGE.repository}:{CHART_IMAGE.tag} " in row and "chart" in row for row in rows)


def _guarded_registry_holds_the_image(run: DemoRun) -> None:
    """A new registry process on the demo's storage; `check` judges the image with the demo's policy."""
    policy = run.root / "check-policy.yaml"
    policy.write_text(DEMO_POLICY.format(upstream="127.0.0.1:9"))  # `check` never reads the upstream
    with LocalRegistry(run.root / "registry") as registry:
        checked = subprocess.run(
            [sys.executable, "-m", "importer", "check", f"{registry.host}/{CHART_IMAGE.repository}:{CHART_IMAGE.tag}",
             "--policy", str(policy), "--json"],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    record = json.loads(checked.stdout)
    assert (record["verdict"], record["kind"]) == ("compliant", "index")
    assert tuple(record["platforms"]) == CHART_IMAGE.platforms


@pytest.mark.parametrize(
    "check",
    [
        pytest.param(_exits_zero, id="demo-exits-0"),
        pytest.param(_chart_push_summarises_one_import, id="chart-push-reimported-1-image-imported"),
        pytest.param(_chart_image_has_its_own_outcome, id="chart-image-outcome-imported-from-upstream"),
        pytest.param(_import_push_is_judged_compliant, id="import-push-compliant"),
        pytest.param(_table_shows_the_import, id="table-shows-chart-and-image"),
        pytest.param(_guarded_registry_holds_the_image, id="guarded-registry-holds-image-on-both-platforms"),
    ],
)
def test_demo_chart_image_is_imported(demo: DemoRun, check: Callable[[DemoRun], None]) -> None:
    check(demo)
