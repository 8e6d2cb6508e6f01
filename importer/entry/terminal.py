"""What reaches a terminal: the one sanitiser for text from outside the process, and the tables the CLI and the
demo print for people (machine output is JSON elsewhere, which escapes on its own).

    print(sanitise(f"error: {ref}: {error}"))     # a line the CLI composes: any outside text in it is escaped
    print(format_outcomes(outcomes))              # tables sanitise every cell; their own newlines stay
    handler.setFormatter(TerminalLogFormatter("%(levelname)s %(name)s: %(message)s"))   # log lines on stderr

Registries, event senders, charts, settings and ledgers all hold text others wrote. Its unsafe characters
(importer/core/safe_text.py: C0 and C1 controls, DEL, bidi controls, line separators, lone surrogates) are shown as
escapes (`\\x1b`, `\\r`, `\\u202e`, `\\ud800`), so no registry can clear the screen, forge a line that looks like ours,
reorder what is shown, or make the print itself fail. A line is sanitised after it is composed, never a text the CLI
joined with its own newlines: those are built from sanitised pieces.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

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


def format_outcomes(outcomes: Sequence[Outcome]) -> str:
    """A fixed-width table of outcomes, oldest first."""
    rows = [("RECEIVED", "RESULT", "REFERENCE", "PLATFORMS", "REASON")]
    for outcome in reversed(outcomes):
        reference = outcome.reference or outcome.repository or outcome.event_id
        rows.append(
            (
                outcome.received_at,
                outcome.result,
                reference if len(reference) <= 60 else reference[:57] + "...",
                ",".join(outcome.platforms),
                outcome.error or outcome.reason or "",
            )
        )
    return "\n".join(_aligned(rows))


def format_chart_table(info: ChartInfo) -> str:
    """The chart in a heading line, its images as a fixed-width table, then its sub-charts and unresolved values."""
    heading = f"chart {info.name} {info.version}" + (f" (app {info.app_version})" if info.app_version else "")
    heading += f"  platforms: {', '.join(info.platforms) or '— (no platform-guard.io/platforms annotation)'}"
    lines = [sanitise(heading)]
    if info.images:
        # FOUND IN goes last: it is the one column without a bounded width.
        rows = [("REFERENCE", "PLATFORMS", "HEURISTIC", "FOUND IN")]
        rows += [
            (image.reference, ",".join(image.platforms) or "—", "yes" if image.heuristic else "no",
             ", ".join(image.sources))
            for image in info.images
        ]
        lines += _aligned(rows)
    else:
        lines.append("no images found")
    if info.subcharts:
        lines.append(sanitise(f"sub-charts: {', '.join(info.subcharts)}"))
    lines += [sanitise(f"not a reference (templates are not rendered): {item}") for item in info.unresolved]
    return "\n".join(lines)


def format_dead_letters(letters: Sequence[DeadLetter]) -> str:
    """A fixed-width table of the events the workers gave up on, newest first."""
    if not letters:
        return "no dead letters: every queued event was decided"
    rows = [("MESSAGE", "ATTEMPTS", "DEAD AT (UTC)", "KEY", "ERROR")]
    for letter in letters:
        dead_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(letter.dead_at))
        rows.append((letter.message_id, str(letter.attempts), dead_at, letter.key, letter.error))
    return "\n".join(_aligned(rows))


def _aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as fixed-width lines, two spaces apart, every cell sanitised (widths are of what is shown); the last
    column, the one of unbounded width, is not padded."""
    rows = [[sanitise(cell) for cell in row] for row in rows]
    last = len(rows[0]) - 1
    widths = [max(len(row[i]) for row in rows) for i in range(last)]
    return ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:last])) + "  " + row[last] for row in rows]
