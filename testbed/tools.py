"""Where the Go tools of the interop tests are: the pins of `scripts/tools.lock`, built by `scripts/build-tools`.

    tool_path("cosign")          # Path(~/.cache/platform-guard/tools/cosign-v2.6.5/cosign), or None if not built
    require_tool("notation")     # in a test: the path, or skip ("notation is not built: run scripts/setup ...")

The tools pinned in `scripts/tools.lock` are built outside the repository, at
`${PLATFORM_GUARD_TOOLS_DIR:-$HOME/.cache/platform-guard/tools}/<tool>-<version>/<tool>`, from that one list of
pins, which the build script reads too. A test that needs one calls `require_tool`: where Go is missing the tool is
missing and the test is skipped, unless `PLATFORM_GUARD_REQUIRE_TOOLS=1` (CI), which makes it fail instead.

pytest is imported only inside `require_tool`: the demo imports the testbed without pytest around.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
LOCK_FILE = REPOSITORY_ROOT / "scripts" / "tools.lock"
TOOLS_DIR_VARIABLE = "PLATFORM_GUARD_TOOLS_DIR"
REQUIRE_VARIABLE = "PLATFORM_GUARD_REQUIRE_TOOLS"


@dataclass(frozen=True, slots=True)
class PinnedTool:
    """One `tool` line of the lock: a binary, the version it is built at, and where that comes from."""

    name: str
    version: str
    module: str
    package: str
    method: str

    def path_in(self, tools_dir: Path) -> Path:
        """Where `scripts/build-tools` puts this tool's binary under `tools_dir`."""
        return tools_dir / f"{self.name}-{self.version}" / self.name


@dataclass(frozen=True, slots=True)
class ToolsLock:
    """The whole lock: the oldest Go that builds every tool, and the tools by name."""

    go_minimum: str
    tools: dict[str, PinnedTool]


def read_lock(path: Path = LOCK_FILE) -> ToolsLock:
    """Parse `scripts/tools.lock` (the format is described at its top); raises ValueError on a malformed line."""
    go_minimum = ""
    tools: dict[str, PinnedTool] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if fields[0] == "go" and len(fields) == 2:
            go_minimum = fields[1]
        elif fields[0] == "tool" and len(fields) == 6:
            tool = PinnedTool(*fields[1:])
            tools[tool.name] = tool
        else:
            raise ValueError(f"{path}:{number}: expected `go VERSION` or `tool NAME VERSION MODULE PACKAGE HOW`")
    if not go_minimum:
        raise ValueError(f"{path}: no `go VERSION` line")
    return ToolsLock(go_minimum=go_minimum, tools=tools)


def tools_dir() -> Path:
    """The cache the tools are built into (`PLATFORM_GUARD_TOOLS_DIR`, else ~/.cache/platform-guard/tools)."""
    configured = os.environ.get(TOOLS_DIR_VARIABLE)
    return Path(configured) if configured else Path.home() / ".cache" / "platform-guard" / "tools"


def tool_path(name: str) -> Path | None:
    """The built binary of tool `name` at its pinned version, or None when it is not built (or not pinned)."""
    tool = read_lock().tools.get(name)
    if tool is None:
        return None
    path = tool.path_in(tools_dir())
    return path if path.is_file() and os.access(path, os.X_OK) else None


def pinned_version(name: str) -> str:
    """The version `scripts/tools.lock` pins for `name`; KeyError if it pins none."""
    return read_lock().tools[name].version


def missing_tool_message(name: str) -> str:
    """Why tool `name` cannot be used, and what to do about it."""
    lock = read_lock()
    if name not in lock.tools:
        return f"{name} is not pinned in scripts/tools.lock, so no setup builds it (pinned: {', '.join(lock.tools)})"
    return f"{name} is not built: run scripts/setup with Go ≥ {lock.go_minimum} installed"


def tools_required() -> bool:
    """Whether a missing tool is an error rather than a reason to skip (`PLATFORM_GUARD_REQUIRE_TOOLS=1`)."""
    return os.environ.get(REQUIRE_VARIABLE) == "1"


def require_tool(name: str) -> Path:
    """In a test: the path of tool `name`; if it is not built, skip the test — or fail it when tools are required.

    A name the lock does not pin always fails: no setup could ever provide it, so skipping would hide a typo.
    """
    import pytest  # lazily: only tests call this, and the demo imports the testbed without pytest

    path = tool_path(name)
    if path is not None:
        return path
    message = missing_tool_message(name)
    if tools_required() or name not in read_lock().tools:
        pytest.fail(f"{message} ({REQUIRE_VARIABLE}=1)" if tools_required() else message, pytrace=False)
    pytest.skip(message)
