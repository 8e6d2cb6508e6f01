"""The event queue on Azure Storage Queues (azure-storage-queue), with per-key exclusion held in Azure Table Storage.

    queue = StorageQueue(connection_string=azurite.connection_string)                   # Azurite, development
    queue = StorageQueue(account_url="https://<account>.queue.core.windows.net", credential=DefaultAzureCredential())
    message = queue.take("worker-1", lease_seconds=60, now=time.time())

Queues: `queue_name` holds the events, `<queue_name>-poison` the dead letters (the Azure Functions convention, so the
host's poison handling and ours share one queue). Both are created on first use, with messages that never expire.

Messages: the content is a compact JSON envelope, base64-encoded (standard alphabet, padded) as the Functions queue
trigger expects by default (host.json `extensions.queues.messageEncoding: base64`), so a Functions trigger on either
queue reads the envelope as its message text:

    {"v": 1, "key": "...", "body": "...", "enqueued_at": 1715680805.1, "attempts": 0, "first_attempt_at": null,
     "last_error": null}

A dead letter's envelope adds `"id"` (the message id it had), `"dead_at"` and `"error"`. The whole encoded content is
at most 64 KiB, the service's limit; `put` refuses a body that leaves less than RESERVED_CHARS of it for what retries
and dead-lettering add, with a ValueError (it will not pass). Errors kept in an envelope are cut to ERROR_CHARS.

Leases: `take` receives a message with `visibility_timeout` = the lease (whole seconds, rounded up) and hands out the
pop receipt in `Message.receipt`; renew and retry_later update the message's visibility (a new receipt each time),
complete deletes it, dead_letter sends it to the poison queue and then deletes it. A receipt that no longer matches
(the lease ran out and another worker received the message) answers False (None for renew), never an exception.
`attempts`, `first_attempt_at` and `last_error` live in the envelope, rewritten on every take, so they count what
the workers did: the service's dequeue count also counts the receives that passed a message over (below).

Per-key exclusion: Storage Queues have no keys. Each key with a message in work has an entity in the table
`lease_table` (PartitionKey = the key escaped as the ledger escapes keys, RowKey "lease") naming the message, its
owner and the lease expiry. `take` inserts it, or replaces it under an ETag match, so of two workers racing for one
key exactly one wins. The message the entity names may replace it once its lease ran out, or at once when it was
given back with retry_later (owner ""); any other message of the key only `key_grace_seconds` after the expiry (the
named message is presumably still queued, and goes first; the grace frees a key whose holder vanished without
freeing it). A message whose key it may not take is made visible again after `skip_seconds` and `take` receives the
next one, `scan` messages at most per call, then answers None. complete and dead_letter delete the entity when it is
still theirs.

What this adapter cannot do as SQLite does:
- Order within a key is approximate. The service returns messages roughly, not strictly, in the order they were put,
  so two waiting messages of a free key may be taken in the wrong order; and a key's later message that was not
  received while the key was busy may take it before an earlier one that was passed over and is still invisible
  (for up to `skip_seconds`). A lease that runs out or a delayed retry does keep the key for its own message.
- `depth` counts from `approximate_message_count`, which counts invisible messages too: leased, delayed and
  passed-over messages cannot be told from ready ones, so every message is reported `ready` (`delayed` and `leased`
  are 0) and `dead` is the poison queue's count. Both are approximate.
- Visibility is the service's real time, whole seconds; the `now` arguments set the envelope's times and the key
  leases' expiry, which therefore assume that `now` is the current time.
- A `take` that fails midway (QueueUnavailable) leaves the message it received invisible until its lease would have
  ended, as a worker that died does.
- dead_letters and redrive walk the poison queue by receiving it (it cannot be listed otherwise beyond 32 messages),
  WALK_LIMIT messages at most, hiding each for up to WALK_SECONDS and making it visible again; two walks at once
  see parts of it.
  A poison message the Azure Functions host moved there (the queue trigger gave up after maxDequeueCount tries: an
  envelope of ours without `dead_at`, or an Event Grid event the registry's subscription delivered) is a dead letter
  too: listed with the time it was moved and HOST_GAVE_UP as its error, and re-driven as it is (the same content).
  Other poison messages (written by something else) are left where they are.

Errors: connection failures, timeouts, 408, 429 and 5xx that outlast the SDK's retries (the `retry` policy,
importer.core.retry.QUEUE_RETRY by default) raise QueueUnavailable; other refusals raise StorageQueueError. Messages
name the queue or table and its service URL without a query string; connection strings and keys are never shown.

Azure SDKs are imported on first use, not with this module: the Functions cold start does not pay for them.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import math
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from importer.core.bounded_json import loads as load_bounded_json
from importer.core.retry import QUEUE_RETRY, RetryPolicy
from importer.ports.queue import DeadLetter, Message, QueueDepth, QueueUnavailable

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableEntity
    from azure.storage.queue import QueueClient, QueueMessage

ENVELOPE_VERSION = 1
MAX_MESSAGE_CHARS = 65_536  # the service's limit on a message's (encoded) content
RESERVED_CHARS = 12_288  # room kept at put for what a retry or a dead letter adds to the envelope
ERROR_CHARS = 1_000  # an error kept in an envelope is cut to this many characters
MAX_VISIBILITY_SECONDS = 7 * 24 * 3600  # the service's longest visibility timeout
WALK_SECONDS = 30  # how long walking the poison queue hides each dead letter at most
WALK_LIMIT = 5_000  # how many poison messages one walk reads at most
LEASE_ROW = "lease"
HOST_GAVE_UP = "the Functions host gave up after maxDequeueCount tries (host.json) and moved it to the poison queue"
_MAX_TYPED_CHARS = 1_024
_HOLD_ATTEMPTS = 5  # a key entity deleted between our insert and our read is tried again, a few times at most
_TRANSIENT_STATUSES = frozenset({408, 429})
_POP_RECEIPT_MISMATCH = "PopReceiptMismatch"
_QUEUE_NAME = re.compile(r"[a-z0-9](?:-?[a-z0-9])+")
_SIGNATURE = re.compile(r"(?i)\b(sig=)[^&\s'\"]+")  # a SAS token's signature, as a URL in an error may carry it


class StorageQueueError(Exception):
    """Storage refused an operation for a reason that will not pass by retrying (auth, bad request, a missing queue)."""


class _LeaseLost(Exception):
    """The message is gone or its pop receipt no longer matches: another worker holds it now."""


class StorageQueue:
    """EventQueue on one Storage queue, its poison queue and a table of key leases; its clients are thread-safe."""

    def __init__(
        self,
        *,
        connection_string: str | None = None,
        account_url: str | None = None,
        credential: object | None = None,
        table_endpoint: str | None = None,
        queue_name: str = "platform-guard-events",
        lease_table: str = "platformguardqueuekeys",
        skip_seconds: int = 3,
        scan: int = 4,
        key_grace_seconds: float = 30.0,
        retry: RetryPolicy = QUEUE_RETRY,
        timeout_seconds: float = 10.0,
    ) -> None:
        """Connect by `connection_string`, or by `account_url` (the Queue service URL) + `credential` (a
        TokenCredential such as DefaultAzureCredential for a managed identity). The key-lease table is in the same
        account: its endpoint comes from the connection string, or from `account_url` with `.queue.` made `.table.`
        (`table_endpoint` says it otherwise).

        `skip_seconds` (at least 1) is how long a message passed over for a busy key stays invisible; `scan` is how
        many messages one `take` receives at most; `key_grace_seconds` is how long a key stays reserved for its
        message after that message's lease ran out. `retry` and `timeout_seconds` bound each call.
        """
        if (connection_string is None) == (account_url is None):
            raise ValueError("StorageQueue needs exactly one of connection_string and account_url")
        if account_url is not None and credential is None:
            raise ValueError(
                f"StorageQueue account URL {account_url!r} needs a credential (e.g. DefaultAzureCredential())"
            )
        if account_url is not None and table_endpoint is None:
            table_endpoint = _table_endpoint_for(account_url)
        _check_queue_name(queue_name)
        if not (lease_table[:1].isalpha() and lease_table.isalnum() and 3 <= len(lease_table) <= 63):
            raise ValueError(f"lease table {lease_table!r} must be a letter then letters or digits, 3 to 63 characters")
        if skip_seconds < 1 or scan < 1:
            raise ValueError(f"skip_seconds ({skip_seconds}) and scan ({scan}) must be at least 1")
        self.queue_name = queue_name
        self.poison_name = f"{queue_name}-poison"
        self.lease_table = lease_table
        self.skip_seconds = int(skip_seconds)
        self.scan = int(scan)
        self.key_grace_seconds = float(key_grace_seconds)
        self._connection_string = connection_string
        self._account_url = account_url
        self._table_endpoint = table_endpoint
        self._credential = credential
        self._retry = retry
        self._timeout = timeout_seconds
        self._lock = threading.Lock()
        self._clients: tuple[QueueClient, QueueClient, TableClient] | None = None

    # -- plumbing ----------------------------------------------------------------------------------------

    def _connect(self) -> tuple[QueueClient, QueueClient, TableClient]:
        """The queue, poison queue and key-lease table clients; created, with their queues and table, on first use."""
        with self._lock:
            if self._clients is not None:
                return self._clients
            from azure.core.exceptions import ResourceExistsError
            from azure.data.tables import TableClient
            from azure.storage.queue import QueueClient

            from importer.adapters.retrying import azure_retry_options, storage_retry_policy

            timeouts = {"connection_timeout": self._timeout, "read_timeout": self._timeout}
            queue_options = {"retry_policy": storage_retry_policy(self._retry), **timeouts}
            table_options = {**azure_retry_options(self._retry), **timeouts}
            if self._connection_string is not None:
                queues = [
                    QueueClient.from_connection_string(self._connection_string, name, **queue_options)
                    for name in (self.queue_name, self.poison_name)
                ]
                table = TableClient.from_connection_string(self._connection_string, self.lease_table, **table_options)
            else:
                credential: Any = self._credential
                queues = [
                    QueueClient(str(self._account_url), name, credential=credential, **queue_options)
                    for name in (self.queue_name, self.poison_name)
                ]
                table = TableClient(str(self._table_endpoint), self.lease_table, credential=credential, **table_options)
            try:
                for client, create in [*((queue, queue.create_queue) for queue in queues), (table, table.create_table)]:
                    try:
                        with self._service(f"create {_name(client)!r}", client, answers=(ResourceExistsError,)):
                            create()
                    except ResourceExistsError:
                        pass
            except Exception:
                for client in (*queues, table):
                    client.close()
                raise
            self._clients = (queues[0], queues[1], table)
            return self._clients

    @contextmanager
    def _service(
        self, what: str, client: object, *, receipt: bool = False, answers: tuple[type[Exception], ...] = ()
    ) -> Iterator[None]:
        """Turn the SDK's errors into QueueUnavailable (may pass) or StorageQueueError (will not); with `receipt`,
        a message that is gone or a pop receipt that no longer matches raises _LeaseLost. `answers` are refusals the
        caller handles itself (an entity that exists, or does not, an ETag that no longer matches)."""
        from azure.core.exceptions import AzureError, HttpResponseError, ServiceRequestError, ServiceResponseError

        try:
            yield
        except answers:
            raise
        except AzureError as error:
            status = getattr(error, "status_code", None)
            if receipt and (status == 404 or _error_code(error) == _POP_RECEIPT_MISMATCH):
                raise _LeaseLost() from error
            detail = (
                f"HTTP {status}: {error.message}" if isinstance(error, HttpResponseError) and status else str(error)
            )
            detail = _SIGNATURE.sub(r"\1***", detail)
            message = f"storage at {_url(client)}: {what} failed: {detail}"
            if isinstance(error, (ServiceRequestError, ServiceResponseError)) or (
                status is not None and (status in _TRANSIENT_STATUSES or status >= 500)
            ):
                raise QueueUnavailable(message) from error
            raise StorageQueueError(message) from error

    def _send(self, queue: QueueClient, envelope: dict[str, Any] | str, what: str) -> QueueMessage:
        """Send an envelope (encoded), or a message's content as it is."""
        with self._service(what, queue):
            content = envelope if isinstance(envelope, str) else _encode(envelope)
            return queue.send_message(content, time_to_live=-1)

    def _update(
        self,
        queue: QueueClient,
        message_id: str,
        receipt: str,
        *,
        seconds: float,
        envelope: dict[str, Any] | None = None,
    ) -> str | None:
        """Make the message visible again after `seconds` (rewriting it when `envelope` is given): its new pop receipt,
        or None when `receipt` no longer holds it."""
        content = None if envelope is None else _encode(envelope)
        visibility = min(MAX_VISIBILITY_SECONDS, max(0, math.ceil(seconds)))
        try:
            with self._service(f"update message {message_id} of queue {queue.queue_name!r}", queue, receipt=True):
                updated = queue.update_message(message_id, receipt, content=content, visibility_timeout=visibility)
        except _LeaseLost:
            return None
        return str(updated.pop_receipt)

    def _delete(self, queue: QueueClient, message_id: str, receipt: str) -> bool:
        try:
            with self._service(f"delete message {message_id} of queue {queue.queue_name!r}", queue, receipt=True):
                queue.delete_message(message_id, receipt)
        except _LeaseLost:
            return False
        return True

    # -- key leases --------------------------------------------------------------------------------------

    def _key_entity(self, table: TableClient, key: str) -> TableEntity | None:
        from azure.core.exceptions import ResourceNotFoundError

        from importer.adapters.ledger.tables import table_key

        try:
            what = f"read the lease of key {_shown(key)} in table {table.table_name!r}"
            with self._service(what, table, answers=(ResourceNotFoundError,)):
                return table.get_entity(table_key(key), LEASE_ROW)
        except ResourceNotFoundError:
            return None

    def _hold_key(self, table: TableClient, key: str, message_id: str, owner: str, until: float, now: float) -> bool:
        """Give `key` to this message: insert its entity, or take it over when it expired or was this message's own
        while delayed. Exactly one of several racing callers gets True."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        from importer.adapters.ledger.tables import table_key

        entity = _lease_entity(table_key(key), key, message_id, owner, until)
        what = f"lease key {_shown(key)} in table {table.table_name!r}"
        for _ in range(_HOLD_ATTEMPTS):
            try:
                with self._service(what, table, answers=(ResourceExistsError,)):
                    table.create_entity(entity)
                return True
            except ResourceExistsError:
                pass
            existing = self._key_entity(table, key)
            if existing is None:
                continue  # freed between our insert and our read: insert again
            if _holds(existing, message_id, owner, until):
                return True  # a retried insert that had in fact succeeded
            if not _may_take(existing, message_id, now=now, grace=self.key_grace_seconds):
                return False
            try:
                with self._service(what, table, answers=(ResourceModifiedError, ResourceNotFoundError)):
                    table.update_entity(
                        entity,
                        mode=UpdateMode.REPLACE,
                        etag=existing.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
                return True
            except ResourceModifiedError:
                current = self._key_entity(table, key)
                return current is not None and _holds(current, message_id, owner, until)
            except ResourceNotFoundError:
                continue
        return False

    def _change_hold(
        self, table: TableClient, message: Message, *, owner: str, until: float | None, alive_at: float | None = None
    ) -> bool:
        """Move the key's lease, when this message still holds it (and still at `alive_at`, when given), to `owner`
        until `until` (None: free the key)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        existing = self._key_entity(table, message.key)
        if existing is None or not _holds(existing, message.message_id, message.owner, message.lease_until):
            return False
        if alive_at is not None and message.lease_until <= alive_at:
            return False
        condition = {"etag": existing.metadata["etag"], "match_condition": MatchConditions.IfNotModified}
        try:
            what = f"lease key {_shown(message.key)} in table {table.table_name!r}"
            with self._service(what, table, answers=(ResourceModifiedError, ResourceNotFoundError)):
                if until is None:
                    table.delete_entity(existing["PartitionKey"], LEASE_ROW, **condition)
                else:
                    entity = _lease_entity(existing["PartitionKey"], message.key, message.message_id, owner, until)
                    table.update_entity(entity, mode=UpdateMode.REPLACE, **condition)
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        return True

    def _after_commit(self, table: TableClient, message: Message, *, until: float | None) -> None:
        """Free the key (None), or keep it for the message given back `until`, once the queue has taken the change:
        a table failure that may pass does not undo it, the key then frees itself when its lease runs out."""
        try:
            self._change_hold(table, message, owner="", until=until)
        except QueueUnavailable:
            pass

    # -- the EventQueue protocol -------------------------------------------------------------------------

    def put(self, key: str, body: str, *, now: float) -> str:
        queue, _, _ = self._connect()
        envelope = _envelope(key, body, enqueued_at=now)
        size = len(_encode(envelope))
        if size > MAX_MESSAGE_CHARS - RESERVED_CHARS:
            raise ValueError(
                f"queue {self.queue_name!r}: an event of {size} characters encoded is over the"
                f" {MAX_MESSAGE_CHARS - RESERVED_CHARS} a message may start with (key {_shown(key)})"
            )
        return str(self._send(queue, envelope, f"put an event of key {_shown(key)} on queue {queue.queue_name!r}").id)

    def take(self, owner: str, *, lease_seconds: float, now: float) -> Message | None:
        queue, _, table = self._connect()
        until = now + lease_seconds
        visibility = min(MAX_VISIBILITY_SECONDS, max(1, math.ceil(lease_seconds)))
        for _ in range(self.scan):
            with self._service(f"receive from queue {queue.queue_name!r}", queue):
                received = queue.receive_message(visibility_timeout=visibility)
            if received is None:
                return None
            envelope = _decode(received.content)
            if envelope is None or "key" not in envelope:
                self._dead_letter_foreign(received, now=now)
                continue
            key = str(envelope["key"])
            if not self._hold_key(table, key, received.id, owner, until, now):
                self._update(queue, received.id, received.pop_receipt, seconds=self.skip_seconds)
                continue
            envelope["attempts"] = int(envelope.get("attempts") or 0) + 1
            if envelope.get("first_attempt_at") is None:
                envelope["first_attempt_at"] = now
            receipt = self._update(queue, received.id, received.pop_receipt, seconds=visibility, envelope=envelope)
            message = _message(received.id, envelope, owner=owner, lease_until=until, receipt=receipt)
            if receipt is None:  # its visibility ended while we leased its key: someone else may hold it now
                self._change_hold(table, message, owner="", until=None)
                continue
            return message
        return None

    def renew(self, message: Message, *, lease_seconds: float, now: float) -> Message | None:
        queue, _, table = self._connect()
        renewed = dataclasses.replace(message, lease_until=now + lease_seconds)
        if message.receipt is None or not self._change_hold(
            table, message, owner=message.owner, until=renewed.lease_until, alive_at=now
        ):
            return None
        receipt = self._update(queue, message.message_id, message.receipt, seconds=lease_seconds)
        if receipt is None:
            self._change_hold(table, renewed, owner="", until=None)
            return None
        return dataclasses.replace(renewed, receipt=receipt)

    def complete(self, message: Message) -> bool:
        queue, _, table = self._connect()
        if message.receipt is None or not self._delete(queue, message.message_id, message.receipt):
            return False
        self._after_commit(table, message, until=None)
        return True

    def retry_later(self, message: Message, *, delay: float, error: str, now: float) -> bool:
        queue, _, table = self._connect()
        if message.receipt is None:
            return False
        envelope = {**_message_envelope(message), "last_error": error[:ERROR_CHARS]}
        if self._update(queue, message.message_id, message.receipt, seconds=delay, envelope=envelope) is None:
            return False
        self._after_commit(table, message, until=now + math.ceil(max(delay, 0.0)))
        return True

    def dead_letter(self, message: Message, *, error: str, now: float) -> bool:
        queue, poison, table = self._connect()
        if message.receipt is None:
            return False
        dead = {**_message_envelope(message), "id": message.message_id, "dead_at": now, "error": error[:ERROR_CHARS]}
        sent = self._send(poison, dead, f"dead-letter message {message.message_id} to queue {poison.queue_name!r}")
        if not self._delete(queue, message.message_id, message.receipt):
            self._delete(poison, sent.id, sent.pop_receipt)  # the lease was lost: take the copy back
            return False
        self._after_commit(table, message, until=None)
        return True

    def _dead_letter_foreign(self, received: QueueMessage, *, now: float) -> None:
        """A message that is not an envelope of ours cannot be worked on: wrapped as a dead letter with no key."""
        queue, poison, _ = self._connect()
        content = str(received.content)
        dead = {**_envelope("", content, enqueued_at=now), "id": received.id, "dead_at": now}
        dead["error"] = "not a Platform Guard queue message (a JSON envelope, base64-encoded)"
        self._send(poison, dead, f"dead-letter message {received.id} to queue {poison.queue_name!r}")
        self._delete(queue, received.id, received.pop_receipt)

    @contextmanager
    def _walk_dead_letters(self) -> Iterator[dict[str, tuple[QueueMessage, dict[str, Any]]]]:
        """The dead letters of ours (WALK_LIMIT at most), received (hidden) by poison message id; the caller removes
        those it deletes, the rest, and the poison messages that are not ours, are made visible again on exit."""
        _, poison, _ = self._connect()
        walked: dict[str, tuple[QueueMessage, dict[str, Any]]] = {}
        others: list[QueueMessage] = []
        try:
            with self._service(f"read the dead letters of queue {poison.queue_name!r}", poison):
                for received in poison.receive_messages(
                    messages_per_page=32, visibility_timeout=WALK_SECONDS, max_messages=WALK_LIMIT
                ):
                    envelope = _decode(received.content)
                    if envelope is None or "dead_at" not in envelope:
                        envelope = _host_gave_up(received, envelope)
                    if envelope is None:
                        others.append(received)
                    else:
                        walked[received.id] = (received, envelope)
            yield walked
        finally:
            for received in [*others, *(received for received, _ in walked.values())]:
                self._update(poison, received.id, received.pop_receipt, seconds=0)

    def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        with self._walk_dead_letters() as walked:
            found = [_dead_letter(received, envelope) for received, envelope in walked.values()]
        found.sort(key=lambda dead: (dead.dead_at, dead.message_id), reverse=True)
        return found[: max(limit, 0)]

    def redrive(self, message_ids: Sequence[str] | None = None, *, now: float) -> int:
        queue, poison, _ = self._connect()
        wanted = None if message_ids is None else set(message_ids)
        moved = 0
        with self._walk_dead_letters() as walked:
            for poison_id, (received, envelope) in sorted(walked.items(), key=lambda item: item[1][1]["dead_at"]):
                if wanted is not None and str(envelope.get("id")) not in wanted:
                    continue
                again: dict[str, Any] | str = (
                    str(received.content) if envelope.get("verbatim")
                    else _envelope(str(envelope["key"]), str(envelope["body"]), enqueued_at=envelope["enqueued_at"])
                )  # fmt: skip
                self._send(queue, again, f"re-drive dead letter {envelope.get('id')} to queue {queue.queue_name!r}")
                del walked[poison_id]
                self._delete(poison, poison_id, received.pop_receipt)
                moved += 1
        return moved

    def depth(self, *, now: float) -> QueueDepth:
        queue, poison, _ = self._connect()
        counts = []
        for client in (queue, poison):
            with self._service(f"read the properties of queue {client.queue_name!r}", client):
                counts.append(int(client.get_queue_properties().approximate_message_count or 0))
        return QueueDepth(ready=counts[0], delayed=0, leased=0, dead=counts[1])

    def peek(self, *, limit: int = 1) -> int:
        """Peek at up to `limit` (1 to 32) messages of the queue and of its poison queue without receiving them
        (importer.ports.probes.PeeksQueue, for `doctor`): nothing changes but what any first use creates (the
        queues and the key-lease table, when missing). How many of the queue's own were there."""
        queue, poison, _ = self._connect()
        count = max(1, min(int(limit), 32))
        seen = []
        for client in (queue, poison):
            with self._service(f"peek at queue {client.queue_name!r}", client):
                seen.append(len(client.peek_messages(max_messages=count)))
        return seen[0]

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, None
        for client in clients or ():
            client.close()


