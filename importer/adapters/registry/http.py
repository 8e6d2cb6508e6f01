"""HTTP transport for registry clients: pooled connections, timeouts, bounded retries, plain-http policy.

    transport = HttpTransport(timeout=10.0, retry=REGISTRY_RETRY)                 # importer.core.retry
    response = transport.request("GET", url, context="manifest 127.0.0.1:5000/app:1", max_body=4 << 20)
    with transport.open("GET", blob_url, context="blob …") as streamed:   # body read in fixed-size chunks
        for chunk in streamed.chunks(): ...
    status, headers, body = transport.get(url, {})                      # one plain GET, no retries

Why urllib3 directly (2.x): it is already installed with azure-core and requests, so it adds nothing to the
deployment; it has the lowest per-request overhead of the Python HTTP clients; its PoolManager is thread-safe
and keeps real keep-alive pools per host; and `read(n)` on an unpreloaded response streams a body through a
fixed buffer, which is what blob copies and capped manifest reads need. Retries and redirects are done here,
not by urllib3, so that every request sent is counted, `Retry-After` is honoured with a cap, bodies that
cannot be replayed are never re-sent, and credentials are dropped when a redirect leaves the origin.

Retries: 429, 500, 502, 503, 504, timeouts and broken connections are retried as the `retry` policy says
(importer.core.retry.REGISTRY_RETRY: 4 attempts in all, exponential backoff with equal jitter, or `Retry-After`
capped at 30 s); then TransientRegistryError. `max_attempts`, `backoff` and `max_retry_after` override its
attempts, base_delay and max_retry_after. Any other status is returned to the caller, which gives it meaning.
Plain http is refused (InsecureTransportRefused) for every URL whose host is not loopback, unless
`allow_http`: registry endpoints, token realms, redirects and upload locations alike.
Messages and logs name URLs without their query string (storage redirects carry signatures there).

Deadlines: `timeout` bounds each socket operation (connect, one read), which a registry that drips its answer one
byte at a time never trips. So every attempt of a request also has a total deadline, connect, TLS, request, headers
and body together: `request_deadline` seconds (default 30: a manifest, config or token answer is at most a few MiB)
plus 1 s per `min_transfer_rate` bytes moved either way (default 256 KiB/s, a 2 Mbit/s link), so a blob of any size
may stream for as long as it keeps that average rate, and a drip gets nowhere. The deadline also never passes the
time limit of the work in hand (importer.ports.deadlines: the app sets one per event), and no retry waits past
that limit. One watchdog thread cuts the connection of an attempt whose deadline passes (it shuts the socket down,
which ends a blocked read or write at once); the request then raises OutOfTime, a TransientRegistryError naming the
host and what was slow, and is not tried again here (a drip would only start over; the event is retried later).
A streamed body's deadline counts while the caller uses its chunks: when a copy streams one registry into another,
the two together must keep the minimum rate.

Metrics: `observer` (importer.ports.metrics.RegistryRequestObserver), when set, is told of every request sent (each
hop of a redirect, each retry, token requests) and how it ended: a status class (`status_class`) or the failure to
get an answer (`failure_class`). The 401 that opens every token exchange and the 404 of an existence check are
counted like any other answer: this is what the registry said, not what the work made of it.
"""

from __future__ import annotations

import email.utils
import heapq
import http.client
import itertools
import logging
import os
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import urllib3
import urllib3.connection
import urllib3.exceptions

from importer.core.bounded_json import loads as load_bounded_json
from importer.core.reference import is_loopback_host
from importer.core.retry import REGISTRY_RETRY, RetryPolicy, retry_call
from importer.core.words import counted
from importer.ports.deadlines import OutOfTime, TimeLimit, current_time_limit
from importer.ports.metrics import (
    CLIENT_ERROR,
    CONNECTION,
    NOT_FOUND,
    SERVER_ERROR,
    THROTTLED,
    TIMEOUT,
    UNAUTHORIZED,
    UNREACHABLE,
    RegistryRequestObserver,
)
from importer.ports.registry import (
    InsecureTransportRefused,
    ProtocolError,
    RegistryError,
    TooLarge,
    TransientRegistryError,
)

