"""One lock per key, made on first use: a sweep's workers serialise on a repository or a digest with it.

    locks = KeyedLocks()
    with locks("team/app"):        # every worker asking for "team/app" waits here; other keys run on
        ...
"""

from __future__ import annotations

import threading


class KeyedLocks:
    """One lock per key, created on first use."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def __call__(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())
