"""`pip install .` gives a `platform-guard` command: the wheel is built, installed in a fresh venv and run.

The wheel is built from a copy of the package (pyproject.toml, README.md, importer/), so that the build leaves no
build/ or *.egg-info in the checkout, offline (`--no-build-isolation --no-index`: the venv's setuptools, pinned in
requirements-dev.txt). It is installed with `--no-deps` into a venv made with `--without-pip`; the light dependencies
(PyYAML, urllib3, prometheus_client) are linked in from this venv and nothing else, so the command is shown to run
without any Azure SDK.
"""

from __future__ import annotations

import email
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import zipfile
from email.message import Message
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import importer
from importer.entry.cli import build_parser
from tests.requirement_pins import normalised, pins

ROOT = Path(__file__).resolve().parents[2]
LIGHT = ("yaml", "_yaml", "urllib3", "prometheus_client")  # import names of the base dependencies, linked in
SCAFFOLDING = ("testbed", "tests", "bench", "scripts", "docs", "infra", "function_app.py", "host.json")
NOT_IN_THE_EXTRA = {"azure-functions"}  # the Functions host's binding library: only function_app.py imports it


def _run(args: list[str | Path], cwd: Path, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "PLATFORM_GUARD_"))}
    return subprocess.run([str(arg) for arg in args], cwd=cwd, env={**environ, **(env_extra or {})},
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "importer", source / "importer", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp_path_factory.mktemp("dist")
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                  "--disable-pip-version-check", "-w", dist, source], cwd=source)
    assert built.returncode == 0, (
        f"{built.stdout}\n{built.stderr}\n(the build needs setuptools >= 70.1: pip install -r requirements-dev.txt)"
    )
    wheels = list(dist.glob("platform_guard-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def _metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        [path] = [name for name in archive.namelist() if name.endswith(".dist-info/METADATA")]
        return email.message_from_bytes(archive.read(path))


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel (no dependencies resolved) plus PyYAML and urllib3 only; its bin/ folder."""
    venv = tmp_path_factory.mktemp("venv")
    made = _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=venv)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    put = _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
                "--disable-pip-version-check", wheel], cwd=venv)
    assert put.returncode == 0, put.stdout + put.stderr
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=venv)
                   .stdout.strip())
    for module in LIGHT:
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.origin is not None and spec.submodule_search_locations, module
        location = Path(spec.origin).parent  # the package's folder in this venv's site-packages
        (purelib / location.name).symlink_to(location, target_is_directory=True)
    return venv / "bin"


def test_wheel_holds_the_package_and_no_scaffolding(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {"importer", f"platform_guard-{importer.__version__}.dist-info"}, tops
    assert not [name for name in names if name.startswith(SCAFFOLDING) or "__pycache__" in name]
    shipped = {name for name in names if name.startswith("importer/")}
    in_checkout = {path.relative_to(ROOT).as_posix() for path in (ROOT / "importer").rglob("*.py")}
    assert in_checkout <= shipped, sorted(in_checkout - shipped)  # every module, subpackages included


def test_metadata_names_light_dependencies_and_the_azure_extra(wheel: Path) -> None:
    metadata = _metadata(wheel)
    assert metadata["Name"] == "platform-guard"
    assert metadata["Version"] == importer.__version__
    assert metadata["Requires-Python"] == ">=3.11"
    requirements = [Requirement(text) for text in metadata.get_all("Requires-Dist") or ()]
    base = {normalised(r.name): r for r in requirements if r.marker is None}
    azure = {normalised(r.name): r for r in requirements
             if r.marker is not None and r.marker.evaluate({"extra": "azure"})}
    assert set(base) == {"pyyaml", "urllib3", "prometheus-client"}, base
    assert "azure" in (metadata.get_all("Provides-Extra") or ())
    # The deployment's pins (requirements.txt) are the extra's packages plus the base, each inside its range.
    pinned = pins(ROOT / "requirements.txt")
    assert set(azure) == set(pinned) - set(base) - NOT_IN_THE_EXTRA, azure
    # The CLI's metrics library is not the Functions app's (it never imports it): pinned for development only.
    pinned.setdefault("prometheus-client", pins(ROOT / "requirements-dev.txt")["prometheus-client"])
    for name, requirement in {**base, **azure}.items():
        assert requirement.specifier.contains(pinned[name]), f"requirements.txt pins {name}=={pinned[name]}: " \
                                                             f"outside {requirement.specifier}"
    entry_points = zipfile.ZipFile(wheel).read(f"platform_guard-{importer.__version__}.dist-info/entry_points.txt")
    assert "platform-guard = importer.entry.cli:main" in entry_points.decode()


def test_installed_command_prints_its_version(installed: Path, tmp_path: Path) -> None:
    ran = _run([installed / "platform-guard", "--version"], cwd=tmp_path)
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, f"platform-guard {importer.__version__}\n", "")


def test_checkout_module_prints_the_same_version() -> None:
    ran = _run([sys.executable, "-m", "importer", "--version"], cwd=ROOT)
    assert (ran.returncode, ran.stdout) == (0, f"platform-guard {importer.__version__}\n")


def test_installed_command_runs_from_the_installed_package_without_azure(installed: Path, tmp_path: Path) -> None:
    probe = ("import importlib.util, importer, importer.entry.cli, importer.entry.serve; "
             "print(importer.__file__); print(importlib.util.find_spec('azure'))")
    ran = _run([installed / "python", "-c", probe], cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    where, azure = ran.stdout.splitlines()
    assert Path(where).is_relative_to(installed.parent), where  # not the checkout
    assert azure == "None"


def test_installed_command_has_the_same_verbs(installed: Path, tmp_path: Path) -> None:
    """`platform-guard --help` is `python -m importer --help`: the same parser, every verb."""
    wide = {"COLUMNS": "200"}
    ran = _run([installed / "platform-guard", "--help"], cwd=tmp_path, env_extra=wide)
    checkout = _run([sys.executable, "-m", "importer", "--help"], cwd=ROOT, env_extra=wide)
    assert ran.returncode == checkout.returncode == 0, ran.stderr + checkout.stderr
    assert ran.stdout == checkout.stdout
    assert ran.stdout.startswith("usage: platform-guard "), ran.stdout
    verbs = next(action for action in build_parser()._actions if action.dest == "command").choices
    assert verbs and all(re.search(rf"^ {{4}}{re.escape(verb)}( |$)", ran.stdout, re.M) for verb in verbs), ran.stdout


def test_installed_demo_says_it_needs_a_checkout(installed: Path, tmp_path: Path) -> None:
    ran = _run([installed / "platform-guard", "demo"], cwd=tmp_path)
    assert ran.returncode == 2
    assert "the demo runs from a checkout of the repository" in ran.stderr, ran.stderr
    assert "Traceback" not in ran.stderr


def test_installed_check_refuses_a_bad_reference_as_usage(installed: Path, tmp_path: Path) -> None:
    ran = _run([installed / "platform-guard", "check", "Not A Reference!"], cwd=tmp_path)
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert ran.stderr.startswith("error:") and "Traceback" not in ran.stderr, ran.stderr
