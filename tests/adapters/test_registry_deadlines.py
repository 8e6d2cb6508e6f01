"""Deadlines of registry requests: a registry that drips its answer cannot hold a worker past them.

A fake registry on 127.0.0.1 (testbed.http_server) answers every request correctly but slowly, one byte every
DRIP_SECONDS: in its status line and headers, or in its body. Every request of the registry clients (OciRegistry and
AcrRegistry share one transport, importer/adapters/registry/http.py) must end within its own deadline (connect,
headers and body together, plus an allowance for the bytes moved at the minimum transfer rate), and within the time
limit of the work in hand (importer.ports.deadlines), as a transient error naming the host and what was slow.
Deadlines here are a second or less, so a test that passes takes about that long; before the deadlines existed each
of these requests took DRIP_BYTES * DRIP_SECONDS (20 s) or more.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from importer.adapters.registry.acr import AcrRegistry
from importer.adapters.registry.oci import OciRegistry
from importer.core.media_types import OCI_MANIFEST
from importer.ports.deadlines import OutOfTime, time_limit
from importer.ports.registry import TransientRegistryError
from testbed.http_server import LocalHttpServer, QuietRequestHandler

pytestmark = pytest.mark.timeout(120)

DRIP_SECONDS = 0.2
DRIP_BYTES = 100  # a dripped part lasts DRIP_BYTES * DRIP_SECONDS = 20 s
DEADLINE = 1.0  # the request deadline the clients get in these tests
FINISHED_WITHIN = DEADLINE + 1.5  # generous: what took 20 s and more now takes DEADLINE

BLOB = b"x" * DRIP_BYTES
BLOB_DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()
MANIFEST = json.dumps({
    "schemaVersion": 2, "mediaType": OCI_MANIFEST,
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": BLOB_DIGEST, "size": len(BLOB)},
    "layers": [], "padding": "p" * DRIP_BYTES,
}).encode()
MANIFEST_DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()


@dataclass
class Script:
    """What the fake registry does: which part it drips, on which requests, and what it saw."""

    drip: str  # "headers" | "body" | "nothing"
    interval: float = DRIP_SECONDS  # between two dripped bytes
    paths: tuple[str, ...] = ("/v2/",)  # requests whose path starts with one of these are dripped
    retry_after: str | None = None  # answer 503 with this Retry-After instead (nothing dripped)
    challenge: bool = False  # /v2/ answers 401 with a Bearer challenge whose realm is /token on this server
    seen: list[str] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)


class DrippingRegistry(QuietRequestHandler):
    """Answers manifests, blobs, uploads and tokens, dripping the part its Script says."""

    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        script: Script = self.server.owner
        self.read_body()
        script.seen.append(f"{self.command} {self.path}")
        if script.retry_after is not None:
            self.send_body(503, b"busy", {"Retry-After": script.retry_after})
            return
        status, headers, body = self._answer(script)
        head = f"HTTP/1.1 {status} OK\r\n" + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        head_bytes = head.encode() + b"X-Padding: " + b"h" * DRIP_BYTES + b"\r\n\r\n"
        dripped = any(self.path.startswith(prefix) for prefix in script.paths)
        self._write(head_bytes, drip=dripped and script.drip == "headers", script=script)
        if self.command != "HEAD":
            self._write(body, drip=dripped and script.drip == "body", script=script)

    def _answer(self, script: Script) -> tuple[int, dict[str, str], bytes]:
        if self.path.startswith("/token"):
            return 200, {"Content-Type": "application/json", "Content-Length": "17"}, b'{"token": "t-42"}'
        if script.challenge and "authorization" not in self.lowercase_headers():
            realm = f"http://{self.server.server_address[0]}:{self.server.server_address[1]}/token"
            challenge = f'Bearer realm="{realm}",service="fake",scope="repository:app:pull"'
            return 401, {"WWW-Authenticate": challenge, "Content-Length": "0"}, b""
        if "/blobs/uploads/" in self.path and self.command == "POST":
            return 202, {"Location": "/v2/app/blobs/uploads/u-1", "Content-Length": "0"}, b""
        if "/blobs/uploads/" in self.path:
            return 201, {"Docker-Content-Digest": BLOB_DIGEST, "Content-Length": "0"}, b""
        if "/blobs/" in self.path:
            return 200, {"Content-Length": str(len(BLOB)), "Docker-Content-Digest": BLOB_DIGEST}, BLOB
        headers = {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": MANIFEST_DIGEST,
                   "Content-Length": str(len(MANIFEST))}
        return 200, headers, MANIFEST

    def _write(self, data: bytes, *, drip: bool, script: Script) -> None:
        if not drip:
            self.wfile.write(data)
            return
        for position in range(len(data)):
            if script.stopped.wait(script.interval):
                return
            self.wfile.write(data[position:position + 1])  # a client that hung up ends the drip (BrokenPipe)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _serve


@pytest.fixture
def registry_server() -> Iterator[Callable[[Script], str]]:
    """Start a dripping registry for a script; returns its host. Stopped (and its drips ended) after the test."""
    started: list[tuple[Script, LocalHttpServer]] = []

    def start(script: Script) -> str:
        server = LocalHttpServer(DrippingRegistry, owner=script, name="dripping-registry", poll_interval=0.02,
                                 silenced_errors=(OSError,))
        started.append((script, server.start()))
        return server.host

    yield start
    for script, server in started:
        script.stopped.set()
        server.stop()


CLIENTS = {"oci": OciRegistry, "acr": AcrRegistry}


def client_for(kind: str, host: str, **options: object) -> OciRegistry:
    settings: dict[str, object] = {"request_deadline": DEADLINE, "timeout": 10.0, "max_attempts": 4, "backoff": 0.01}
    settings.update(options)
    return CLIENTS[kind](host, **settings)  # type: ignore[arg-type]


def _read_blob(client: OciRegistry) -> bytes:
    with client.open_blob("app", BLOB_DIGEST) as chunks:
        return b"".join(chunks)


OPERATIONS: dict[str, Callable[[OciRegistry], object]] = {
    "get_manifest": lambda client: client.get_manifest("app", "1.0"),
    "head_manifest": lambda client: client.head_manifest("app", MANIFEST_DIGEST),
    "get_blob": lambda client: client.get_blob("app", BLOB_DIGEST, max_bytes=1 << 20),
    "open_blob": _read_blob,
    "upload_blob": lambda client: client.upload_blob("app", BLOB_DIGEST, [BLOB], size=len(BLOB)),
}


@dataclass(frozen=True, slots=True)
class DripCase:
    script: Callable[[], Script]
    operation: str
    slow: str  # what the message must say was slow


DRIP_CASES = {
    "manifest-headers": DripCase(lambda: Script("headers"), "get_manifest", "response headers"),
    "manifest-body": DripCase(lambda: Script("body"), "get_manifest", "body"),
    "head-headers": DripCase(lambda: Script("headers"), "head_manifest", "response headers"),
    "blob-body": DripCase(lambda: Script("body"), "get_blob", "body"),
    "streamed-blob-body": DripCase(lambda: Script("body"), "open_blob", "body"),
    "upload-answer-headers": DripCase(lambda: Script("headers", paths=("/v2/app/blobs/uploads/u-1",)),
                                      "upload_blob", "response headers"),
    "token-headers": DripCase(lambda: Script("headers", paths=("/token",), challenge=True), "get_manifest",
                              "response headers"),
    "token-body": DripCase(lambda: Script("body", paths=("/token",), challenge=True), "get_manifest", "body"),
}


@pytest.mark.parametrize("kind", CLIENTS)
@pytest.mark.parametrize("case", DRIP_CASES.values(), ids=DRIP_CASES.keys())
def test_a_dripping_registry_fails_the_request_within_its_deadline(
    registry_server: Callable[[Script], str], case: DripCase, kind: str
) -> None:
    """Headers or body dripped one byte per 0.2 s: the request ends after its deadline, as a transient error that
    names the host and what was slow, and it is not tried again (a drip would only start over)."""
    script = case.script()
    host = registry_server(script)
    client = client_for(kind, host)
    started = time.monotonic()
    with pytest.raises(OutOfTime) as raised:
        OPERATIONS[case.operation](client)
    elapsed = time.monotonic() - started
    assert DEADLINE * 0.9 <= elapsed < FINISHED_WITHIN, elapsed
    message = str(raised.value)
    assert raised.value.transient is True and isinstance(raised.value, TransientRegistryError)
    assert host in message and case.slow in message and f"{DEADLINE:g} s" in message, message
    dripped = [seen for seen in script.seen if any(seen.split(" ", 1)[1].startswith(p) for p in script.paths)]
    assert len(dripped) == 1, script.seen


@pytest.mark.parametrize(
    ("min_transfer_rate", "read_in_full"),
    [pytest.param(50.0, True, id="above-the-minimum-rate"), pytest.param(1000.0, False, id="below-the-minimum-rate")],
)
def test_the_deadline_grows_with_the_bytes_that_arrive(
    registry_server: Callable[[Script], str], min_transfer_rate: float, read_in_full: bool
) -> None:
    """A request may take its deadline plus 1 s per `min_transfer_rate` bytes moved: a 100-byte body that arrives
    steadily over about 1 s (100 bytes/s) is read in full although that is three times the bare 0.3 s deadline when
    the minimum rate is 50 bytes/s, and cut short when it is 1000 bytes/s."""
    host = registry_server(Script("body", interval=0.01))
    client = client_for("oci", host, request_deadline=0.3, min_transfer_rate=min_transfer_rate)
    if read_in_full:
        assert _read_blob(client) == BLOB
    else:
        with pytest.raises(OutOfTime, match="body"):
            _read_blob(client)


@pytest.mark.parametrize("kind", CLIENTS)
def test_the_time_limit_of_the_work_in_hand_cuts_a_request_short(
    registry_server: Callable[[Script], str], kind: str
) -> None:
    """A request whose own deadline is far away ends when the time limit of the work in hand (an event) runs out,
    and the message says so."""
    host = registry_server(Script("headers"))
    client = client_for(kind, host, request_deadline=60.0)
    started = time.monotonic()
    with time_limit(DEADLINE, "event e-drip"), pytest.raises(OutOfTime) as raised:
        client.get_manifest("app", "1.0")
    assert time.monotonic() - started < FINISHED_WITHIN
    message = str(raised.value)
    assert "time limit of event e-drip (1 s)" in message and host in message and "response headers" in message


def test_no_retry_waits_past_the_time_limit(registry_server: Callable[[Script], str]) -> None:
    """A 503 asking to come back in 20 s (within the client's Retry-After cap) is not waited for when the time limit
    of the work in hand ends first: the request fails at once instead of sleeping past it."""
    script = Script("nothing", retry_after="20")
    host = registry_server(script)
    client = client_for("oci", host, max_retry_after=30.0)
    started = time.monotonic()
    with time_limit(DEADLINE, "event e-busy"), pytest.raises(OutOfTime) as raised:
        client.get_manifest("app", "1.0")
    assert time.monotonic() - started < 0.5 * DEADLINE
    assert "time limit of event e-busy" in str(raised.value) and "HTTP 503" in str(raised.value)
    assert len(script.seen) == 1


def test_nothing_is_sent_once_the_time_limit_has_passed(registry_server: Callable[[Script], str]) -> None:
    """After the time limit of the work in hand, a request is refused before it is sent."""
    script = Script("nothing")
    host = registry_server(script)
    client = client_for("oci", host)
    with time_limit(0.05, "event e-late"):
        time.sleep(0.1)
        with pytest.raises(OutOfTime, match="time limit of event e-late"):
            client.get_manifest("app", "1.0")
    assert script.seen == []
