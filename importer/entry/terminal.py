"""Tables for a terminal: what the CLI and the demo print for people (machine output is JSON elsewhere)."""

from __future__ import annotations

from collections.abc import Sequence

from importer.core.outcome import Outcome


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
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4] for row in rows
    )
