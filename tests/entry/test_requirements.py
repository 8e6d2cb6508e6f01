"""requirements.txt pins what the deployed app imports, and nothing it never imports (every pin ships in every deploy).

The package the app ships is function_app.py and importer/ (tests/infra/test_package.py); their imports, every one
(function-level and lazy imports included), are read from the source. Each pin names the module it is for; the test
checks that the distribution provides that module and that shipped code imports it.
"""

from __future__ import annotations

import ast
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest

from tests.requirement_pins import pins

ROOT = Path(__file__).resolve().parents[2]
# Each pinned distribution and the module the app imports from it.
MODULE_OF = {
    "azure-functions": "azure.functions",
    "azure-eventgrid": "azure.eventgrid",
    "azure-identity": "azure.identity",
    "azure-data-tables": "azure.data.tables",
    "azure-storage-queue": "azure.storage.queue",
    "azure-mgmt-containerregistry": "azure.mgmt.containerregistry",
    "azure-monitor-opentelemetry": "azure.monitor.opentelemetry",
    "pyyaml": "yaml",
    "urllib3": "urllib3",
}
# Not pinned on purpose: ACR's data plane goes through our OciRegistry-based AcrRegistry (docs/design.md, "Azure
# adapters"); nothing imports the SDK.
NOT_SHIPPED = ("azure-containerregistry",)


def shipped_imports() -> set[str]:
    """Every module named by an import statement in function_app.py and importer/, with its parent packages."""
    names: set[str] = set()
    for path in [ROOT / "function_app.py", *sorted((ROOT / "importer").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                parts = module.split(".")
                names.update(".".join(parts[:end]) for end in range(1, len(parts) + 1))
    return names


def test_every_pin_is_a_module_the_app_imports() -> None:
    """The pins are exactly the distributions of MODULE_OF, and shipped code imports each one's module."""
    pinned = pins(ROOT / "requirements.txt")
    assert sorted(pinned) == sorted(MODULE_OF)
    imported = shipped_imports()
    assert [name for name, module in MODULE_OF.items() if module not in imported] == []


@pytest.mark.parametrize("name", sorted(MODULE_OF))
def test_each_pinned_distribution_provides_its_module(name: str) -> None:
    """The installed distribution of each pin (the version pinned) holds the module it is pinned for."""
    try:
        installed = distribution(name)
    except PackageNotFoundError:
        pytest.fail(f"{name} is pinned but not installed: pip install -r requirements-dev.txt")
    assert installed.version == pins(ROOT / "requirements.txt")[name]
    package = MODULE_OF[name].replace(".", "/")
    assert any(str(file) in (f"{package}/__init__.py", f"{package}.py") for file in installed.files or ())


def test_the_acr_data_plane_sdk_is_neither_pinned_nor_imported() -> None:
    """azure-containerregistry is not shipped: not in requirements.txt (nor the dev requirements, which include it),
    and no shipped module imports azure.containerregistry."""
    for requirements in ("requirements.txt", "requirements-dev.txt"):
        assert not set(NOT_SHIPPED) & set(pins(ROOT / requirements)), requirements
    assert "azure.containerregistry" not in shipped_imports()
