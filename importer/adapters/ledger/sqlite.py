"""The SQLite ledger: the embedded default, one file, safe across threads and processes.

    ledger = SqliteLedger(Path("platform-guard.db"))

WAL mode with `synchronous=NORMAL`: a committed record survives a process crash, and writers do not block
readers. Claims are a primary-key insert, so two workers (threads or processes) racing on one event get
exactly one True. Text with lone surrogates (which has no UTF-8 form, so SQLite cannot take it) is stored and looked
up with them escaped (`\\ud800`); the outcome's JSON record escapes them itself and reads back as recorded.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from importer.adapters.sqlite_file import open_database
from importer.core.outcome import Outcome
from importer.core.quarantine_names import QuarantineOrigin
from importer.core.safe_text import escape_surrogates

_SCHEMA = """
CREATE TABLE IF NOT EXISTS claims (
    event_id   TEXT PRIMARY KEY,
    claimed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE IF NOT EXISTS outcomes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    TEXT NOT NULL,
    received_at TEXT NOT NULL,
    repository  TEXT,
    tag         TEXT,
    digest      TEXT,
    result      TEXT NOT NULL,
    record      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outcomes_by_repository ON outcomes (repository, seq);
CREATE INDEX IF NOT EXISTS outcomes_by_event ON outcomes (event_id);
CREATE TABLE IF NOT EXISTS remediation_leases (
    key     TEXT PRIMARY KEY,
    owner   TEXT,
    expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS remediations (
    scope TEXT NOT NULL,
    at    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS remediations_by_scope ON remediations (scope, at);
CREATE TABLE IF NOT EXISTS releases (
    repository TEXT NOT NULL,
    digest     TEXT NOT NULL,
    at         REAL NOT NULL,
    PRIMARY KEY (repository, digest)
);
CREATE TABLE IF NOT EXISTS sweep_resume (
    registry     TEXT PRIMARY KEY,
    repositories TEXT NOT NULL,
    at           REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantines (
    registry              TEXT NOT NULL,
    quarantine_repository TEXT NOT NULL,
    quarantine_tag        TEXT NOT NULL,
    original_repository   TEXT NOT NULL,
    original_tag          TEXT NOT NULL,
    digest                TEXT NOT NULL,
    at                    REAL NOT NULL,
    PRIMARY KEY (registry, quarantine_repository, quarantine_tag)
);
"""


class SqliteLedger:
    """Ledger in one SQLite file; one connection shared behind a lock (writes are tiny)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = open_database(self.path, _SCHEMA)

    def claim(self, event_id: str) -> bool:
        with self._lock:
            cursor = self._db.execute("INSERT OR IGNORE INTO claims (event_id) VALUES (?)", (_storable(event_id),))
            return cursor.rowcount == 1

    def release(self, event_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM claims WHERE event_id = ?", (_storable(event_id),))

    def record(self, outcome: Outcome) -> None:
        record = outcome.as_dict()
        with self._lock:
            self._db.execute(
                "INSERT INTO outcomes (event_id, received_at, repository, tag, digest, result, record)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    _storable(outcome.event_id),
                    _storable(outcome.received_at),
                    _storable(outcome.repository),
                    _storable(outcome.tag),
                    _storable(outcome.digest),
                    _storable(outcome.result),
                    json.dumps(record, separators=(",", ":")),
                ),
            )

    def outcomes(self, *, limit: int = 50, repository: str | None = None, event_id: str | None = None) -> list[Outcome]:
        query = "SELECT record FROM outcomes"
        clauses: list[str] = []
        params: list[object] = []
        if repository is not None:
            clauses.append("repository = ?")
            params.append(_storable(repository))
        if event_id is not None:
            clauses.append("event_id = ?")
            params.append(_storable(event_id))
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        query += " ORDER BY seq DESC LIMIT ?"
        params.append(limit)
        with self._lock:
            rows = self._db.execute(query, params).fetchall()
        return [Outcome.from_dict(json.loads(row[0])) for row in rows]

    def claim_remediation(self, key: str, *, lease_seconds: float, now: float, owner: str | None = None) -> bool:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "DELETE FROM remediation_leases WHERE key = ? AND (expires <= ? OR (owner IS NOT NULL AND owner = ?))",
                    (key, now, owner),
                )
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO remediation_leases (key, owner, expires) VALUES (?, ?, ?)",
                    (key, owner, now + lease_seconds),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return cursor.rowcount == 1

    def finish_remediation(self, key: str, *, owner: str | None = None) -> None:
        with self._lock:
            if owner is None:
                self._db.execute("DELETE FROM remediation_leases WHERE key = ? AND owner IS NULL", (key,))
            else:
                self._db.execute("DELETE FROM remediation_leases WHERE key = ? AND owner = ?", (key, owner))

    def note_remediation(self, scope: str, *, now: float) -> None:
        with self._lock:
            self._db.execute("INSERT INTO remediations (scope, at) VALUES (?, ?)", (scope, now))

    def count_remediations(self, scope: str, *, since: float) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM remediations WHERE scope = ? AND at >= ?", (scope, since)
            ).fetchone()
        return int(row[0])

    def mark_released(self, repository: str, digest: str, *, now: float) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO releases (repository, digest, at) VALUES (?, ?, ?)", (repository, digest, now)
            )

    def is_released(self, repository: str, digest: str) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM releases WHERE repository = ? AND digest = ?", (repository, digest)
            ).fetchone()
        return row is not None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def save_sweep_resume(self, registry: str, repositories: list[str], *, now: float) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO sweep_resume (registry, repositories, at) VALUES (?, ?, ?)",
                (registry, json.dumps(list(repositories), separators=(",", ":")), now),
            )

    def sweep_resume(self, registry: str) -> list[str]:
        with self._lock:
            row = self._db.execute("SELECT repositories FROM sweep_resume WHERE registry = ?", (registry,)).fetchone()
        return [str(name) for name in json.loads(row[0])] if row is not None else []

    def record_quarantine(
        self, registry: str, quarantine_repository: str, quarantine_tag: str, original_repository: str,
        original_tag: str, digest: str, *, now: float,
    ) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO quarantines (registry, quarantine_repository, quarantine_tag,"
                " original_repository, original_tag, digest, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (registry, quarantine_repository, quarantine_tag, original_repository, original_tag, digest, now),
            )

    def quarantine_origin(
        self, registry: str, quarantine_repository: str, quarantine_tag: str
    ) -> QuarantineOrigin | None:
        with self._lock:
            row = self._db.execute(
                "SELECT original_repository, original_tag, digest FROM quarantines"
                " WHERE registry = ? AND quarantine_repository = ? AND quarantine_tag = ?",
                (registry, quarantine_repository, quarantine_tag),
            ).fetchone()
        return QuarantineOrigin(repository=row[0], tag=row[1], digest=row[2]) if row is not None else None


def _storable(text: str | None) -> str | None:
    """`text` as SQLite can store it: lone surrogates escaped, everything else as it is."""
    return None if text is None else escape_surrogates(text)
