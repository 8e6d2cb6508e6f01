"""Every numeric command-line flag (and the host's maxDequeueCount override) is read strictly, in a documented range.

The flags are parsed by the real parser (`importer.entry.cli.build_parser`): a bad value exits 2 with argparse's
usage message naming the flag and its range, before anything runs. A few commands run end to end in a subprocess,
where the bad values used to give tracebacks (`outcomes --limit` with a huge number: OverflowError from SQLite;
`serve --port 99999`: OverflowError from bind; `redrive ²`: ValueError) or silently did something else (a negative
`--limit` listed every row).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from importer.adapters.ledger.sqlite import SqliteLedger
from importer.core.outcome import Outcome
from importer.entry.cli import build_parser
from importer.entry.queue_trigger import MAX_DEQUEUE_COUNT_OVERRIDE, host_max_dequeue_count

ROOT = Path(__file__).resolve().parents[2]

# What people (and attackers) type where a number belongs; none is a number in any flag's range.
HOSTILE_NUMBERS = {
    "nan": "nan", "inf": "inf", "minus-inf": "-inf", "huge": "9" * 30, "huge-exponent": "1e999", "exponent": "1e3",
    "negative": "-1", "far-negative": "-99999999999999999999", "hex": "0x10", "padded": "  3 ", "plus-sign": "+3",
    "underscore": "3_0", "fraction": "3.5", "fullwidth-digit": "\uff13", "arabic-indic-digit": "\u0663",
    "superscript-digit": "\u00b2", "word": "three", "empty": "", "newline": "3\n", "very-long": "1" * 100_000,
}

# "command --flag": (the command line before the flag, least, most, default)
NUMERIC_FLAGS: dict[str, tuple[list[str], int, int, int | None]] = {
    "copy --parallel": (["copy", "127.0.0.1:5000/a:1", "127.0.0.1:5000/b"], 1, 64, 4),
    "serve --port": (["serve"], 0, 65535, 7071),
    "serve --threads": (["serve"], 1, 64, 4),
    "serve --workers": (["serve"], 0, 32, 1),
    "work --threads": (["work"], 1, 64, 4),
    "outcomes --limit": (["outcomes"], 1, 100_000, 50),
    "audit --parallel": (["audit"], 1, 64, 8),
    "audit --page-size": (["audit"], 1, 10_000, None),
    "doctor --timeout": (["doctor"], 1, 600, 30),
}


def _parse(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[argparse.Namespace | None, str]:
    """(the parsed arguments, or None when the parser refused them; what it wrote to stderr)."""
    try:
        parsed = build_parser().parse_args(arguments)
    except SystemExit as exit:
        assert exit.code == 2
        return None, capsys.readouterr().err
    return parsed, capsys.readouterr().err


def _refusal_cases() -> list[tuple[str, str, str]]:
    cases = []
    for key, (_, least, most, _) in NUMERIC_FLAGS.items():
        numbers = {**HOSTILE_NUMBERS, "below-the-range": str(least - 1), "above-the-range": str(most + 1)}
        cases += [(key, number, case) for case, number in numbers.items()]
    return cases


REFUSALS = _refusal_cases()


@pytest.mark.parametrize(("key", "value"), [case[:2] for case in REFUSALS],
                         ids=[f"{key}={case}" for key, _, case in REFUSALS])
def test_every_numeric_flag_refuses_what_is_not_a_number_in_its_range(
    key: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each hostile number exits 2 with a usage error naming the flag and its range, never a traceback."""
    command, flag = key.split()
    before, least, most, _ = NUMERIC_FLAGS[key]
    parsed, error = _parse([*before, f"{flag}={value}"], capsys)
    assert parsed is None, f"{key}={value!r} was accepted as {parsed}"
    assert f"argument {flag}: expected a whole number from {least} to {most}" in error
    assert "Traceback" not in error and len(error) < 2000


IN_RANGE = [(key, value) for key, (_, least, most, _) in NUMERIC_FLAGS.items() for value in (least, most)]


@pytest.mark.parametrize(("key", "value"), IN_RANGE, ids=[f"{key}={value}" for key, value in IN_RANGE])
def test_every_numeric_flag_reads_both_ends_of_its_range(
    key: str, value: int, capsys: pytest.CaptureFixture[str]
) -> None:
    command, flag = key.split()
    before, _, _, default = NUMERIC_FLAGS[key]
    parsed, error = _parse([*before, f"{flag}={value}"], capsys)
    assert parsed is not None, error
    assert getattr(parsed, flag.lstrip("-").replace("-", "_")) == value
    unset, _ = _parse(before, capsys)
    assert getattr(unset, flag.lstrip("-").replace("-", "_")) == default


