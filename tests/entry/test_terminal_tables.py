"""Tables for people fit the terminal, in colour, and the CLI stops quietly when its reader goes away.

A new user found `outcomes` lines of 532 characters and `audit` ones of 578, the reference cut while the reason printed
full digests, no colour, a BrokenPipeError traceback under `… | head`, and "2 attestation", "1 index entry disagree",
"1 tags". Here: the renderers (importer.entry.terminal, importer.entry.audit_report.format_summary) at 60, 80 and 120
columns and unlimited, with a 71-character digest and a 300-character reason; the shorteners; when colour is on (a
real pty against a pipe, NO_COLOR, TERM=dumb, FORCE_COLOR); the real CLI on a pty and in a `| head -1` pipeline over a
SQLite ledger holding thousands of outcomes; and each message that counts something.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import pytest

from importer.adapters.ledger.sqlite import SqliteLedger
from importer.app.sweep import SweepItem, SweepReport
from importer.core.artifacts import REFERRERS, Artifact
from importer.core.charts import ChartImage, ChartInfo
from importer.core.decide import Facts, Inconsistency, Offer, decide
from importer.core.excerpts import json_excerpt
from importer.core.outcome import Outcome
from importer.core.platforms import parse
from importer.core.policy import Rule
from importer.entry.audit_report import format_summary
from importer.entry.cli import EXIT_CLOSED_PIPE, _reader_gone
from importer.entry.progress import ProgressBar, TagProgressBar
from importer.entry.terminal import (
    ELLIPSIS,
    Display,
    colour_wanted,
    display_for,
    format_chart_table,
    format_dead_letters,
    format_outcomes,
    sanitise,
    shorten_end,
    shorten_list,
    shorten_middle,
    shorten_reason,
    shorten_time,
    text_width,
)
from importer.ports.queue import DeadLetter

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
HEX = "0123456789abcdef" * 4
DIGEST = f"sha256:{HEX}"  # 71 characters
REFERENCE = f"127.0.0.1:5000/team/app@{DIGEST}"
REASON = f"offers linux/arm64; index {DIGEST} " + "x" * (300 - len(f"offers linux/arm64; index {DIGEST} "))
COLOUR_CODE = re.compile(r"\x1b\[[0-9;]*m")
# A cut escape would read as another text: `\x1` then the next character.
BROKEN_ESCAPE = re.compile(r"\\x(?![0-9a-f]{2})|\\u(?![0-9a-f]{4})")


def visible(text: str) -> str:
    return COLOUR_CODE.sub("", text)


def widest(text: str) -> int:
    return max(text_width(visible(line)) for line in text.split("\n"))


# -- the renderers, fitted ------------------------------------------------------------------------------------------


def outcome(result: str, number: int = 1) -> Outcome:
    return Outcome(event_id=f"e{number}", received_at="2026-11-26T10:00:00.123Z", result=result, repository="team/app",
                   reference=REFERENCE, platforms=("linux/amd64", "linux/arm64"), reason=REASON)


def outcomes_table(display: Display) -> str:
    return format_outcomes([outcome("quarantined", 1), outcome("compliant", 2)], display)


def chart_table(display: Display) -> str:
    image = ChartImage(REFERENCE, "127.0.0.1:5000", "team/app", None, DIGEST, ("linux/amd64", "linux/arm64"),
                       ("values:image", "annotation:artifacthub.io/images"), False)
    return format_chart_table(ChartInfo("shop", "1.0.0", "1.0", ("linux/amd64",), (image,), ("sub",),
                                        (REASON,)), display)


def dead_letters(display: Display) -> str:
    return format_dead_letters([DeadLetter("7", f"127.0.0.1:5000/team/app@{DIGEST}", "{}", 5, 0.0, 0.0, REASON)],
                               display)


def audit_summary(display: Display) -> str:
    violation = SweepItem(registry="127.0.0.1:5000", repository="team/app", tag="1", status="violation",
                          digest=DIGEST, verdict="violation", action="quarantine", reason=REASON,
                          suggestion=f"platform-guard copy {REFERENCE} 127.0.0.1:5000/team/app:1 --platform amd64")
    failed = SweepItem(registry="127.0.0.1:5000", repository="team/b", tag="2", status="failed", error=REASON)
    report = SweepReport(sweep_id="s1", registry="127.0.0.1:5000", mode="dry-run", repositories=None,
                         started_at="2026-11-26T10:00:00Z", finished_at="2026-11-26T10:00:01Z", duration_seconds=1.0,
                         items=(violation, failed), repository_errors=(("team/c", REASON),),
                         policy_source="policy.yaml")
    return format_summary(report, display)


RENDERERS: dict[str, Callable[[Display], str]] = {
    "outcomes": outcomes_table,
    "chart-images": chart_table,
    "outcomes-failed": dead_letters,
    "audit-summary": audit_summary,
}
WIDTHS = [pytest.param(width, id=f"{width}-columns") for width in (60, 80, 120)]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("colour", [pytest.param(False, id="plain"), pytest.param(True, id="colour")])
@pytest.mark.parametrize("render", RENDERERS.values(), ids=RENDERERS.keys())
def test_every_line_fits_the_width(render: Callable[[Display], str], width: int, colour: bool) -> None:
    """No line is wider than the terminal (colour codes take no column); the digest stays recognisable, shortened in
    the middle; a note says values were shortened."""
    shown = render(Display(width, colour))
    assert widest(shown) <= width, shown
    assert DIGEST not in shown and ELLIPSIS in shown
    assert re.search(r"sha256:0[0-9a-f]*…[0-9a-f]*f\b", visible(shown)), shown
    assert any(line.startswith("(… marks a shortened value; --wide") for line in visible(shown).split("\n"))
    assert BROKEN_ESCAPE.search(shown) is None


@pytest.mark.parametrize("render", RENDERERS.values(), ids=RENDERERS.keys())
def test_wide_prints_every_value_whole(render: Callable[[Display], str]) -> None:
    """No width (a pipe, a file, --wide): the full digest and the full reason, no ellipsis, no note, no colour."""
    shown = render(Display())
    assert DIGEST in shown and REASON in shown and ELLIPSIS not in shown and "--wide" not in shown
    assert COLOUR_CODE.search(shown) is None
    assert widest(shown) > 300


def test_the_widest_least_important_column_gives_way_first() -> None:
    """At 160 columns the outcome's reason gives way before its reference, and the result never does; digests in
    both are shortened alike."""
    rows = [re.split(r"  +", line) for line in outcomes_table(Display(160)).split("\n")[1:3]]
    assert [cells[1] for cells in rows] == ["compliant", "quarantined"]  # oldest first
    cells = rows[1]
    assert cells[2] == f"127.0.0.1:5000/team/app@sha256:{HEX[:8]}…{HEX[-4:]}"  # the digest only shortened
    assert text_width(cells[4]) < len(REASON) and cells[4].endswith(ELLIPSIS)  # the reason, the widest, gave way
    assert cells[4].startswith(f"offers linux/arm64; index sha256:{HEX[:8]}…{HEX[-4:]}")  # its digest shortened too


def test_the_result_is_coloured_on_a_terminal() -> None:
    shown = outcomes_table(Display(120, colour=True))
    assert "\x1b[31mquarantined\x1b[0m" in shown and "\x1b[32mcompliant\x1b[0m" in shown
    assert "\x1b[" not in outcomes_table(Display(120, colour=False))


# -- the shorteners -------------------------------------------------------------------------------------------------


SHORTENED = [
    pytest.param(shorten_middle, DIGEST, 71, DIGEST, id="digest-fits"),
    pytest.param(shorten_middle, DIGEST, 20, f"sha256:{HEX[:8]}…{HEX[-4:]}", id="digest-20"),
    pytest.param(shorten_middle, DIGEST, 16, f"sha256:{HEX[:4]}…{HEX[-4:]}", id="digest-16"),
    pytest.param(shorten_middle, REFERENCE, 44, f"127.0.0.1:5000/team/app@sha256:{HEX[:8]}…{HEX[-4:]}",
                 id="reference-digest-first"),
    pytest.param(shorten_middle, "127.0.0.1:5000/very/long/repository/name:tag-1.2.3", 30,
                 "127.0.0.1:5000/…name:tag-1.2.3", id="reference-middle"),
    pytest.param(shorten_middle, "sha256-" + HEX + ".sig", 20, f"sha256-{HEX[:4]}…{HEX[-4:]}.sig",
                 id="cosign-tag"),
    pytest.param(shorten_middle, sanitise("ab\x1b\x1bcd"), 9, "ab…cd", id="escape-kept-whole"),
    pytest.param(shorten_middle, sanitise("ab\x1bcdefghijkl"), 13, "ab\\x1b…ghijkl", id="escape-kept-whole-13"),
    pytest.param(shorten_end, sanitise("abc\x1bdef"), 6, "abc…", id="escape-not-cut"),
    pytest.param(shorten_end, "日本語のテキスト", 7, "日本語…", id="wide-characters"),
    pytest.param(shorten_reason, REASON, 60, f"offers linux/arm64; index sha256:{HEX[:8]}…{HEX[-4:]} {'x' * 12}…",
                 id="reason-digest-then-end"),
    pytest.param(shorten_time, "2026-11-26T10:00:00.123Z", 18, "2026-11-26T10:00", id="time-to-the-minute"),
    pytest.param(shorten_time, "2026-11-26T10:00:00.123Z", 12, "2026-11-26", id="time-to-the-day"),
    pytest.param(shorten_list, "linux/amd64,linux/arm64,linux/s390x", 25, "linux/amd64,linux/arm64,…", id="list"),
    pytest.param(shorten_list, "linux/amd64,linux/arm64", 8, "linux/a…", id="list-first-item-cut"),
]


@pytest.mark.parametrize(("shorten", "text", "width", "expected"), SHORTENED)
def test_shorteners(shorten: Callable[[str, int], str], text: str, width: int, expected: str) -> None:
    assert shorten(text, width) == expected
    assert text_width(expected) <= width


@pytest.mark.parametrize("shorten", [shorten_middle, shorten_end, shorten_reason, shorten_list, shorten_time],
                         ids=lambda shorten: shorten.__name__)
def test_shorteners_never_exceed_the_width_nor_cut_an_escape(shorten: Callable[[str, int], str]) -> None:
    text = sanitise(f"2026-11-26T10:00:00Z,{REFERENCE}\x1b[2J,\u202e{REASON},日本")
    for width in range(0, len(text) + 2):
        shown = shorten(text, width)
        assert text_width(shown) <= width, (width, shown)
        assert BROKEN_ESCAPE.search(shown) is None, (width, shown)


# -- when there is colour, and how wide -----------------------------------------------------------------------------


@contextmanager
def stream_of(kind: str) -> Iterator[TextIO]:
    """The writing end of a real pty or a real pipe, as a text stream."""
    if kind == "pty":
        reader, writer = os.openpty()
    else:
        reader, writer = os.pipe()
    stream = os.fdopen(writer, "w")
    try:
        yield stream
    finally:
        stream.close()
        os.close(reader)


COLOUR_CASES = [
    pytest.param("pty", {}, True, id="terminal"),
    pytest.param("pipe", {}, False, id="pipe"),
    pytest.param("pty", {"NO_COLOR": "1"}, False, id="terminal-NO_COLOR"),
    pytest.param("pty", {"NO_COLOR": ""}, True, id="terminal-NO_COLOR-empty"),
    pytest.param("pty", {"TERM": "dumb"}, False, id="terminal-TERM-dumb"),
    pytest.param("pty", {"TERM": "xterm-256color"}, True, id="terminal-TERM-xterm"),
    pytest.param("pipe", {"FORCE_COLOR": "1"}, True, id="pipe-FORCE_COLOR"),
    pytest.param("pipe", {"FORCE_COLOR": ""}, False, id="pipe-FORCE_COLOR-empty"),
    pytest.param("pty", {"NO_COLOR": "1", "FORCE_COLOR": "1"}, False, id="NO_COLOR-wins"),
]


@pytest.mark.parametrize(("kind", "environ", "expected"), COLOUR_CASES)
def test_colour_wanted(kind: str, environ: dict[str, str], expected: bool) -> None:
    with stream_of(kind) as stream:
        assert colour_wanted(stream, environ) is expected


@pytest.mark.parametrize(
    ("kind", "wide", "expected"),
    [pytest.param("pty", False, 77, id="terminal-COLUMNS"), pytest.param("pty", True, None, id="terminal-wide"),
     pytest.param("pipe", False, None, id="pipe-whole")],
)
def test_display_width(kind: str, wide: bool, expected: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "77")
    with stream_of(kind) as stream:
        assert display_for(stream, wide=wide, environ={}).width == expected


@pytest.mark.parametrize(
    ("bar", "expected"),
    [pytest.param(lambda stream: TagProgressBar(f"auditing {REFERENCE}", stream=stream, columns=60), "1/1 tag",
                  id="tags"),
     pytest.param(lambda stream: ProgressBar(f"copying {REFERENCE}", stream=stream, columns=60), "1/1 blob",
                  id="blobs")],
)
def test_progress_bar_stays_narrower_than_the_terminal(bar: Callable[[TextIO], ProgressBar], expected: str) -> None:
    """A line as wide as the terminal would wrap, and `\\r` could no longer redraw it in place."""
    with stream_of("pty") as stream:
        drawn = bar(stream)
        drawn.start(1, total_items=1)
        drawn.advance(1, items=1)
        shown = drawn.render()
    assert text_width(shown) <= 59 and ELLIPSIS in shown and shown.endswith((expected, "100%"))
    assert expected in shown


# -- the CLI: on a terminal, and in a pipeline ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def full_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite ledger of 3000 outcomes, each with a long reference and reason: more than a pipe holds."""
    path = tmp_path_factory.mktemp("ledger") / "ledger.db"
    ledger = SqliteLedger(path)
    try:
        for number in range(3000):
            ledger.record(outcome(("compliant", "quarantined", "ignored")[number % 3], number))
    finally:
        ledger.close()
    return path


