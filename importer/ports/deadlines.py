"""Time limits: how long the work in hand may still take, set by the app around it and honoured by every adapter wait.

    with time_limit(240.0, "event e-1"):          # importer.app.pipeline, around the handling of one event
        registry.get_manifest("team/app", "1.0")  # the registry transport caps its waits by what is left
    limit = current_time_limit()                  # an adapter, before it waits: a TimeLimit, or None (no limit)
    pool.submit(carrying_time_limit(work))        # a thread of a pool works under the submitter's limit

Why here: the app decides how long an event may take, the adapters do the waiting (sockets, retry sleeps, polling),
and neither layer may import the other; the limit is a contract between them, like the Registry port. It lives in
a context variable so that one shared registry client honours the limit of whichever event each thread is
handling. A nested limit never extends an outer one: the sooner of the two applies.

Running out of time is `OutOfTime`, a transient registry error: what was slow may be quick next time, so the event
is tried again later (docs/design.md, "Errors and retries").
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from importer.ports.registry import TransientRegistryError

__all__ = ["OutOfTime", "TimeLimit", "carrying_time_limit", "current_time_limit", "time_limit"]

P = ParamSpec("P")
T = TypeVar("T")


class OutOfTime(TransientRegistryError):
    """A wait was cut short by a deadline (one request's, or the time limit of the work in hand); the message says
    which, what was being waited for, and from which host."""


@dataclass(frozen=True, slots=True)
class TimeLimit:
    """The end of the work in hand on the monotonic clock; `seconds` and `what` are for messages."""

    ends_at: float  # time.monotonic() value
    seconds: float
    what: str  # e.g. "event e-1"

    def remaining(self) -> float:
        """Seconds left (negative once it has passed)."""
        return self.ends_at - time.monotonic()

    def describe(self) -> str:
        """`the time limit of event e-1 (240 s)`, for messages."""
        return f"the time limit of {self.what} ({self.seconds:g} s)"


_CURRENT: contextvars.ContextVar[TimeLimit | None] = contextvars.ContextVar("platform_guard_time_limit", default=None)


def current_time_limit() -> TimeLimit | None:
    """The time limit of the work this thread is doing, or None."""
    return _CURRENT.get()


@contextmanager
def time_limit(seconds: float, what: str) -> Iterator[TimeLimit]:
    """Run the block under a limit of `seconds` from now (or the enclosing limit, when that ends sooner)."""
    if not seconds > 0:  # also refuses NaN
        raise ValueError(f"time limit of {what}: expected a number of seconds above 0, got {seconds!r}")
    limit = TimeLimit(time.monotonic() + seconds, seconds, what)
    outer = _CURRENT.get()
    if outer is not None and outer.ends_at <= limit.ends_at:
        limit = outer
    token = _CURRENT.set(limit)
    try:
        yield limit
    finally:
        _CURRENT.reset(token)


def carrying_time_limit(function: Callable[P, T]) -> Callable[P, T]:
    """`function`, run in a copy of the caller's context: a pool thread then works under the caller's time limit
    (a thread pool does not carry context variables over by itself). One wrapper may serve many tasks at once
    (`pool.map`): each call runs in its own copy, since one context cannot be entered by two threads."""
    context = contextvars.copy_context()

    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        return context.copy().run(function, *args, **kwargs)

    return run
