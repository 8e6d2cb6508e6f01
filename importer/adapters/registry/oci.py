"""OciRegistry: the Registry port over the OCI distribution HTTP API, for any distribution-compatible registry.

    registry = OciRegistry("127.0.0.1:5000")                                        # loopback: plain http
    registry = OciRegistry("myreg.example.com", credentials=Credentials("ci", "…"))  # https, token or basic auth
    fetched = registry.get_manifest("team/app", "1.0")              # FetchedManifest, digest verified
    with registry.open_blob("team/app", layer_digest) as chunks:    # streamed, verified at the end
        registry.upload_blob("mirror/app", layer_digest, chunks, size=layer_size)

- Scheme: https, except plain http for loopback hosts (127.0.0.0/8, ::1, localhost) when `scheme` is not
  given. Plain http to any other host (registry, token realm, redirect, upload location) raises
  InsecureTransportRefused unless `allow_http=True`. `docker.io` talks to `registry-1.docker.io`.
- Auth: see `auth.py` (Docker token auth, basic, identity tokens). `credential_source` (instead of `credentials`)
  is asked for them when the registry first challenges. Credentials are only ever sent to the registry's own origin
  and to the token realm it names; redirects to other hosts (blob storage) go without them.
- Retries, timeouts and deadlines: see `http.py`; `retry` is the policy (importer.core.retry.REGISTRY_RETRY by
  default); `request_deadline` and `min_transfer_rate` bound each request in all (a registry that drips its answer
  raises OutOfTime, a TransientRegistryError), and no request outlasts the time limit of the work in hand
  (importer.ports.deadlines).
  Permanent statuses map to NotFound (404), Unauthorized (401, 403), TooLarge (413), DigestMismatch
  (400 DIGEST_INVALID), RegistryError (other 4xx with an OCI error body) and ProtocolError (answers that make no
  sense). Every message names host, repository and reference.
- Cache: manifests fetched by digest (or whose digest a by-tag fetch verified) and blobs of at most 1 MiB
  are immutable, so they are kept in a thread-safe LRU keyed by (repository, digest), bounded by
  `config_cache` entries and `cache_bytes`. Keying by repository means a hit never claims content that a
  repository does not have; `delete_manifest` evicts. HEAD requests are never answered from the cache.
- Thread safety: one OciRegistry is meant to be shared by many threads (pooled connections, shared tokens).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urljoin, urlsplit

from importer.adapters.registry.auth import CATALOG_SCOPE, CredentialSource, RegistryAuth, Scopes, repository_scope
from importer.adapters.registry.http import (
    MIN_TRANSFER_RATE,
    REQUEST_DEADLINE_SECONDS,
    HttpTransport,
    Response,
    StreamedResponse,
    error_detail,
    redact_url,
)
from importer.core.bounded_json import loads as load_bounded_json
from importer.core.media_types import ACCEPTED_MANIFEST_MEDIA_TYPES, OCI_INDEX, OCI_MANIFEST
from importer.core.reference import (
    DOCKER_HUB_ALIASES,
    ReferenceError,
    is_digest,
    is_loopback_host,
    validate_digest,
    validate_host,
    validate_repository,
    validate_tag,
)
from importer.core.retry import REGISTRY_RETRY, RetryPolicy
from importer.ports.metrics import RegistryRequestObserver
from importer.ports.registry import (
    MAX_MANIFEST_BYTES,
    Credentials,
    DigestMismatch,
    FetchedManifest,
    ManifestHead,
    NotFound,
    ProtocolError,
    RegistryError,
    TooLarge,
    TransientRegistryError,
    Unauthorized,
)

if TYPE_CHECKING:
    from importer.core.referrers import Referrer

__all__ = ["OciRegistry"]

LOG = logging.getLogger(__name__)

DOCKER_HUB_ENDPOINT = "registry-1.docker.io"
ACCEPT_MANIFESTS = ", ".join(ACCEPTED_MANIFEST_MEDIA_TYPES)
CACHEABLE_BLOB_BYTES = 1024 * 1024
DEFAULT_CACHE_BYTES = 64 * 1024 * 1024
UPLOAD_CHUNK_BYTES = 4 * 1024 * 1024
MAX_LIST_BYTES = 32 * 1024 * 1024
_GENERIC_CONTENT_TYPES = frozenset({"", "application/json", "text/plain", "application/octet-stream"})
# `[^<>]`, not `[^>]`: a target never holds "<", and a header of many "<" then cannot make the regex rescan the
# rest of the header from each one (quadratic: 64 KiB of "<" took 15 s).
_NEXT_LINK = re.compile(r"<([^<>]*)>([^<]*)")
_REL_NEXT = re.compile(r'rel\s*=\s*"?next"?', re.IGNORECASE)


class OciRegistry:
    """A Registry over the OCI distribution API; thread-safe, one instance per registry host."""

    def __init__(
        self,
        host: str,
        *,
        credentials: Credentials | None = None,
        credential_source: CredentialSource | None = None,
        allow_http: bool = False,
        scheme: str | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy = REGISTRY_RETRY,
        max_attempts: int | None = None,
        backoff: float | None = None,
        max_retry_after: float | None = None,
        pool_size: int = 16,
        config_cache: int = 512,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        request_deadline: float = REQUEST_DEADLINE_SECONDS,
        min_transfer_rate: float = MIN_TRANSFER_RATE,
        observer: RegistryRequestObserver | None = None,
    ) -> None:
        try:
            validate_host(host)
        except ReferenceError as problem:
            raise ValueError(f"OciRegistry: {problem}") from None
        endpoint = DOCKER_HUB_ENDPOINT if host.lower() in DOCKER_HUB_ALIASES else host
        scheme = scheme or ("http" if is_loopback_host(endpoint) else "https")
        if scheme not in ("http", "https"):
            raise ValueError(f"OciRegistry {host}: scheme must be 'http' or 'https', not {scheme!r}")
        self.host = host
        self.base_url = f"{scheme}://{endpoint}"
        self.http = HttpTransport(
            allow_http=allow_http,
            timeout=timeout,
            retry=retry,
            max_attempts=max_attempts,
            backoff=backoff,
            max_retry_after=max_retry_after,
            pool_size=pool_size,
            request_deadline=request_deadline,
            min_transfer_rate=min_transfer_rate,
            observer=observer,
        )
        self.http.check_url(self.base_url, f"registry {host}")
        self._auth = RegistryAuth(self.http, registry=host, credentials=credentials,
                                  credential_source=credential_source)
        self._cache = _ImmutableCache(max_entries=config_cache, max_bytes=cache_bytes)

    def __repr__(self) -> str:
        return f"OciRegistry({self.host!r}, base_url={self.base_url!r}, user={self._auth.username!r})"

    @property
    def requests_made(self) -> int:
        """HTTP requests sent so far (retries, redirects and token requests included)."""
        return self.http.requests_made

    def close(self) -> None:
        """Close pooled connections; the client stays usable (it reconnects)."""
        self.http.close()

    def __enter__(self) -> OciRegistry:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # Manifests

    def get_manifest(self, repository: str, reference: str) -> FetchedManifest:
        """Fetch a manifest by tag or digest; verify its digest; TooLarge beyond MAX_MANIFEST_BYTES."""
        by_digest = _check_reference(repository, reference)
        context = f"manifest {self._name(repository, reference)}"
        if by_digest:
            cached = self._cache.get(("manifest", repository, reference))
            if isinstance(cached, FetchedManifest):
                return cached
        response = self._request(
            "GET",
            self._manifest_url(repository, reference),
            scopes=(repository_scope(repository, "pull"),),
            context=context,
            headers={"Accept": ACCEPT_MANIFESTS},
            max_body=MAX_MANIFEST_BYTES,
        )
        if response.status != 200:
            raise self._failure(response.status, response.body, context)
        digest = _verified_manifest_digest(
            response.body, reference if by_digest else None, response.headers.get("Docker-Content-Digest"), context
        )
        media_type = _manifest_media_type(response.headers.get("Content-Type"), response.body, context)
        manifest = FetchedManifest(raw=response.body, media_type=media_type, digest=digest)
        self._cache.put(("manifest", repository, digest), manifest, len(response.body))
        return manifest

    def head_manifest(self, repository: str, reference: str) -> ManifestHead | None:
        """Digest, media type and size of a manifest, or None on 404 (falls back to GET if headers are missing)."""
        by_digest = _check_reference(repository, reference)
        context = f"manifest {self._name(repository, reference)}"
        response = self._request(
            "HEAD",
            self._manifest_url(repository, reference),
            scopes=(repository_scope(repository, "pull"),),
            context=context,
            headers={"Accept": ACCEPT_MANIFESTS},
        )
        if response.status == 404:
            return None
        if response.status != 200:
            raise self._failure(response.status, response.body, context)
        announced = response.headers.get("Docker-Content-Digest")
        size = _content_length(response.headers)
        media_type = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if announced is None or size is None or media_type in _GENERIC_CONTENT_TYPES:
            try:
                fetched = self.get_manifest(repository, reference)
            except NotFound:
                return None
            return ManifestHead(digest=fetched.digest, media_type=fetched.media_type, size=len(fetched.raw))
        announced = _announced_digest(announced, context)
        if by_digest and announced != reference:
            raise DigestMismatch(f"{context}: the registry announces digest {announced} for it")
        return ManifestHead(digest=announced, media_type=media_type, size=size)

    def put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> str:
        """Store a manifest under a tag or its own digest; return its digest (sha256 unless given by digest)."""
        by_digest = _check_reference(repository, reference)
        context = f"manifest {self._name(repository, reference)}"
        if not media_type:
            raise ValueError(f"{context}: a media type is required to push a manifest")
        if len(raw) > MAX_MANIFEST_BYTES:
            raise TooLarge(f"{context}: {len(raw)} bytes is more than the {MAX_MANIFEST_BYTES} a manifest may have")
        digest = _digest_of(raw, _algorithm(reference) if by_digest else "sha256")
        if by_digest and digest != reference:
            raise DigestMismatch(f"{context}: the manifest given has digest {digest}")
        response = self._request(
            "PUT",
            self._manifest_url(repository, reference),
            scopes=(repository_scope(repository, "pull", "push"),),
            context=context,
            headers={"Content-Type": media_type},
            body=raw,
        )
        if not 200 <= response.status < 300:
            raise self._failure(response.status, response.body, context)
        announced = response.headers.get("Docker-Content-Digest")
        if announced is not None:
            announced = _announced_digest(announced, context)
            if _digest_of(raw, _algorithm(announced)) != announced:
                raise DigestMismatch(f"{context}: the registry stored it as {announced}, but it is {digest}")
        self._cache.put(("manifest", repository, digest), FetchedManifest(raw, media_type, digest), len(raw))
        return digest

    def delete_manifest(self, repository: str, digest: str) -> None:
        """Delete a manifest by digest (on distribution this removes every tag pointing at it)."""
        validate_repository(repository)
        validate_digest(digest)
        context = f"manifest {self._name(repository, digest)}"
        response = self._request(
            "DELETE",
            self._manifest_url(repository, digest),
            scopes=(repository_scope(repository, "delete"),),
            context=context,
        )
        self._cache.discard(("manifest", repository, digest))
        if not 200 <= response.status < 300:
            raise self._failure(response.status, response.body, context)

    # Blobs

    def get_blob(self, repository: str, digest: str, *, max_bytes: int) -> bytes:
        """A whole blob, verified against its digest; TooLarge beyond max_bytes (nothing past it is read)."""
        validate_repository(repository)
        validate_digest(digest)
        context = f"blob {self._name(repository, digest)}"
        cached = self._cache.get(("blob", repository, digest))
        if isinstance(cached, bytes):
            if len(cached) > max_bytes:
                raise TooLarge(f"{context}: {len(cached)} bytes is more than the {max_bytes} allowed")
            return cached
        response = self._request(
            "GET",
            self._blob_url(repository, digest),
            scopes=(repository_scope(repository, "pull"),),
            context=context,
            max_body=max_bytes,
        )
        if response.status != 200:
            raise self._failure(response.status, response.body, context)
        actual = _digest_of(response.body, _algorithm(digest))
        if actual != digest:
            raise DigestMismatch(f"{context}: the content served has digest {actual}")
        if len(response.body) <= CACHEABLE_BLOB_BYTES:
            self._cache.put(("blob", repository, digest), response.body, len(response.body))
        return response.body

    @contextmanager
    def open_blob(self, repository: str, digest: str) -> Iterator[Iterator[bytes]]:
        """Stream a blob in fixed-size chunks; the iterator raises DigestMismatch at the end on a mismatch."""
        validate_repository(repository)
        validate_digest(digest)
        context = f"blob {self._name(repository, digest)}"
        streamed = self._open(
            self._blob_url(repository, digest), scopes=(repository_scope(repository, "pull"),), context=context
        )
        with streamed:
            if streamed.status != 200:
                raise self._failure(streamed.status, streamed.error_body(), context)
            yield _verified_chunks(streamed.chunks(), digest, context)

    def head_blob(self, repository: str, digest: str) -> int | None:
        """The blob's size in this repository, or None on 404."""
        validate_repository(repository)
        validate_digest(digest)
        context = f"blob {self._name(repository, digest)}"
        response = self._request(
            "HEAD",
            self._blob_url(repository, digest),
            scopes=(repository_scope(repository, "pull"),),
            context=context,
        )
        if response.status == 404:
            return None
        if response.status != 200:
            raise self._failure(response.status, response.body, context)
        size = _content_length(response.headers)
        if size is None:
            raise ProtocolError(f"{context}: HEAD answered 200 without a usable Content-Length")
        announced = response.headers.get("Docker-Content-Digest")
        if announced is not None and _announced_digest(announced, context) != digest:
            raise DigestMismatch(f"{context}: the registry announces digest {announced} for it")
        return size

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Mount a blob from another repository of this registry: True when mounted (201), False otherwise."""
        validate_repository(repository)
        validate_repository(from_repository)
        validate_digest(digest)
        context = f"mount of blob {self._name(repository, digest)} from {from_repository}"
        query = urlencode({"mount": digest, "from": from_repository})
        response = self._request(
            "POST",
            f"{self.base_url}/v2/{repository}/blobs/uploads/?{query}",
            scopes=(repository_scope(repository, "pull", "push"), repository_scope(from_repository, "pull")),
            context=context,
            body=b"",
        )
        if response.status == 201:
            return True
        if response.status == 202:
            self._cancel_upload(response, context)
        else:
            LOG.info("%s: not mounted (HTTP %d)", context, response.status)
        return False

    def upload_blob(
        self, repository: str, digest: str, chunks: Iterable[bytes], size: int | None = None
    ) -> None:
        """Upload a blob: one PUT when `size` is known, else chunked PATCHes; the registry verifies the digest.

        A streamed body cannot be re-sent: a transient failure while sending it raises TransientRegistryError
        and the caller retries with a fresh iterator. Blobs of at most UPLOAD_CHUNK_BYTES are buffered and
        so retried here.
        """
        validate_repository(repository)
        validate_digest(digest)
        if size is not None and size < 0:
            raise ValueError(f"upload of blob {self._name(repository, digest)}: size {size} is negative")
        context = f"upload of blob {self._name(repository, digest)}"
        scopes = (repository_scope(repository, "pull", "push"),)
        location = self._start_upload(repository, scopes, context)
        try:
            if size is None:
                finished = self._upload_chunked(location, digest, chunks, scopes, context)
            elif size <= UPLOAD_CHUNK_BYTES:
                body = b"".join(_exactly(chunks, size, context))
                finished = self._request(
                    "PUT",
                    _with_query(location, digest=digest),
                    scopes=scopes,
                    context=context,
                    headers={"Content-Type": "application/octet-stream"},
                    body=body,
                )
            else:
                finished = self._send_stream(
                    "PUT",
                    _with_query(location, digest=digest),
                    scopes=scopes,
                    context=context,
                    headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                    chunks=_exactly(chunks, size, context),
                )
        except BaseException:
            self._cancel_location(location, scopes, context)
            raise
        if finished.status != 201:
            raise self._failure(finished.status, finished.body, context)
        announced = finished.headers.get("Docker-Content-Digest")
        if announced is not None and _announced_digest(announced, context) != digest:
            raise DigestMismatch(f"{context}: the registry stored it as {announced}")

    # Listings

    def list_tags(self, repository: str, *, page_size: int | None = None) -> Iterator[str]:
        """Every tag of a repository, following `Link: <…>; rel="next"` pagination."""
        validate_repository(repository)
        url = f"{self.base_url}/v2/{repository}/tags/list" + _page_query(page_size)
        scopes = (repository_scope(repository, "pull"),)
        return self._paginate(url, "tags", scopes, f"tags of {self.host}/{repository}")

    def catalog(self, *, page_size: int | None = None) -> Iterator[str]:
        """Every repository of the registry, following `Link` pagination."""
        url = f"{self.base_url}/v2/_catalog" + _page_query(page_size)
        return self._paginate(url, "repositories", (CATALOG_SCOPE,), f"catalog of {self.host}")

    def referrers(
        self, repository: str, digest: str, *, artifact_type: str | None = None
    ) -> tuple[Referrer, ...] | None:
        """Every referrer of `digest` the referrers API lists (`GET /v2/<name>/referrers/<digest>`, following `Link`
        pagination), at most MAX_REFERRERS; None when the registry does not offer the API (404 on the first page;
        distribution 2.8, for one). With `artifact_type`, only those: the registry's filter when it says it applied
        it (`OCI-Filters-Applied`), ours otherwise."""
        from importer.core.referrers import MAX_REFERRERS, referrers_in_index

        validate_repository(repository)
        validate_digest(digest)
        context = f"referrers of {self._name(repository, digest)}"
        url = f"{self.base_url}/v2/{repository}/referrers/{digest}"
        if artifact_type is not None:
            url = _with_query(url, artifactType=artifact_type)
        found: dict[str, Referrer] = {}
        pages = self._pages(url, (repository_scope(repository, "pull"),), context, accept=OCI_INDEX,
                            max_body=MAX_MANIFEST_BYTES, absent=True)
        for response in pages:
            if response.status == 404:
                return None
            listed = referrers_in_index(response.body)
            if not listed and not _is_index_document(response.body):
                raise ProtocolError(f"{context}: the registry's answer is not an OCI image index")
            for referrer in listed:
                if artifact_type is None or referrer.artifact_type == artifact_type:
                    found.setdefault(referrer.digest, referrer)
            if len(found) > MAX_REFERRERS:
                raise TooLarge(f"{context}: more than the {MAX_REFERRERS} referrers one manifest may have")
        return tuple(found.values())

    # Probes (importer.ports.probes.ProbesRegistry, for `doctor`: they write nothing)

    def check_api(self) -> None:
        """`GET /v2/`, authenticating as the registry asks; returns when it answers 200."""
        context = f"API check of {self.host}"
        response = self._request("GET", f"{self.base_url}/v2/", scopes=(), context=context,
                                 headers={"Accept": "application/json"}, max_body=64 * 1024)
        if response.status != 200:
            raise self._failure(response.status, response.body, context)

    def probe_push(self, repository: str) -> bool:
        """Open a blob upload session in `repository` and cancel it at once; True when the cancel was accepted."""
        validate_repository(repository)
        context = f"push probe of {self.host}/{repository}"
        scopes = (repository_scope(repository, "pull", "push"),)
        location = self._start_upload(repository, scopes, context)
        try:
            cancelled = self._request("DELETE", location, scopes=scopes, context=context)
        except RegistryError as problem:
            LOG.info("%s: cancelling upload session %s failed: %s", context, redact_url(location), problem)
            return False
        return 200 <= cancelled.status < 300

    # Plumbing

    def _name(self, repository: str, reference: str) -> str:
        separator = "@" if is_digest(reference) else ":"
        return f"{self.host}/{repository}{separator}{reference}"

    def _manifest_url(self, repository: str, reference: str) -> str:
        return f"{self.base_url}/v2/{repository}/manifests/{reference}"

    def _blob_url(self, repository: str, digest: str) -> str:
        return f"{self.base_url}/v2/{repository}/blobs/{digest}"

    def _authorization(self, url: str, scopes: Scopes, context: str) -> str | None:
        if _origin(url) != _origin(self.base_url):
            return None  # credentials only go to the registry itself (and the realm, from auth.py)
        return self._auth.authorization(scopes, context)

    def _request(
        self,
        method: str,
        url: str,
        *,
        scopes: Scopes,
        context: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        max_body: int = MAX_LIST_BYTES,
    ) -> Response:
        for attempt in (1, 2):
            authorization = self._authorization(url, scopes, context)
            request_headers = dict(headers or {})
            if authorization:
                request_headers["Authorization"] = authorization
            response = self.http.request(
                method, url, context=context, headers=request_headers, body=body, max_body=max_body
            )
            if response.status != 401 or attempt == 2 or _origin(response.url) != _origin(self.base_url):
                return response
            challenge = response.headers.get("WWW-Authenticate")
            if not self._auth.answer_challenge(challenge, scopes, context, sent=authorization):
                return response
        raise AssertionError("unreachable")

    def _open(self, url: str, *, scopes: Scopes, context: str) -> StreamedResponse:
        for attempt in (1, 2):
            authorization = self._authorization(url, scopes, context)
            headers = {"Authorization": authorization} if authorization else {}
            streamed = self.http.open("GET", url, context=context, headers=headers)
            if streamed.status != 401 or attempt == 2 or _origin(streamed.url) != _origin(self.base_url):
                return streamed
            try:
                challenge = streamed.headers.get("WWW-Authenticate")
                retry = self._auth.answer_challenge(challenge, scopes, context, sent=authorization)
            except BaseException:
                streamed.close()
                raise
            if not retry:
                return streamed
            streamed.close()
        raise AssertionError("unreachable")

    def _send_stream(
        self, method: str, url: str, *, scopes: Scopes, context: str, headers: Mapping[str, str],
        chunks: Iterable[bytes],
    ) -> Response:
        authorization = self._authorization(url, scopes, context)
        request_headers = dict(headers)
        if authorization:
            request_headers["Authorization"] = authorization
        return self.http.send_stream(method, url, context=context, headers=request_headers, chunks=chunks)

    def _upload_chunked(
        self, location: str, digest: str, chunks: Iterable[bytes], scopes: Scopes, context: str
    ) -> Response:
        offset = 0
        for block in _blocks(chunks, UPLOAD_CHUNK_BYTES):
            response = self._request(
                "PATCH",
                location,
                scopes=scopes,
                context=context,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{offset + len(block) - 1}",
                },
                body=block,
            )
            if response.status != 202:
                raise self._failure(response.status, response.body, context)
            location = self._location(response, context)
            offset += len(block)
        return self._request("PUT", _with_query(location, digest=digest), scopes=scopes, context=context, body=b"")

    def _location(self, response: Response, context: str) -> str:
        location = response.headers.get("Location")
        if not location:
            raise ProtocolError(f"{context}: HTTP {response.status} without a Location header")
        url = urljoin(response.url, location)
        self.http.check_url(url, context)
        return url

    def _cancel_upload(self, response: Response, context: str) -> None:
        try:
            location = self._location(response, context)
        except RegistryError as problem:
            LOG.info("%s: cannot cancel the upload session: %s", context, problem)
            return
        self._cancel_location(location, (), context)

    def _cancel_location(self, location: str, scopes: Scopes, context: str) -> None:
        """Best effort: an abandoned session only costs the registry until it purges uploads."""
        try:
            self._request("DELETE", location, scopes=scopes, context=context)
        except RegistryError as problem:
            LOG.info("%s: cancelling upload session %s failed: %s", context, redact_url(location), problem)

    def _start_upload(self, repository: str, scopes: Scopes, context: str) -> str:
        """Open a blob upload session in `repository`; returns its location."""
        started = self._request(
            "POST", f"{self.base_url}/v2/{repository}/blobs/uploads/", scopes=scopes, context=context, body=b""
        )
        if started.status != 202:
            raise self._failure(started.status, started.body, context)
        return self._location(started, context)

    def _paginate(self, url: str, key: str, scopes: Scopes, context: str) -> Iterator[str]:
        for response in self._pages(url, scopes, context):
            yield from _string_list(response.body, key, context)

    def _pages(
        self,
        url: str,
        scopes: Scopes,
        context: str,
        *,
        accept: str = "application/json",
        max_body: int = MAX_LIST_BYTES,
        failure: Callable[[Response, str], RegistryError] | None = None,
        absent: bool = False,
    ) -> Iterator[Response]:
        """Every page of a listing, following `Link: <…>; rel="next"`; a link back to a page already read is a
        ProtocolError, any status but 200 the `failure` for it. With `absent`, a 404 on the first page is yielded
        (and ends the listing) instead: the listing itself does not exist there."""
        seen: set[str] = set()
        next_url: str | None = url
        while next_url is not None:
            if next_url in seen:
                raise ProtocolError(f"{context}: pagination leads back to {redact_url(next_url)}")
            seen.add(next_url)
            response = self._request(
                "GET", next_url, scopes=scopes, context=context, headers={"Accept": accept}, max_body=max_body
            )
            if absent and response.status == 404 and next_url == url:
                yield response
                return
            if response.status != 200:
                raise failure(response, context) if failure else self._failure(response.status, response.body, context)
            yield response
            next_url = _next_link(response.headers.get("Link"), response.url, context)

    def _failure(self, status: int, body: bytes, context: str) -> RegistryError:
        """The exception for an unexpected status, with the registry's own error codes when it sent some."""
        codes, detail, readable = error_detail(body)
        error = self._failure_for(status, codes, detail, readable, context)
        error.codes = codes
        return error

    def _failure_for(
        self, status: int, codes: frozenset[str], detail: str, readable: bool, context: str
    ) -> RegistryError:
        if status == 401:
            username = self._auth.username
            who = f" as user {username!r}" if username else " (no credentials configured)"
            return Unauthorized(f"{context}: authentication failed{who} (HTTP 401{detail})")
        if status == 403:
            return Unauthorized(f"{context}: access denied (HTTP 403{detail})")
        if status == 404:
            return NotFound(f"{context}: not found (HTTP 404{detail})")
        if status == 413:
            return TooLarge(f"{context}: the registry refuses the size (HTTP 413{detail})")
        if status == 400 and "DIGEST_INVALID" in codes:
            return DigestMismatch(f"{context}: the registry computed a different digest (HTTP 400{detail})")
        if status == 429 or status >= 500:
            return TransientRegistryError(f"{context}: HTTP {status}{detail}")
        if 400 <= status < 500 and readable:
            return RegistryError(f"{context}: HTTP {status}{detail}")
        return ProtocolError(f"{context}: unexpected HTTP {status}{detail}")


