"""A fake registry for the app tests: fixed content served by digest from 127.0.0.1, every request counted.

For content a real registry refuses to store or cannot serve on demand (answers that drip, or come late), and to
count exactly what a walk over a manifest graph asks for:

    with ContentRegistry(delay=0.2) as registry:           # every answer comes 0.2 s late
        config = registry.add_blob(b'{"os": "linux", "architecture": "amd64"}')
        digest = registry.add_manifest({"schemaVersion": 2, ...}, OCI_MANIFEST, tag=("team/app", "1"))
        OciRegistry(registry.host).get_manifest("team/app", digest)
        registry.requests                                  # ["GET /v2/team/app/manifests/sha256:…", …]

Any repository serves all the content; a tag is looked up per repository. `drip="headers"` sends the status line and
headers of every manifest and blob answer one byte every `drip_seconds` (until the client hangs up or the server
stops).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from types import TracebackType
from typing import Any, Self

from importer.core.media_types import OCI_INDEX, OCI_MANIFEST
from testbed.http_server import LocalHttpServer, QuietRequestHandler

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
_PATH = re.compile(r"^/v2/(?P<repository>.+)/(?P<kind>manifests|blobs)/(?P<reference>[^/?]+)$")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class ContentRegistry:
    """Serves manifests and blobs it was given; counts requests; optionally answers late or drips its headers."""

    def __init__(self, *, delay: float = 0.0, drip: str | None = None, drip_seconds: float = 0.2) -> None:
        self.delay = delay
        self.drip = drip
        self.drip_seconds = drip_seconds
        self.manifests: dict[str, tuple[bytes, str]] = {}
        self.blobs: dict[str, bytes] = {}
        self.tags: dict[tuple[str, str], str] = {}
        self.requests: list[str] = []
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._http = LocalHttpServer(_Handler, owner=self, name="content-registry", poll_interval=0.02,
                                     silenced_errors=(OSError,), request_queue_size=64)
        self.host = self._http.host

    # -- content ------------------------------------------------------------------------------------------

    def add_blob(self, data: bytes) -> dict[str, Any]:
        """Store a blob; returns its descriptor (media type: an image config)."""
        digest = sha256(data)
        self.blobs[digest] = data
        return {"mediaType": OCI_CONFIG, "digest": digest, "size": len(data)}

    def add_manifest(self, document: dict[str, Any], media_type: str, *, tag: tuple[str, str] | None = None,
                     platform: str | None = None) -> dict[str, Any]:
        """Store a manifest (compact JSON of `document`); returns its descriptor, with `platform` ("os/arch")."""
        raw = json.dumps(document, separators=(",", ":")).encode()
        digest = sha256(raw)
        self.manifests[digest] = (raw, media_type)
        if tag is not None:
            self.tags[tag] = digest
        descriptor: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": len(raw)}
        if platform is not None:
            os_name, architecture = platform.split("/")
            descriptor["platform"] = {"os": os_name, "architecture": architecture}
        return descriptor

    def add_image(self, platform: str = "linux/amd64", *, seed: str = "", tag: tuple[str, str] | None = None
                  ) -> dict[str, Any]:
        """An image manifest whose config says `platform` (distinct per `seed`), with no layers."""
        os_name, architecture = platform.split("/")
        config = self.add_blob(json.dumps({"os": os_name, "architecture": architecture, "seed": seed}).encode())
        document = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": []}
        return self.add_manifest(document, OCI_MANIFEST, tag=tag, platform=platform)

    def add_index(self, children: list[dict[str, Any]], *, tag: tuple[str, str] | None = None) -> dict[str, Any]:
        """An OCI index listing `children` (descriptors) in order."""
        document = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}
        return self.add_manifest(document, OCI_INDEX, tag=tag)

    def count(self, kind: str | None = None) -> int:
        """Requests received so far (of one kind: "manifests" or "blobs")."""
        with self._lock:
            return sum(1 for line in self.requests if kind is None or f"/{kind}/" in line)

    # -- serving ------------------------------------------------------------------------------------------

    def answer(self, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.requests.append(f"{method} {path}")
        found = _PATH.match(path.split("?", 1)[0])
        if path.split("?", 1)[0] == "/v2/":
            return 200, {}, b"{}"
        if found is None:
            return 404, {}, b""
        reference = found["reference"]
        if found["kind"] == "blobs":
            blob = self.blobs.get(reference)
            return (404, {}, b"") if blob is None else (200, {"Docker-Content-Digest": reference}, blob)
        digest = reference if reference.startswith("sha256:") else self.tags.get((found["repository"], reference))
        if digest is None or digest not in self.manifests:
            return 404, {"Content-Type": "application/json"}, b'{"errors": [{"code": "MANIFEST_UNKNOWN"}]}'
        raw, media_type = self.manifests[digest]
        return 200, {"Content-Type": media_type, "Docker-Content-Digest": digest}, raw

    def start(self) -> Self:
        self._http.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self._http.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class _Handler(QuietRequestHandler):
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        registry: ContentRegistry = self.server.owner
        self.read_body()
        status, headers, body = registry.answer(self.command, self.path)
        if registry.delay and registry.stopped.wait(registry.delay):
            return
        head = f"HTTP/1.1 {status} {'OK' if status == 200 else 'Not Found'}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        head += f"Content-Length: {len(body)}\r\n\r\n"
        if self.command == "HEAD":
            body = b""
        if registry.drip == "headers" and "/v2/" in self.path and self.path != "/v2/":
            for byte in head.encode():
                if registry.stopped.wait(registry.drip_seconds):
                    return
                self.wfile.write(bytes([byte]))
            self.wfile.write(body)
        else:
            self.wfile.write(head.encode() + body)  # one write: no Nagle/delayed-ACK stall between head and body

    do_GET = do_HEAD = _serve
