"""Shared fixtures: real registries, a guarded registry stack, an image builder, Azurite, the signing tools (cosign,
notation), all on 127.0.0.1, and a clean PLATFORM_GUARD_* environment."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from testbed.azurite import Azurite, node_binary
from testbed.images import ImageBuilder
from testbed.registry import REFERRERS_API_TOOL, V3_TOOL, LocalRegistry, ReferrersApiRegistry
from testbed.signing import Cosign, Notation
from testbed.stack import GuardedRegistry
from testbed.tools import require_tool


@pytest.fixture
def clean_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No PLATFORM_GUARD_* setting from outside the test, and the ledger in the test's folder; returns the
    monkeypatch, for the module's own settings (DOCKER_CONFIG, PATH, ...) on top."""
    for name in list(os.environ):
        if name.startswith("PLATFORM_GUARD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PLATFORM_GUARD_LEDGER", str(tmp_path / "ledger.db"))
    return monkeypatch


@pytest.fixture
def builder(tmp_path: Path) -> ImageBuilder:
    """An empty OCI layout to build test images in."""
    return ImageBuilder(tmp_path / "layout")


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[LocalRegistry]:
    """A plain distribution registry (no notifications), stopped after the test."""
    with LocalRegistry(tmp_path / "plain-registry") as running:
        yield running


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[LocalRegistry]:
    """A second plain registry, the upstream that re-imports come from, stopped after the test."""
    with LocalRegistry(tmp_path / "upstream") as running:
        yield running


@pytest.fixture
def target_registry(tmp_path: Path) -> Iterator[LocalRegistry]:
    """A second, independent plain registry to copy into, stopped after the test."""
    with LocalRegistry(tmp_path / "target-registry") as running:
        yield running


@pytest.fixture(
    params=[pytest.param("2.8", id="distribution-2.8"), pytest.param("v3", id="distribution-v3")],
)
def any_registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LocalRegistry]:
    """Each plain registry flavour in turn: the test runs once on distribution 2.8 and once on v3 (skipped, or failed
    with PLATFORM_GUARD_REQUIRE_TOOLS=1, where v3 is not built)."""
    if request.param == "v3":
        require_tool(V3_TOOL)
    with LocalRegistry(tmp_path / f"plain-registry-{request.param}", flavour=request.param) as running:
        yield running


@pytest.fixture
def referrers_registry(tmp_path: Path) -> Iterator[ReferrersApiRegistry]:
    """A registry that serves the OCI referrers API (olareg, built by scripts/setup; skipped where it is not, failed
    with PLATFORM_GUARD_REQUIRE_TOOLS=1), stopped after the test."""
    require_tool(REFERRERS_API_TOOL)
    with ReferrersApiRegistry(tmp_path / "referrers-registry") as running:
        yield running


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Callable[..., GuardedRegistry]]:
    """Start a registry guarded by a local host with the given policy text: `stack = guarded(POLICY)`."""
    stacks: list[GuardedRegistry] = []

    def start(policy_text: str | None = None, **options: object) -> GuardedRegistry:
        stack = GuardedRegistry(tmp_path / f"stack-{len(stacks)}", policy_text, **options)  # type: ignore[arg-type]
        stacks.append(stack.start())
        return stack

    yield start
    for stack in stacks:
        stack.stop()


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """One Azurite (blob, queue and table services) for the module, on free loopback ports; skipped only where node
    itself is missing."""
    if node_binary() is None:
        pytest.skip("node is not installed (Debian: apt-get install nodejs npm), so Azurite cannot run")
    with Azurite(tmp_path_factory.mktemp("azurite")) as running:
        yield running


@pytest.fixture(scope="session")
def cosign(tmp_path_factory: pytest.TempPathFactory) -> Cosign:
    """The real cosign (built by scripts/setup; skipped where it is not, failed with PLATFORM_GUARD_REQUIRE_TOOLS=1)
    with one key pair for the session: every test's registry is its own, so no test sees another's signatures. A
    test that needs a second signer makes its own `Cosign`."""
    return Cosign(tmp_path_factory.mktemp("cosign"), require_tool("cosign"))


@pytest.fixture(scope="session")
def notation(tmp_path_factory: pytest.TempPathFactory) -> Notation:
    """The real notation with one test CA, key and trust policy for the session (like `cosign`)."""
    return Notation(tmp_path_factory.mktemp("notation"), require_tool("notation"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the figures tests measured (fault injection counts and the like) at the end of the run."""
    from tests.figures import FIGURES

    for section, lines in FIGURES.items():
        terminalreporter.section(section)
        for line in lines:
            terminalreporter.write_line(line)