class _ImmutableCache:
    """LRU of content addressed by digest, bounded by entries and bytes; thread-safe."""

    def __init__(self, *, max_entries: int, max_bytes: int) -> None:
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, str, str], tuple[object, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str]) -> object | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: tuple[str, str, str], value: object, size: int) -> None:
        if self._max_entries <= 0 or size > self._max_bytes:
            return
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._bytes -= previous[1]
            self._entries[key] = (value, size)
            self._bytes += size
            while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
                _, (_, evicted_size) = self._entries.popitem(last=False)
                self._bytes -= evicted_size

    def discard(self, key: tuple[str, str, str]) -> None:
        with self._lock:
            entry = self._entries.pop(key, None)
            if entry is not None:
                self._bytes -= entry[1]


def _check_reference(repository: str, reference: str) -> bool:
    """Validate both; True when the reference is a digest."""
    validate_repository(repository)
    if is_digest(reference):
        validate_digest(reference)
        return True
    validate_tag(reference)
    return False


def _algorithm(digest: str) -> str:
    return digest.partition(":")[0]


def _digest_of(data: bytes, algorithm: str) -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def _announced_digest(value: str, context: str) -> str:
    value = value.strip()
    try:
        return validate_digest(value)
    except ReferenceError:
        raise ProtocolError(f"{context}: malformed Docker-Content-Digest header {value[:200]!r}") from None


