"""Figures that tests measure and the session summary prints (pytest_terminal_summary in conftest.py)."""

from __future__ import annotations

from collections import defaultdict

FIGURES: dict[str, list[str]] = defaultdict(list)


def report(section: str, line: str) -> None:
    """Keep one line of figures for the summary under `section`."""
    FIGURES[section].append(line)
