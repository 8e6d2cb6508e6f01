"""Tests for importer.adapters.registry.oci.OciRegistry against real distribution registries and small local servers.

Real registries (testbed.registry.LocalRegistry) carry the API behaviour: manifests, blobs, uploads,
mounts, deletes, catalog pagination, basic auth (htpasswd) and Docker token auth (testbed.token_service signs ES256
JWTs with an x5c certificate that the registry trusts through `rootcertbundle`).
A scripted HTTP server on 127.0.0.1 stands in where a real registry cannot misbehave on demand: retries,
Retry-After, connection resets, wrong digests, endless bodies, redirects, error bodies, and tag pagination
(distribution 2.8 ignores `n` on tags/list, so it cannot show tag pages).
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from importer.adapters.registry.oci import OciRegistry
from importer.core.media_types import DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST
from importer.core.reference import ReferenceError
from importer.ports.registry import (
    MAX_MANIFEST_BYTES,
    Credentials,
    DigestMismatch,
    InsecureTransportRefused,
    ManifestHead,
    NotFound,
    ProtocolError,
    Registry,
    RegistryError,
    TooLarge,
    TransientRegistryError,
    Unauthorized,
)
from testbed.http_server import LocalHttpServer, QuietRequestHandler
from testbed.registry import LocalRegistry
from testbed.token_service import TokenService

pytestmark = pytest.mark.timeout(60)

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# Content pushed with the client under test


@dataclass(frozen=True, slots=True)
class PushedImage:
    repository: str
    tag: str
    digest: str
    raw: bytes
    config_digest: str
    config: bytes
    layer_digest: str
    layer: bytes


def manifest_for(config: bytes, layer: bytes, **annotations: str) -> bytes:
    document: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": digest_of(layer), "size": len(layer)}],
    }
    if annotations:
        document["annotations"] = annotations
    return json.dumps(document, sort_keys=True).encode()


def push_image(client: OciRegistry, repository: str, tag: str, *, seed: str = "") -> PushedImage:
    layer = f"layer of {repository}:{tag} {seed}\n".encode() * 50
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [digest_of(layer)]}},
        sort_keys=True,
    ).encode()
    client.upload_blob(repository, digest_of(layer), [layer], size=len(layer))
    client.upload_blob(repository, digest_of(config), [config], size=len(config))
    raw = manifest_for(config, layer)
    digest = client.put_manifest(repository, tag, raw, OCI_MANIFEST)
    return PushedImage(repository, tag, digest, raw, digest_of(config), config, digest_of(layer), layer)


# A scripted HTTP server: answers each request from a function, records what it saw


@dataclass(frozen=True, slots=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    reset: bool = False  # drop the connection with a TCP reset instead of answering
    endless: bool = False  # a body without length that goes on until the client hangs up
    retry_after_date_in: float | None = None  # send Retry-After as an HTTP-date this many seconds ahead


@dataclass(frozen=True, slots=True)
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class _ScriptedHandler(QuietRequestHandler):
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        body = self.read_body()
        seen = SeenRequest(self.command, self.path, self.lowercase_headers(), body, time.monotonic())
        owner: ScriptedServer = self.server.owner
        with owner.lock:
            owner.seen.append(seen)
        reply = owner.answer(seen)
        if reply.reset:
            self.reset_connection()
            return
        self.send_response(reply.status)
        headers = dict(reply.headers)
        if reply.retry_after_date_in is not None:
            headers["Retry-After"] = email.utils.formatdate(time.time() + reply.retry_after_date_in, usegmt=True)
        if reply.endless:
            headers["Connection"] = "close"
            self.close_connection = True
        elif "Content-Length" not in headers:
            headers["Content-Length"] = str(len(reply.body))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        try:
            if reply.endless:
                for _ in range(4096):  # at most 256 MiB, in case the client never hangs up
                    self.wfile.write(b"x" * 65536)
            elif self.command != "HEAD":
                self.wfile.write(reply.body)
        except OSError:
            self.close_connection = True

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle


class ScriptedServer:
    """An HTTP server on 127.0.0.1 whose replies come from `answer(request)`."""

    def __init__(self, answer: Callable[[SeenRequest], Reply]) -> None:
        self.answer = answer
        self.seen: list[SeenRequest] = []
        self.lock = threading.Lock()
        self._http = LocalHttpServer(
            _ScriptedHandler,
            owner=self,
            name="scripted-server",
            poll_interval=0.02,
            silenced_errors=(Exception,),  # resets and clients hanging up mid-body are part of the script
        ).start()
        self.host = self._http.host
        self.url = self._http.url

    def stop(self) -> None:
        self._http.stop()


def in_order(*replies: Reply) -> Callable[[SeenRequest], Reply]:
    """Answer the n-th request with the n-th reply; a 418 once the script is used up."""
    remaining = list(replies)
    lock = threading.Lock()

    def answer(_: SeenRequest) -> Reply:
        with lock:
            return remaining.pop(0) if remaining else Reply(418, body=b"script exhausted")

    return answer


def by_path(routes: dict[tuple[str, str], Reply]) -> Callable[[SeenRequest], Reply]:
    """Answer by (method, path with query), then (method, path); 404 otherwise."""

    def answer(request: SeenRequest) -> Reply:
        path = urlsplit(request.path).path
        return routes.get((request.method, request.path)) or routes.get((request.method, path)) or Reply(404)

    return answer


def oci_error(code: str, message: str) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": message}]}).encode()


MANIFEST = manifest_for(b"{}", b"layer")
MANIFEST_DIGEST = digest_of(MANIFEST)
MANIFEST_OK = Reply(200, {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": MANIFEST_DIGEST}, MANIFEST)


# Fixtures


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    with LocalRegistry(tmp_path_factory.mktemp("registry")) as local:
        yield local


@pytest.fixture
def client(registry: LocalRegistry) -> Iterator[OciRegistry]:
    with OciRegistry(registry.host) as registry_client:
        yield registry_client


@pytest.fixture
def scripted() -> Iterator[Callable[[Callable[[SeenRequest], Reply]], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(answer: Callable[[SeenRequest], Reply]) -> ScriptedServer:
        servers.append(ScriptedServer(answer))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def fast_client(host: str, **options: object) -> OciRegistry:
    settings: dict[str, object] = {"backoff": 0.01, "max_attempts": 4, "timeout": 5.0}
    settings.update(options)
    return OciRegistry(host, **settings)  # type: ignore[arg-type]


# Manifests


def test_client_satisfies_the_registry_port(client: OciRegistry) -> None:
    """OciRegistry offers every method of the Registry protocol."""
    assert isinstance(client, Registry)


@pytest.mark.parametrize("by", ["tag", "digest"])
def test_get_manifest_by_tag_or_digest_returns_verified_bytes(client: OciRegistry, by: str) -> None:
    """A pushed manifest comes back byte for byte with its media type and sha256 digest."""
    image = push_image(client, f"manifests/{by}", "1.0")
    fetched = client.get_manifest(image.repository, image.tag if by == "tag" else image.digest)
    assert (fetched.raw, fetched.media_type, fetched.digest) == (image.raw, OCI_MANIFEST, image.digest)


@pytest.mark.parametrize("media_type", [OCI_INDEX, DOCKER_MANIFEST_LIST], ids=["oci-index", "docker-list"])
def test_index_media_types_round_trip(client: OciRegistry, media_type: str) -> None:
    """An index pushed with a media type is served with that media type (every type is in Accept)."""
    image = push_image(client, "manifests/index", "child")
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": image.digest,
                    "size": len(image.raw),
                    "platform": {"os": "linux", "architecture": "amd64"},
                }
            ],
        }
    ).encode()
    digest = client.put_manifest("manifests/index", "multi", index, media_type)
    fetched = client.get_manifest("manifests/index", "multi")
    assert (fetched.media_type, fetched.digest, fetched.raw) == (media_type, digest, index)


def test_head_manifest_reports_digest_type_and_size(client: OciRegistry) -> None:
    """HEAD by tag and by digest gives the pushed digest, media type and size; a missing one gives None."""
    image = push_image(client, "manifests/head", "1")
    expected = ManifestHead(digest=image.digest, media_type=OCI_MANIFEST, size=len(image.raw))
    assert client.head_manifest(image.repository, "1") == expected
    assert client.head_manifest(image.repository, image.digest) == expected
    assert client.head_manifest(image.repository, "missing") is None
    assert client.head_manifest("manifests/no-such-repo", image.digest) is None


def test_missing_manifest_raises_not_found_naming_it(client: OciRegistry, registry: LocalRegistry) -> None:
    """A GET of a tag that does not exist raises NotFound naming host, repository and tag."""
    push_image(client, "manifests/missing", "1")
    with pytest.raises(NotFound, match=f"{registry.host}/manifests/missing:nope") as raised:
        client.get_manifest("manifests/missing", "nope")
    assert raised.value.transient is False


def test_put_manifest_by_digest_checks_the_digest_first(client: OciRegistry) -> None:
    """Pushing bytes under a digest they do not have raises DigestMismatch without sending anything."""
    before = client.requests_made
    with pytest.raises(DigestMismatch):
        client.put_manifest("manifests/put", "sha256:" + "0" * 64, MANIFEST, OCI_MANIFEST)
    assert client.requests_made == before


@pytest.mark.parametrize(
    ("repository", "reference"),
    [("Upper/case", "1"), ("ok", "bad tag"), ("ok", "sha256:short"), ("../escape", "1")],
    ids=["uppercase-repository", "tag-with-space", "short-digest", "path-escape"],
)
def test_invalid_names_are_refused_before_any_request(client: OciRegistry, repository: str, reference: str) -> None:
    """Repository names, tags and digests are validated before they become part of a URL."""
    before = client.requests_made
    with pytest.raises(ReferenceError):
        client.get_manifest(repository, reference)
    assert client.requests_made == before


# Size caps


def sized_manifest(size: int) -> bytes:
    """A valid OCI manifest of exactly `size` bytes (an annotation pads it)."""
    bare = manifest_for(b"{}", b"layer", padding="")
    return manifest_for(b"{}", b"layer", padding="p" * (size - len(bare)))


@pytest.mark.parametrize(
    ("size", "too_large"),
    [(MAX_MANIFEST_BYTES, False), (MAX_MANIFEST_BYTES + 1, True)],
    ids=["exactly-4MiB-accepted", "4MiB-plus-one-refused"],
)
def test_manifest_size_cap(scripted: Callable[..., ScriptedServer], size: int, too_large: bool) -> None:
    """A manifest above 4 MiB raises TooLarge by tag and by digest, one of exactly 4 MiB is read; HEAD sizes both.

    Served by the scripted server: distribution 2.8 itself refuses to store a manifest above 4 MiB.
    """
    raw = sized_manifest(size)
    served = Reply(200, {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": digest_of(raw)}, raw)
    routes = {
        (method, f"/v2/caps/big/manifests/{reference}"): served
        for method in ("GET", "HEAD")
        for reference in ("huge", digest_of(raw))
    }
    server = scripted(by_path(routes))
    registry_client = fast_client(server.host)
    for reference in ("huge", digest_of(raw)):
        if too_large:
            with pytest.raises(TooLarge, match=f"{server.host}/caps/big.{reference}"):
                registry_client.get_manifest("caps/big", reference)
        else:
            assert registry_client.get_manifest("caps/big", reference).raw == raw
    assert registry_client.head_manifest("caps/big", "huge") == ManifestHead(digest_of(raw), OCI_MANIFEST, size)


def test_distribution_refuses_manifests_over_the_cap_too(registry: LocalRegistry) -> None:
    """The real registry answers a raw PUT of a manifest above 4 MiB with 400, so oversized ones come from elsewhere."""
    raw = sized_manifest(MAX_MANIFEST_BYTES + 1)
    request = urllib.request.Request(
        f"{registry.url}/v2/caps/raw/manifests/huge", data=raw, method="PUT", headers={"Content-Type": OCI_MANIFEST}
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request)
    raised.value.close()
    assert raised.value.code == 400


def test_pushing_a_manifest_over_the_cap_is_refused_locally(client: OciRegistry) -> None:
    """put_manifest refuses more than MAX_MANIFEST_BYTES without sending a request."""
    before = client.requests_made
    with pytest.raises(TooLarge):
        client.put_manifest("caps/put", "1", b"x" * (MAX_MANIFEST_BYTES + 1), OCI_MANIFEST)
    assert client.requests_made == before


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, {"Content-Type": OCI_MANIFEST}, endless=True),
        Reply(200, {"Content-Type": OCI_MANIFEST, "Content-Length": str(5 * 1024 * 1024)}, b"{" * (5 * 1024 * 1024)),
    ],
    ids=["endless-body-without-length", "announced-length-over-cap"],
)
def test_oversized_manifest_stops_reading_at_the_cap(scripted: Callable[..., ScriptedServer], reply: Reply) -> None:
    """A body without end, or one announced as larger than the cap, raises TooLarge instead of being read."""
    server = scripted(by_path({("GET", "/v2/app/manifests/1"): reply}))
    started = time.monotonic()
    with pytest.raises(TooLarge, match=f"{server.host}/app:1"):
        fast_client(server.host).get_manifest("app", "1")
    assert time.monotonic() - started < 10
    assert len(server.seen) == 1


def test_get_blob_over_max_bytes_raises_too_large(client: OciRegistry) -> None:
    """get_blob refuses a blob larger than max_bytes."""
    image = push_image(client, "caps/blob", "1")
    with pytest.raises(TooLarge, match=image.layer_digest):
        client.get_blob(image.repository, image.layer_digest, max_bytes=len(image.layer) - 1)


# Blobs


def test_get_blob_and_open_blob_return_the_content(client: OciRegistry) -> None:
    """A blob comes back whole from get_blob and in order from the open_blob stream."""
    image = push_image(client, "blobs/get", "1")
    assert client.get_blob(image.repository, image.config_digest, max_bytes=1 << 20) == image.config
    with client.open_blob(image.repository, image.layer_digest) as chunks:
        assert b"".join(chunks) == image.layer


def test_open_blob_streams_a_large_blob_in_fixed_chunks(client: OciRegistry) -> None:
    """A 3 MiB blob is streamed in chunks no larger than the fixed buffer."""
    blob = bytes(range(256)) * (3 * 4096)
    client.upload_blob("blobs/large", digest_of(blob), [blob], size=len(blob))
    with client.open_blob("blobs/large", digest_of(blob)) as chunks:
        received = list(chunks)
    assert b"".join(received) == blob
    assert len(received) > 1 and max(len(chunk) for chunk in received) <= 256 * 1024


def test_head_blob_gives_size_or_none(client: OciRegistry) -> None:
    """head_blob returns the size of a present blob and None for an absent one."""
    image = push_image(client, "blobs/head", "1")
    assert client.head_blob(image.repository, image.layer_digest) == len(image.layer)
    assert client.head_blob(image.repository, "sha256:" + "1" * 64) is None


def test_missing_blob_raises_not_found(client: OciRegistry, registry: LocalRegistry) -> None:
    """get_blob and open_blob of an absent blob raise NotFound naming it."""
    missing = "sha256:" + "2" * 64
    push_image(client, "blobs/missing", "1")
    with pytest.raises(NotFound, match=f"{registry.host}/blobs/missing@{missing}"):
        client.get_blob("blobs/missing", missing, max_bytes=100)
    with pytest.raises(NotFound, match=missing):
        with client.open_blob("blobs/missing", missing) as chunks:
            list(chunks)


NINE_MIB = bytes(range(251)) * (9 * 1024 * 1024 // 251)


@pytest.mark.parametrize(
    ("blob", "size_known", "requests"),
    [
        (b"small blob", True, 2),  # POST session, PUT with body
        (NINE_MIB, True, 2),  # POST session, streamed PUT
        (NINE_MIB, False, 5),  # POST session, three 4 MiB PATCHes, closing PUT
        (b"", False, 2),  # POST session, closing PUT
    ],
    ids=["monolithic-small", "monolithic-streamed-9MiB", "chunked-9MiB", "chunked-empty"],
)
def test_upload_blob_monolithic_or_chunked(
    client: OciRegistry, blob: bytes, size_known: bool, requests: int
) -> None:
    """Known sizes upload in one PUT, unknown sizes in 4 MiB PATCHes; either way the registry has the blob."""
    repository = f"uploads/{'known' if size_known else 'unknown'}-{len(blob)}"
    pieces = (blob[start : start + 100_000] for start in range(0, len(blob), 100_000))
    before = client.requests_made
    client.upload_blob(repository, digest_of(blob), pieces, size=len(blob) if size_known else None)
    assert client.requests_made - before == requests
    assert client.head_blob(repository, digest_of(blob)) == len(blob)
    with client.open_blob(repository, digest_of(blob)) as chunks:
        assert b"".join(chunks) == blob


@pytest.mark.parametrize("size_known", [True, False], ids=["monolithic", "chunked"])
def test_upload_with_the_wrong_digest_raises_digest_mismatch(client: OciRegistry, size_known: bool) -> None:
    """The registry verifies uploads: content that does not hash to the digest raises DigestMismatch."""
    wrong = "sha256:" + "3" * 64
    with pytest.raises(DigestMismatch, match=wrong):
        client.upload_blob("uploads/wrong", wrong, [b"content"], size=7 if size_known else None)
    assert client.head_blob("uploads/wrong", wrong) is None


@pytest.mark.parametrize("size", [3, 30], ids=["more-bytes-than-size", "fewer-bytes-than-size"])
def test_upload_with_a_wrong_size_is_refused(client: OciRegistry, size: int) -> None:
    """Chunks that do not add up to the announced size raise ValueError and store nothing."""
    blob = b"ten bytes!"
    with pytest.raises(ValueError, match=f"{size} bytes announced"):
        client.upload_blob("uploads/size", digest_of(blob), [blob], size=size)
    assert client.head_blob("uploads/size", digest_of(blob)) is None


def test_mount_blob_across_repositories(client: OciRegistry) -> None:
    """Mounting an existing blob from another repository returns True and the blob is then there."""
    image = push_image(client, "mounts/source", "1")
    assert client.head_blob("mounts/target", image.layer_digest) is None
    assert client.mount_blob("mounts/target", image.layer_digest, "mounts/source") is True
    assert client.head_blob("mounts/target", image.layer_digest) == len(image.layer)


def test_mount_of_an_absent_blob_returns_false(client: OciRegistry) -> None:
    """A mount the registry cannot do (it opens an upload session instead) returns False."""
    push_image(client, "mounts/empty-source", "1")
    assert client.mount_blob("mounts/target2", "sha256:" + "4" * 64, "mounts/empty-source") is False


def test_mount_answered_with_a_session_cancels_it(scripted: Callable[..., ScriptedServer]) -> None:
    """When the registry answers a mount with 202 and a session, the client deletes that session."""
    server = scripted(
        by_path(
            {
                ("POST", "/v2/dst/blobs/uploads/"): Reply(202, {"Location": "/v2/dst/blobs/uploads/session-1"}),
                ("DELETE", "/v2/dst/blobs/uploads/session-1"): Reply(204),
            }
        )
    )
    assert fast_client(server.host).mount_blob("dst", "sha256:" + "5" * 64, "src") is False
    assert [(seen.method, urlsplit(seen.path).path) for seen in server.seen] == [
        ("POST", "/v2/dst/blobs/uploads/"),
        ("DELETE", "/v2/dst/blobs/uploads/session-1"),
    ]
    assert parse_qs(urlsplit(server.seen[0].path).query) == {"mount": ["sha256:" + "5" * 64], "from": ["src"]}


# Delete


def test_delete_manifest_removes_it_and_its_tags(client: OciRegistry) -> None:
    """After delete_manifest the manifest and its tag are gone, even right after a cached by-digest read."""
    image = push_image(client, "deletes/app", "1")
    client.get_manifest(image.repository, image.digest)  # now cached
    client.delete_manifest(image.repository, image.digest)
    assert client.head_manifest(image.repository, "1") is None
    with pytest.raises(NotFound):
        client.get_manifest(image.repository, image.digest)


def test_delete_of_a_missing_manifest_raises_not_found(client: OciRegistry) -> None:
    """Deleting a digest the repository does not have raises NotFound."""
    push_image(client, "deletes/missing", "1")
    with pytest.raises(NotFound, match="deletes/missing@sha256:6666"):
        client.delete_manifest("deletes/missing", "sha256:" + "6" * 64)


def test_delete_needs_a_digest(client: OciRegistry) -> None:
    """delete_manifest refuses a tag: distribution deletes by digest only."""
    with pytest.raises(ReferenceError, match="'latest'"):
        client.delete_manifest("deletes/app", "latest")


# Listings


def test_catalog_follows_pagination(tmp_path: Path) -> None:
    """catalog(page_size=2) on a registry with five repositories walks three pages and lists them all."""
    with LocalRegistry(tmp_path / "catalog") as fresh, OciRegistry(fresh.host) as fresh_client:
        names = [f"catalog/repo{index}" for index in range(5)]
        for name in names:
            push_image(fresh_client, name, "1")
        before = fresh_client.requests_made
        assert list(fresh_client.catalog(page_size=2)) == names
        assert fresh_client.requests_made - before == 3
        assert list(fresh_client.catalog()) == names


def test_list_tags_returns_every_tag(client: OciRegistry) -> None:
    """list_tags lists every tag a real registry has, with or without a page size."""
    image = push_image(client, "listing/tags", "a")
    for tag in ("b", "c", "d"):
        client.put_manifest(image.repository, tag, image.raw, OCI_MANIFEST)
    assert sorted(client.list_tags(image.repository, page_size=2)) == ["a", "b", "c", "d"]
    assert sorted(client.list_tags(image.repository)) == ["a", "b", "c", "d"]


def test_list_tags_follows_link_pagination(scripted: Callable[..., ScriptedServer]) -> None:
    """list_tags follows `Link: <…>; rel="next"` until a page has none (distribution 2.8 does not paginate tags)."""

    def page(tags: list[str], next_path: str | None) -> Reply:
        headers = {"Content-Type": "application/json"}
        if next_path:
            headers["Link"] = f'<{next_path}>; rel="next"'
        return Reply(200, headers, json.dumps({"name": "app", "tags": tags}).encode())

    server = scripted(
        by_path(
            {
                ("GET", "/v2/app/tags/list?n=2"): page(["a", "b"], "/v2/app/tags/list?n=2&last=b"),
                ("GET", "/v2/app/tags/list?n=2&last=b"): page(["c", "d"], "/v2/app/tags/list?n=2&last=d"),
                ("GET", "/v2/app/tags/list?n=2&last=d"): page(["e"], None),
            }
        )
    )
    assert list(fast_client(server.host).list_tags("app", page_size=2)) == ["a", "b", "c", "d", "e"]
    assert [seen.path for seen in server.seen] == [
        "/v2/app/tags/list?n=2",
        "/v2/app/tags/list?n=2&last=b",
        "/v2/app/tags/list?n=2&last=d",
    ]


def test_pagination_that_loops_raises_protocol_error(scripted: Callable[..., ScriptedServer]) -> None:
    """A Link that leads back to a page already read raises ProtocolError instead of looping forever."""
    looping = Reply(
        200, {"Link": '</v2/_catalog?n=1>; rel="next"'}, json.dumps({"repositories": ["a"]}).encode()
    )
    server = scripted(by_path({("GET", "/v2/_catalog?n=1"): looping}))
    with pytest.raises(ProtocolError, match="leads back"):
        list(fast_client(server.host).catalog(page_size=1))


# Cache


def test_by_digest_reads_are_cached_and_by_tag_reads_are_not(client: OciRegistry) -> None:
    """A second by-digest manifest or small-blob read makes no request; a by-tag read always asks."""
    image = push_image(client, "cache/app", "1")
    client.get_manifest(image.repository, image.digest)
    client.get_blob(image.repository, image.config_digest, max_bytes=1 << 20)
    before = client.requests_made
    assert client.get_manifest(image.repository, image.digest).raw == image.raw
    assert client.get_blob(image.repository, image.config_digest, max_bytes=1 << 20) == image.config
    assert client.requests_made == before
    client.get_manifest(image.repository, "1")
    assert client.requests_made == before + 1


def test_blobs_over_one_mebibyte_are_not_cached(client: OciRegistry) -> None:
    """A blob larger than 1 MiB is fetched again on every get_blob."""
    blob = b"b" * (1024 * 1024 + 1)
    client.upload_blob("cache/big", digest_of(blob), [blob], size=len(blob))
    client.get_blob("cache/big", digest_of(blob), max_bytes=len(blob))
    before = client.requests_made
    client.get_blob("cache/big", digest_of(blob), max_bytes=len(blob))
    assert client.requests_made == before + 1


def test_cache_is_bounded_least_recently_used(registry: LocalRegistry) -> None:
    """With room for one entry, reading a second digest evicts the first."""
    with OciRegistry(registry.host, config_cache=1) as small:
        first, second = push_image(small, "cache/lru", "1"), push_image(small, "cache/lru", "2")
        small.get_manifest("cache/lru", first.digest)
        small.get_manifest("cache/lru", second.digest)
        before = small.requests_made
        small.get_manifest("cache/lru", second.digest)
        assert small.requests_made == before
        small.get_manifest("cache/lru", first.digest)
        assert small.requests_made == before + 1


def test_concurrent_reads_from_many_threads(registry: LocalRegistry) -> None:
    """Sixteen threads sharing one client get correct content and an exact request count."""
    with OciRegistry(registry.host, config_cache=0) as shared:
        images = [push_image(shared, "threads/app", f"t{index}") for index in range(4)]
        before = shared.requests_made

        def read(index: int) -> bool:
            image = images[index % len(images)]
            return shared.get_blob(image.repository, image.layer_digest, max_bytes=1 << 20) == image.layer

        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(read, range(160)))
        assert all(results)
        assert shared.requests_made - before == 160


# Digest verification against a misbehaving server


WRONG_CONTENT = b"not what the digest says"


@pytest.mark.parametrize(
    ("operation", "reply"),
    [
        ("manifest-by-digest", Reply(200, {"Content-Type": OCI_MANIFEST}, WRONG_CONTENT)),
        (
            "manifest-by-tag-announced",
            Reply(200, {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": MANIFEST_DIGEST}, WRONG_CONTENT),
        ),
        ("blob", Reply(200, {}, WRONG_CONTENT)),
    ],
    ids=["manifest-by-digest", "manifest-by-tag-announced", "blob"],
)
def test_content_that_does_not_match_its_digest_is_refused(
    scripted: Callable[..., ScriptedServer], operation: str, reply: Reply
) -> None:
    """Content that does not hash to the requested or announced digest raises DigestMismatch."""
    server = scripted(lambda _: reply)
    registry_client = fast_client(server.host)
    with pytest.raises(DigestMismatch, match=server.host) as raised:
        if operation == "manifest-by-digest":
            registry_client.get_manifest("app", MANIFEST_DIGEST)
        elif operation == "manifest-by-tag-announced":
            registry_client.get_manifest("app", "1")
        else:
            registry_client.get_blob("app", MANIFEST_DIGEST, max_bytes=1 << 20)
    assert raised.value.transient is False
    assert len(server.seen) == 1


def test_streamed_blob_with_wrong_content_fails_at_the_end(scripted: Callable[..., ScriptedServer]) -> None:
    """open_blob hands out the bytes it receives, then its iterator raises DigestMismatch."""
    server = scripted(lambda _: Reply(200, {}, WRONG_CONTENT))
    received: list[bytes] = []
    with fast_client(server.host).open_blob("app", MANIFEST_DIGEST) as chunks:
        with pytest.raises(DigestMismatch, match=MANIFEST_DIGEST):
            for chunk in chunks:
                received.append(chunk)
    assert b"".join(received) == WRONG_CONTENT


STREAM_CHUNK = 256 * 1024  # importer.adapters.registry.http.STREAM_CHUNK_BYTES


class _PieceByPieceBlob(QuietRequestHandler):
    """Answers a GET with `self.server.owner` (a list of byte strings) as one body, written piece by piece with a
    pause after each, so that the client's reads see the pieces apart."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        pieces: list[bytes] = self.server.owner
        self.send_response(200)
        self.send_header("Content-Length", str(sum(len(piece) for piece in pieces)))
        self.end_headers()
        for piece in pieces:
            self.wfile.write(piece)
            time.sleep(0.02)