def cli_environment(ledger: Path, **settings: str) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("PLATFORM_GUARD_") and key not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS")}
    return {**environment, "PLATFORM_GUARD_LEDGER": str(ledger), **settings}


def run_on_a_pty(args: list[str], environment: dict[str, str]) -> tuple[str, str, int]:
    """`python -m importer ARGS` with stdout on a real pty; its output, its stderr and its exit status."""
    reader, writer = os.openpty()
    process = subprocess.Popen([sys.executable, "-m", "importer", *args], cwd=ROOT, env=environment,
                               stdout=writer, stderr=subprocess.PIPE)
    os.close(writer)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(reader, 65536)
        except OSError:  # EIO: the pty's other side closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(reader)
    _, stderr = process.communicate(timeout=60)
    return b"".join(chunks).decode().replace("\r\n", "\n"), stderr.decode(), process.returncode


TERMINAL_RUNS = [
    pytest.param(["outcomes", "--limit", "5"], {"COLUMNS": "80"}, 80, True, id="outcomes-80-colour"),
    pytest.param(["outcomes", "--limit", "5"], {"COLUMNS": "120", "NO_COLOR": "1"}, 120, False,
                 id="outcomes-120-NO_COLOR"),
    pytest.param(["outcomes", "--limit", "5", "--wide"], {"COLUMNS": "80", "TERM": "dumb"}, None, False,
                 id="outcomes-wide-TERM-dumb"),
]