def _verified_manifest_digest(raw: bytes, requested: str | None, announced: str | None, context: str) -> str:
    if announced is not None:
        announced = _announced_digest(announced, context)
    if requested is not None:
        actual = _digest_of(raw, _algorithm(requested))
        if actual != requested:
            raise DigestMismatch(f"{context}: the content served has digest {actual}")
        if announced is not None and announced != requested:
            raise DigestMismatch(f"{context}: the registry announces digest {announced} for it")
        return requested
    computed = _digest_of(raw, "sha256")
    if announced is not None and _digest_of(raw, _algorithm(announced)) != announced:
        raise DigestMismatch(f"{context}: the content has digest {computed}, the registry announces {announced}")
    return computed


def _manifest_media_type(content_type: str | None, raw: bytes, context: str) -> str:
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared not in _GENERIC_CONTENT_TYPES:
        return declared
    try:
        document = load_bounded_json(raw)
    except ValueError as error:
        raise ProtocolError(f"{context}: no manifest Content-Type and the body is not JSON ({error})") from None
    if isinstance(document, dict):
        media_type = document.get("mediaType")
        if isinstance(media_type, str) and media_type:
            return media_type
        if "manifests" in document:
            return OCI_INDEX
        if "config" in document or "layers" in document:
            return OCI_MANIFEST
    raise ProtocolError(f"{context}: neither Content-Type nor the manifest says what media type it is")


