"""Shared fixtures: real registries, a guarded registry stack, an image builder and Azurite, all on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from testbed.azurite import Azurite, node_binary
from testbed.images import ImageBuilder
from testbed.registry import REFERRERS_API_TOOL, V3_TOOL, LocalRegistry, ReferrersApiRegistry
from testbed.stack import GuardedRegistry
from testbed.tools import require_tool


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
def registry_v3(tmp_path: Path) -> Iterator[LocalRegistry]:
    """A plain distribution v3 registry (built by scripts/setup; skipped where it is not, failed with
    PLATFORM_GUARD_REQUIRE_TOOLS=1), stopped after the test."""
    require_tool(V3_TOOL)
    with LocalRegistry(tmp_path / "plain-registry-v3", flavour="v3") as running:
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


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the figures tests measured (fault injection counts and the like) at the end of the run."""
    from tests.figures import FIGURES

    for section, lines in FIGURES.items():
        terminalreporter.section(section)
        for line in lines:
            terminalreporter.write_line(line)
