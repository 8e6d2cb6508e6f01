"""Local HTTP servers for the testbed and the tests: a request handler class in, a server on 127.0.0.1 out.

Every stand-in HTTP endpoint here (the fault proxy, the ARM simulator, fake ACR and ARM, webhook and ingestion
receivers, small proxies) is a `BaseHTTPRequestHandler` subclass served by `LocalHttpServer`: it binds 127.0.0.1
on a free port (or the one given), serves in a daemon thread, and `stop()` shuts it down and closes its socket
within a deadline. `QuietRequestHandler` is the base for those handlers: no access log, and the few things they
all do (read a body by its Content-Length, answer with bytes or JSON, reset the connection).

    with LocalHttpServer(EchoHandler) as server:                 # EchoHandler(QuietRequestHandler) has do_GET
        urllib.request.urlopen(f"{server.url}/ping").read()     # http://127.0.0.1:<free port>/ping
    # here the server has stopped serving and its port is closed

A handler reaches the object it serves for through `self.server.owner` (`LocalHttpServer(Handler, owner=self)`),
or through a closure when the handler class is defined inside its owner.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

LOOPBACK = "127.0.0.1"


class LoopbackHTTPServer(ThreadingHTTPServer):
    """The threading server behind a `LocalHttpServer`: one daemon thread a connection, bound to 127.0.0.1.

    `owner` is whatever the `LocalHttpServer` was given, for handlers to reach; errors of the kinds in
    `silenced_errors` raised by a handler (a client hanging up, an injected reset) print no traceback.
    """

    daemon_threads = True  # connections still open (kept alive, or mid-request) never hold up a stop

    def __init__(
        self,
        handler_class: type[BaseHTTPRequestHandler],
        *,
        port: int,
        owner: Any,
        silenced_errors: tuple[type[BaseException], ...],
        request_queue_size: int,
    ) -> None:
        self.owner = owner
        self.silenced_errors = silenced_errors
        self.request_queue_size = request_queue_size  # read by listen() in the base constructor, so set first
        super().__init__((LOOPBACK, port), handler_class)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], self.silenced_errors):
            return
        super().handle_error(request, client_address)


class LocalHttpServer:
    """An HTTP server on 127.0.0.1 for `handler_class`, bound at construction, serving from `start()` until `stop()`.

    - `owner`: reachable from handlers as `self.server.owner`.
    - `port`: 0 (the default) lets the system pick a free port.
    - `silenced_errors`: exception kinds raised in handlers that print no traceback, e.g. `(Exception,)` for a
      server that resets connections on purpose, `(ConnectionError,)` for clients dropping kept-alive connections.
    - `stop_timeout`: the deadline in seconds for `stop()` to end the serving loop (a `TimeoutError` past it).
      Requests still being handled are not waited for: their threads are daemon threads and end on their own.

    A stopped server is not started again: make a new one.
    """

    def __init__(
        self,
        handler_class: type[BaseHTTPRequestHandler],
        *,
        owner: Any = None,
        port: int = 0,
        name: str | None = None,
        poll_interval: float = 0.05,
        silenced_errors: tuple[type[BaseException], ...] = (),
        request_queue_size: int = 5,
        stop_timeout: float = 5.0,
    ) -> None:
        self.name = name or f"{handler_class.__qualname__}-server"
        self.poll_interval = poll_interval
        self.stop_timeout = stop_timeout
        self._server = LoopbackHTTPServer(
            handler_class,
            port=port,
            owner=owner,
            silenced_errors=silenced_errors,
            request_queue_size=request_queue_size,
        )
        self._port = int(self._server.server_address[1])
        self._lifecycle_lock = threading.Lock()
        self._serving_thread: threading.Thread | None = None
        self._stopped = False

    # -- where it listens ------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """`127.0.0.1:PORT`, e.g. to use as a registry host."""
        return f"{LOOPBACK}:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`, without a trailing slash."""
        return f"http://{self.host}"

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> Self:
        """Serve in a daemon thread; starting a server that is already serving does nothing."""
        with self._lifecycle_lock:
            if self._stopped:
                raise RuntimeError(f"{self.name} on {self.url} has been stopped: make a new server")
            if self._serving_thread is None:
                self._serving_thread = threading.Thread(
                    target=self._server.serve_forever,
                    kwargs={"poll_interval": self.poll_interval},
                    name=self.name,
                    daemon=True,
                )
                self._serving_thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket, within `stop_timeout` seconds; stopping again does nothing."""
        with self._lifecycle_lock:
            if self._stopped:
                return
            self._stopped = True
            serving_thread, self._serving_thread = self._serving_thread, None
        if serving_thread is not None:
            # shutdown() waits for the serving loop without a deadline: ask from a helper thread, wait here.
            threading.Thread(target=self._server.shutdown, name=f"{self.name}-shutdown", daemon=True).start()
            serving_thread.join(timeout=self.stop_timeout)
        self._server.server_close()
        if serving_thread is not None and serving_thread.is_alive():
            raise TimeoutError(f"{self.name} on {self.url} did not stop serving within {self.stop_timeout} s")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class QuietRequestHandler(BaseHTTPRequestHandler):
    """A request handler without an access log, with the small helpers stand-in servers share."""

    server: LoopbackHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Nothing: test output stays clean, and the servers record what the tests look at themselves."""

    def read_body(self) -> bytes:
        """The request body, as long as its Content-Length says (empty without one)."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def lowercase_headers(self) -> dict[str, str]:
        """The request headers, names lower-cased."""
        return {name.lower(): value for name, value in self.headers.items()}

    def send_body(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> None:
        """Answer `status` with `headers`, a Content-Length for `body`, and `body` itself (not to a HEAD)."""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        """Answer `status` with `payload` as an application/json body (`headers` added, and may override)."""
        self.send_body(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})

    def reset_connection(self) -> None:
        """Drop the connection unanswered with a TCP reset (SO_LINGER 0 makes close() send RST instead of FIN)."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True
