"""The SQLite event queue: the embedded default for `serve` and the CLI, safe across threads and processes.

    queue = SqliteQueue(Path("queue.db"))
    queue.put("127.0.0.1:5000/team/app:1.0", body, now=time.time())

One table of messages and one of dead letters in a WAL-mode file. Taking a message is one `BEGIN IMMEDIATE`
transaction: the oldest ready message that heads its key (no older message of the key is waiting, none is leased)
gets the caller as owner until `now + lease_seconds`. The owner and lease expiry together are the receipt that
every later change must show, so a worker whose lease ran out changes nothing.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from importer.adapters.sqlite_file import open_database
from importer.ports.queue import DeadLetter, Message, QueueDepth, QueueUnavailable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    key              TEXT NOT NULL,
    body             TEXT NOT NULL,
    enqueued_at      REAL NOT NULL,
    visible_at       REAL NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    first_attempt_at REAL,
    owner            TEXT,
    lease_until      REAL,
    last_error       TEXT
);
CREATE INDEX IF NOT EXISTS messages_by_key ON messages (key, id);
CREATE INDEX IF NOT EXISTS messages_by_visibility ON messages (visible_at, id);
CREATE TABLE IF NOT EXISTS dead_letters (
    id          INTEGER PRIMARY KEY,
    key         TEXT NOT NULL,
    body        TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    enqueued_at REAL NOT NULL,
    dead_at     REAL NOT NULL,
    error       TEXT NOT NULL
);
"""

# The head of each key: no older message of that key exists. A key whose head is leased or delayed waits.
_TAKE = """
SELECT id FROM messages AS m
WHERE m.visible_at <= :now
  AND (m.lease_until IS NULL OR m.lease_until <= :now)
  AND m.id = (SELECT MIN(id) FROM messages WHERE key = m.key)
ORDER BY m.visible_at, m.id
LIMIT 1
"""
_COLUMNS = "id, key, body, attempts, enqueued_at, first_attempt_at, owner, lease_until, last_error"
_RECEIPT = "id = ? AND owner = ? AND lease_until = ?"


class SqliteQueue:
    """EventQueue in one SQLite file; one connection shared behind a lock, transactions for every change."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = open_database(self.path, _SCHEMA)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:  # locked past the busy timeout: may pass
                raise QueueUnavailable(f"queue {self.path}: {error}") from error
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def put(self, key: str, body: str, *, now: float) -> str:
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO messages (key, body, enqueued_at, visible_at) VALUES (?, ?, ?, ?)", (key, body, now, now)
            )
        return str(cursor.lastrowid)

    def take(self, owner: str, *, lease_seconds: float, now: float) -> Message | None:
        until = now + lease_seconds
        with self._transaction() as db:
            row = db.execute(_TAKE, {"now": now}).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE messages SET owner = ?, lease_until = ?, attempts = attempts + 1,"
                " first_attempt_at = COALESCE(first_attempt_at, ?) WHERE id = ?",
                (owner, until, now, row[0]),
            )
            taken = db.execute(f"SELECT {_COLUMNS} FROM messages WHERE id = ?", (row[0],)).fetchone()
        return _message(taken)

    def renew(self, message: Message, *, lease_seconds: float, now: float) -> Message | None:
        until = now + lease_seconds
        with self._transaction() as db:
            cursor = db.execute(
                f"UPDATE messages SET lease_until = ? WHERE {_RECEIPT} AND lease_until > ?",
                (until, *_receipt(message), now),
            )
        if cursor.rowcount != 1:
            return None
        return Message(**{**_fields(message), "lease_until": until})

    def complete(self, message: Message) -> bool:
        with self._transaction() as db:
            cursor = db.execute(f"DELETE FROM messages WHERE {_RECEIPT}", _receipt(message))
        return cursor.rowcount == 1

    def retry_later(self, message: Message, *, delay: float, error: str, now: float) -> bool:
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE messages SET owner = NULL, lease_until = NULL, visible_at = ?, last_error = ?"
                f" WHERE {_RECEIPT}",
                (now + max(delay, 0.0), error, *_receipt(message)),
            )
        return cursor.rowcount == 1

    def dead_letter(self, message: Message, *, error: str, now: float) -> bool:
        with self._transaction() as db:
            cursor = db.execute(f"DELETE FROM messages WHERE {_RECEIPT}", _receipt(message))
            if cursor.rowcount != 1:
                return False
            db.execute(
                "INSERT INTO dead_letters (id, key, body, attempts, enqueued_at, dead_at, error)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (int(message.message_id), message.key, message.body, message.attempts, message.enqueued_at, now, error),
            )
        return True

    def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, key, body, attempts, enqueued_at, dead_at, error FROM dead_letters"
                " ORDER BY dead_at DESC, id DESC LIMIT ?",
                (max(limit, 0),),
            ).fetchall()
        return [DeadLetter(str(row[0]), *row[1:]) for row in rows]

    def redrive(self, message_ids: Sequence[str] | None = None, *, now: float) -> int:
        with self._transaction() as db:
            if message_ids is None:
                rows = db.execute("SELECT id, key, body, enqueued_at FROM dead_letters ORDER BY id").fetchall()
            else:
                wanted = [int(message_id) for message_id in message_ids if message_id.isdigit()]
                rows = [
                    row
                    for message_id in wanted
                    for row in db.execute(
                        "SELECT id, key, body, enqueued_at FROM dead_letters WHERE id = ?", (message_id,)
                    ).fetchall()
                ]
            for dead_id, key, body, enqueued_at in rows:
                db.execute(
                    "INSERT INTO messages (key, body, enqueued_at, visible_at) VALUES (?, ?, ?, ?)",
                    (key, body, enqueued_at, now),
                )
                db.execute("DELETE FROM dead_letters WHERE id = ?", (dead_id,))
        return len(rows)

    def depth(self, *, now: float) -> QueueDepth:
        with self._lock:
            leased, delayed, ready = self._db.execute(
                "SELECT"
                " COALESCE(SUM(lease_until IS NOT NULL AND lease_until > :now), 0),"
                " COALESCE(SUM((lease_until IS NULL OR lease_until <= :now) AND visible_at > :now), 0),"
                " COALESCE(SUM((lease_until IS NULL OR lease_until <= :now) AND visible_at <= :now), 0)"
                " FROM messages",
                {"now": now},
            ).fetchone()
            (dead,) = self._db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()
        return QueueDepth(ready=int(ready), delayed=int(delayed), leased=int(leased), dead=int(dead))

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _message(row: tuple[object, ...]) -> Message:
    message_id, key, body, attempts, enqueued_at, first_attempt_at, owner, lease_until, last_error = row
    return Message(
        message_id=str(message_id),
        key=str(key),
        body=str(body),
        attempts=int(attempts),  # type: ignore[call-overload]
        enqueued_at=float(enqueued_at),  # type: ignore[arg-type]
        first_attempt_at=float(first_attempt_at),  # type: ignore[arg-type]
        owner=str(owner),
        lease_until=float(lease_until),  # type: ignore[arg-type]
        last_error=None if last_error is None else str(last_error),
    )


def _receipt(message: Message) -> tuple[int, str, float]:
    return int(message.message_id), message.owner, message.lease_until


def _fields(message: Message) -> dict[str, object]:
    return {name: getattr(message, name) for name in Message.__slots__}  # type: ignore[attr-defined]
