"""Every verb's --help ends with examples of the installed command, kept as written (not re-wrapped)."""

from __future__ import annotations

import contextlib
import io

import pytest

from importer.entry.cli import build_parser

VERBS = sorted(next(action for action in build_parser()._actions if action.dest == "command").choices)


def _help(verb: str) -> str:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), pytest.raises(SystemExit) as exited:
        build_parser().parse_args([verb, "--help"])
    assert exited.value.code == 0
    return printed.getvalue()


@pytest.mark.parametrize("verb", VERBS, ids=VERBS)
def test_help_ends_with_examples_of_the_command(verb: str) -> None:
    text = _help(verb)
    assert text.startswith(f"usage: platform-guard {verb} "), text
    _, found, examples = text.partition("\nexamples:\n")
    assert found, f"{verb} --help has no examples section"
    lines = [line for line in examples.splitlines() if line.strip()]
    assert lines and all(line.startswith("  ") for line in lines), examples
    commands = [line.strip() for line in lines if not line.strip().startswith("#")]
    assert any(command.startswith((f"platform-guard {verb}", "scripts/")) for command in commands), examples
