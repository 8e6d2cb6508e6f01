"""What reaches a terminal: the one sanitiser for text from outside the process, and the tables the CLI and the
demo print for people (machine output is JSON elsewhere, which escapes on its own).

    print(sanitise(f"error: {ref}: {error}"))     # a line the CLI composes: any outside text in it is escaped
    display = display_for(sys.stdout, wide=args.wide)   # Display(width=80, colour=True) on a terminal
    print(format_outcomes(outcomes, display))     # tables sanitise every cell; their own newlines stay
    handler.setFormatter(TerminalLogFormatter("%(levelname)s %(name)s: %(message)s"))   # log lines on stderr

Registries, event senders, charts, settings and ledgers all hold text others wrote. Its unsafe characters
(importer/core/safe_text.py: C0 and C1 controls, DEL, bidi controls, line separators, lone surrogates) are shown as
escapes (`\\x1b`, `\\r`, `\\u202e`, `\\ud800`), so no registry can clear the screen, forge a line that looks like ours,
reorder what is shown, or make the print itself fail. A line is sanitised after it is composed, never a text the CLI
joined with its own newlines: those are built from sanitised pieces.

Tables for people fit the terminal. When stdout is a terminal, `display_for` gives its width (COLUMNS first, as
`shutil.get_terminal_size` reads it) and the tables shorten what does not fit with an ellipsis: digests and
references in the middle (`sha256:0123abcd…cdef` keeps the algorithm and both ends of the hex), reasons and errors
at the end once the digests they quote are shortened. The widest, least important column gives way first (each
table lists the order). Shortening works on the sanitised text and keeps an escape (`\\x1b`) whole. When stdout is
not a terminal (a pipe, a file) or `--wide` is given, every value is printed whole: scripts parse what they get.
Colour: results in colour (green compliant/reimported, red quarantined/failed/rejected, yellow alerted/violation/
retrying, dim ignored/superseded/duplicate/gone) only on a terminal, never with NO_COLOR set to anything but the
empty string (https://no-color.org) nor with TERM=dumb; FORCE_COLOR (non-empty) asks for colour even on a pipe. The
escape codes are ours, added after sanitising.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
import traceback
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from importer.core.outcome import Outcome
from importer.core.safe_text import escape_unsafe
from importer.ports.queue import DeadLetter

if TYPE_CHECKING:  # annotations only: the CLI loads the chart reader when a chart is asked for
    from importer.core.charts import ChartInfo


def sanitise(text: object) -> str:
    """`text` (any object, as `str()` shows it) fit for a terminal: every unsafe character shown as its escape."""
    return escape_unsafe(str(text))


class TerminalLogFormatter(logging.Formatter):
    """Log lines for a terminal: the message (arguments included) sanitised, so it stays one line; a logged
    exception keeps the lines of its traceback, each sanitised, and its message (outside text, often) stays on its
    line."""

    def format(self, record: logging.LogRecord) -> str:
        shown = logging.makeLogRecord(record.__dict__)
        shown.msg, shown.args = sanitise(record.getMessage()), None
        shown.exc_info, shown.exc_text = None, self.formatException(record.exc_info) if record.exc_info else None
        shown.stack_info = _each_line(record.stack_info)
        return super().format(shown)

    def formatException(self, ei: Any) -> str:  # noqa: N802 (logging's name)
        shown: list[str] = []
        for chunk in traceback.TracebackException(*ei).format():
            # Python's own lines ("Traceback …", frames, "During handling …") keep their newlines; a chunk that
            # starts otherwise is an exception's `Type: message` (or a note): the message may hold any text.
            if chunk.startswith(("Traceback ", " ", "\n")):
                shown.append(_each_line(chunk) or "")
            else:
                shown.append(sanitise(chunk.removesuffix("\n")) + "\n")
        return "".join(shown).removesuffix("\n")


def _each_line(text: str | None) -> str | None:
    """Multi-line text Python composed (a traceback): each line sanitised, its own newlines kept."""
    return None if text is None else "\n".join(sanitise(line) for line in text.split("\n"))


# -- where the text goes: width and colour --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Display:
    """How text for people is shown: fitted to `width` columns (None: every value whole) and coloured or not.
    `Display()`, the default of every formatter, is what a pipe gets: values whole, no colour."""

    width: int | None = None
    colour: bool = False


def display_for(stream: TextIO, *, wide: bool = False, environ: Mapping[str, str] | None = None) -> Display:
    """The Display for `stream`: its terminal's width unless `wide` or not a terminal; colour as `colour_wanted`."""
    return Display(None if wide else output_width(stream), colour_wanted(stream, environ))


