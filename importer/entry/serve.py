"""The local host: the Functions host routes on a plain HTTP server, for local registries and the demo.

    with LocalHost(api, port=0) as host:      # port 0: any free port; host.url is where it listens
        ...                                   # registries post notifications to host.url + "/api/registry-events"
    with QueuedHost(pipeline, queue, webhook_token=token, port=0, threads=4) as service:   # intake + workers
        ...                                   # routes answer 202 once queued; the workers decide
    QueuedHost(pipeline, queue, webhook_token=token, threads=0, doorbell=bell)   # intake only: `work` processes decide
    QueuedHost(pipeline, queue, webhook_token=token, metrics=metrics, scrape=scrape.render)   # and GET /metrics

A thread per connection (HTTP/1.1 keep-alive), so slow senders do not hold up others. It binds 127.0.0.1
unless told otherwise. All routing and handling lives in `importer.entry.http_api`; this module only moves bytes.
`metrics` counts what this process's worker threads settle (importer.ports.metrics); `scrape` answers `GET /metrics`.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qsl, urlsplit

from importer.app.intake import Intake
from importer.app.pipeline import Pipeline
from importer.app.worker import WorkerPolicy, WorkerPool
from importer.entry.http_api import MAX_BODY_BYTES, ApiResponse, GuardApi, MetricsScrape, redact_credentials
from importer.ports.metrics import WorkerMetrics
from importer.ports.queue import Doorbell, EventQueue

log = logging.getLogger("platform_guard.serve")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], api: GuardApi) -> None:
        super().__init__(address, _Handler)
        self.api = api

    def handle_error(self, request: object, client_address: object) -> None:
        # Senders drop idle keep-alive connections all the time: that is not worth a traceback on stderr.
        log.debug("connection from %s ended abruptly", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes: with Nagle on, the body waits for the sender's delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    server: _Server

    def _respond(self, response: ApiResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _handle(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            self._respond(ApiResponse.json(413 if length > 0 else 400, {"error": "bad or too large Content-Length"}))
            return
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        try:
            response = self.server.api.dispatch(
                self.command, url.path, dict(parse_qsl(url.query)), dict(self.headers.items()), body
            )
        except Exception:
            log.exception("internal error on %s %s", self.command, url.path)
            response = ApiResponse.json(500, {"error": "internal error"})
        self._respond(response)

    # Every method reaches the router, so a known route answers a wrong method with 405 and Allow (not 501).
    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle

    def log_message(self, format: str, *args: object) -> None:
        # The request line may carry the webhook token as `?code=`: it never reaches a log.
        log.debug("%s %s", self.address_string(), redact_credentials(format % args))


class LocalHost:
    """A running local host; use as a context manager or call start()/stop()."""

    def __init__(self, api: GuardApi, *, host: str = "127.0.0.1", port: int = 7071) -> None:
        self._server = _Server((host, port), api)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._server.server_address[0]}:{self.port}"

    def start(self) -> "LocalHost":
        self._thread = threading.Thread(target=self._server.serve_forever, name="platform-guard-host", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted."""
        self._server.serve_forever()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> "LocalHost":
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class QueuedHost:
    """The local host with its queue: routes only queue; worker threads here (threads > 0) and worker processes
    elsewhere (woken by the doorbell, if given) decide."""

    def __init__(
        self,
        pipeline: Pipeline,
        queue: EventQueue,
        *,
        webhook_token: str | None,
        host: str = "127.0.0.1",
        port: int = 7071,
        threads: int = 4,
        policy: WorkerPolicy = WorkerPolicy(),
        doorbell: Doorbell | None = None,
        metrics: WorkerMetrics | None = None,
        scrape: MetricsScrape | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.queue = queue
        self.pool = WorkerPool(queue, pipeline, threads=threads, policy=policy, metrics=metrics) if threads else None
        self._doorbell = doorbell
        intake = Intake(pipeline, queue, on_queued=self._queued)
        self.api = GuardApi(pipeline, webhook_token=webhook_token, intake=intake, metrics=scrape)
        self.host = LocalHost(self.api, host=host, port=port)

    def _queued(self) -> None:
        if self.pool is not None:
            self.pool.notify()
        if self._doorbell is not None:
            self._doorbell.ring()

    @property
    def url(self) -> str:
        return self.host.url

    def start(self) -> "QueuedHost":
        if self.pool is not None:
            self.pool.start()
        self.host.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted; the workers run in their own threads."""
        if self.pool is not None:
            self.pool.start()
        self.host.serve_forever()

    def stop(self) -> None:
        """Stop answering, let the workers settle what they hold, then close the queue."""
        self.host.stop()
        if self.pool is not None:
            self.pool.stop()
        if self._doorbell is not None:
            self._doorbell.close()
        self.queue.close()

    def __enter__(self) -> "QueuedHost":
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