def _content_length(headers: Mapping[str, str]) -> int | None:
    value = (headers.get("Content-Length") or "").strip()
    return int(value) if value.isdigit() else None


def _verified_chunks(chunks: Iterator[bytes], digest: str, context: str) -> Iterator[bytes]:
    hasher = hashlib.new(_algorithm(digest))
    for chunk in chunks:
        hasher.update(chunk)
        yield chunk
    actual = f"{_algorithm(digest)}:{hasher.hexdigest()}"
    if actual != digest:
        raise DigestMismatch(f"{context}: the content streamed has digest {actual}")


def _exactly(chunks: Iterable[bytes], size: int, context: str) -> Iterator[bytes]:
    """Pass chunks through, raising ValueError if they do not add up to `size` bytes."""
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > size:
            raise ValueError(f"{context}: the chunks hold more than the {size} bytes announced")
        if chunk:
            yield bytes(chunk)
    if total != size:
        raise ValueError(f"{context}: the chunks hold {total} bytes, not the {size} bytes announced")


def _blocks(chunks: Iterable[bytes], block_size: int) -> Iterator[bytes]:
    """Regroup chunks into blocks of exactly block_size bytes (the last one may be shorter)."""
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= block_size:
            yield bytes(buffer[:block_size])
            del buffer[:block_size]
    if buffer:
        yield bytes(buffer)