def output_width(stream: TextIO) -> int | None:
    """The columns to fit when `stream` is a terminal (COLUMNS, else its size, else 80); None for a pipe or a file,
    whose reader gets every value whole."""
    return terminal_columns(stream) if is_terminal(stream) else None


def terminal_columns(stream: TextIO) -> int:
    """The terminal's width: COLUMNS when set, else stdout's terminal (shutil.get_terminal_size), else `stream`'s own
    (stderr when stdout is redirected), else 80."""
    columns = shutil.get_terminal_size((0, 0)).columns
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, OSError, ValueError):  # not a file, closed, or no terminal behind it
        return 80


def colour_wanted(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Whether to colour what goes to `stream`: NO_COLOR (any non-empty value) says no, FORCE_COLOR (non-empty)
    says yes, TERM=dumb says no; otherwise only a terminal gets colour."""
    environ = os.environ if environ is None else environ
    if environ.get("NO_COLOR"):
        return False
    if environ.get("FORCE_COLOR"):
        return True
    if environ.get("TERM") == "dumb":
        return False
    return is_terminal(stream)


def is_terminal(stream: TextIO) -> bool:
    """Whether `stream` is a terminal (False for a detached or closed stream)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


_SGR = {"green": "32", "red": "31", "yellow": "33", "dim": "2", "bold": "1"}
# The colour of each outcome result and sweep status (importer.core.outcome.RESULTS, importer.app.sweep.STATUSES).
RESULT_COLOURS: Mapping[str, str] = {
    "compliant": "green", "reimported": "green",
    "quarantined": "red", "failed": "red", "rejected": "red",
    "alerted": "yellow", "violation": "yellow", "retrying": "yellow",
    "ignored": "dim", "superseded": "dim", "duplicate": "dim", "gone": "dim",
}  # fmt: skip


def paint(text: str, colour: str | None) -> str:
    """`text` (already sanitised) between the escape codes of `colour` ("green", "red", "yellow", "dim", "bold");
    unchanged for None or an empty text."""
    return f"\x1b[{_SGR[colour]}m{text}\x1b[0m" if colour and text else text


def result_colour(result: str) -> str | None:
    """The colour of a result or status, in any case (`VIOLATION` too); None for one without a colour."""
    return RESULT_COLOURS.get(result.strip().lower())


# -- shortening sanitised text ----------------------------------------------------------------------------------


ELLIPSIS = "…"
# A unit never cut: one escape that sanitise wrote (`\x1b`, `\u202e`, `\r`), or one character.
_UNIT = re.compile(r"\\(?:x[0-9a-f]{2}|u[0-9a-f]{4}|[nrt])|.", re.DOTALL)
# A digest (`sha256:<hex>`) or the cosign form of one in a tag (`sha256-<hex>`).
_DIGEST = re.compile(r"(?<![0-9A-Za-z])(sha256|sha384|sha512|blake3)([:-])([0-9a-f]{32,})(?![0-9A-Za-z])")
# A digest as shown: whole, or shortened around an ellipsis.
_SHOWN_DIGEST = re.compile(r"(?<![0-9A-Za-z])(?:sha256|sha384|sha512|blake3)[:-][0-9a-f]+(?:…[0-9a-f]+)?"
                           r"(?![0-9A-Za-z])")
_LEAST_HEX = 4  # a digest shortened as far as it goes: sha256:01…ef
_COMPACT_HEX = 12  # a digest quoted in a reason, shortened: sha256:01234567…cdef


def text_width(text: str) -> int:
    """The columns `text` takes on a terminal: wide East Asian characters take two, combining marks none."""
    if text.isascii():
        return len(text)
    return sum(_char_width(character) for character in text)


def _char_width(character: str) -> int:
    if unicodedata.combining(character):
        return 0
    return 2 if unicodedata.east_asian_width(character) in ("W", "F") else 1


def _units(text: str) -> list[str]:
    return _UNIT.findall(text)


def _take(units: Sequence[str], width: int) -> list[str]:
    """The longest run of `units`, from the first, that fits `width` columns."""
    taken: list[str] = []
    used = 0
    for unit in units:
        used += text_width(unit)
        if used > width:
            break
        taken.append(unit)
    return taken


def shorten_end(text: str, width: int) -> str:
    """`text` cut at the end to `width` columns, an ellipsis last; escapes stay whole."""
    if text_width(text) <= width:
        return text
    if width <= 0:
        return ""
    return "".join(_take(_units(text), width - 1)) + ELLIPSIS


def shorten_middle(text: str, width: int) -> str:
    """`text` in `width` columns, cut in the middle: first its digests (down to `sha256:01…ef`), then the middle of the
    longest stretch between them (a reference's name: `127.0…team/app@sha256:01…ef`), else the middle of it all, so
    both ends stay."""
    if text_width(text) <= width:
        return text
    text = _shrink_digests(text, width)
    excess = text_width(text) - width
    if excess <= 0:
        return text
    stretches = _SHOWN_DIGEST.split(text)
    longest = max(stretches, key=text_width)
    if text_width(longest) - excess >= 5 and text.count(longest) == 1:
        return text.replace(longest, _cut_middle(longest, text_width(longest) - excess))
    return _cut_middle(text, width)


def _cut_middle(text: str, width: int) -> str:
    if width <= 1:
        return ELLIPSIS[:width]
    units = _units(text)
    tail_width = (width - 1) // 2
    head = _take(units, width - 1 - tail_width)
    tail = _take(units[::-1], tail_width)[::-1]
    return "".join(head) + ELLIPSIS + "".join(tail)


def shorten_reason(text: str, width: int) -> str:
    """A reason or an error in `width` columns: the digests it quotes shortened (`sha256:01234567…cdef`), then the
    end cut."""
    if text_width(text) <= width:
        return text
    return shorten_end(compact_digests(text), width)


def shorten_time(text: str, width: int) -> str:
    """An ISO 8601 time in `width` columns, its least significant parts dropped (`2026-11-26T10:00:00.123Z` →
    `2026-11-26T10:00` → `2026-11-26`): still true, to the minute or the day, so no ellipsis."""
    if text_width(text) <= width:
        return text
    for keep in (19, 16, 13, 10):
        if keep <= width and len(text) > keep and text[:keep].isascii():
            return text[:keep]
    return shorten_end(text, width)


def shorten_list(text: str, width: int) -> str:
    """A comma-separated list in `width` columns: the items that fit whole, then an ellipsis (`linux/amd64,…`); the
    first item cut at the end when not even it fits."""
    if text_width(text) <= width:
        return text
    items = text.split(",")
    kept = ""
    for item in items:
        longer = f"{kept}{item},"
        if text_width(longer) + 1 > width:
            break
        kept = longer
    return kept + ELLIPSIS if kept else shorten_end(text, width)


def compact_digests(text: str, hex_kept: int = _COMPACT_HEX) -> str:
    """`text` with every digest it quotes shortened to `hex_kept` hex characters around an ellipsis."""
    return _DIGEST.sub(lambda match: _digest_shown(match, hex_kept), text)


def _digest_shown(match: re.Match[str], hex_kept: int) -> str:
    algorithm, separator, hex_part = match.groups()
    if hex_kept + 1 >= len(hex_part):
        return match.group()
    tail = min(4, hex_kept // 2)
    return f"{algorithm}{separator}{hex_part[: hex_kept - tail]}{ELLIPSIS}{hex_part[-tail:]}"


def _shrink_digests(text: str, width: int) -> str:
    """`text` with its digests shortened just enough to fit `width` (each by the same amount), or as far as they go."""
    matches = list(_DIGEST.finditer(text))
    if not matches:
        return text
    excess = text_width(text) - width
    longest = max(len(match.group(3)) for match in matches)
    # Shortening a digest whose hex has n characters to k kept saves n - k - 1 columns (the ellipsis takes one).
    hex_kept = max(longest - 2, _LEAST_HEX)
    while hex_kept > _LEAST_HEX and sum(max(0, len(m.group(3)) - hex_kept - 1) for m in matches) < excess:
        hex_kept -= 1
    return compact_digests(text, hex_kept)


def fit_line(text: str, display: Display, shorten: Callable[[str, int], str] = shorten_end) -> str:
    """A line already sanitised, shortened to the display's width (whole when it has none)."""
    return text if display.width is None else shorten(text, display.width)


# -- tables ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    """A table column: its title, how a value too wide for it is shortened, and whether its values are results (or
    statuses) to colour."""

    title: str
    shorten: Callable[[str, int], str] = shorten_end
    coloured: bool = False


def fit_widths(natural: Sequence[int], steps: Sequence[tuple[int, int]], budget: int) -> list[int]:
    """Column widths that sum to at most `budget`, from the `natural` ones: each step (column, floor) in turn narrows
    its column down to that floor until the total fits; after the steps, each column they name down to one, in the
    order of the columns' last steps (the one that stopped giving way first goes first). What a very narrow terminal
    still leaves over is the caller's to cut."""
    widths = list(natural)
    excess = sum(widths) - budget
    last_step = {column: number for number, (column, _) in enumerate(steps)}
    last_resort = [(column, 1) for column in sorted(last_step, key=last_step.__getitem__)]
    for column, floor in (*steps, *last_resort):
        if excess <= 0:
            break
        given = min(excess, max(0, widths[column] - floor))
        widths[column] -= given
        excess -= given
    return widths


def shortened_note(display: Display) -> str:
    """The line under a table some of whose values were shortened."""
    note = "(… marks a shortened value; --wide, or a pipe, shows values whole)"
    return paint(fit_line(note, display), "dim" if display.colour else None)


def table(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], display: Display = Display(),
    steps: Sequence[tuple[int, int]] = (),
) -> list[str]:
    """The rows as lines under a line of titles, two spaces apart, every cell sanitised (widths are of what is shown);
    the last column, the one of unbounded width, is not padded. With a width, the columns give way as `steps` says
    (see fit_widths) and a note follows when a value was shortened; with the default display every value is whole and
    uncoloured."""
    titles = [column.title for column in columns]
    body = [[sanitise(cell) for cell in row] for row in rows]
    natural = [max(text_width(cell) for cell in cells) for cells in zip(titles, *body, strict=False)]
    widths = natural
    if display.width is not None:
        widths = fit_widths(natural, steps, display.width - 2 * (len(columns) - 1))
    last = len(columns) - 1
    lines: list[str] = []
    shortened = False
    for number, row in enumerate([titles, *body]):
        plain: list[str] = []
        shown: list[str] = []
        for index, (column, cell) in enumerate(zip(columns, row, strict=True)):
            shorten = column.shorten if number > 0 else shorten_end
            text = cell if text_width(cell) <= widths[index] else shorten(cell, widths[index])
            shortened = shortened or (number > 0 and text != cell)
            padding = "" if index == last else " " * (widths[index] - text_width(text))
            colour = "bold" if number == 0 else result_colour(cell) if column.coloured else None
            plain.append(text + padding)
            shown.append((paint(text, colour) if display.colour else text) + padding)
        line = "  ".join(plain)
        if display.width is not None and text_width(line) > display.width:  # narrower than the columns can go
            lines.append(shorten_end(line, display.width))
            shortened = True
        else:
            lines.append("  ".join(shown))
    if shortened:
        lines.append(shortened_note(display))
    return lines


