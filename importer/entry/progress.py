"""A one-line progress bar on stderr, drawn only when stderr is a terminal (pipes and logs stay clean).

    bar = ProgressBar("copying team/app:1")
    bar.start(total_bytes, total_items=12)      # e.g. 12 blobs
    bar.advance(len(chunk))                      # bytes done; advance(0, items=1) when an item finishes
    bar.finish()                                 # final state and a newline (nothing when disabled)

    bar = TagProgressBar("auditing 127.0.0.1:5000")
    report = sweep.run(progress=bar)             # a SweepProgress: told the tags listed so far, and each tag swept
    bar.finish()

Redraws are throttled to one every `interval` seconds; calls may come from several threads. The label names a
reference or a registry, text from outside: it is sanitised (importer.entry.terminal) once, here. On a terminal the
line is kept narrower than the terminal (the label shortened in the middle): a line that wrapped could not be
redrawn in place, and each redraw would add a line.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, Any, TextIO

from importer.core.words import noun_for
from importer.entry.terminal import is_terminal, sanitise, shorten_end, shorten_middle, terminal_columns, text_width

if TYPE_CHECKING:
    from importer.app.sweep import SweepItem

MEGABYTE = 1_000_000


def format_megabytes(size: int) -> str:
    """`1234567` → `"1.2 MB"` (decimal megabytes, like registries and docker report sizes)."""
    return f"{size / MEGABYTE:.1f} MB"


class ProgressBar:
    """`label [#####.....]  12.3/64.0 MB  19%  3/12 blobs`, redrawn in place with a carriage return."""

    def __init__(
        self,
        label: str,
        *,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        width: int = 30,
        interval: float = 0.1,
        item_noun: str = "blob",
        columns: int | None = None,
    ) -> None:
        """`width`: of the bar itself; `columns`: what the whole line must fit (the terminal's when None and the
        stream is one; no limit otherwise)."""
        self._stream = stream if stream is not None else sys.stderr
        self.enabled = is_terminal(self._stream) if enabled is None else enabled
        self._label = sanitise(label)
        self._width = width
        self._interval = interval
        self._item_noun = item_noun
        if columns is None and self.enabled and is_terminal(self._stream):
            columns = terminal_columns(self._stream)
        self._columns = columns
        if columns is not None:  # a narrow terminal: a narrower bar, so that the counts still show
            self._width = min(width, max(5, columns // 4))
        self._lock = threading.Lock()
        self._total = 0
        self._done = 0
        self._total_items = 0
        self._items_done = 0
        self._started = False
        self._last_draw = float("-inf")

    def start(self, total: int, total_items: int = 0) -> None:
        """Set the totals and draw the empty bar."""
        with self._lock:
            self._total, self._total_items = max(total, 0), max(total_items, 0)
            self._done = self._items_done = 0
            self._started = True
            self._draw(force=True)

    def advance(self, amount: int = 0, *, items: int = 0) -> None:
        """Count `amount` more units (bytes) and `items` more finished items."""
        with self._lock:
            self._done = min(self._done + amount, self._total) if self._total else self._done + amount
            self._items_done += items
            self._draw(force=False)

    def finish(self) -> None:
        """Draw the final state and end the line; safe to call more than once, or without start."""
        with self._lock:
            if self._started:
                self._draw(force=True)
                if self.enabled:
                    self._stream.write("\n")
                    self._stream.flush()
            self._started = False

    def render(self) -> str:
        """The bar as text, without the carriage return."""
        fraction = self._done / self._total if self._total else (1.0 if self._started else 0.0)
        filled = round(fraction * self._width)
        text = (
            f" [{'#' * filled}{'.' * (self._width - filled)}]  "
            f"{self._done / MEGABYTE:.1f}/{self._total / MEGABYTE:.1f} MB  {fraction:4.0%}"
        )
        if self._total_items:
            text += f"  {self._items_done}/{self._total_items} {noun_for(self._total_items, self._item_noun)}"
        return self._fitted(text)

    def _fitted(self, rest: str) -> str:
        """The label, then `rest`, in one column less than the terminal has (a line that fills the last column
        wraps on some terminals): the label gives way first, in the middle."""
        if self._columns is None:
            return self._label + rest
        room = self._columns - 1 - text_width(rest)
        return shorten_end(shorten_middle(self._label, max(room, 1)) + rest, self._columns - 1)

    def _draw(self, *, force: bool) -> None:
        if not self.enabled or not self._started:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < self._interval:
            return
        self._last_draw = now
        self._stream.write("\r" + self.render())
        self._stream.flush()


class TagProgressBar(ProgressBar):
    """`auditing 127.0.0.1:5000 [######........]  450/1000 tags  45%` on a terminal; silent otherwise."""

    def __init__(self, label: str, **options: Any) -> None:
        super().__init__(label, item_noun="tag", **options)

    def listed(self, tags: int) -> None:
        """`tags` listed so far: the first call starts the bar, later ones (more repositories listed) raise it."""
        if not self._started:
            self.start(tags)
            return
        with self._lock:
            self._total = max(tags, self._done)
            self._draw(force=False)

    def swept(self, item: SweepItem) -> None:
        self.advance(1)

    def render(self) -> str:
        done, total = self._done, self._total
        fraction = done / total if total else 1.0
        filled = round(fraction * self._width)
        return self._fitted(f" [{'#' * filled}{'.' * (self._width - filled)}]  {done}/{total} "
                            f"{noun_for(total, self._item_noun)}  {fraction:4.0%}")
