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
"""

from __future__ import annotations

import email.utils
import http.client
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from types import TracebackType
from typing import TypeVar
from urllib.parse import urljoin, urlsplit

import urllib3
import urllib3.exceptions

from importer.core.reference import is_loopback_host
from importer.core.retry import REGISTRY_RETRY, RetryPolicy, retry_call
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
USER_AGENT = f"platform-guard (urllib3/{urllib3.__version__})"

_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    urllib3.exceptions.TimeoutError,  # connect and read timeouts, refused connections, DNS failures
    urllib3.exceptions.ProtocolError,  # resets, aborted connections, truncated bodies
    http.client.HTTPException,
    OSError,
)

T = TypeVar("T")


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
    text = body[:512].decode("utf-8", "replace").strip().replace("\n", " ")
    return _RetryableStatus(f"HTTP {raw.status} {text}".strip(), parse_retry_after(raw.headers.get("Retry-After")))


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _is_transient(error: Exception) -> bool:
    """A retryable status or a broken connection: worth another attempt."""
    return isinstance(error, (_RetryableStatus, *_CONNECTION_ERRORS))


def _retry_after(error: Exception) -> float | None:
    return error.retry_after if isinstance(error, _RetryableStatus) else None


def _problem(error: BaseException) -> str:
    return error.description if isinstance(error, _RetryableStatus) else _describe(error)


def _read_up_to(raw: urllib3.BaseHTTPResponse, limit: int) -> tuple[bytes, bool]:
    """Read at most limit + 1 bytes; return them and whether the body ended (so the connection is reusable)."""
    parts: list[bytes] = []
    total = 0
    while total <= limit:
        chunk = raw.read(min(STREAM_CHUNK_BYTES, limit + 1 - total), decode_content=False)
        if not chunk:
            return b"".join(parts), True
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts), False


def _finish(raw: urllib3.BaseHTTPResponse, complete: bool) -> None:
    """Give the connection back to the pool; one with unread body left is closed first, never reused."""
    if not complete:
        raw.close()
    raw.release_conn()


def _declared_length(headers: Mapping[str, str]) -> int | None:
    value = headers.get("Content-Length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


class StreamedResponse:
    """A response whose body is read by the caller in fixed-size chunks; use it as a context manager."""

    def __init__(self, raw: urllib3.BaseHTTPResponse, url: str, context: str) -> None:
        self._raw = raw
        self._context = context
        self._complete = False
        self._closed = False
        self.status: int = raw.status
        self.headers: Mapping[str, str] = raw.headers
        self.url = url

    def chunks(self) -> Iterator[bytes]:
        """The body, STREAM_CHUNK_BYTES at a time; a broken connection raises TransientRegistryError."""
        try:
            while True:
                chunk = self._raw.read(STREAM_CHUNK_BYTES, decode_content=False)
                if not chunk:
                    self._complete = True
                    return
                yield chunk
        except _CONNECTION_ERRORS as error:
            raise TransientRegistryError(
                f"{self._context}: connection broke while reading the body: {_describe(error)}"
            ) from None

    def error_body(self) -> bytes:
        """Up to ERROR_BODY_BYTES of the body, for an error message."""
        try:
            data, self._complete = _read_up_to(self._raw, ERROR_BODY_BYTES)
        except _CONNECTION_ERRORS:
            return b""
        return data[:ERROR_BODY_BYTES]

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _finish(self._raw, self._complete)

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
    ) -> None:
        if timeout <= 0 or pool_size < 1:
            raise ValueError(f"timeout ({timeout}) and pool_size ({pool_size}) must be positive")
        self.allow_http = allow_http
        # The policy checks the overrides (attempts at least 1, delays not negative) and says which is wrong.
        self.retry = retry.replace(attempts=max_attempts, base_delay=backoff, max_retry_after=max_retry_after)
        self.user_agent = user_agent
        self._timeout = urllib3.Timeout(connect=timeout, read=timeout)
        # block=False: a thread holding a streamed body may issue more requests to the same host (same-registry
        # copies); blocking on a full pool could deadlock, so extra connections are made and not kept.
        self._pool = urllib3.PoolManager(num_pools=8, maxsize=pool_size, block=False, retries=False)
        self._count_lock = threading.Lock()
        self._requests_made = 0

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
            raw, final_url = self._send_once(method, url, headers, body, context, follow_redirects)
            complete = False
            try:
                if raw.status in RETRYABLE_STATUSES:
                    data, complete = _read_up_to(raw, 512)
                    raise _retryable(raw, data)
                if raw.status >= 400:
                    data, complete = _read_up_to(raw, ERROR_BODY_BYTES)
                    return Response(raw.status, raw.headers, data[:ERROR_BODY_BYTES], final_url)
                # A HEAD announces the size of what a GET would send, and sends nothing: no cap applies.
                declared = None if method == "HEAD" else _declared_length(raw.headers)
                if declared is not None and declared > max_body:
                    raise TooLarge(
                        f"{context}: the registry announces {declared} bytes, more than the {max_body} allowed"
                    )
                data, complete = _read_up_to(raw, max_body)
                if len(data) > max_body:
                    raise TooLarge(f"{context}: the body is larger than the {max_body} bytes allowed")
                return Response(raw.status, raw.headers, data, final_url)
            finally:
                _finish(raw, complete)

        return self._retrying(method, url, context, attempt)

    def open(
        self, method: str, url: str, *, context: str, headers: Mapping[str, str] | None = None
    ) -> StreamedResponse:
        """Send with retries until a non-retryable status arrives; the caller reads and closes the body."""

        def attempt() -> StreamedResponse:
            raw, final_url = self._send_once(method, url, headers, None, context, True)
            if raw.status in RETRYABLE_STATUSES:
                data, complete = b"", False
                try:
                    data, complete = _read_up_to(raw, 512)
                finally:
                    _finish(raw, complete)
                raise _retryable(raw, data)
            return StreamedResponse(raw, final_url, context)

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
        try:
            raw, final_url = self._send_once(method, url, headers, chunks, context, False)
        except _CONNECTION_ERRORS as error:
            raise TransientRegistryError(f"{context}: sending the body failed: {_describe(error)}") from None
        complete = False
        try:
            data, complete = _read_up_to(raw, ERROR_BODY_BYTES)
            if raw.status in RETRYABLE_STATUSES:
                problem = _retryable(raw, data).description
                raise TransientRegistryError(f"{context}: {problem} (a streamed body is not re-sent)")
            return Response(raw.status, raw.headers, data[:ERROR_BODY_BYTES], final_url)
        except _CONNECTION_ERRORS as error:
            raise TransientRegistryError(f"{context}: reading the answer failed: {_describe(error)}") from None
        finally:
            _finish(raw, complete)

    def get(
        self, url: str, headers: Mapping[str, str] | None = None, *, max_body: int = DEFAULT_MAX_BODY
    ) -> tuple[int, Mapping[str, str], bytes]:
        """One plain GET through the same pool (no retries, no auth): (status, headers, body)."""
        context = f"GET {redact_url(url)}"
        try:
            raw, _ = self._send_once("GET", url, headers, None, context, True)
        except _CONNECTION_ERRORS as error:
            raise TransientRegistryError(f"{context}: {_describe(error)}") from None
        complete = False
        try:
            data, complete = _read_up_to(raw, max_body)
        except _CONNECTION_ERRORS as error:
            raise TransientRegistryError(f"{context}: {_describe(error)}") from None
        finally:
            _finish(raw, complete)
        if len(data) > max_body:
            raise TooLarge(f"{context}: the body is larger than the {max_body} bytes allowed")
        return raw.status, raw.headers, data

    def _retrying(self, method: str, url: str, context: str, attempt: Callable[[], T]) -> T:
        attempts = self.retry.attempts

        def log_retry(error: Exception, number: int, delay: float) -> None:
            LOG.info(
                "retrying %s %s in %.2fs (attempt %d of %d failed: %s)",
                method, redact_url(url), delay, number, attempts, _problem(error),
            )

        try:
            return retry_call(
                attempt,
                policy=self.retry,
                is_retryable=_is_transient,
                retry_after=_retry_after,
                on_retry=log_retry,
                sleep=time.sleep,
                random_fraction=random.random,
            )
        except (_RetryableStatus, *_CONNECTION_ERRORS) as error:
            last = _problem(error)
        raise TransientRegistryError(f"{context}: gave up after {attempts} attempts; last: {last}")

    def _send_once(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        body: bytes | Iterable[bytes] | None,
        context: str,
        follow_redirects: bool,
    ) -> tuple[urllib3.BaseHTTPResponse, str]:
        request_headers = {"User-Agent": self.user_agent, **(headers or {})}
        for _ in range(MAX_REDIRECTS + 1):
            self.check_url(url, context)
            with self._count_lock:
                self._requests_made += 1
            try:
                raw = self._pool.urlopen(
                    method,
                    url,
                    body=body,
                    headers=request_headers,
                    redirect=False,
                    retries=False,
                    preload_content=False,
                    decode_content=False,
                    timeout=self._timeout,
                )
            except urllib3.exceptions.SSLError as error:
                raise RegistryError(f"{context}: TLS failure talking to {redact_url(url)}: {error}") from None
            except urllib3.exceptions.LocationValueError as error:
                raise ProtocolError(f"{context}: unusable URL {redact_url(url)!r}: {error}") from None
            location = raw.headers.get("Location")
            if not (follow_redirects and raw.status in REDIRECT_STATUSES and method in ("GET", "HEAD") and location):
                return raw, url
            _, complete = _read_up_to(raw, ERROR_BODY_BYTES)
            _finish(raw, complete)
            next_url = urljoin(url, location)
            if _origin(next_url) != _origin(url):
                request_headers = {k: v for k, v in request_headers.items() if k.lower() != "authorization"}
            url = next_url
        raise ProtocolError(f"{context}: more than {MAX_REDIRECTS} redirects, the last to {redact_url(url)}")


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()