def _with_query(url: str, **params: str) -> str:
    separator = "&" if urlsplit(url).query else "?"
    return url + separator + urlencode(params)


def _page_query(page_size: int | None) -> str:
    if page_size is None:
        return ""
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1, got {page_size}")
    return f"?n={page_size}"


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def _is_index_document(body: bytes) -> bool:
    """True when `body` is an index, perhaps an empty one: a JSON object with a `manifests` list, or with
    `"manifests": null` and `schemaVersion` 2 (how olareg, written in Go, answers for a digest nothing refers to)."""
    try:
        document = load_bounded_json(body)
    except ValueError:
        return False
    if not isinstance(document, dict):
        return False
    manifests = document.get("manifests")
    return isinstance(manifests, list) or (manifests is None and document.get("schemaVersion") == 2)


def _next_link(header: str | None, base_url: str, context: str) -> str | None:
    if not header:
        return None
    links = _NEXT_LINK.findall(header)
    if not links:
        raise ProtocolError(f"{context}: unreadable Link header {header[:200]!r}")
    for target, params in links:
        if _REL_NEXT.search(params):
            return urljoin(base_url, target)
    return None


def _string_list(body: bytes, key: str, context: str) -> list[str]:
    try:
        document = load_bounded_json(body)
    except ValueError:
        raise ProtocolError(f"{context}: the answer is not JSON") from None
    items = document.get(key) if isinstance(document, dict) else None
    if items is None and isinstance(document, dict):
        return []  # distribution sends "tags": null for a repository without tags
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ProtocolError(f"{context}: expected a JSON object with a list of strings under {key!r}")
    return items
