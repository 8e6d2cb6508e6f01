"""Optional abilities of a registry beyond the OCI API's core (Azure Container Registry has them; the OCI 1.1
referrers API too), and server-side import.

    if isinstance(registry, DeletesTags):       # checked by ability, never by class
        registry.delete_tag("team/app", "1.0")

Only remediation and the sweep need these, so they load with them, not at cold start.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from importer.core.referrers import Referrer
from importer.ports.registry import Registry


@dataclass(frozen=True, slots=True)
class ManifestProperties:
    """ACR's metadata about one manifest (`/acr/v1/{repo}/_manifests/{digest}`); the `can_*` flags are its locks."""

    repository: str
    digest: str
    size: int | None
    created_on: str | None  # ISO 8601, as ACR sends it
    last_updated_on: str | None
    architecture: str | None
    os: str | None
    tags: tuple[str, ...]
    can_read: bool
    can_write: bool
    can_delete: bool
    can_list: bool


@dataclass(frozen=True, slots=True)
class TagProperties:
    """ACR's metadata about one tag, as `/acr/v1/{repo}/_tags` lists it."""

    repository: str
    name: str
    digest: str
    created_on: str | None
    last_updated_on: str | None
    can_read: bool
    can_write: bool
    can_delete: bool
    can_list: bool



@runtime_checkable
class DeletesTags(Protocol):
    """A registry that removes one tag and keeps its manifest (the OCI API can only delete a manifest)."""

    def delete_tag(self, repository: str, tag: str) -> None:
        """Remove a tag (the manifest stays); NotFound when the tag does not exist."""
        ...


@runtime_checkable
class LocksManifests(Protocol):
    """A registry that can forbid pulls, overwrites and deletes of one manifest (ACR's changeable attributes)."""

    def lock_manifest(
        self, repository: str, digest: str, *, read: bool, write: bool, delete: bool
    ) -> ManifestProperties:
        """Set whether a manifest may be pulled, overwritten and deleted; returns its properties afterwards."""
        ...

    def manifest_properties(self, repository: str, digest: str) -> ManifestProperties:
        """The registry's properties of a manifest: size, platform, tags and its locks."""
        ...


@runtime_checkable
class ListsTagDigests(Protocol):
    """A registry whose listings give each tag's digest (ACR `/acr/v1`): a sweep then needs no HEAD per tag."""

    def list_repository_names(self, *, page_size: int | None = None) -> Iterator[str]:
        """Every repository, following pagination."""
        ...

    def list_tag_properties(
        self,
        repository: str,
        *,
        page_size: int | None = None,
        order_by: str | None = None,
        digest: str | None = None,
    ) -> Iterator[TagProperties]:
        """Every tag of a repository with its digest and properties, following pagination."""
        ...


# The built-in Azure role that lets an identity run ARM importImage into a registry (and read it, so the operation can
# be followed); needed on the guarded registry and on every source named by resource id. One source for the adapter's
# error messages and `doctor`'s grant commands.
IMPORT_ROLE = "Container Registry Data Importer and Data Reader"
IMPORT_ROLE_ID = "577a9874-89fd-4f24-9dbd-b5034d0ad23a"


@runtime_checkable
class ServerImport(Protocol):
    """An importer that makes a registry copy from an upstream itself (ACR `importImage`): no bytes pass through us."""

    def serves(self, registry: Registry) -> bool:
        """True when this importer writes into `registry`."""
        ...

    def import_digests(
        self,
        *,
        source_registry: str,
        source_repository: str,
        digests: Sequence[str],
        target_repository: str,
        username: str | None = None,
        password: str | None = None,
    ) -> object:
        """Import each digest from the source into the target repository, by digest, waiting for each to finish."""
        ...


@runtime_checkable
class ListsReferrers(Protocol):
    """A registry client that can ask for the referrers of a manifest (the OCI distribution 1.1 referrers API)."""

    def referrers(self, repository: str, digest: str, *, artifact_type: str | None = None) -> tuple[Referrer, ...] | None:
        """Every referrer the referrers API lists for `digest` (following `Link` pagination, at most MAX_REFERRERS,
        only those of `artifact_type` when given); None when the registry does not offer the API (HTTP 404), so the
        referrers tag schema (`<algorithm>-<hex>`) is used instead."""
        ...