_RECEIVED, _RESULT, _REFERENCE, _PLATFORMS, _REASON = range(5)
_OUTCOME_COLUMNS = (
    Column("RECEIVED", shorten_time),
    Column("RESULT", coloured=True),
    Column("REFERENCE", shorten_middle),
    Column("PLATFORMS", shorten_list),
    Column("REASON", shorten_reason),
)
# A reference first takes its short digest (its name stays whole: nothing is lost that a person reads), then the
# reason gives way (the widest), the seconds of the time, the platforms past the first, and so on; the result never
# does until nothing else is left.
_OUTCOME_STEPS = (
    (_REFERENCE, 44), (_REASON, 40), (_RECEIVED, 16), (_PLATFORMS, 13), (_REASON, 30), (_REFERENCE, 36),
    (_REASON, 20), (_PLATFORMS, 6), (_REFERENCE, 28), (_RECEIVED, 10), (_REASON, 12), (_REFERENCE, 20),
)  # fmt: skip


def format_outcomes(outcomes: Sequence[Outcome], display: Display = Display()) -> str:
    """A table of outcomes, oldest first, fitted to the display (every value whole by default)."""
    rows = []
    for outcome in reversed(outcomes):
        reference = outcome.reference or outcome.repository or outcome.event_id
        rows.append((outcome.received_at, outcome.result, reference, ",".join(outcome.platforms),
                     outcome.error or outcome.reason or ""))
    return "\n".join(table(_OUTCOME_COLUMNS, rows, display, _OUTCOME_STEPS))