# -- envelopes and entities ------------------------------------------------------------------------------


def _envelope(key: str, body: str, *, enqueued_at: float) -> dict[str, Any]:
    return {"v": ENVELOPE_VERSION, "key": key, "body": body, "enqueued_at": float(enqueued_at), "attempts": 0,
            "first_attempt_at": None, "last_error": None}  # fmt: skip


def _message_envelope(message: Message) -> dict[str, Any]:
    return {**_envelope(message.key, message.body, enqueued_at=message.enqueued_at), "attempts": message.attempts,
            "first_attempt_at": message.first_attempt_at, "last_error": message.last_error}  # fmt: skip


def _encode(envelope: dict[str, Any]) -> str:
    """Compact ASCII JSON, base64-encoded: what the Functions queue trigger decodes by default."""
    return base64.b64encode(json.dumps(envelope, separators=(",", ":")).encode("ascii")).decode("ascii")


def _decode(content: object) -> dict[str, Any] | None:
    """The envelope in a message's content, or None when it is not one of ours."""
    try:
        envelope = load_bounded_json(base64.b64decode(str(content), validate=True))  # deep: not ours
    except (binascii.Error, ValueError):
        return None
    if not isinstance(envelope, dict) or envelope.get("v") != ENVELOPE_VERSION:
        return None
    return envelope


