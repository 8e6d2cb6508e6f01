"""One SQLite file shared by threads and processes: how the embedded ledger and queue open theirs.

    db = open_database(Path("ledger.db"), SCHEMA)   # WAL, synchronous=NORMAL, autocommit, 30 s busy timeout

WAL mode lets writers and readers work at once and survives a process crash with every committed row; the caller
keeps one connection behind a lock and uses `BEGIN IMMEDIATE` where a read and a write must go together.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_database(path: str | Path, schema: str) -> sqlite3.Connection:
    """Open (creating its folder and tables) the SQLite file at `path`; ":memory:" for a private in-memory one."""
    name = str(path)
    if name != ":memory:":
        Path(name).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(name, check_same_thread=False, timeout=30, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(schema)
    return db
