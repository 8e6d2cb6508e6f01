"""Tables for a terminal: what the CLI and the demo print for people (machine output is JSON elsewhere)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from importer.core.outcome import Outcome
from importer.ports.queue import DeadLetter

if TYPE_CHECKING:  # annotations only: the CLI loads the chart reader when a chart is asked for
    from importer.core.charts import ChartInfo


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
    lines = [heading]
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
        lines.append(f"sub-charts: {', '.join(info.subcharts)}")
    lines += [f"not a reference (templates are not rendered): {item}" for item in info.unresolved]
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
    """Rows as fixed-width lines, two spaces apart; the last column, the one of unbounded width, is not padded."""
    last = len(rows[0]) - 1
    widths = [max(len(row[i]) for row in rows) for i in range(last)]
    return ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:last])) + "  " + row[last] for row in rows]