def _host_gave_up(received: QueueMessage, envelope: dict[str, Any] | None) -> dict[str, Any] | None:
    """A dead-letter envelope for a poison message the Functions host moved (an envelope of ours without `dead_at`,
    or an Event Grid event), marked `verbatim`: re-driven as it is; None for anything else."""
    moved_at = received.inserted_on.timestamp() if received.inserted_on else 0.0
    marks = {"id": received.id, "dead_at": moved_at, "error": HOST_GAVE_UP, "verbatim": True}
    if envelope is not None and "key" in envelope and "body" in envelope:
        return {**envelope, **marks}
    text = str(received.content)
    for candidate in (_base64_text(text), text):  # Event Grid writes base64; a plain one was poisoned undecoded
        try:
            event = load_bounded_json(candidate) if candidate is not None else None
        except ValueError:
            continue
        if isinstance(event, dict) and "eventType" in event:
            key = f"eventgrid:{event.get('subject') or event.get('id') or ''}"
            return {**_envelope(key, candidate, enqueued_at=moved_at), **marks}
    return None


def _base64_text(content: str) -> str | None:
    try:
        return base64.b64decode(content, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None


def _message(
    message_id: str, envelope: dict[str, Any], *, owner: str, lease_until: float, receipt: str | None
) -> Message:
    return Message(
        message_id=str(message_id),
        key=str(envelope["key"]),
        body=str(envelope["body"]),
        attempts=int(envelope["attempts"]),
        enqueued_at=float(envelope["enqueued_at"]),
        first_attempt_at=float(envelope["first_attempt_at"]),
        owner=owner,
        lease_until=lease_until,
        last_error=envelope.get("last_error"),
        receipt=receipt,
    )


def _dead_letter(received: QueueMessage, envelope: dict[str, Any]) -> DeadLetter:
    return DeadLetter(
        message_id=str(envelope.get("id") or received.id),
        key=str(envelope["key"]),
        body=str(envelope["body"]),
        attempts=int(envelope.get("attempts") or 0),
        enqueued_at=float(envelope["enqueued_at"]),
        dead_at=float(envelope["dead_at"]),
        error=str(envelope.get("error") or ""),
    )


def _lease_entity(partition: str, key: str, message_id: str, owner: str, until: float) -> dict[str, Any]:
    return {"PartitionKey": partition, "RowKey": LEASE_ROW, "key": key[:_MAX_TYPED_CHARS], "message_id": message_id,
            "owner": owner, "expires": float(until)}  # fmt: skip


def _may_take(entity: TableEntity, message_id: str, *, now: float, grace: float) -> bool:
    """Whether a message may replace the key entity: its own once the lease ran out or when it was given back, any
    other message `grace` seconds after that."""
    expires = float(entity.get("expires", 0.0))
    if entity.get("message_id") == message_id:
        return not entity.get("owner") or expires <= now
    return expires + grace <= now


def _holds(entity: TableEntity | dict[str, Any], message_id: str, owner: str, until: float) -> bool:
    """Whether the key entity is this lease's: the same message, owner and expiry (the receipt SQLite checks)."""
    return (
        entity.get("message_id") == message_id
        and entity.get("owner") == owner
        and float(entity.get("expires", math.nan)) == until
    )


# -- small helpers -----------------------------------------------------------------------------------------


def _check_queue_name(name: str) -> None:
    """Queue names: 3-63 lower-case letters, digits and single inner hyphens; room is kept for "-poison"."""
    if not (_QUEUE_NAME.fullmatch(name) and 3 <= len(name) <= 63 - len("-poison")):
        raise ValueError(
            f"queue name {name!r} must be 3 to 56 lower-case letters, digits and single hyphens, starting and ending"
            " with a letter or digit (56 leaves room for its poison queue's -poison)"
        )


def _table_endpoint_for(account_url: str) -> str:
    """The Table service URL of the account whose Queue service URL is `account_url`."""
    scheme, _, rest = account_url.partition("://")
    host, _, path = rest.partition("/")
    account, dot, suffix = host.partition(".")
    if not dot or not suffix.startswith("queue."):
        raise ValueError(f"cannot tell the Table endpoint of {account_url!r}; give table_endpoint=")
    return f"{scheme}://{account}.table.{suffix[len('queue.') :]}" + (f"/{path}" if path else "")


def _name(client: object) -> str:
    return str(getattr(client, "queue_name", None) or getattr(client, "table_name", ""))


def _url(client: object) -> str:
    """A client's URL without its query string (a SAS token is a secret)."""
    return str(getattr(client, "url", "")).split("?", 1)[0]


def _error_code(error: Exception) -> str:
    code = getattr(error, "error_code", None)
    return str(getattr(code, "value", code) or "")


def _shown(text: str) -> str:
    """`text` quoted for an error message, cut to 200 characters."""
    return repr(text if len(text) <= 200 else text[:200] + "…")
