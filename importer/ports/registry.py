"""The Registry port: what Platform Guard needs from a container registry, and the errors it may raise.

    from importer.ports.registry import Registry, NotFound
    fetched = registry.get_manifest("team/app", "1.0")    # FetchedManifest(raw, media_type, digest), verified
    size = registry.head_blob("team/app", digest)          # None when absent

Adapters: `importer.adapters.registry.oci.OciRegistry` (any OCI distribution registry over HTTP) and the ACR one.
Every error is a RegistryError whose message names the registry host, the repository and the reference;
`transient` tells the caller whether trying again later may help (429, 5xx, timeouts after the adapter's
own bounded retries). Everything else is permanent.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from importer.core.manifests import FetchedManifest
from importer.core.selection import CopyError

MAX_MANIFEST_BYTES = 4 * 1024 * 1024

__all__ = [
    "CopyError",
    "Credentials",
    "DigestMismatch",
    "FetchedManifest",
    "InsecureTransportRefused",
    "MAX_MANIFEST_BYTES",
    "ManifestHead",
    "NotFound",
    "ProtocolError",
    "Registry",
    "RegistryError",
    "RegistryReader",
    "TooLarge",
    "TransientRegistryError",
    "Unauthorized",
]


class RegistryError(Exception):
    """A registry operation failed; the message names the registry host, repository and reference."""

    transient: bool = False
    codes: frozenset[str] = frozenset()  # the registry's own error codes (OCI error document), when it sent some


class NotFound(RegistryError):
    """The repository, manifest or blob does not exist (404)."""


class Unauthorized(RegistryError):
    """The registry refused our credentials or lack of them (401 after authenticating, or 403)."""


class DigestMismatch(RegistryError):
    """Content does not match the digest it was asked for or announced with."""


class TooLarge(RegistryError):
    """Content is larger than the cap set for it; nothing past the cap was read."""


class InsecureTransportRefused(RegistryError):
    """Plain http to a host that is not loopback, without allow_http."""


class TransientRegistryError(RegistryError):
    """429, 5xx, a timeout or a broken connection that persisted through the bounded retries."""

    transient = True


class ProtocolError(RegistryError):
    """The registry answered something that makes no sense (bad headers, unreadable JSON, broken pagination)."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """A username and password (or token) for a registry; the password is left out of repr."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ManifestHead:
    """What a HEAD on a manifest tells: digest, media type and size in bytes."""

    digest: str
    media_type: str
    size: int


class RegistryReader(Protocol):
    """The reads inspection makes (importer.app.inspection): a manifest and a blob, each verified by the reader. Every
    Registry is one; so is a plan read from memory (importer.app.copy_policy), which has nothing else to offer."""

    def get_manifest(self, repository: str, reference: str) -> FetchedManifest:
        """Fetch a manifest by tag or digest, verify its digest, refuse more than MAX_MANIFEST_BYTES."""
        ...

    def get_blob(self, repository: str, digest: str, *, max_bytes: int) -> bytes:
        """A whole blob, verified; TooLarge when it exceeds max_bytes."""
        ...


@runtime_checkable
class Registry(Protocol):
    """One registry (host); every method is safe to call from many threads at once."""

    host: str

    def get_manifest(self, repository: str, reference: str) -> FetchedManifest:
        """Fetch a manifest by tag or digest, verify its digest, refuse more than MAX_MANIFEST_BYTES."""
        ...

    def head_manifest(self, repository: str, reference: str) -> ManifestHead | None:
        """Digest, media type and size of a manifest, or None when it does not exist."""
        ...

    def get_blob(self, repository: str, digest: str, *, max_bytes: int) -> bytes:
        """A whole blob, verified; TooLarge when it exceeds max_bytes."""
        ...

    def open_blob(self, repository: str, digest: str) -> AbstractContextManager[Iterator[bytes]]:
        """Stream a blob in fixed-size chunks; the iterator raises DigestMismatch at the end if it does not match."""
        ...

    def head_blob(self, repository: str, digest: str) -> int | None:
        """The blob's size, or None when the repository does not have it."""
        ...

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Mount a blob from another repository of the same registry; False when the registry did not."""
        ...

    def upload_blob(
        self, repository: str, digest: str, chunks: Iterable[bytes], size: int | None = None
    ) -> None:
        """Stream a blob in; the registry verifies it against `digest`."""
        ...

    def put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> str:
        """Store a manifest under a tag or its digest; returns its digest."""
        ...

    def delete_manifest(self, repository: str, digest: str) -> None:
        """Delete a manifest (and, on distribution, every tag pointing at it)."""
        ...

    def list_tags(self, repository: str, *, page_size: int | None = None) -> Iterator[str]:
        """Every tag of a repository, following pagination."""
        ...

    def catalog(self, *, page_size: int | None = None) -> Iterator[str]:
        """Every repository of the registry, following pagination."""
        ...

    def close(self) -> None:
        """Release pooled connections."""
        ...
