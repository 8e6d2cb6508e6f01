"""Cold start: importing the Functions module loads only what the first event needs (the rest is lazy)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = (
    "azure.identity", "azure.data.tables", "azure.eventgrid", "azure.mgmt", "azure.monitor", "opentelemetry",
    "azure.containerregistry", "importer.app.remediation", "importer.app.copying", "importer.adapters.registry.acr",
    "importer.core.charts", "jsonschema", "importer.app.sweep", "importer.app.chart_guard", "importer.ports.abilities",
    "importer.adapters.sinks.webhook", "importer.core.policy.upstream", "azure.storage.queue",
)


def test_function_app_import_leaves_heavy_modules_unloaded() -> None:
    """No Azure SDK, telemetry, copy engine or ACR module is imported with function_app."""
    script = (
        "import json, sys, function_app; "
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({HEAVY!r}))))"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == []
