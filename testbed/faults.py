"""A fault-injecting HTTP proxy in front of a real registry: make a registry misbehave on demand, reproducibly.

    with FaultProxy(registry.host, rate=0.2, seed=7) as proxy:    # 20 % of requests fail; same seed, same fates
        client = OciRegistry(proxy.host)                          # talk to the proxy as if it were the registry
        ...
        proxy.stats                # FaultStats(requests=…, forwarded=…, injected={"503": 2, "reset": 1}, …)
    proxy.configure(rate=0.0)      # stop faulting, e.g. before a redelivery
    FaultProxy(registry.host, script=["503", "503", None])       # these fates first (in arrival order), then `rate`
    proxy.respond(path, body=big, headers={...})                 # a canned answer the real registry cannot give

Faults (`FAULTS`), given by `faults=` as a sequence drawn from uniformly (repeat a kind to weight it; the
default is the transient ones, "503", "429", "reset" and "slow"):
- "503": 503 with an OCI error body (`UNAVAILABLE`); nothing reaches the registry.
- "429": 429 `TOOMANYREQUESTS` with `Retry-After: <retry_after>` seconds; nothing reaches the registry.
- "403": 403 `DENIED`, as a registry answers while a role assignment is still propagating; nothing reaches it.
- "reset": the request is read, then the connection is closed with a TCP reset, unanswered.
- "slow": waits `slow_seconds`, then forwards (a slow registry; longer than a client's timeout, a timeout).
- "corrupt": forwards, then flips bytes of a 2xx body, same length, so it no longer matches its digest.
  A response without a body cannot be corrupted: it is forwarded unchanged and counted as forwarded only.

Determinism: `script` entries are used first, one per faultable request in arrival order (None: no fault).
After that, each faultable request draws from `random.Random(f"{seed}|{method}|{path}|{n}")`, where n counts
the earlier draws for the same method and path: a request's fate depends on the seed and on the request
itself, not on how concurrent clients interleave. A retry of the same request is the next n, so it draws again.
`match` (a regular expression searched in `"METHOD /path"`) limits which requests are faultable; the others
are always forwarded.

Forwarding: one upstream connection per request; request bodies (Content-Length or chunked) are read in full
and sent with a Content-Length; response bodies with a Content-Length are streamed back, others buffered.
The client's Host header is kept, so URLs and notifications the registry builds name the proxy; absolute
`Location` headers that point at the upstream are rewritten to the proxy. An unreachable upstream is a 502.
Canned answers (`respond`) bypass faults and the registry. Binds 127.0.0.1; `stop()` ends slow waits at once
(a stopped proxy is not restarted: make a new one).
"""

from __future__ import annotations

import http.client
import json
import random
import re
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import urlsplit

from testbed.http_server import LocalHttpServer, QuietRequestHandler

FAULTS: tuple[str, ...] = ("503", "429", "403", "reset", "slow", "corrupt")
FORWARDED = "forwarded"
CANNED = "canned"
UPSTREAM_FAILED = "upstream-failed"

_COPY_CHUNK_BYTES = 64 * 1024
# Hop-by-hop headers (RFC 9110 §7.6.1) and headers this proxy sets itself.
_NOT_FORWARDED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
        "content-length",
    }
)


@dataclass(frozen=True, slots=True)
class CannedResponse:
    """A scripted answer for one path, served instead of the registry's."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProxiedRequest:
    """One request the proxy received and what it did with it (a fault kind, FORWARDED, CANNED, UPSTREAM_FAILED)."""

    method: str
    path: str
    fate: str


@dataclass(frozen=True, slots=True)
class FaultStats:
    """Counts so far: requests received, forwarded to the registry, answered from `respond`, and faults injected.

    A "slow" or "corrupt" request is both forwarded and injected.
    """

    requests: int
    forwarded: int
    canned: int
    upstream_failures: int
    injected: Mapping[str, int]

    @property
    def injected_total(self) -> int:
        return sum(self.injected.values())


@dataclass(frozen=True, slots=True)
class _Plan:
    rate: float
    faults: tuple[str, ...]
    match: re.Pattern[str] | None


def _checked_faults(faults: Sequence[str]) -> tuple[str, ...]:
    if isinstance(faults, str):
        raise ValueError(f"faults={faults!r}: give a sequence of fault kinds, e.g. ({faults!r},)")
    chosen = tuple(faults)
    unknown = [kind for kind in chosen if kind not in FAULTS]
    if unknown:
        raise ValueError(f"faults={list(chosen)!r}: unknown kind(s) {unknown!r}; expected some of {list(FAULTS)!r}")
    return chosen


def _checked_script(script: Sequence[str | None]) -> list[str | None]:
    entries = list(script)
    unknown = [entry for entry in entries if entry is not None and entry not in FAULTS]
    if unknown:
        raise ValueError(
            f"script={entries!r}: unknown fault kind(s) {unknown!r}; expected None or one of {list(FAULTS)!r}"
        )
    return entries


def _plan(rate: float, faults: Sequence[str], match: str | None) -> _Plan:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate={rate!r}: a fault rate is between 0.0 and 1.0")
    chosen = _checked_faults(faults)
    if rate > 0 and not chosen:
        raise ValueError(f"rate={rate!r} with faults=(): name at least one fault kind to inject")
    try:
        pattern = re.compile(match) if match is not None else None
    except re.error as error:
        raise ValueError(f"match={match!r} is not a regular expression: {error}") from None
    return _Plan(rate, chosen, pattern)


class FaultProxy:
    """A proxy on 127.0.0.1 that forwards to `upstream` ("host:port", plain http) and injects faults."""

    def __init__(
        self,
        upstream: str,
        *,
        rate: float = 0.0,
        faults: Sequence[str] = ("503", "429", "reset", "slow"),
        seed: int | str = 0,
        script: Sequence[str | None] = (),
        match: str | None = None,
        retry_after: int = 1,
        slow_seconds: float = 0.5,
        upstream_timeout: float = 30.0,
        port: int = 0,
    ) -> None:
        if retry_after < 0 or slow_seconds < 0 or upstream_timeout <= 0:
            raise ValueError(
                f"retry_after ({retry_after}) and slow_seconds ({slow_seconds}) must not be negative, "
                f"upstream_timeout ({upstream_timeout}) must be positive"
            )
        self.upstream = upstream
        self.seed = seed
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self.upstream_timeout = upstream_timeout
        self._lock = threading.Lock()
        self._plan = _plan(rate, faults, match)
        self._script = _checked_script(script)
        self._occurrences: Counter[tuple[str, str]] = Counter()
        self._injected: Counter[str] = Counter()
        self._counts: Counter[str] = Counter()
        self._history: list[ProxiedRequest] = []
        self._canned: dict[tuple[str, str], CannedResponse] = {}
        self._stopping = threading.Event()
        self._http = LocalHttpServer(
            _ProxyHandler,
            owner=self,
            port=port,
            name="fault-proxy",
            silenced_errors=(Exception,),  # clients hanging up, and the resets we inject ourselves, are the job
            request_queue_size=128,
        )

    # -- where it listens ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._http.port

    @property
    def host(self) -> str:
        """`127.0.0.1:PORT`: use it as the registry host."""
        return self._http.host

    @property
    def url(self) -> str:
        return self._http.url

    # -- configuration ---------------------------------------------------------------------------------

    def configure(
        self,
        *,
        rate: float | None = None,
        faults: Sequence[str] | None = None,
        script: Sequence[str | None] | None = None,
        match: str | None = None,
        match_all: bool = False,
    ) -> None:
        """Change what is injected from now on; arguments left out keep their value (`match_all` clears `match`)."""
        with self._lock:
            current = self._plan
            pattern = current.match.pattern if current.match is not None else None
            if match_all or match is not None:
                pattern = match
            self._plan = _plan(
                current.rate if rate is None else rate, current.faults if faults is None else faults, pattern
            )
            if script is not None:
                self._script = _checked_script(script)

    def respond(
        self,
        path: str,
        *,
        status: int = 200,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        methods: Sequence[str] = ("GET", "HEAD"),
    ) -> None:
        """Answer `methods` on exactly `path` (query ignored) with this response instead of the registry's."""
        canned = CannedResponse(status, body, dict(headers or {}))
        with self._lock:
            for method in methods:
                self._canned[(method.upper(), path)] = canned

    def clear_responses(self) -> None:
        """Forget every canned response."""
        with self._lock:
            self._canned.clear()

    # -- what happened ---------------------------------------------------------------------------------

    @property
    def stats(self) -> FaultStats:
        """A snapshot of the counts so far."""
        with self._lock:
            return FaultStats(
                requests=self._counts["requests"],
                forwarded=self._counts[FORWARDED],
                canned=self._counts[CANNED],
                upstream_failures=self._counts[UPSTREAM_FAILED],
                injected=dict(self._injected),
            )

    def history(self) -> tuple[ProxiedRequest, ...]:
        """Every request so far, in arrival order, with its fate."""
        with self._lock:
            return tuple(self._history)

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> "FaultProxy":
        self._http.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._http.stop()

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- used by the handler ---------------------------------------------------------------------------

    def _decide(self, method: str, path: str) -> str:
        """The fate of one request: CANNED, FORWARDED or a fault kind; counts the request."""
        with self._lock:
            self._counts["requests"] += 1
            if (method, path) in self._canned:
                return CANNED
            plan = self._plan
            if plan.match is not None and not plan.match.search(f"{method} {path}"):
                return FORWARDED
            if self._script:
                return self._script.pop(0) or FORWARDED
            occurrence = self._occurrences[(method, path)]
            self._occurrences[(method, path)] += 1
        if plan.rate <= 0:
            return FORWARDED
        draw = random.Random(f"{self.seed}|{method}|{path}|{occurrence}")
        if draw.random() >= plan.rate:
            return FORWARDED
        return draw.choice(plan.faults)

    def _canned_response(self, method: str, path: str) -> CannedResponse:
        with self._lock:
            return self._canned[(method, path)]

    def _note(self, method: str, path: str, fate: str, *, forwarded: bool) -> None:
        with self._lock:
            self._history.append(ProxiedRequest(method, path, fate))
            if fate in FAULTS:
                self._injected[fate] += 1
            elif fate in (CANNED, UPSTREAM_FAILED):
                self._counts[fate] += 1
            if forwarded:
                self._counts[FORWARDED] += 1

    def _wait_slow(self) -> None:
        self._stopping.wait(self.slow_seconds)

    def _rewrite_location(self, location: str) -> str:
        parts = urlsplit(location)
        if parts.netloc.lower() == self.upstream.lower():
            return parts._replace(netloc=self.host).geturl()
        return location


class _ProxyHandler(QuietRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes: with Nagle on, the body would wait for the client's delayed ACK.
    disable_nagle_algorithm = True

    @property
    def _proxy(self) -> FaultProxy:
        return self.server.owner

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts: list[bytes] = []
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline(1024)  # the CRLF after each chunk
        return self.read_body()

    def _send(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.send_body(status, body, {name: value for name, value in headers.items()
                                      if name.lower() not in _NOT_FORWARDED})

    def _handle(self) -> None:
        proxy = self._proxy
        path = urlsplit(self.path).path
        body = self._read_body()
        fate = proxy._decide(self.command, path)
        if fate == CANNED:
            canned = proxy._canned_response(self.command, path)
            proxy._note(self.command, path, CANNED, forwarded=False)
            self._send(canned.status, canned.headers, canned.body)
            return
        if fate == "reset":
            proxy._note(self.command, path, fate, forwarded=False)
            self.reset_connection()
            return
        if fate == "503":
            proxy._note(self.command, path, fate, forwarded=False)
            error = {"errors": [{"code": "UNAVAILABLE", "message": "service unavailable (injected by FaultProxy)"}]}
            self._send(503, {"Content-Type": "application/json"}, json.dumps(error).encode())
            return
        if fate == "403":
            proxy._note(self.command, path, fate, forwarded=False)
            error = {"errors": [{"code": "DENIED", "message": "requested access to the resource is denied (injected)"}]}
            self._send(403, {"Content-Type": "application/json"}, json.dumps(error).encode())
            return
        if fate == "429":
            proxy._note(self.command, path, fate, forwarded=False)
            error = {"errors": [{"code": "TOOMANYREQUESTS", "message": "too many requests (injected by FaultProxy)"}]}
            headers = {"Content-Type": "application/json", "Retry-After": str(proxy.retry_after)}
            self._send(429, headers, json.dumps(error).encode())
            return
        if fate == "slow":
            proxy._wait_slow()
        self._forward(body, corrupt=fate == "corrupt", fate=fate)

    def _forward(self, body: bytes, *, corrupt: bool, fate: str) -> None:
        proxy = self._proxy
        path = urlsplit(self.path).path
        headers = {name: value for name, value in self.headers.items() if name.lower() not in _NOT_FORWARDED}
        if body or self.command in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(body))
        upstream = http.client.HTTPConnection(proxy.upstream, timeout=proxy.upstream_timeout)
        try:
            try:
                upstream.request(self.command, self.path, body=body or None, headers=headers)
                response = upstream.getresponse()
            except (OSError, http.client.HTTPException) as error:
                proxy._note(self.command, path, UPSTREAM_FAILED, forwarded=False)
                message = {"errors": [{"code": "UNAVAILABLE", "message": f"proxy: upstream {proxy.upstream}: {error}"}]}
                self._send(502, {"Content-Type": "application/json"}, json.dumps(message).encode())
                return
            response_headers = [(name, value) for name, value in response.getheaders()]
            for index, (name, value) in enumerate(response_headers):
                if name.lower() == "location":
                    response_headers[index] = (name, proxy._rewrite_location(value))
            declared = response.getheader("Content-Length")
            streamable = declared is not None and declared.strip().isdigit()
            # Each request is noted before its answer goes back, so a client that has its answer sees it counted.
            if self.command == "HEAD" or (streamable and not corrupt):
                proxy._note(self.command, path, fate if fate == "slow" else FORWARDED, forwarded=True)
                self._stream_back(response, response_headers, int(declared) if streamable else 0)
                return
            content = response.read()
            damaged = corrupt and 200 <= response.status < 300 and bool(content)
            if damaged:
                content = bytes(byte ^ 0x20 for byte in content[:16]) + content[16:]
            proxy._note(self.command, path, fate if fate == "slow" or damaged else FORWARDED, forwarded=True)
            self._send(response.status, dict(response_headers), content)
        finally:
            upstream.close()

    def _stream_back(
        self, response: http.client.HTTPResponse, headers: list[tuple[str, str]], length: int
    ) -> None:
        self.send_response(response.status)
        for name, value in headers:
            if name.lower() not in _NOT_FORWARDED or name.lower() == "content-length":
                self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        remaining = length
        while remaining > 0:
            chunk = response.read(min(_COPY_CHUNK_BYTES, remaining))
            if not chunk:
                self.close_connection = True  # upstream ended early: the client must not reuse this connection
                return
            self.wfile.write(chunk)
            remaining -= len(chunk)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = do_OPTIONS = _handle
