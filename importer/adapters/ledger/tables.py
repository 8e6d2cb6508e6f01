"""The ledger on Azure Table Storage (azure-data-tables): the same semantics as the SQLite ledger, shared by workers.

    ledger = TableLedger(endpoint="https://<account>.table.core.windows.net", credential=DefaultAzureCredential())
    ledger = TableLedger(connection_string=azurite.connection_string)       # Azurite, development
    ledger.outcomes_on(date(2024, 5, 14))                                    # one day's outcomes, newest first

Tables (`table_prefix` + suffix, created on first use, once per process): `claims` (event claims), `leases`
(remediation claims), `outcomes`, `remediations` (loop guard), `releases`, `sweeps` (resume points),
`quarantines` (where quarantined images came from). Every claim is a conditional insert, so racing workers get
exactly one True; an expired lease is taken over with an ETag-conditional replace, so of the workers racing for it
exactly one wins. Each claim carries a random owner token: when an answer was lost and the SDK retried a request that
had in fact succeeded, the worker recognises its own claim by the token.

Outcomes are written up to three times, one copy per way they are read, each read a single-partition query:
`day-YYYY-MM-DD` (every outcome, by the UTC day of `received_at`), `repo-<repository>` and `event-<event id>`;
the partition `days` lists the days that have outcomes. Row keys are the inverted `received_at` (microseconds),
then the inverted write time (nanoseconds) and a random suffix, so a partition reads newest first. SQLite orders
by insertion instead; the two agree whenever outcomes are recorded in the order their events were received.
Copies are upserts with a row key fixed before the first attempt, so a retried write never duplicates a row.

Keys: PartitionKey and RowKey must not contain / \\ # ? or control characters. `table_key` escapes each of
those, and ' % ! as well, as "!" and two upper-case hex digits ("team/api" → "team!2Fapi"), which reads well
and cannot collide; a key longer than 400 UTF-16 units keeps a readable head and ends in "!!" + its SHA-256.

Outcome records: the whole JSON record sits in the string property `record` (≤ 64 KiB, i.e. 32 768 ASCII
characters, as json.dumps escapes the rest). A longer record has the longer of `reason` and `error` cut, then
the other if still needed, each ending in "… [N characters cut by the ledger]" — when cutting them makes it fit.
Otherwise (thousands of platforms) nothing is cut: the JSON spills into `record_1`, `record_2`, … and is read back
whole. Key fields are also typed properties (event_id, received_at, registry, repository, tag, digest, result,
verdict, action, at most 1024 characters each) for ad-hoc queries.

Errors: connection failures, timeouts, 408, 429 and 5xx that outlast the SDK's bounded retries (the `retry`
policy, importer.core.retry.LEDGER_RETRY by default, handed to azure-core by importer.adapters.retrying) raise
importer.ports.ledger.LedgerUnavailable (transient); any other refusal raises TableLedgerError; both name the table
and the key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.data.tables import TableClient, TableEntity, TableServiceClient, UpdateMode

from importer.adapters.retrying import azure_retry_options
from importer.core.outcome import Outcome
from importer.core.quarantine_names import QuarantineOrigin
from importer.core.retry import LEDGER_RETRY, RetryPolicy
from importer.core.safe_text import escape_surrogates
from importer.ports.ledger import LedgerUnavailable

CLAIMS, LEASES, OUTCOMES, REMEDIATIONS, RELEASES = "claims", "leases", "outcomes", "remediations", "releases"
TABLE_SUFFIXES: tuple[str, ...] = (CLAIMS, LEASES, OUTCOMES, REMEDIATIONS, RELEASES)
TYPED_OUTCOME_FIELDS: tuple[str, ...] = (
    "event_id", "received_at", "registry", "repository", "tag", "digest", "result", "verdict", "action",
)  # fmt: skip

MAX_RECORD_CHARS = 32_768  # a string property holds 64 KiB of UTF-16; the JSON is ASCII (ensure_ascii)
MAX_TYPED_CHARS = 1_024  # typed copies of key fields are for queries; the record keeps the full value
MAX_KEY_UNITS = 400  # keys hold 1 KiB (512 UTF-16 units); room is left for the "repo-"-style prefixes
_KEY_HEAD_UNITS = 320
_CLAIM_ATTEMPTS = 5  # a claim deleted between our insert and our read is tried again, a few times at most
_TRANSIENT_STATUSES = frozenset({408, 429})

_FORBIDDEN_IN_KEYS = frozenset("/\\#?'%!")
_TABLE_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9]{0,49}")
_YEAR_ONE = datetime(1, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)

# Tables this process has already created (or found), by (service URL, table name): created at most once.
_ensured_tables: set[tuple[str, str]] = set()
_ensured_lock = threading.Lock()


class TableLedgerError(Exception):
    """Table Storage refused an operation for a reason that will not pass by retrying (auth, bad request…)."""


def table_key(text: str) -> str:
    """`text` as a PartitionKey/RowKey: / \\ # ? ' % ! and control characters become "!" + two hex digits.

    A lone surrogate (no UTF-8 form, so no place in a URL) is first written as its escape, `\\ud800`."""
    text = escape_surrogates(text)
    escaped = "".join(f"!{ord(char):02X}" if _needs_escape(char) else char for char in text)
    if _utf16_units(escaped) <= MAX_KEY_UNITS:
        return escaped
    head = escaped
    while _utf16_units(head) > _KEY_HEAD_UNITS:
        head = head[: len(head) - max(1, (_utf16_units(head) - _KEY_HEAD_UNITS) // 2)]
    return f"{head}!!{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()}"


def _needs_escape(char: str) -> bool:
    code = ord(char)
    return char in _FORBIDDEN_IN_KEYS or code < 0x20 or 0x7F <= code <= 0x9F


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _row_instant(received_at: str) -> datetime:
    """When the event was received (UTC), or now when `received_at` is not an ISO-8601 time."""
    try:
        instant = datetime.fromisoformat(received_at)
    except ValueError:
        return datetime.now(timezone.utc)
    if instant.tzinfo is None:
        return instant.replace(tzinfo=timezone.utc)
    return instant.astimezone(timezone.utc)


def _outcome_row_key(instant: datetime) -> str:
    """Newest first: inverted received time, then inverted write time, then a random suffix."""
    received = 10**18 - 1 - (instant - _YEAR_ONE) // _MICROSECOND
    written = 10**19 - 1 - time.time_ns()
    return f"{received:018d}-{written:019d}-{uuid.uuid4().hex[:8]}"


def _day_row_key(day: date) -> str:
    """Newest day first."""
    return f"{99_999_999 - int(day.strftime('%Y%m%d')):08d}"


def _cut(text: str, excess: int) -> str:
    keep = max(0, len(text) - excess - 64)
    return f"{text[:keep]}… [{len(text) - keep} characters cut by the ledger]"


def record_json(outcome: Outcome) -> str:
    """The outcome as compact JSON; over MAX_RECORD_CHARS, `reason` and `error` are cut (longest first) when
    that alone makes it fit, and left whole otherwise (the record then spills into more properties)."""
    record = outcome.as_dict()
    text = json.dumps(record, separators=(",", ":"))
    if len(text) <= MAX_RECORD_CHARS:
        return text
    stripped = json.dumps({**record, "reason": _cut("", 0), "error": _cut("", 0)}, separators=(",", ":"))
    if len(stripped) > MAX_RECORD_CHARS:
        return text
    for name in sorted(("reason", "error"), key=lambda field: -len(record[field] or "")):
        excess = len(text) - MAX_RECORD_CHARS
        if excess <= 0:
            break
        if record[name]:
            record[name] = _cut(record[name], excess)
            text = json.dumps(record, separators=(",", ":"))
    return text


def _record_properties(text: str) -> dict[str, str]:
    """`record`, then `record_1`, `record_2`, … when the JSON is longer than one property holds."""
    parts = [text[start : start + MAX_RECORD_CHARS] for start in range(0, len(text), MAX_RECORD_CHARS)] or [""]
    properties = {"record": parts[0]}
    properties.update({f"record_{number}": part for number, part in enumerate(parts[1:], start=1)})
    return properties


def _outcome_from_entity(entity: TableEntity) -> Outcome:
    text = entity["record"]
    number = 1
    while f"record_{number}" in entity:
        text += entity[f"record_{number}"]
        number += 1
    return Outcome.from_dict(json.loads(text))


def _shown(text: str) -> str:
    """`text` quoted for an error message, cut to 200 characters."""
    return repr(text if len(text) <= 200 else text[:200] + "…")


def _is_transient(error: Exception) -> bool:
    if isinstance(error, (ServiceRequestError, ServiceResponseError)):
        return True
    status = getattr(error, "status_code", None)
    return status is not None and (status in _TRANSIENT_STATUSES or status >= 500)


class TableLedger:
    """Ledger in Azure Table Storage; one TableServiceClient shared by the threads of a process."""

    def __init__(
        self,
        *,
        connection_string: str | None = None,
        endpoint: str | None = None,
        credential: object | None = None,
        table_prefix: str = "platformguard",
        retry: RetryPolicy = LEDGER_RETRY,
        retries: int | None = None,
        timeout_seconds: float = 20.0,
    ) -> None:
        """Connect by `connection_string`, or by `endpoint` + `credential` (a TokenCredential such as
        DefaultAzureCredential for a managed identity, or an AzureNamedKeyCredential).

        `retry` (its attempts; `retries`, when given, is attempts - 1) and `timeout_seconds` bound each call: after
        them a failure is LedgerUnavailable.
        """
        if (connection_string is None) == (endpoint is None):
            raise ValueError("TableLedger needs exactly one of connection_string and endpoint")
        if endpoint is not None and credential is None:
            raise ValueError(f"TableLedger endpoint {endpoint!r} needs a credential (e.g. DefaultAzureCredential())")
        if not _TABLE_PREFIX.fullmatch(table_prefix):
            raise ValueError(
                f"table prefix {table_prefix!r} must be a letter then letters or digits, at most 50 characters"
            )
        if retries is not None:
            retry = retry.replace(attempts=retries + 1)
        options: dict[str, Any] = {
            **azure_retry_options(retry),
            "connection_timeout": timeout_seconds,
            "read_timeout": timeout_seconds,
        }
        if connection_string is not None:
            self._service = TableServiceClient.from_connection_string(connection_string, **options)
        else:
            assert endpoint is not None
            self._service = TableServiceClient(endpoint, credential=credential, **options)  # type: ignore[arg-type]
        self.table_prefix = table_prefix
        self._tables: dict[str, TableClient] = {}
        self._tables_lock = threading.Lock()
        self._days_noted: set[date] = set()

    @property
    def url(self) -> str:
        """The Table service endpoint this ledger writes to (without a SAS token, if it had one)."""
        return str(self._service.url).split("?", 1)[0]

    # -- plumbing ----------------------------------------------------------------------------------------

    def table_name(self, suffix: str) -> str:
        return self.table_prefix + suffix

    def _table(self, suffix: str) -> TableClient:
        """The client for one table, creating the table the first time this process uses it."""
        name = self.table_name(suffix)
        with self._tables_lock:
            client = self._tables.get(name)
            if client is not None:
                return client
        ensured_key = (self.url, name)
        with _ensured_lock:
            ensured = ensured_key in _ensured_tables
        if not ensured:
            with self._storage(f"create table {name!r}"):
                self._service.create_table_if_not_exists(name)
            with _ensured_lock:
                _ensured_tables.add(ensured_key)
        client = self._service.get_table_client(name)
        with self._tables_lock:
            return self._tables.setdefault(name, client)

    @contextmanager
    def _storage(self, what: str, *, answers: tuple[type[HttpResponseError], ...] = ()) -> Iterator[None]:
        """Turn the SDK's errors into LedgerUnavailable (may pass) or TableLedgerError (will not).

        `answers` are refusals the caller handles itself (a claim that exists, an ETag that no longer matches).
        """
        try:
            yield
        except answers:
            raise
        except (HttpResponseError, ServiceRequestError, ServiceResponseError) as error:
            status = getattr(error, "status_code", None)
            detail = f"HTTP {status}: {error.message}" if status else str(error)
            message = f"table storage at {self.url}: {what} failed: {detail}"
            if _is_transient(error):
                raise LedgerUnavailable(message) from error
            raise TableLedgerError(message) from error

    def _get(self, suffix: str, partition: str, row: str) -> TableEntity | None:
        table = self._table(suffix)
        try:
            what = f"read {_shown(partition)}/{_shown(row)} of table {table.table_name!r}"
            with self._storage(what, answers=(ResourceNotFoundError,)):
                return table.get_entity(partition, row)
        except ResourceNotFoundError:
            return None

    def _delete(self, suffix: str, partition: str, row: str) -> None:
        table = self._table(suffix)
        with self._storage(f"delete {_shown(partition)}/{_shown(row)} of table {table.table_name!r}"):
            table.delete_entity(partition, row)  # absent already: the SDK treats 404 as done

    def _upsert(self, suffix: str, entity: dict[str, Any]) -> None:
        table = self._table(suffix)
        what = f"write {_shown(entity['PartitionKey'])}/{_shown(entity['RowKey'])} of table {table.table_name!r}"
        with self._storage(what):
            table.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def _query(self, suffix: str, partition: str, *, page_size: int) -> Iterator[TableEntity]:
        """The rows of one partition in RowKey order, fetched `page_size` at a time."""
        table = self._table(suffix)
        what = f"query partition {_shown(partition)} of table {table.table_name!r}"
        with self._storage(what):
            rows = table.query_entities(
                "PartitionKey eq @partition",
                parameters={"partition": partition},
                results_per_page=max(1, min(page_size, 1000)),
            )
            iterator = iter(rows)
        while True:
            with self._storage(what):
                entity = next(iterator, None)
            if entity is None:
                return
            yield entity

    def _claim(
        self, suffix: str, key: str, *, expires: float | None, now: float | None, owner: str | None = None
    ) -> bool:
        """Insert the claim row `key`; if it exists and has `expires` ≤ now, or belongs to `owner`, take it over with
        an ETag match.

        Exactly one of several racing callers gets True. The owner (`owner`, else random per call) also tells a
        caller whose retried request had in fact succeeded that the row it finds is its own.
        """
        table = self._table(suffix)
        owner = owner or uuid.uuid4().hex
        entity: dict[str, Any] = {
            "PartitionKey": table_key(key),
            "RowKey": suffix,
            "key": escape_surrogates(key)[:MAX_TYPED_CHARS],
            "owner": owner,
            "claimed_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        }
        if expires is not None:
            entity["expires"] = float(expires)
        what = f"claim {_shown(key)} in table {table.table_name!r}"
        for _ in range(_CLAIM_ATTEMPTS):
            try:
                with self._storage(what, answers=(ResourceExistsError,)):
                    table.create_entity(entity)
                return True
            except ResourceExistsError:
                pass
            existing = self._get(suffix, entity["PartitionKey"], suffix)
            if existing is None:
                continue  # released between our insert and our read: try the insert again
            if existing.get("owner") == owner:
                return True
            mine = existing.get("owner") == owner
            if not mine and (expires is None or now is None or float(existing.get("expires", 0.0)) > now):
                return False
            try:
                with self._storage(what, answers=(ResourceModifiedError, ResourceNotFoundError)):
                    table.update_entity(
                        entity,
                        mode=UpdateMode.REPLACE,
                        etag=existing.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
                return True
            except ResourceModifiedError:
                current = self._get(suffix, entity["PartitionKey"], suffix)
                return current is not None and current.get("owner") == owner
            except ResourceNotFoundError:
                continue
        return False

    # -- the Ledger protocol -----------------------------------------------------------------------------

    def claim(self, event_id: str) -> bool:
        return self._claim(CLAIMS, event_id, expires=None, now=None)

    def release(self, event_id: str) -> None:
        self._delete(CLAIMS, table_key(event_id), CLAIMS)

    def claim_remediation(self, key: str, *, lease_seconds: float, now: float, owner: str | None = None) -> bool:
        return self._claim(LEASES, key, expires=now + lease_seconds, now=now, owner=owner)

    def finish_remediation(self, key: str, *, owner: str | None = None) -> None:
        if owner is None:
            self._delete(LEASES, table_key(key), LEASES)
            return
        existing = self._get(LEASES, table_key(key), LEASES)
        if existing is None or existing.get("owner") != owner:
            return  # a successor holds it now: never remove its claim
        table = self._table(LEASES)
        with contextlib.suppress(ResourceModifiedError, ResourceNotFoundError), self._storage(
            f"release claim {_shown(key)} in table {table.table_name!r}",
            answers=(ResourceModifiedError, ResourceNotFoundError),
        ):
            table.delete_entity(
                table_key(key), LEASES, etag=existing.metadata["etag"], match_condition=MatchConditions.IfNotModified
            )

    def record(self, outcome: Outcome) -> None:
        instant = _row_instant(outcome.received_at)
        day = instant.date()
        row_key = _outcome_row_key(instant)
        properties: dict[str, Any] = {}
        for name in TYPED_OUTCOME_FIELDS:
            value = getattr(outcome, name)
            if value is not None:  # the record keeps the value whole (JSON escapes what has no UTF-8 form)
                properties[name] = escape_surrogates(value)[:MAX_TYPED_CHARS]
        properties.update(_record_properties(record_json(outcome)))
        partitions = [f"day-{day.isoformat()}", f"event-{table_key(outcome.event_id)}"]
        if outcome.repository is not None:
            partitions.append(f"repo-{table_key(outcome.repository)}")
        if day not in self._days_noted:  # listed before its first row, so no day partition is ever missed
            self._upsert(OUTCOMES, {"PartitionKey": "days", "RowKey": _day_row_key(day), "day": day.isoformat()})
            self._days_noted.add(day)
        for partition in partitions:
            self._upsert(OUTCOMES, {"PartitionKey": partition, "RowKey": row_key, **properties})

    def outcomes(self, *, limit: int = 50, repository: str | None = None, event_id: str | None = None) -> list[Outcome]:
        """Newest first; a negative `limit` means no limit, as in SQLite."""
        if limit == 0:
            return []
        if event_id is not None:
            found = (
                outcome
                for outcome in self._partition_outcomes(f"event-{table_key(event_id)}", limit)
                if outcome.event_id == event_id and (repository is None or outcome.repository == repository)
            )
        elif repository is not None:
            found = (
                outcome
                for outcome in self._partition_outcomes(f"repo-{table_key(repository)}", limit)
                if outcome.repository == repository
            )
        else:
            found = (outcome for day in self._days() for outcome in self._partition_outcomes(f"day-{day}", limit))
        return _first(found, limit)

    def outcomes_on(self, day: date, *, limit: int = 50) -> list[Outcome]:
        """The outcomes of events received on `day` (UTC), newest first; a negative `limit` means all."""
        if limit == 0:
            return []
        return _first(self._partition_outcomes(f"day-{day.isoformat()}", limit), limit)

    def _partition_outcomes(self, partition: str, limit: int) -> Iterator[Outcome]:
        for entity in self._query(OUTCOMES, partition, page_size=limit if limit > 0 else 1000):
            yield _outcome_from_entity(entity)

    def _days(self) -> Iterator[str]:
        """The days that have outcomes, newest first."""
        for entity in self._query(OUTCOMES, "days", page_size=31):
            yield str(entity["day"])

    def note_remediation(self, scope: str, *, now: float) -> None:
        self._upsert(
            REMEDIATIONS,
            {
                "PartitionKey": table_key(scope),
                "RowKey": uuid.uuid4().hex,  # fixed before the first attempt: an SDK retry rewrites the same row
                "at": float(now),
                "scope": scope[:MAX_TYPED_CHARS],
            },
        )

    def count_remediations(self, scope: str, *, since: float) -> int:
        table = self._table(REMEDIATIONS)
        what = f"count remediations of {_shown(scope)} in table {table.table_name!r}"
        with self._storage(what):
            rows = table.query_entities(
                "PartitionKey eq @scope and at ge @since",
                parameters={"scope": table_key(scope), "since": float(since)},
                select=["RowKey"],
            )
            return sum(1 for _ in rows)

    def mark_released(self, repository: str, digest: str, *, now: float) -> None:
        self._upsert(
            RELEASES,
            {"PartitionKey": table_key(repository), "RowKey": table_key(digest), "at": float(now),
             "repository": repository[:MAX_TYPED_CHARS], "digest": digest[:MAX_TYPED_CHARS]},
        )  # fmt: skip

    def is_released(self, repository: str, digest: str) -> bool:
        return self._get(RELEASES, table_key(repository), table_key(digest)) is not None

    def close(self) -> None:
        self._service.close()

    def save_sweep_resume(self, registry: str, repositories: list[str], *, now: float) -> None:
        text = json.dumps(list(repositories), separators=(",", ":"))
        if len(text) > MAX_RECORD_CHARS:
            raise ValueError(f"sweep resume point of {_shown(registry)}: {len(repositories)} repositories take "
                             f"{len(text)} characters, over the {MAX_RECORD_CHARS} one property holds")
        self._upsert(
            SWEEPS,
            {"PartitionKey": table_key(registry), "RowKey": SWEEP_RESUME_ROW, "repositories": text, "at": float(now),
             "registry": registry[:MAX_TYPED_CHARS]},
        )  # fmt: skip

    def sweep_resume(self, registry: str) -> list[str]:
        entity = self._get(SWEEPS, table_key(registry), SWEEP_RESUME_ROW)
        return [str(name) for name in json.loads(entity["repositories"])] if entity is not None else []

    def record_quarantine(
        self, registry: str, quarantine_repository: str, quarantine_tag: str, original_repository: str,
        original_tag: str, digest: str, *, now: float,
    ) -> None:
        self._upsert(
            QUARANTINES,
            {"PartitionKey": table_key(f"{registry}/{quarantine_repository}"), "RowKey": table_key(quarantine_tag),
             "registry": registry, "quarantine_repository": quarantine_repository, "quarantine_tag": quarantine_tag,
             "original_repository": original_repository, "original_tag": original_tag, "digest": digest,
             "at": float(now)},
        )  # fmt: skip

    def quarantine_origin(
        self, registry: str, quarantine_repository: str, quarantine_tag: str
    ) -> QuarantineOrigin | None:
        entity = self._get(QUARANTINES, table_key(f"{registry}/{quarantine_repository}"), table_key(quarantine_tag))
        if entity is None:
            return None
        return QuarantineOrigin(repository=entity["original_repository"], tag=entity["original_tag"],
                                digest=entity["digest"])


def _first(outcomes: Iterator[Outcome], limit: int) -> list[Outcome]:
    if limit < 0:
        return list(outcomes)
    found: list[Outcome] = []
    for outcome in outcomes:
        found.append(outcome)
        if len(found) >= limit:
            break
    return found


# Sweep resume points (save_sweep_resume): table `sweeps`, one row per registry (PartitionKey: the escaped registry).
SWEEPS, SWEEP_RESUME_ROW = "sweeps", "resume"

# Quarantine records (record_quarantine): table `quarantines`, PartitionKey the escaped `registry/quarantine
# repository`, RowKey the escaped quarantine tag; the names are short (255 + 128 characters), so kept whole.
QUARANTINES = "quarantines"