def _pieces(*sizes: int) -> list[bytes]:
    return [bytes((index * 7 + offset) % 251 for offset in range(size)) for index, size in enumerate(sizes)]


@pytest.mark.parametrize(
    "sizes",
    [
        (1, 1000, 300_000, 7, 100_000, STREAM_CHUNK, 5),  # chunks joined from uneven reads, a short last chunk
        (100_000, STREAM_CHUNK - 100_000, STREAM_CHUNK),  # an exact multiple of the chunk: no empty last chunk
        (STREAM_CHUNK,),
        (),  # a 0-byte blob: no chunk at all
    ],
    ids=["uneven-pieces", "exact-multiple", "one-chunk", "empty"],
)
@pytest.mark.parametrize("content", ["right", "wrong"])
def test_open_blob_regroups_what_arrives_into_fixed_chunks_and_verifies_it(
    sizes: tuple[int, ...], content: str
) -> None:
    """Whatever pieces the body arrives in, open_blob hands it out in chunks of exactly 256 KiB (the last one
    shorter, none empty), each a `bytes` of its own that later reads leave alone; a body that does not match the
    digest raises DigestMismatch once every byte was handed out, one that does ends without error."""
    pieces = _pieces(*sizes)
    body = b"".join(pieces)
    digest = digest_of(body) if content == "right" else digest_of(body + b"!")
    server = LocalHttpServer(_PieceByPieceBlob, owner=pieces, name="piece-by-piece", poll_interval=0.02,
                             silenced_errors=(OSError,)).start()
    received: list[bytes] = []
    try:
        with fast_client(server.host).open_blob("app", digest) as chunks:
            if content == "right":
                received.extend(chunks)
            else:
                with pytest.raises(DigestMismatch, match=digest):
                    received.extend(chunks)  # what was handed out before the error stays in `received`
    finally:
        server.stop()
    assert b"".join(received) == body  # the chunks kept are intact
    assert all(type(chunk) is bytes for chunk in received)
    assert [len(chunk) for chunk in received[:-1]] == [STREAM_CHUNK] * (len(received) - 1 if received else 0)
    assert len(received) == -(-len(body) // STREAM_CHUNK)
    assert all(received)


# Retries


@dataclass(frozen=True, slots=True)
class RetryCase:
    replies: tuple[Reply, ...]
    max_attempts: int
    succeeds: bool
    requests: int
    min_seconds: float = 0.0
    max_seconds: float = 10.0
    max_retry_after: float = 30.0


RETRY_CASES = {
    "503-429-retry-after-reset-then-ok": RetryCase(
        (Reply(503), Reply(429, {"Retry-After": "1"}), Reply(reset=True), MANIFEST_OK), 4, True, 4, min_seconds=1.0
    ),
    "always-503-gives-up-after-max-attempts": RetryCase((Reply(503),) * 6, 3, False, 3),
    "resets-exhaust-the-attempts": RetryCase((Reply(reset=True),) * 6, 2, False, 2),
    "each-retryable-status": RetryCase(
        (Reply(500), Reply(502), Reply(504), MANIFEST_OK), 4, True, 4
    ),
    "retry-after-http-date": RetryCase(
        (Reply(503, retry_after_date_in=2.5), MANIFEST_OK), 2, True, 2, min_seconds=1.0
    ),
    "retry-after-capped": RetryCase(
        (Reply(429, {"Retry-After": "120"}), MANIFEST_OK), 2, True, 2, min_seconds=0.3, max_seconds=5.0,
        max_retry_after=0.3,
    ),
}


@pytest.mark.parametrize("case", RETRY_CASES.values(), ids=RETRY_CASES.keys())
def test_retries_are_bounded_and_honour_retry_after(scripted: Callable[..., ScriptedServer], case: RetryCase) -> None:
    """429/5xx and resets are retried up to max_attempts, waiting Retry-After (capped), then fail transiently."""
    server = scripted(in_order(*case.replies))
    registry_client = fast_client(server.host, max_attempts=case.max_attempts, max_retry_after=case.max_retry_after)
    started = time.monotonic()
    if case.succeeds:
        assert registry_client.get_manifest("app", "1").raw == MANIFEST
    else:
        with pytest.raises(TransientRegistryError, match=f"{server.host}/app:1") as raised:
            registry_client.get_manifest("app", "1")
        assert raised.value.transient is True
    elapsed = time.monotonic() - started
    assert len(server.seen) == case.requests
    assert registry_client.requests_made == case.requests
    assert case.min_seconds <= elapsed <= case.max_seconds


def test_retry_after_gap_is_between_the_two_requests(scripted: Callable[..., ScriptedServer]) -> None:
    """The request after a 429 with Retry-After: 1 arrives at least one second later."""
    server = scripted(in_order(Reply(429, {"Retry-After": "1"}), MANIFEST_OK))
    fast_client(server.host).get_manifest("app", "1")
    assert server.seen[1].at - server.seen[0].at >= 1.0


def test_unreachable_registry_fails_transiently_after_max_attempts() -> None:
    """Refused connections are retried max_attempts times, then raise TransientRegistryError."""
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]  # bound but not listening: connections are refused
        registry_client = fast_client(f"127.0.0.1:{port}", max_attempts=3)
        with pytest.raises(TransientRegistryError, match="gave up after 3 attempts"):
            registry_client.head_blob("app", MANIFEST_DIGEST)
    assert registry_client.requests_made == 3