LOG = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
STREAM_CHUNK_BYTES = 256 * 1024
ERROR_BODY_BYTES = 64 * 1024
DEFAULT_MAX_BODY = 32 * 1024 * 1024
REQUEST_DEADLINE_SECONDS = 30.0  # one attempt of a request, before the allowance for the bytes it moves
MIN_TRANSFER_RATE = 256 * 1024  # bytes per second: each this many bytes moved adds 1 s to the deadline
USER_AGENT = f"platform-guard (urllib3/{urllib3.__version__})"

_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    urllib3.exceptions.TimeoutError,  # connect and read timeouts, refused connections, DNS failures
    urllib3.exceptions.ProtocolError,  # resets, aborted connections, truncated bodies
    http.client.HTTPException,
    OSError,
)

T = TypeVar("T")


class _RequestClock:
    """The deadline of one attempt of a request, and the connection the watchdog cuts when it passes.

    The deadline is `seconds` after the start plus 1 s per `rate` bytes moved, and never later than `limit` (the time
    limit of the work in hand). Only the thread making the request changes `phase` and `moved`; `fire` comes from the
    watchdog's thread, `finish` from the request's: the lock keeps a connection from being cut once it is finished
    (and so perhaps back in the pool, serving another request).
    """

    def __init__(self, *, seconds: float, rate: float, limit: TimeLimit | None, host: str, context: str) -> None:
        self.started = time.monotonic()
        self.seconds = seconds
        self.rate = rate
        self.limit = limit
        self.host = host
        self.context = context
        self.phase = "before sending the request to {host}"
        self.moved = 0
        self.done = False
        self._fired = False
        self._sockets: list[socket.socket] = []  # our duplicates of the connection's socket descriptor
        self._lock = threading.Lock()

    @property
    def fired(self) -> bool:
        return self._fired

    def own_deadline(self) -> float:
        return self.started + self.seconds + self.moved / self.rate

    def deadline(self) -> float:
        own = self.own_deadline()
        return own if self.limit is None else min(own, self.limit.ends_at)

    def remaining(self) -> float:
        return self.deadline() - time.monotonic()

    def add(self, count: int) -> None:
        """`count` more bytes moved: the deadline moves 1 s later per `rate` of them."""
        self.moved += count

    def watch_socket(self, sock: socket.socket) -> None:
        """Cut `sock`'s connection when the deadline passes. A duplicate descriptor is kept (and closed by `finish`),
        so the cut can never reach a descriptor number that a closed connection gave back and another one reused;
        shutting a duplicate down ends the connection for every descriptor of it, TLS included."""
        try:
            duplicate = socket.socket(fileno=os.dup(sock.fileno()))
        except OSError:  # already closed: nothing to cut
            return
        with self._lock:
            if not self.done:
                self._sockets.append(duplicate)
                if self._fired:
                    _shut_down(duplicate)
                return
        duplicate.close()

    def fire(self) -> None:
        """The deadline passed: cut the connection (a blocked read or write returns at once)."""
        with self._lock:
            if self.done:
                return
            self._fired = True
            for duplicate in self._sockets:
                _shut_down(duplicate)

    def finish(self) -> bool:
        """Stop watching; True when the deadline cut the connection (which then must not be reused)."""
        with self._lock:
            self.done = True
            sockets, self._sockets = self._sockets, []
        for duplicate in sockets:
            duplicate.close()
        return self._fired

    def expired(self) -> OutOfTime:
        """The error for a deadline that passed: whose it was, what was slow, and where."""
        where = self.phase.format(host=self.host)
        if self.limit is not None and self.limit.ends_at <= self.own_deadline():
            return OutOfTime(f"{self.context}: {self.limit.describe()} ran out {where}")
        elapsed = time.monotonic() - self.started
        return OutOfTime(
            f"{self.context}: {self.host} is too slow: the {self.seconds:g} s deadline of a request passed {where} "
            f"({elapsed:.1f} s, {self.moved} bytes moved; a request may take {self.seconds:g} s plus 1 s per "
            f"{_amount(self.rate)} moved)"
        )


