"""Registry answers nested past MAX_JSON_DEPTH: manifests, tag lists, error bodies, token responses and ACR's JSON.

A registry (or its token service) can answer anything: JSON nested thousands deep made the parser or the code after
it raise RecursionError, which no caller expected. Each answer here comes from a small HTTP server on 127.0.0.1
that plays the registry; the client must turn it into the RegistryError its callers handle, naming the problem.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from importer.adapters.registry.acr import _json_object, _jwt_expiry
from importer.adapters.registry.oci import OciRegistry
from importer.core.bounded_json import MAX_JSON_DEPTH
from importer.core.manifests import ManifestError, parse_manifest
from importer.ports.registry import ProtocolError, RegistryError
from testbed.http_server import LocalHttpServer, QuietRequestHandler

pytestmark = pytest.mark.timeout(60)

DEPTHS = [MAX_JSON_DEPTH + 1, 976, 990, 5000]


def deep(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class _Handler(QuietRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        routes: dict[str, Reply] = self.server.owner
        reply = routes.get(self.path.split("?")[0]) or Reply(404, b'{"errors":[]}')
        self.send_response(reply.status)
        for name, value in {"Content-Length": str(len(reply.body)), **reply.headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    do_HEAD = do_GET


@pytest.fixture
def serve() -> Iterator[Callable[[dict[str, Reply]], str]]:
    """Start a fake registry answering by path; returns its host. Stopped after the test."""
    servers: list[LocalHttpServer] = []

    def start(routes: dict[str, Reply]) -> str:
        servers.append(LocalHttpServer(_Handler, owner=routes, silenced_errors=(ConnectionError,)).start())
        return servers[-1].host

    yield start
    for server in servers:
        server.stop()


def client(host: str) -> OciRegistry:
    return OciRegistry(host, max_attempts=1, backoff=0.01, timeout=5.0)


@pytest.mark.parametrize("depth", DEPTHS)
def test_manifest_without_a_media_type_header_nested_too_deep(serve: Callable[..., str], depth: int) -> None:
    """A manifest served as plain JSON is read to find its media type: past the limit that is a ProtocolError."""
    raw = b'{"schemaVersion":2,"x":' + deep(depth - 1) + b"}"
    host = serve({"/v2/team/app/manifests/1": Reply(200, raw, {"Content-Type": "application/json",
                                                                 "Docker-Content-Digest": digest_of(raw)})})
    with client(host) as registry, pytest.raises(ProtocolError, match="nested too deeply"):
        registry.get_manifest("team/app", "1")


@pytest.mark.parametrize("depth", DEPTHS)
def test_manifest_with_its_media_type_nested_too_deep_fails_to_parse(serve: Callable[..., str], depth: int) -> None:
    head = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"x":'
    raw = head + deep(depth - 1) + b"}"
    headers = {"Content-Type": "application/vnd.oci.image.index.v1+json", "Docker-Content-Digest": digest_of(raw)}
    host = serve({"/v2/team/app/manifests/1": Reply(200, raw, headers)})
    with client(host) as registry:
        fetched = registry.get_manifest("team/app", "1")
    with pytest.raises(ManifestError, match="nested too deeply"):
        parse_manifest(fetched.raw, fetched.media_type)


@pytest.mark.parametrize("depth", DEPTHS)
def test_tag_list_nested_too_deep(serve: Callable[..., str], depth: int) -> None:
    body = b'{"name":"team/app","tags":' + deep(depth - 1) + b"}"
    host = serve({"/v2/team/app/tags/list": Reply(200, body, {"Content-Type": "application/json"})})
    with client(host) as registry, pytest.raises(ProtocolError, match="not JSON"):
        list(registry.list_tags("team/app"))


@pytest.mark.parametrize("depth", DEPTHS)
def test_error_body_nested_too_deep_is_still_an_error_naming_the_status(serve: Callable[..., str], depth: int) -> None:
    """An error document that cannot be read is shown as an excerpt: the failure is the registry's answer."""
    body = b'{"errors":' + deep(depth - 1) + b"}"
    host = serve({"/v2/team/app/manifests/1": Reply(404, body, {"Content-Type": "application/json"})})
    with client(host) as registry, pytest.raises(RegistryError) as raised:
        registry.get_manifest("team/app", "1")
    assert "[[[" in str(raised.value)


@pytest.mark.parametrize("depth", DEPTHS)
def test_token_response_nested_too_deep(serve: Callable[..., str], depth: int) -> None:
    """The token service is as hostile as the registry: a deep token response is a ProtocolError."""
    routes: dict[str, Reply] = {"/token": Reply(200, b'{"token":' + deep(depth - 1) + b"}",
                                                 {"Content-Type": "application/json"})}
    host = serve(routes)
    routes["/v2/team/app/manifests/1"] = Reply(
        401, b"", {"WWW-Authenticate": f'Bearer realm="http://{host}/token",service="fake"'})
    with client(host) as registry, pytest.raises(ProtocolError, match="token response is not JSON"):
        registry.get_manifest("team/app", "1")


@pytest.mark.parametrize("depth", DEPTHS)
def test_acr_answers_nested_too_deep(depth: int) -> None:
    """ACR's own JSON (token exchange, listings, attributes) and the claims of its tokens are bounded too."""
    with pytest.raises(ProtocolError, match="not JSON"):
        _json_object(b'{"x":' + deep(depth - 1) + b"}", "ACR answer")
    claims = base64.urlsafe_b64encode(b'{"exp":' + deep(depth - 1) + b"}").decode().rstrip("=")
    assert _jwt_expiry(f"e30.{claims}.sig") is None


def test_answers_within_the_limit_still_work(serve: Callable[..., str]) -> None:
    """The bound costs nothing to real answers: a tag list and a token response within the limit are read."""
    routes: dict[str, Reply] = {
        "/token": Reply(200, json.dumps({"token": "t", "expires_in": 60}).encode()),
        "/v2/team/app/tags/list": Reply(200, b'{"name":"team/app","tags":["1","2"]}'),
    }
    host = serve(routes)
    with client(host) as registry:
        assert list(registry.list_tags("team/app")) == ["1", "2"]