def test_the_table_lists_every_flag_that_takes_a_value_other_than_text() -> None:
    """A flag added later with a numeric type must join the table above (and so be read strictly)."""
    parser = build_parser()
    subcommands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    typed = {
        f"{command} {action.option_strings[-1]}"
        for command, subparser in subcommands.choices.items()
        for action in subparser._actions
        if action.type is not None and action.option_strings
    }
    assert typed == set(NUMERIC_FLAGS)


MESSAGE_IDS = {"superscript-digit": "\u00b2", "fullwidth-digit": "\uff13", "control-character": "1\x1b[2J",
               "too-long": "1" * 200, "empty": ""}


@pytest.mark.parametrize("message_id", MESSAGE_IDS.values(), ids=MESSAGE_IDS.keys())
def test_redrive_refuses_message_ids_no_queue_gives(message_id: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Message ids are what `outcomes --failed` lists (digits, or a Storage queue GUID): anything else exits 2."""
    parsed, error = _parse(["redrive", message_id], capsys)
    assert parsed is None and "argument MESSAGE_ID" in error


@pytest.mark.parametrize("message_id", ["17", "7d3f0c2e-4b1a-4c8e-9f6d-2a5b8c1e0f3d"], ids=["sqlite", "storage-queue"])
def test_redrive_reads_the_message_ids_queues_give(message_id: str, capsys: pytest.CaptureFixture[str]) -> None:
    parsed, error = _parse(["redrive", message_id], capsys)
    assert parsed is not None and parsed.message_ids == [message_id], error


# -- end to end ---------------------------------------------------------------------------------------------------


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_GUARD_")}
    return subprocess.run([sys.executable, "-m", "importer", *args], cwd=ROOT, env={**environment, **env},
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def ledger_with_three_outcomes(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "ledger.db"
    ledger = SqliteLedger(path)
    for number in range(3):
        ledger.record(Outcome(event_id=f"e{number}", received_at=f"2026-11-26T00:00:0{number}Z", result="compliant",
                              repository="a/b", reference=f"r.example/a/b:{number}"))
    ledger.close()
    return {"PLATFORM_GUARD_LEDGER": str(path)}


COMMAND_LINES = {
    "outcomes-huge-limit": ["outcomes", "--limit", "99999999999999999999"],
    "outcomes-negative-limit": ["outcomes", "--limit", "-1"],
    "outcomes-zero-limit": ["outcomes", "--limit", "0"],
    "dead-letters-huge-limit": ["outcomes", "--failed", "--limit", "99999999999999999999"],
    "serve-port-beyond-65535": ["serve", "--port", "99999", "--workers", "0"],
    "serve-huge-thread-count": ["serve", "--threads", "99999999999999", "--workers", "0", "--port", "0"],
    "redrive-superscript-id": ["redrive", "\u00b2"],
}


@pytest.mark.parametrize("arguments", COMMAND_LINES.values(), ids=COMMAND_LINES.keys())
def test_bad_numbers_exit_2_before_anything_runs(ledger_with_three_outcomes: dict[str, str],
                                                 arguments: list[str]) -> None:
    """As the operator runs them: exit 2 with a usage message, no traceback, no rows, nothing started."""
    result = _run(*arguments, env=ledger_with_three_outcomes)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "usage: platform-guard" in result.stderr
    assert result.stdout == ""


def test_outcomes_limit_still_limits(ledger_with_three_outcomes: dict[str, str]) -> None:
    result = _run("outcomes", "--json", "--limit", "2", env=ledger_with_three_outcomes)
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 2


# -- the Functions host's maxDequeueCount override (an app setting) -----------------------------------------------


@pytest.mark.parametrize("value", [*HOSTILE_NUMBERS.values(), "0", "1001"],
                         ids=[*HOSTILE_NUMBERS.keys(), "zero", "above-the-range"])
def test_the_max_dequeue_count_override_is_read_strictly(value: str) -> None:
    """The app setting that overrides host.json's maxDequeueCount: the same strict whole number, 1 to 1000."""
    if value == "":
        assert host_max_dequeue_count({MAX_DEQUEUE_COUNT_OVERRIDE: value}) >= 1  # unset: host.json's
        return
    with pytest.raises(ValueError, match=r"maxDequeueCount in \S+: expected a whole number from 1 to 1000") as refused:
        host_max_dequeue_count({MAX_DEQUEUE_COUNT_OVERRIDE: value})
    assert len(str(refused.value)) < 400