def _shut_down(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed or not connected: nothing left to cut
        pass


def _amount(rate: float) -> str:
    if rate >= 1024 * 1024 and rate % (1024 * 1024) == 0:
        return f"{rate / (1024 * 1024):g} MiB"
    if rate >= 1024 and rate % 1024 == 0:
        return f"{rate / 1024:g} KiB"
    return f"{rate:g} bytes"


class _Watchdog:
    """One daemon thread per process that fires the clocks of requests whose deadline has passed.

    Clocks wait in a heap by deadline; a clock whose deadline moved later (bytes arrived) goes back in, a finished
    one is dropped when it comes up. Started on first use, and again in a forked child (threads do not survive a
    fork)."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int, _RequestClock]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, clock: _RequestClock) -> None:
        with self._condition:
            heapq.heappush(self._heap, (clock.deadline(), next(self._order), clock))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="registry-deadlines", daemon=True)
                self._thread.start()
            self._condition.notify()

    def _run(self) -> None:
        while True:
            clock = self._next_due()
            clock.fire()

    def _next_due(self) -> _RequestClock:
        with self._condition:
            while True:
                if not self._heap:
                    self._condition.wait()
                    continue
                due, _, clock = self._heap[0]
                if clock.done:
                    heapq.heappop(self._heap)
                    continue
                now = time.monotonic()
                if due > now:
                    self._condition.wait(due - now)
                    continue
                heapq.heappop(self._heap)
                later = clock.deadline()
                if later > now:
                    heapq.heappush(self._heap, (later, next(self._order), clock))
                    continue
                return clock


_WATCHDOG = _Watchdog()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_WATCHDOG._reset)

# The clock of the request this thread is sending, for the connection hooks below (urllib3 calls them deep inside
# urlopen, where no argument of ours reaches).
_SENDING = threading.local()


def _sending_clock() -> _RequestClock | None:
    return getattr(_SENDING, "clock", None)


class _WatchedConnectionMixin:
    """Hands each connection's socket to the clock of the request using it, and tells the clock what is going on."""

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        clock = _sending_clock()
        if clock is not None:
            clock.watch_socket(sock)
        return sock

    def connect(self) -> None:
        clock = _sending_clock()
        if clock is not None:
            clock.phase = "while connecting to {host}"
        super().connect()  # type: ignore[misc]  # TCP, and the TLS handshake for https
        if clock is not None:
            clock.phase = "while sending the request to {host}"

    def request(self, *args: object, **kwargs: object) -> None:
        clock = _sending_clock()
        sock = getattr(self, "sock", None)
        if clock is not None and sock is not None:  # a kept-alive connection (a new one is watched from _new_conn)
            clock.watch_socket(sock)
            clock.phase = "while sending the request to {host}"
        super().request(*args, **kwargs)  # type: ignore[misc]

    def getresponse(self) -> urllib3.BaseHTTPResponse:
        clock = _sending_clock()
        if clock is not None:
            clock.phase = "while waiting for the response headers from {host}"
        return super().getresponse()  # type: ignore[misc, no-any-return]


class _WatchedHTTPConnection(_WatchedConnectionMixin, urllib3.connection.HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedConnectionMixin, urllib3.connection.HTTPSConnection):
    pass


class _WatchedHTTPConnectionPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def _counted(chunks: Iterable[bytes], clock: _RequestClock) -> Iterator[bytes]:
    """A streamed request body, each chunk counted as moved on its way to the socket."""
    for chunk in chunks:
        clock.phase = "while sending the body to {host}"
        clock.add(len(chunk))
        yield chunk


@dataclass(frozen=True, slots=True)
class Response:
    """A response whose body was read in full (within the cap the request set)."""

    status: int
    headers: Mapping[str, str]  # case-insensitive
    body: bytes
    url: str  # after redirects


class _RetryableStatus(Exception):
    def __init__(self, description: str, retry_after: float | None) -> None:
        super().__init__(description)
        self.description = description
        self.retry_after = retry_after


def redact_url(url: str) -> str:
    """The URL without user info, query string or fragment: safe for messages and logs."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delay in seconds or an HTTP-date); None if absent or bad."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def _retryable(raw: urllib3.BaseHTTPResponse, body: bytes) -> _RetryableStatus:
    text = _answer_text(body[:512])
    return _RetryableStatus(f"HTTP {raw.status} {text}".strip(), parse_retry_after(raw.headers.get("Retry-After")))


_ERROR_ENTRY = re.compile(r'"code"\s*:\s*"([^"\\]*)"(?:\s*,\s*"message"\s*:\s*"([^"\\]*)")?')


def error_entries(body: bytes | str) -> list[dict[str, Any]] | None:
    """The entries of an OCI error document (`{"errors": [{"code": …, "message": …, "detail": …}, …]}`), or None
    when `body` is not one: not JSON, no `errors`, or `errors` not a list of objects. The one reader of registry error
    documents: `error_detail` (the clients' messages) and the transport's own retry messages are built on it."""
    try:
        errors = load_bounded_json(body)["errors"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(errors, list) or not all(isinstance(entry, dict) for entry in errors):
        return None
    return errors


def error_detail(body: bytes) -> tuple[frozenset[str], str, bool]:
    """(error codes, ': CODE: message; …' text for a message, whether the body was an OCI error document)."""
    if not body.strip():
        return frozenset(), "", True
    errors = error_entries(body)
    if errors is None:
        excerpt = body[:200].decode("utf-8", "replace")
        excerpt = "".join(character if character.isprintable() else " " for character in excerpt).strip()
        return frozenset(), f": {excerpt}", False
    codes = [str(error.get("code", "")) for error in errors]
    texts = [f"{error.get('code', '?')}: {error.get('message', '')}".strip() for error in errors]
    return frozenset(codes), (": " + "; ".join(texts)) if texts else "", True


def _answer_text(body: bytes) -> str:
    """An error answer's body as a message shows it, on one line: `CODE: message` for each entry of an OCI error
    document (never the JSON itself), else the body's printable text."""
    text = body.decode("utf-8", "replace")
    errors = error_entries(text)
    if errors is not None:
        described = "; ".join(": ".join(part for part in (entry.get("code"), entry.get("message"))
                                        if isinstance(part, str) and part)
                              for entry in errors)
    else:  # a document cut at the bytes read: its first entries
        described = "; ".join(": ".join(part for part in found if part) for found in _ERROR_ENTRY.findall(text))
    shown = described or text
    return " ".join("".join(character if character.isprintable() else " " for character in shown).split())


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _is_transient(error: Exception) -> bool:
    """A retryable status or a broken connection: worth another attempt."""
    return isinstance(error, (_RetryableStatus, *_CONNECTION_ERRORS))


def _retry_after(error: Exception) -> float | None:
    return error.retry_after if isinstance(error, _RetryableStatus) else None


def _problem(error: BaseException) -> str:
    return error.description if isinstance(error, _RetryableStatus) else _describe(error)


def _read_some(raw: urllib3.BaseHTTPResponse, most: int, clock: _RequestClock) -> bytes:
    """What the body has ready, up to `most` bytes (b"" at its end), counted on the clock; OutOfTime once the clock
    has cut the connection, whatever the read made of that. `read1` returns what one socket read brings, so every
    byte that arrives moves the deadline, even while a larger chunk is still being gathered."""
    try:
        piece = raw.read1(most, decode_content=False)
    except _CONNECTION_ERRORS:
        if clock.fired:
            raise clock.expired() from None
        raise
    if clock.fired:
        raise clock.expired()
    clock.add(len(piece))
    return piece


def _read_up_to(raw: urllib3.BaseHTTPResponse, limit: int, clock: _RequestClock) -> tuple[bytes, bool]:
    """Read at most limit + 1 bytes; return them and whether the body ended (so the connection is reusable)."""
    clock.phase = "while reading the body from {host}"
    parts: list[bytes] = []
    total = 0
    while total <= limit:
        chunk = _read_some(raw, min(STREAM_CHUNK_BYTES, limit + 1 - total), clock)
        if not chunk:
            return b"".join(parts), True
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts), False


def _finish(raw: urllib3.BaseHTTPResponse, complete: bool, clock: _RequestClock) -> None:
    """Stop the clock, then give the connection back to the pool; one with unread body left, or cut by the
    deadline, is closed first, never reused."""
    if clock.finish() or not complete:
        raw.close()
    raw.release_conn()


def _declared_length(headers: Mapping[str, str]) -> int | None:
    value = headers.get("Content-Length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


class StreamedResponse:
    """A response whose body is read by the caller in fixed-size chunks; use it as a context manager."""

    def __init__(self, raw: urllib3.BaseHTTPResponse, url: str, context: str, clock: _RequestClock) -> None:
        self._raw = raw
        self._context = context
        self._clock = clock
        self._complete = False
        self._closed = False
        self.status: int = raw.status
        self.headers: Mapping[str, str] = raw.headers
        self.url = url

    def chunks(self) -> Iterator[bytes]:
        """The body, STREAM_CHUNK_BYTES at a time (the last chunk shorter); a broken connection raises
        TransientRegistryError, a passed deadline OutOfTime."""
        raw, clock = self._raw, self._clock
        clock.phase = "while reading the body from {host}"
        # The pieces of one chunk are kept as read and joined once: one copy of the bytes, none at all when a
        # single read brings the whole chunk (joining one `bytes` gives it back as it is). Each chunk is a new
        # `bytes` the caller may keep.
        pieces: list[bytes] = []
        held = 0
        try:
            while True:
                piece = _read_some(raw, STREAM_CHUNK_BYTES - held, clock)
                if not piece:
                    self._complete = True
                    if pieces:
                        yield b"".join(pieces)
                    return
                pieces.append(piece)
                held += len(piece)
                if held >= STREAM_CHUNK_BYTES:
                    chunk = b"".join(pieces)
                    pieces.clear()
                    held = 0
                    yield chunk
        except _CONNECTION_ERRORS as error:
            raise TransientRegistryError(
                f"{self._context}: connection broke while reading the body: {_describe(error)}"
            ) from None

    def error_body(self) -> bytes:
        """Up to ERROR_BODY_BYTES of the body, for an error message."""
        try:
            data, self._complete = _read_up_to(self._raw, ERROR_BODY_BYTES, self._clock)
        except (OutOfTime, *_CONNECTION_ERRORS):
            return b""
        return data[:ERROR_BODY_BYTES]

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _finish(self._raw, self._complete, self._clock)

    def __enter__(self) -> StreamedResponse:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class HttpTransport:
    """Thread-safe HTTP client shared by every request to one registry (and its token realm and storage)."""

    def __init__(
        self,
        *,
        allow_http: bool = False,
        timeout: float = 10.0,
        retry: RetryPolicy = REGISTRY_RETRY,
        max_attempts: int | None = None,
        backoff: float | None = None,
        max_retry_after: float | None = None,
        pool_size: int = 16,
        user_agent: str = USER_AGENT,
        request_deadline: float = REQUEST_DEADLINE_SECONDS,
        min_transfer_rate: float = MIN_TRANSFER_RATE,
        observer: RegistryRequestObserver | None = None,
    ) -> None:
        if not timeout > 0 or pool_size < 1:
            raise ValueError(f"timeout ({timeout}) and pool_size ({pool_size}) must be positive")
        for name, value in (("request_deadline", request_deadline), ("min_transfer_rate", min_transfer_rate)):
            if not 0 < value < float("inf"):  # also refuses NaN
                raise ValueError(f"{name} must be a finite number above 0, got {value!r}")
        self.allow_http = allow_http
        # The policy checks the overrides (attempts at least 1, delays not negative) and says which is wrong.
        self.retry = retry.replace(attempts=max_attempts, base_delay=backoff, max_retry_after=max_retry_after)
        self.user_agent = user_agent
        self.request_deadline = request_deadline
        self.min_transfer_rate = min_transfer_rate
        self._timeout = timeout
        # block=False: a thread holding a streamed body may issue more requests to the same host (same-registry
        # copies); blocking on a full pool could deadlock, so extra connections are made and not kept.
        self._pool = urllib3.PoolManager(num_pools=8, maxsize=pool_size, block=False, retries=False)
        self._pool.pool_classes_by_scheme = {  # type: ignore[assignment]
            "http": _WatchedHTTPConnectionPool,
            "https": _WatchedHTTPSConnectionPool,
        }
        self._count_lock = threading.Lock()
        self._requests_made = 0
        self.observer = observer

    @property
    def requests_made(self) -> int:
        """HTTP requests sent so far, counting retries, redirects and token requests."""
        with self._count_lock:
            return self._requests_made

    def close(self) -> None:
        """Close every pooled connection."""
        self._pool.clear()

    def check_url(self, url: str, context: str) -> None:
        """Refuse URLs that are not http(s), and plain http to a non-loopback host unless allow_http."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ProtocolError(f"{context}: {redact_url(url)!r} is not an http(s) URL")
        if parts.scheme == "http" and not self.allow_http and not is_loopback_host(parts.hostname):
            raise InsecureTransportRefused(
                f"{context}: refusing plain http to {parts.hostname}, which is not a loopback host "
                "(use https, or allow_http for this registry)"
            )

    def request(
        self,
        method: str,
        url: str,
        *,
        context: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        follow_redirects: bool = True,
    ) -> Response:
        """Send with retries and read the whole body; TooLarge (naming `context`) past max_body bytes.

        Error statuses (>= 400) are returned with at most ERROR_BODY_BYTES of their body.
        """

        def attempt() -> Response:
            clock = self._start_clock(context, url)
            clock.add(len(body or b""))
            raw, final_url = self._send_once(method, url, headers, body, context, follow_redirects, clock)
            complete = False
            try:
                if raw.status in RETRYABLE_STATUSES:
                    data, complete = _read_up_to(raw, 512, clock)
                    raise _retryable(raw, data)
                if raw.status >= 400:
                    data, complete = _read_up_to(raw, ERROR_BODY_BYTES, clock)
                    return Response(raw.status, raw.headers, data[:ERROR_BODY_BYTES], final_url)
                # A HEAD announces the size of what a GET would send, and sends nothing: no cap applies.
                declared = None if method == "HEAD" else _declared_length(raw.headers)
                if declared is not None and declared > max_body:
                    raise TooLarge(
                        f"{context}: the registry announces {declared} bytes, more than the {max_body} allowed"
                    )
                data, complete = _read_up_to(raw, max_body, clock)
                if len(data) > max_body:
                    raise TooLarge(f"{context}: the body is larger than the {max_body} bytes allowed")
                return Response(raw.status, raw.headers, data, final_url)
            finally:
                _finish(raw, complete, clock)

        return self._retrying(method, url, context, attempt)

    def open(
        self, method: str, url: str, *, context: str, headers: Mapping[str, str] | None = None
    ) -> StreamedResponse:
        """Send with retries until a non-retryable status arrives; the caller reads and closes the body."""

        def attempt() -> StreamedResponse:
            clock = self._start_clock(context, url)
            raw, final_url = self._send_once(method, url, headers, None, context, True, clock)
            if raw.status in RETRYABLE_STATUSES:
                data, complete = b"", False
                try:
                    data, complete = _read_up_to(raw, 512, clock)
                finally:
                    _finish(raw, complete, clock)
                raise _retryable(raw, data)
            return StreamedResponse(raw, final_url, context, clock)

        return self._retrying(method, url, context, attempt)

    def send_stream(
        self,
        method: str,
        url: str,
        *,
        context: str,
        headers: Mapping[str, str],
        chunks: Iterable[bytes],
    ) -> Response:
        """Send a streamed body once (it cannot be replayed): a retryable failure raises TransientRegistryError."""
        clock = self._start_clock(context, url)
        try:
            raw, final_url = self._send_once(method, url, headers, _counted(chunks, clock), context, False, clock)
        except _CONNECTION_ERRORS as error:
            clock.finish()
            raise TransientRegistryError(f"{context}: sending the body failed: {_describe(error)}") from None
        except BaseException:
            clock.finish()
            raise
        complete = False
        try:
            data, complete = _read_up_to(raw, ERROR_BODY_BYTES, clock)
            if raw.status in RETRYABLE_STATUSES:
                problem = _retryable(raw, data).description
                raise TransientRegistryError(f"{context}: {problem} (a streamed body is not re-sent)")
            return Response(raw.status, raw.headers, data[:ERROR_BODY_BYTES], final_url)
        except _CONNECTION_ERRORS as error:
            raise TransientRegistryError(f"{context}: reading the answer failed: {_describe(error)}") from None
        finally:
            _finish(raw, complete, clock)

    def get(
        self, url: str, headers: Mapping[str, str] | None = None, *, max_body: int = DEFAULT_MAX_BODY
    ) -> tuple[int, Mapping[str, str], bytes]:
        """One plain GET through the same pool (no retries, no auth): (status, headers, body)."""
        context = f"GET {redact_url(url)}"
        clock = self._start_clock(context, url)
        try:
            raw, _ = self._send_once("GET", url, headers, None, context, True, clock)
        except _CONNECTION_ERRORS as error:
            clock.finish()
            raise TransientRegistryError(f"{context}: {_describe(error)}") from None
        except BaseException:
            clock.finish()
            raise
        complete = False
        try:
            data, complete = _read_up_to(raw, max_body, clock)
        except _CONNECTION_ERRORS as error:
            raise TransientRegistryError(f"{context}: {_describe(error)}") from None
        finally:
            _finish(raw, complete, clock)
        if len(data) > max_body:
            raise TooLarge(f"{context}: the body is larger than the {max_body} bytes allowed")
        return raw.status, raw.headers, data

    def _start_clock(self, context: str, url: str) -> _RequestClock:
        """The clock of one attempt, watched from now on: the request deadline, capped by the time limit."""
        clock = _RequestClock(
            seconds=self.request_deadline,
            rate=self.min_transfer_rate,
            limit=current_time_limit(),
            host=urlsplit(url).netloc.rpartition("@")[2],
            context=context,
        )
        _WATCHDOG.watch(clock)
        return clock

    def _retrying(self, method: str, url: str, context: str, attempt: Callable[[], T]) -> T:
        attempts = self.retry.attempts
        last_problem = ""

        def log_retry(error: Exception, number: int, delay: float) -> None:
            nonlocal last_problem
            last_problem = _problem(error)
            LOG.info(
                "retrying %s %s in %.2fs (attempt %d of %d failed: %s)",
                method, redact_url(url), delay, number, attempts, last_problem,
            )

        def sleep_within_limit(delay: float) -> None:
            limit = current_time_limit()
            if limit is not None and limit.remaining() < delay:
                raise OutOfTime(
                    f"{context}: {limit.describe()} leaves {max(0.0, limit.remaining()):.1f} s, less than the "
                    f"{delay:.1f} s to wait before trying {urlsplit(url).netloc} again (last: {last_problem})"
                )
            time.sleep(delay)

        try:
            return retry_call(
                attempt,
                policy=self.retry,
                is_retryable=_is_transient,
                retry_after=_retry_after,
                on_retry=log_retry,
                sleep=sleep_within_limit,
                random_fraction=random.random,
            )
        except (_RetryableStatus, *_CONNECTION_ERRORS) as error:
            last = _problem(error)
        raise TransientRegistryError(f"{context}: gave up after {counted(attempts, 'attempt')}; last: {last}")

    def _send_once(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        body: bytes | Iterable[bytes] | None,
        context: str,
        follow_redirects: bool,
        clock: _RequestClock,
    ) -> tuple[urllib3.BaseHTTPResponse, str]:
        """One attempt, redirects followed, up to the response headers; `clock` runs over all of it (and the body
        after it). Any failure here finishes the clock; on success the caller finishes it with the body."""
        request_headers = {"User-Agent": self.user_agent, **(headers or {})}
        try:
            for _ in range(MAX_REDIRECTS + 1):
                self.check_url(url, context)
                try:
                    raw = self._send_hop(method, url, request_headers, body, context, clock)
                except Exception as error:
                    self._observe(method, failure_class(error))
                    raise
                self._observe(method, status_class(raw.status))
                location = raw.headers.get("Location")
                if not (follow_redirects and raw.status in REDIRECT_STATUSES and method in ("GET", "HEAD")
                        and location):
                    return raw, url
                _read_up_to(raw, ERROR_BODY_BYTES, clock)
                # Closed, never pooled: the clock runs on over the next hop and may still cut this connection.
                raw.close()
                raw.release_conn()
                next_url = urljoin(url, location)
                if _origin(next_url) != _origin(url):
                    request_headers = {k: v for k, v in request_headers.items() if k.lower() != "authorization"}
                url = next_url
        except BaseException:
            clock.finish()
            raise
        clock.finish()
        raise ProtocolError(f"{context}: more than {MAX_REDIRECTS} redirects, the last to {redact_url(url)}")

    def _observe(self, method: str, error_class: str | None) -> None:
        if self.observer is None:
            return
        try:
            self.observer.request_sent(method, error_class)
        except Exception:  # counting must never fail a request
            LOG.debug("request observer failed", exc_info=True)

    def _send_hop(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | Iterable[bytes] | None,
        context: str,
        clock: _RequestClock,
    ) -> urllib3.BaseHTTPResponse:
        """Send to `url` and read the response headers, within what is left of the clock's deadline."""
        clock.host = urlsplit(url).netloc.rpartition("@")[2]
        clock.phase = "before sending the request to {host}"
        remaining = clock.remaining()
        if remaining <= 0:
            raise clock.expired()
        # Each socket operation may take `timeout`, and none may outlast the deadline: connecting is not watched
        # (there is no socket to cut yet), so its own timeout is what bounds it.
        wait = min(self._timeout, remaining)
        with self._count_lock:
            self._requests_made += 1
        _SENDING.clock = clock
        try:
            return self._pool.urlopen(
                method,
                url,
                body=body,
                headers=headers,
                redirect=False,
                retries=False,
                preload_content=False,
                decode_content=False,
                timeout=urllib3.Timeout(connect=wait, read=wait),
            )
        except urllib3.exceptions.SSLError as error:
            if clock.fired:
                raise clock.expired() from None
            raise RegistryError(f"{context}: TLS failure talking to {redact_url(url)}: {error}") from None
        except urllib3.exceptions.LocationValueError as error:
            raise ProtocolError(f"{context}: unusable URL {redact_url(url)!r}: {error}") from None
        except _CONNECTION_ERRORS:
            if clock.fired or clock.remaining() <= 0:
                raise clock.expired() from None
            raise
        finally:
            _SENDING.clock = None


def status_class(status: int) -> str | None:
    """The error class of an HTTP answer (importer.ports.metrics), None for 1xx-3xx."""
    if status < 400:
        return None
    if status in (401, 403):
        return UNAUTHORIZED
    if status == 404:
        return NOT_FOUND
    if status == 429:
        return THROTTLED
    return CLIENT_ERROR if status < 500 else SERVER_ERROR


def failure_class(error: BaseException) -> str:
    """The error class of a request that got no answer: past its deadline or timed out, never connected, or broken."""
    # NewConnectionError subclasses urllib3's ConnectTimeoutError, so it is asked first.
    if isinstance(error, urllib3.exceptions.NewConnectionError | ConnectionRefusedError | socket.gaierror):
        return UNREACHABLE
    if isinstance(error, OutOfTime | urllib3.exceptions.TimeoutError | TimeoutError):
        return TIMEOUT
    return CONNECTION


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()
