"""The Functions deployment package: what `.funcignore` leaves in is the app and nothing of the test scaffolding.

Core Tools and `azd deploy` read `.funcignore` with gitignore semantics; `pathspec` implements the same
grammar ("gitignore"), so the deployed file set is the repository's files minus what it matches.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pathspec
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCAFFOLDING = ("testbed/", "tests/", "bench/", "scripts/", "docs/", "infra/", ".ci/")


def funcignore() -> pathspec.PathSpec:
    return pathspec.PathSpec.from_lines("gitignore", (ROOT / ".funcignore").read_text().splitlines())


def deployed_files() -> list[str]:
    """Every file of the checkout (tracked or new, not git-ignored) that the deployment would upload."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    spec = funcignore()
    return sorted(path for path in listed if (ROOT / path).is_file() and not spec.match_file(path))


@pytest.mark.parametrize(
    ("path", "shipped"),
    [
        pytest.param("function_app.py", True, id="bindings"),
        pytest.param("host.json", True, id="host-json"),
        pytest.param("requirements.txt", True, id="requirements"),
        pytest.param("importer/core/platforms.py", True, id="core"),
        pytest.param("importer/adapters/registry/oci.py", True, id="adapter"),
        pytest.param("importer/entry/runtime.py", True, id="entry"),
        pytest.param("testbed/faults.py", False, id="fault-proxy"),
        pytest.param("testbed/demo.py", False, id="demo"),
        pytest.param("testbed/arm.py", False, id="arm-simulator"),
        pytest.param("tests/conftest.py", False, id="tests"),
        pytest.param("bench/cold_start.py", False, id="bench"),
        pytest.param("importer/core/__pycache__/platforms.cpython-311.pyc", False, id="bytecode"),
        pytest.param("local.settings.json", False, id="local-settings"),
        pytest.param("node_modules/azurite/package.json", False, id="azurite"),
        pytest.param(".venv/bin/python", False, id="venv"),
    ],
)
def test_funcignore_decides_what_ships(path: str, shipped: bool) -> None:
    """Each path is in the deployment package exactly when it is part of the app."""
    assert funcignore().match_file(path) is not shipped


def test_deployed_file_set_holds_the_app_and_no_scaffolding() -> None:
    """The files that would be uploaded now: the bindings, the host config, the requirements and importer/ only."""
    files = deployed_files()
    assert {"function_app.py", "host.json", "requirements.txt"} <= set(files)
    assert any(path.startswith("importer/core/") for path in files)
    leaked = [path for path in files if path.startswith(SCAFFOLDING)]
    assert leaked == []
    assert not any(path.endswith(".db") or "__pycache__" in path for path in files)


def test_no_shipped_module_imports_the_scaffolding() -> None:
    """No file of the package names testbed, tests or bench in an import (the CLI's demo loads it by importlib)."""
    offenders = []
    for path in deployed_files():
        if not path.endswith(".py"):
            continue
        for number, line in enumerate((ROOT / path).read_text().splitlines(), start=1):
            stripped = line.strip()
            if stripped.startswith(("import ", "from ")) and stripped.split()[1].split(".")[0] in {
                "testbed", "tests", "bench",
            }:
                offenders.append(f"{path}:{number}: {stripped}")
    assert offenders == []
