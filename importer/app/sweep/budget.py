"""A sweep's time budget: one deadline on the monotonic clock, shared by every registry of a timer run.

    deadline = deadline_after(210.0)                    # time.monotonic() + 210 s, computed once per run
    passed(deadline)                                    # False until then; never for None (no budget)
    for name in before(deadline, registry.catalog()):   # OutOfTime once it passes, before the next name is taken
        ...

A deadline stops work from starting, never work under way: a listing stops before its next name (and so before its
next page), a tag that has not started is left for the next run. See docs/design.md, Sweep.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


class OutOfTime(Exception):
    """The deadline passed before a listing was finished."""


def deadline_after(seconds: float) -> float:
    """The instant `seconds` from now, on the clock `passed` reads."""
    return time.monotonic() + seconds


def passed(deadline: float | None) -> bool:
    """Whether `deadline` has been reached (None: there is no deadline)."""
    return deadline is not None and time.monotonic() >= deadline


def earliest(first: float | None, second: float | None) -> float | None:
    """The sooner of two deadlines; None only when neither is set."""
    if first is None or second is None:
        return second if first is None else first
    return min(first, second)


def before(deadline: float | None, items: Iterable[T]) -> Iterator[T]:
    """The items of `items`, each taken only while `deadline` has not passed; OutOfTime when it passes first."""
    iterator = iter(items)
    while True:
        if passed(deadline):
            raise OutOfTime
        try:
            item = next(iterator)
        except StopIteration:
            return
        yield item