_IMAGE, _IMAGE_PLATFORMS, _HEURISTIC, _FOUND_IN = range(4)
# FOUND IN goes last: it is the one column without a bounded width, and the first to give way.
_CHART_COLUMNS = (
    Column("REFERENCE", shorten_middle), Column("PLATFORMS", shorten_list), Column("HEURISTIC"),
    Column("FOUND IN", shorten_list),
)  # fmt: skip
_CHART_STEPS = (
    (_IMAGE, 44), (_FOUND_IN, 24), (_IMAGE_PLATFORMS, 13), (_FOUND_IN, 12), (_IMAGE, 30), (_IMAGE_PLATFORMS, 6),
    (_HEURISTIC, 3), (_IMAGE, 20),
)  # fmt: skip


def format_chart_table(info: ChartInfo, display: Display = Display()) -> str:
    """The chart in a heading line, its images as a table, then its sub-charts and unresolved values, fitted to the
    display (every value whole by default)."""
    heading = f"chart {info.name} {info.version}" + (f" (app {info.app_version})" if info.app_version else "")
    heading += f"  platforms: {', '.join(info.platforms) or '— (no platform-guard.io/platforms annotation)'}"
    lines = [fit_line(sanitise(heading), display)]
    if info.images:
        rows = [
            (image.reference, ",".join(image.platforms) or "—", "yes" if image.heuristic else "no",
             ", ".join(image.sources))
            for image in info.images
        ]
        lines += table(_CHART_COLUMNS, rows, display, _CHART_STEPS)
    else:
        lines.append("no images found")
    if info.subcharts:
        lines.append(fit_line(sanitise(f"sub-charts: {', '.join(info.subcharts)}"), display))
    lines += [fit_line(sanitise(f"not a reference (templates are not rendered): {item}"), display)
              for item in info.unresolved]
    return "\n".join(lines)


_MESSAGE, _ATTEMPTS, _DEAD_AT, _KEY, _ERROR = range(5)
_DEAD_LETTER_COLUMNS = (
    Column("MESSAGE", shorten_middle),
    Column("ATTEMPTS"),
    Column("DEAD AT (UTC)", shorten_time),
    Column("KEY", shorten_middle),
    Column("ERROR", shorten_reason),
)
_DEAD_LETTER_STEPS = (
    (_KEY, 44), (_ERROR, 30), (_KEY, 30), (_DEAD_AT, 16), (_MESSAGE, 12), (_ERROR, 20), (_KEY, 20), (_DEAD_AT, 10),
    (_ERROR, 10), (_ATTEMPTS, 3),
)  # fmt: skip


def format_dead_letters(letters: Sequence[DeadLetter], display: Display = Display()) -> str:
    """A table of the events the workers gave up on, newest first, fitted to the display (whole by default)."""
    if not letters:
        return "no dead letters: every queued event was decided"
    rows = []
    for letter in letters:
        dead_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(letter.dead_at))
        rows.append((letter.message_id, str(letter.attempts), dead_at, letter.key, letter.error))
    return "\n".join(table(_DEAD_LETTER_COLUMNS, rows, display, _DEAD_LETTER_STEPS))