# Permanent errors


ERROR_CASES = {
    "404-not-found": (Reply(404, {}, oci_error("MANIFEST_UNKNOWN", "manifest unknown")), NotFound),
    "401-without-challenge": (Reply(401, {}, oci_error("UNAUTHORIZED", "authentication required")), Unauthorized),
    "403-denied": (Reply(403, {}, oci_error("DENIED", "requested access to the resource is denied")), Unauthorized),
    "400-oci-error": (Reply(400, {}, oci_error("MANIFEST_INVALID", "manifest invalid")), RegistryError),
    "405-unsupported": (Reply(405, {}, oci_error("UNSUPPORTED", "The operation is unsupported.")), RegistryError),
    "400-html-error-body": (Reply(400, {"Content-Type": "text/html"}, b"<html>bad gateway</html>"), ProtocolError),
    "413-too-large": (Reply(413), TooLarge),
    "bad-digest-header": (
        Reply(200, {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": "sha256:nope"}, MANIFEST),
        ProtocolError,
    ),
    "no-media-type-and-not-json": (Reply(200, {}, b"plain text"), ProtocolError),
    "bearer-without-realm": (Reply(401, {"WWW-Authenticate": 'Bearer service="x"'}), ProtocolError),
}


@pytest.mark.parametrize(("reply", "error"), ERROR_CASES.values(), ids=ERROR_CASES.keys())
def test_permanent_errors_are_mapped_and_not_retried(
    scripted: Callable[..., ScriptedServer], reply: Reply, error: type[RegistryError]
) -> None:
    """Each permanent answer maps to its exception, naming host, repository and tag, after a single request."""
    server = scripted(lambda _: reply)
    with pytest.raises(RegistryError) as raised:
        fast_client(server.host).get_manifest("team/app", "1.0")
    assert type(raised.value) is error
    assert f"{server.host}/team/app:1.0" in str(raised.value)
    assert raised.value.transient is False
    assert len(server.seen) == 1


def test_registry_error_codes_appear_in_the_message(scripted: Callable[..., ScriptedServer]) -> None:
    """The registry's own error code and message are part of the exception message."""
    server = scripted(lambda _: Reply(400, {}, oci_error("MANIFEST_INVALID", "manifest invalid")))
    with pytest.raises(RegistryError, match="HTTP 400: MANIFEST_INVALID: manifest invalid"):
        fast_client(server.host).put_manifest("app", "1", MANIFEST, OCI_MANIFEST)


# Plain http policy and redirects


@pytest.mark.parametrize(
    ("host", "scheme", "allow_http", "base_url"),
    [
        ("registry.example.com", "http", False, None),
        ("10.0.0.1:5000", "http", False, None),
        ("registry.example.com", "http", True, "http://registry.example.com"),
        ("registry.example.com", None, False, "https://registry.example.com"),
        ("127.0.0.1:5000", None, False, "http://127.0.0.1:5000"),
        ("127.0.0.1:5000", "https", False, "https://127.0.0.1:5000"),
        ("localhost:5000", None, False, "http://localhost:5000"),
        ("[::1]:5000", None, False, "http://[::1]:5000"),
        ("docker.io", None, False, "https://registry-1.docker.io"),
    ],
    ids=[
        "http-to-remote-refused",
        "http-to-private-ip-refused",
        "http-to-remote-allowed",
        "https-by-default",
        "loopback-defaults-to-http",
        "loopback-may-use-https",
        "localhost-defaults-to-http",
        "ipv6-loopback-defaults-to-http",
        "docker-hub-endpoint",
    ],
)
def test_scheme_policy(host: str, scheme: str | None, allow_http: bool, base_url: str | None) -> None:
    """Plain http is refused for non-loopback hosts unless allowed; docker.io talks to registry-1.docker.io."""
    if base_url is None:
        with pytest.raises(InsecureTransportRefused, match="plain http"):
            OciRegistry(host, scheme=scheme, allow_http=allow_http)
    else:
        registry_client = OciRegistry(host, scheme=scheme, allow_http=allow_http)
        assert (registry_client.base_url, registry_client.requests_made) == (base_url, 0)


def test_token_realm_over_plain_http_to_a_remote_host_is_refused(scripted: Callable[..., ScriptedServer]) -> None:
    """A Bearer challenge pointing at an http realm on a non-loopback host raises InsecureTransportRefused."""
    challenge = 'Bearer realm="http://auth.example.invalid/token",service="registry",scope="repository:app:pull"'
    server = scripted(lambda _: Reply(401, {"WWW-Authenticate": challenge}))
    registry_client = fast_client(server.host, credentials=Credentials("ci", "pw"))
    with pytest.raises(InsecureTransportRefused, match="auth.example.invalid"):
        registry_client.get_manifest("app", "1")
    assert len(server.seen) == 1


def test_redirect_to_plain_http_on_a_remote_host_is_refused(scripted: Callable[..., ScriptedServer]) -> None:
    """A blob redirect to http on a non-loopback host raises InsecureTransportRefused and is not followed."""
    server = scripted(lambda _: Reply(307, {"Location": "http://storage.example.invalid/blob?sig=s3cret"}))
    with pytest.raises(InsecureTransportRefused) as raised:
        fast_client(server.host).get_blob("app", MANIFEST_DIGEST, max_bytes=100)
    assert "s3cret" not in str(raised.value)


def test_redirects_to_another_origin_drop_the_credentials(scripted: Callable[..., ScriptedServer]) -> None:
    """Credentials sent to the registry are not forwarded when a blob GET is redirected to storage elsewhere."""
    storage = scripted(lambda _: Reply(200, {}, MANIFEST))

    def registry_answer(request: SeenRequest) -> Reply:
        if "authorization" not in request.headers:
            return Reply(401, {"WWW-Authenticate": 'Basic realm="test"'})
        return Reply(307, {"Location": f"{storage.url}/storage/blob?sig=signed"})

    registry_server = scripted(registry_answer)
    registry_client = fast_client(registry_server.host, credentials=Credentials("ci", "pw"))
    assert registry_client.get_blob("app", MANIFEST_DIGEST, max_bytes=1 << 20) == MANIFEST
    assert registry_server.seen[-1].headers["authorization"].startswith("Basic ")
    assert [seen.path for seen in storage.seen] == ["/storage/blob?sig=signed"]
    assert "authorization" not in storage.seen[0].headers


# Basic auth (htpasswd) on a real registry


USERNAME, PASSWORD = "ci-user", "s3cret-passw0rd"


@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    bcrypt = pytest.importorskip("bcrypt", reason="htpasswd needs bcrypt hashes: pip install bcrypt")
    root = tmp_path_factory.mktemp("basic")
    htpasswd = root / "htpasswd"
    htpasswd.write_text(f"{USERNAME}:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()}\n")
    with LocalRegistry(root / "registry", htpasswd=htpasswd) as local:
        yield local


def test_basic_auth_pushes_and_pulls(basic_registry: LocalRegistry) -> None:
    """With htpasswd credentials the client pushes and pulls; after the first challenge it sends them upfront."""
    with OciRegistry(basic_registry.host, credentials=Credentials(USERNAME, PASSWORD)) as authed:
        image = push_image(authed, "basic/app", "1")
        assert authed.get_manifest("basic/app", "1").digest == image.digest
        before = authed.requests_made
        authed.head_manifest("basic/app", "1")
        assert authed.requests_made == before + 1


@pytest.mark.parametrize(
    "credentials",
    [None, Credentials(USERNAME, "wrong-password"), Credentials("nobody", PASSWORD)],
    ids=["anonymous", "wrong-password", "unknown-user"],
)
def test_basic_auth_refusals_raise_unauthorized(basic_registry: LocalRegistry, credentials: Credentials | None) -> None:
    """Missing or wrong credentials raise Unauthorized naming the manifest, and never show a password."""
    with OciRegistry(basic_registry.host, credentials=credentials) as refused:
        with pytest.raises(Unauthorized, match=f"{basic_registry.host}/basic/app:1") as raised:
            refused.get_manifest("basic/app", "1")
        for text in (str(raised.value), repr(refused), repr(credentials)):
            assert PASSWORD not in text and "wrong-password" not in text


# Docker token auth on a real registry


@pytest.fixture(scope="module")
def token_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalRegistry, TokenService]]:
    """A registry with token auth, trusting a token service (testbed.token_service) that knows USERNAME / PASSWORD."""
    root = tmp_path_factory.mktemp("token")
    tokens = TokenService(root / "tokens", users={USERNAME: PASSWORD}, refresh_tokens={})
    with tokens, LocalRegistry(root / "registry", token_auth=tokens.registry_settings()) as local:
        yield local, tokens


