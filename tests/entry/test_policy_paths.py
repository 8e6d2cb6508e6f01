"""A policy nested too deeply reaches no command as a traceback: every way a policy is read exits 2 (or, in the
Functions app, fails start-up with a SettingsError) naming the file or setting and the line.

The ways in: `--policy FILE` (check, serve, work, audit, release), PLATFORM_GUARD_POLICY_FILE, the inline app setting
PLATFORM_GUARD_POLICY, and the Functions runtime built from the environment on first use. Before, each of these was
a RecursionError traceback (exit 1) from PyYAML's recursive composer.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import importer.entry.runtime
from importer.app.settings import SettingsError
from importer.core.policy import MAX_POLICY_NESTING

ROOT = Path(__file__).resolve().parents[2]
DEEP_POLICY = "version: 1\nrules: " + "[" * 5000 + "]" * 5000 + "\n"  # the 33rd list opens on line 2
NESTING = f"nested more than {MAX_POLICY_NESTING} levels deep; a policy needs 4 (line 2)"


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_GUARD_")}
    return subprocess.run([sys.executable, "-m", "importer", *args], cwd=ROOT, env={**environment, **env},
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def deep_file(tmp_path: Path) -> Path:
    path = tmp_path / "deep.yaml"
    path.write_text(DEEP_POLICY)
    return path


# id: (arguments, settings, where the message says the policy came from); {file} is the deep policy file
COMMANDS = {
    "check --policy": (["check", "127.0.0.1:5000/team/app:1", "--policy", "{file}"], {}, "{file}"),
    "check, policy file setting": (["check", "127.0.0.1:5000/team/app:1"],
                                   {"PLATFORM_GUARD_POLICY_FILE": "{file}"}, "{file}"),
    "check, inline policy setting": (["check", "127.0.0.1:5000/team/app:1"],
                                     {"PLATFORM_GUARD_POLICY": DEEP_POLICY}, "PLATFORM_GUARD_POLICY"),
    "serve start": (["serve", "--port", "0", "--workers", "0", "--policy", "{file}"], {}, "{file}"),
    "serve start, inline policy setting": (["serve", "--port", "0", "--workers", "0"],
                                           {"PLATFORM_GUARD_POLICY": DEEP_POLICY}, "PLATFORM_GUARD_POLICY"),
    "work start": (["work", "--policy", "{file}"], {}, "{file}"),
    "work start, policy file setting": (["work"], {"PLATFORM_GUARD_POLICY_FILE": "{file}"}, "{file}"),
    "audit --policy": (["audit", "127.0.0.1:5000", "--policy", "{file}"], {}, "{file}"),
    "release --policy": (["release", "127.0.0.1:5000/quarantine/team/app:1.sha256-" + "a" * 64, "--policy",
                          "{file}"], {}, "{file}"),
}


@pytest.mark.parametrize(("arguments", "settings", "source"), COMMANDS.values(), ids=COMMANDS.keys())
def test_a_deeply_nested_policy_exits_2_naming_its_source_and_line(
    deep_file: Path, tmp_path: Path, arguments: list[str], settings: dict[str, str], source: str
) -> None:
    """Each command that reads a policy stops before doing anything, with exit 2 and `<source>: … (line 2)`."""
    fill = {"file": str(deep_file)}
    env = {"PLATFORM_GUARD_LEDGER": str(tmp_path / "ledger.db"),
           **{name: value.format(**fill) if name != "PLATFORM_GUARD_POLICY" else value
              for name, value in settings.items()}}
    result = _run(*(argument.format(**fill) for argument in arguments), env=env)
    assert result.returncode == 2, (result.stdout, result.stderr[-2000:])
    assert "Traceback" not in result.stderr and "RecursionError" not in result.stderr
    assert f"error: {source.format(**fill)}: {NESTING}" in result.stderr, result.stderr[-2000:]


@pytest.fixture
def fresh_runtime() -> Iterator[None]:
    """No process-wide runtime before and after: the next use builds one from the environment, as at start-up."""
    importer.entry.runtime.reset(None)
    yield
    importer.entry.runtime.reset(None)


@pytest.mark.parametrize("setting", ["PLATFORM_GUARD_POLICY", "PLATFORM_GUARD_POLICY_FILE"])
def test_functions_start_up_with_a_deeply_nested_policy_fails_with_a_settings_error(
    fresh_runtime: None, deep_file: Path, clean_settings: pytest.MonkeyPatch, setting: str
) -> None:
    """The Functions app builds its runtime from the app settings on first use: a deep policy there is a
    SettingsError naming the setting (or file) and the line, not a RecursionError."""
    clean_settings.setenv(setting, DEEP_POLICY if setting == "PLATFORM_GUARD_POLICY" else str(deep_file))
    source = "PLATFORM_GUARD_POLICY" if setting == "PLATFORM_GUARD_POLICY" else str(deep_file)
    with pytest.raises(SettingsError) as refused:
        importer.entry.runtime.current()
    assert str(refused.value) == f"{source}: {NESTING}"
