"""scripts/check-layers: the real tree passes it, and each rule it enforces fails a small fake tree that breaks it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "check-layers"


def check_layers(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the script as CI does, but with `-S` (no site-packages): it must need nothing outside the stdlib."""
    return subprocess.run(
        [sys.executable, "-S", str(SCRIPT), *args], check=False, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def fake_tree(root: Path, files: dict[str, str]) -> Path:
    """Write `files` under `root`, with an empty __init__.py in every folder of importer/ that has none."""
    (root / "importer").mkdir(parents=True, exist_ok=True)
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    for folder in [root / "importer", *(path for path in (root / "importer").rglob("*") if path.is_dir())]:
        (folder / "__init__.py").touch()
    return root


def test_the_real_tree_is_clean() -> None:
    """The repository itself: no cycles, layers one way, a pure core (fails while the layering is being fixed)."""
    result = check_layers()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no import cycles" in result.stdout and "no problems" in result.stdout


@dataclass(frozen=True)
class Broken:
    """A fake tree that breaks one rule, and the line (or part of it) the checker must print for it."""

    files: dict[str, str]
    expected: str


BROKEN = {
    "core-imports-socket": Broken(
        {"importer/core/wire.py": "import socket\n"},
        "core-io: importer.core.wire imports socket (network) at importer/core/wire.py:1",
    ),
    "adapter-imports-app": Broken(
        {"importer/adapters/registry/acr.py": "from importer.app import copying\n", "importer/app/copying.py": ""},
        "layer: importer.adapters.registry.acr imports importer.app.copying (adapters may import core, ports, adapters)"
        " at importer/adapters/registry/acr.py:1",
    ),
    "cycle-through-function-level-import": Broken(
        {
            "importer/app/a.py": "from importer.app import b\n",
            "importer/app/b.py": "def late():\n    from importer.app import a\n    return a\n",
        },
        "cycle: importer.app.a -> importer.app.b -> importer.app.a",
    ),
    "importer-imports-testbed": Broken(
        {"importer/entry/cli.py": "def demo():\n    from testbed.demo import run_demo\n    return run_demo()\n"},
        "scaffolding: importer.entry.cli imports run_demo from testbed.demo",
    ),
    "cycle-through-relative-imports": Broken(
        {"importer/core/a.py": "from . import b\n", "importer/core/b.py": "from .a import thing\n"},
        "cycle: importer.core.a -> importer.core.b -> importer.core.a",
    ),
    "self-import": Broken(
        {"importer/core/a.py": "import importer.core.a\n"},
        "cycle: importer.core.a -> importer.core.a",
    ),
    "type-checking-import-counts": Broken(
        {
            "importer/core/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from importer.app.work import W\n",
            "importer/app/work.py": "",
        },
        "layer: importer.core.a imports importer.app.work (core may import core) at importer/core/a.py:3",
    ),
    "edge-to-package-is-its-init": Broken(
        {"importer/core/a.py": "import importer.app\n", "importer/app/work.py": ""},
        "layer: importer.core.a imports importer.app (core may import core)",
    ),
    "ports-import-adapters": Broken(
        {
            "importer/ports/registry.py": "from ..adapters.registry import oci\n",
            "importer/adapters/registry/oci.py": "",
        },
        "layer: importer.ports.registry imports importer.adapters.registry.oci (ports may import core, ports)",
    ),
    "function-app-imports-app": Broken(
        {"function_app.py": "from importer.app import settings\n", "importer/app/settings.py": ""},
        "layer: function_app imports importer.app.settings (function_app may import entry) at function_app.py:1",
    ),
    "package-init-imports-a-layer": Broken(
        {"importer/__init__.py": "from importer.core import a\n", "importer/core/a.py": ""},
        "layer: importer imports importer.core.a (package may import nothing in importer)",
    ),
    "module-outside-the-layers": Broken(
        {"importer/sweep.py": ""},
        "layer: importer.sweep is in no layer folder",
    ),
    "stale-import-after-a-move": Broken(
        {"importer/app/a.py": "from importer import sweep\n"},
        "unresolved: importer.app.a imports importer.sweep, which is no module under importer/ at importer/app/a.py:1",
    ),
    "testbed-loaded-outside-entry": Broken(
        {"importer/app/a.py": "import importlib\n\nDEMO = importlib.import_module('testbed.demo')\n"},
        "scaffolding: importer.app.a loads testbed.demo",
    ),
    "core-reads-the-environment": Broken(
        {"importer/core/a.py": "from os import environ\n"},
        "core-io: importer.core.a imports environ from os (files and environment)",
    ),
    "core-opens-through-allowed-io": Broken(
        {"importer/core/a.py": "import io\n\n\ndef read(path):\n    return io.open(path).read()\n"},
        "core-io: importer.core.a uses io.open (files and environment) at importer/core/a.py:5",
    ),
    "core-calls-builtin-open": Broken(
        {"importer/core/a.py": "def read(path):\n    with open(path) as handle:\n        return handle.read()\n"},
        "core-io: importer.core.a uses builtins.open (files and environment) at importer/core/a.py:2",
    ),
    "core-reads-the-clock-module": Broken(
        {"importer/core/a.py": "import time\n"},
        "core-io: importer.core.a imports time (clock and chance)",
    ),
    "core-reads-the-clock-through-datetime": Broken(
        {"importer/core/a.py": "from datetime import datetime\n\nSTARTED = datetime.now()\n"},
        "core-io: importer.core.a uses datetime.datetime.now (clock and chance) at importer/core/a.py:3",
    ),
    "core-uses-randomness": Broken(
        {"importer/core/a.py": "def pick():\n    import random\n    return random.random()\n"},
        "core-io: importer.core.a imports random (clock and chance) at importer/core/a.py:2",
    ),
    "core-logs": Broken(
        {"importer/core/a.py": "import logging\n"},
        "core-io: importer.core.a imports logging (logging and SDKs)",
    ),
    "core-uses-an-azure-sdk": Broken(
        {"importer/core/a.py": "from azure.data.tables import TableClient\n"},
        "core-io: importer.core.a imports TableClient from azure.data.tables (logging and SDKs)",
    ),
    "core-uses-an-unlisted-third-party-package": Broken(
        {"importer/core/a.py": "import attrs\n"},
        "core-io: importer.core.a imports attrs (outside the standard library and not in CORE_THIRD_PARTY_ALLOWED)",
    ),
}


@pytest.mark.parametrize("case", BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_tree_is_reported(case: Broken, tmp_path: Path) -> None:
    result = check_layers("--root", str(fake_tree(tmp_path, case.files)))
    assert result.returncode == 1, result.stdout + result.stderr
    assert case.expected in result.stdout, result.stdout


CLEAN_FILES = {
    "importer/__main__.py": "import sys\nfrom importer.entry.cli import main\nsys.exit(main())\n",
    "importer/core/charts.py": (
        "import gzip, hashlib, io, json, re, tarfile, zlib\nfrom datetime import datetime\n"
        "from urllib.parse import urlsplit\nimport yaml\nfrom importer.core import platforms\n\n\n"
        "def read(data: bytes):\n    with tarfile.open(fileobj=io.BytesIO(data)) as archive:\n"
        "        return archive.getnames(), datetime.fromisoformat('2024-01-01')\n"
    ),
    "importer/core/platforms.py": "import fnmatch\n",
    "importer/ports/registry.py": "from typing import Protocol\nfrom importer.core.platforms import fnmatch\n",
    "importer/app/work.py": "import logging\nfrom importer.ports import registry\nfrom importer.core import charts\n",
    "importer/adapters/registry/oci.py": "import socket\nfrom ...ports import registry\nfrom importer.adapters.sinks import log\n",
    "importer/adapters/sinks/log.py": "import logging\n",
    "importer/entry/cli.py": (
        "import importlib\nfrom importer.app import work\nfrom importer.adapters.registry import oci\n\n\n"
        "def main():\n    return 0\n\n\ndef demo():\n    return importlib.import_module('testbed.demo')\n"
    ),
    "function_app.py": "import azure.functions as func\nfrom importer.entry import cli\n",
}


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    """Every allowed direction and every allowed core import at once; the demo's importlib load is only a note."""
    result = check_layers("--root", str(fake_tree(tmp_path, CLEAN_FILES)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "no import cycles",
        (
            "note: importer.entry.cli loads testbed.demo with importlib.import_module (allowed in entry)"
            " at importer/entry/cli.py:11"
        ),
        "no problems in 17 modules",
    ]


def test_graph_lists_every_module_and_where_lazy_edges_sit(tmp_path: Path) -> None:
    files = {
        "importer/app/a.py": "from importer.app import b\n",
        "importer/app/b.py": "def late():\n    import importer.app.a\n",
    }
    result = check_layers("--root", str(fake_tree(tmp_path, files)), "--graph")
    lines = result.stdout.splitlines()
    assert "importer.app.a: importer.app.b" in lines
    assert "importer.app.b: importer.app.a (inside a function)" in lines
    assert "importer.core: -" not in lines and "importer: -" in lines


def test_a_root_without_the_package_is_a_usage_error(tmp_path: Path) -> None:
    result = check_layers("--root", str(tmp_path))
    assert result.returncode == 2 and "has no importer/ folder" in result.stderr


def test_the_script_runs_as_ci_runs_it() -> None:
    """.ci/run calls it by path through `python3`: it must be executable, start with the shebang, and be listed there."""
    assert os.access(SCRIPT, os.X_OK)
    assert SCRIPT.read_text().startswith("#!/usr/bin/env python3\n")
    assert "python3 scripts/check-layers" in (ROOT / ".ci" / "run").read_text()