def test_token_auth_pushes_pulls_and_caches_tokens(token_setup: tuple[LocalRegistry, TokenService]) -> None:
    """With credentials the client gets scoped tokens from the realm, and reuses each one until it expires."""
    local, tokens = token_setup
    with OciRegistry(local.host, credentials=Credentials(USERNAME, PASSWORD)) as authed:
        image = push_image(authed, "token/app", "1")
        assert authed.get_manifest("token/app", "1").raw == image.raw
        assert list(authed.list_tags("token/app")) == ["1"]
        asked = len(tokens.requests)
        before = authed.requests_made
        authed.get_manifest("token/app", "1")
        assert authed.requests_made == before + 1 and len(tokens.requests) == asked
        assert tokens.requests[-1] == ("GET", USERNAME, ("repository:token/app:pull",))
        assert ("GET", USERNAME, ("repository:token/app:pull,push",)) in tokens.requests
        authed.delete_manifest("token/app", image.digest)
        assert authed.head_manifest("token/app", image.digest) is None


def test_expired_tokens_are_fetched_again(token_setup: tuple[LocalRegistry, TokenService]) -> None:
    """A token is not used past its expires_in (less a safety margin): the next request gets a new one."""
    local, tokens = token_setup
    with OciRegistry(local.host, credentials=Credentials(USERNAME, PASSWORD)) as authed:
        push_image(authed, "token/expiry", "1")
        tokens.lifetime = 2
        try:
            authed.get_manifest("token/expiry", "1")  # token good for 2 s, reused until 1.6 s
            asked = len(tokens.requests)
            authed.get_manifest("token/expiry", "1")
            assert len(tokens.requests) == asked
            time.sleep(1.7)
            authed.get_manifest("token/expiry", "1")
            assert len(tokens.requests) == asked + 1
        finally:
            tokens.lifetime = 300