@pytest.mark.parametrize(("args", "settings", "width", "coloured"), TERMINAL_RUNS)
def test_outcomes_on_a_terminal(full_ledger: Path, args: list[str], settings: dict[str, str], width: int | None,
                                coloured: bool) -> None:
    shown, stderr, status = run_on_a_pty(args, cli_environment(full_ledger, **settings))
    assert status == 0 and stderr == "", stderr
    assert bool(COLOUR_CODE.search(shown)) is coloured
    lines = shown.rstrip("\n").split("\n")
    if width is None:
        assert DIGEST in shown and REASON in shown
    else:
        assert widest(shown) <= width and DIGEST not in shown and "--wide" in lines[-1]
    assert len(lines) == 1 + 5 + (0 if width is None else 1)


PIPELINES = [
    pytest.param(["outcomes", "--limit", "3000"], id="outcomes"),
    pytest.param(["outcomes", "--limit", "3000", "--json"], id="outcomes-json"),
    pytest.param(["outcomes", "--limit", "3000", "--all", "--wide"], id="outcomes-all-wide"),
]


@pytest.mark.parametrize("args", PIPELINES)
def test_a_closed_pipe_ends_quietly(full_ledger: Path, args: list[str]) -> None:
    """`python -m importer outcomes | head -1`: head reads one line and exits; the CLI, still writing (3000 long
    lines do not fit a pipe's buffer), stops without a traceback, with the status a shell shows for SIGPIPE."""
    writer = subprocess.Popen([sys.executable, "-m", "importer", *args], cwd=ROOT, env=cli_environment(full_ledger),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert writer.stdout is not None
    head = subprocess.Popen(["head", "-1"], stdin=writer.stdout, stdout=subprocess.PIPE)
    writer.stdout.close()  # head holds the only reading end: when it exits, the pipe is closed
    first, _ = head.communicate(timeout=60)
    stderr = writer.stderr.read() if writer.stderr is not None else b""
    assert writer.wait(timeout=60) == EXIT_CLOSED_PIPE
    assert stderr == b""
    assert first.count(b"\n") == 1 and (b"RECEIVED" in first or first.startswith(b"{"))


@pytest.mark.parametrize(("reader_open", "gone"), [pytest.param(False, True, id="reader-closed"),
                                                  pytest.param(True, False, id="reader-open")])
def test_only_a_closed_stdout_is_a_closed_pipe(reader_open: bool, gone: bool) -> None:
    """main() ends quietly only when stdout's reader went away; a BrokenPipeError from a socket (a registry hanging
    up) while stdout is fine stays an error."""
    reader, writer = os.pipe()
    if not reader_open:
        os.close(reader)
    with os.fdopen(writer, "w") as stream:
        assert _reader_gone(stream) is gone
    if reader_open:
        os.close(reader)


def test_a_whole_pipe_gets_every_value_whole(full_ledger: Path) -> None:
    """Read to the end, a pipe gets the full digest and reason on every line, no colour, no note."""
    result = subprocess.run([sys.executable, "-m", "importer", "outcomes", "--limit", "3"], cwd=ROOT,
                            env=cli_environment(full_ledger, COLUMNS="60"), capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0 and result.stderr == ""
    lines = result.stdout.rstrip("\n").split("\n")
    assert len(lines) == 4 and all(DIGEST in line and REASON in line for line in lines[1:])
    assert COLOUR_CODE.search(result.stdout) is None


# -- one pluraliser: each message that counts ------------------------------------------------------------------------


def _facts(**fields: object) -> Facts:
    offers = (Offer(parse("linux/arm64"), DIGEST, "application/vnd.oci.image.manifest.v1+json"),)
    return Facts("team/app", DIGEST, "application/vnd.oci.image.index.v1+json", "index", offers,
                 **fields)  # type: ignore[arg-type]


def _inconsistent(count: int) -> tuple[Inconsistency, ...]:
    return tuple(Inconsistency(f"sha256:{n:064x}", parse("linux/amd64"), parse("linux/arm64")) for n in range(count))


def _summary_heading(tags: int) -> str:
    items = tuple(SweepItem(registry="r", repository="a", tag=str(n), status="compliant") for n in range(tags))
    report = SweepReport(sweep_id="s", registry="r", mode="dry-run", repositories=None, started_at="t0",
                         finished_at="t1", duration_seconds=0.0, items=items, policy_source="p")
    return format_summary(report).split("\n")[0]


def _listing(**counts: int) -> str:
    return Artifact(REFERRERS, None, "referrers index", None, counts).reason


RULE = Rule(require=(parse("linux/amd64"),))
GRAMMAR = [
    pytest.param(lambda: decide(_facts(not_platforms={"attestation": 2}), RULE).reason,
                 "(not counted as platforms: 2 attestations)", id="2-attestations"),
    pytest.param(lambda: decide(_facts(not_platforms={"attestation": 1}), RULE).reason,
                 "(not counted as platforms: 1 attestation)", id="1-attestation"),
    pytest.param(lambda: decide(_facts(not_platforms={"unknown-platform": 2}), RULE).reason,
                 "2 entries of unknown platform", id="2-unknown-platform-entries"),
    pytest.param(lambda: decide(_facts(no_platform=(DIGEST,)), RULE).reason,
                 "1 child with no platform", id="1-child"),
    pytest.param(lambda: decide(_facts(no_platform=(DIGEST, "sha256:" + "1" * 64)), RULE).reason,
                 "2 children with no platform", id="2-children"),
    pytest.param(lambda: decide(_facts(inconsistent=_inconsistent(1)), RULE).reason,
                 "1 index entry disagrees with the image config", id="1-index-entry-disagrees"),
    pytest.param(lambda: decide(_facts(inconsistent=_inconsistent(2)), RULE).reason,
                 "2 index entries disagree with the image config", id="2-index-entries-disagree"),
    pytest.param(lambda: _summary_heading(1), "Platform Guard audit of r: 1 tag (1 compliant)", id="audit-1-tag"),
    pytest.param(lambda: _summary_heading(2), "Platform Guard audit of r: 2 tags (2 compliant)", id="audit-2-tags"),
    pytest.param(lambda: _listing(signature=1, attestation=2), "listing 1 signature, 2 attestations",
                 id="referrers-listing"),
    pytest.param(lambda: json_excerpt([1]), "an array of 1 item", id="excerpt-1-item"),
    pytest.param(lambda: json_excerpt({"a": 1, "b": 2}), "an object with 2 keys", id="excerpt-2-keys"),
]


@pytest.mark.parametrize(("message", "expected"), GRAMMAR)
def test_counts_read_as_english(message: Callable[[], str], expected: str) -> None:
    assert expected in message()