@pytest.mark.parametrize(
    "credentials", [None, Credentials(USERNAME, "wrong-password")], ids=["anonymous", "wrong-password"]
)
def test_token_auth_refusals_raise_unauthorized(
    token_setup: tuple[LocalRegistry, TokenService], credentials: Credentials | None
) -> None:
    """When the token service refuses, the client raises Unauthorized naming the manifest, without secrets."""
    local, _ = token_setup
    with OciRegistry(local.host, credentials=credentials) as refused:
        with pytest.raises(Unauthorized, match=f"{local.host}/token/app:1") as raised:
            refused.get_manifest("token/app", "1")
        assert "wrong-password" not in str(raised.value) and "wrong-password" not in repr(refused)


# Secrets and the plain transport


def test_credentials_repr_hides_the_password() -> None:
    """Neither Credentials nor OciRegistry show the password in their repr."""
    credentials = Credentials("ci", "hunter2-secret")
    assert "hunter2" not in repr(credentials) and "ci" in repr(credentials)
    assert "hunter2" not in repr(OciRegistry("registry.example.com", credentials=credentials))


def test_plain_get_through_the_shared_transport(registry: LocalRegistry, client: OciRegistry) -> None:
    """client.http.get does one counted GET and returns status, headers and body."""
    before = client.requests_made
    status, headers, body = client.http.get(f"{registry.url}/v2/", {"Accept": "application/json"})
    assert (status, body, headers["Docker-Distribution-Api-Version"]) == (200, b"{}", "registry/2.0")
    assert client.requests_made == before + 1


@pytest.mark.parametrize(
    ("scopes", "canonical"),
    [
        (("repository:a:push,pull",), ("repository:a:pull,push",)),
        (("repository:a:pull,push", "repository:a:push,pull"), ("repository:a:pull,push",)),
        (("repository:a:pull", "repository:a:push"), ("repository:a:pull,push",)),
        (("repository:b:pull", "", "registry:catalog:*"), ("registry:catalog:*", "repository:b:pull")),
    ],
    ids=["actions-sorted", "same-scope-in-two-orders", "actions-merged", "empty-dropped-and-sorted"],
)
def test_token_scopes_are_canonical(scopes: tuple[str, ...], canonical: tuple[str, ...]) -> None:
    """Scopes that mean the same (distribution orders challenge actions at random) share one cached token."""
    from importer.adapters.registry.auth import _key

    assert _key(scopes) == canonical
