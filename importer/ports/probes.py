"""What `doctor` (importer/app/doctor.py) needs beyond the ports the work uses: probes that change nothing, the
caller's own Azure identity and permissions, and whether an HTTP endpoint answers.

    if isinstance(registry, ProbesRegistry):
        registry.check_api()                      # GET /v2/ with the client's credentials
        registry.probe_push("team/app")           # an upload session opened and cancelled: nothing is written
    if isinstance(queue, PeeksQueue):
        queue.peek()                              # look at the next message without taking it
    permissions.permissions(registry_id)          # ARM: what the caller may do on a resource (actions, notActions)

Only `doctor` loads this module: the pipeline never probes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class Unreachable(Exception):
    """An endpoint did not answer: refused connection, unknown name, TLS failure, timeout, or 5xx/429 that persisted."""


class ProbeFailed(Exception):
    """An endpoint answered, but not as expected (an unexpected status, an unreadable body); the message says what."""


class PermissionsRefused(ProbeFailed):
    """ARM refused to list the caller's own permissions on a resource (HTTP 401 or 403)."""


class IdentityUnavailable(Exception):
    """No Azure token could be had for the identity (no managed identity here, no developer login, a wrong client id)."""


@runtime_checkable
class ProbesRegistry(Protocol):
    """A registry client with the two probes only `doctor` uses."""

    def check_api(self) -> None:
        """`GET /v2/` with the client's credentials (authenticating as the registry asks): returns when the registry
        answers 200; Unauthorized when it refuses the credentials, TransientRegistryError when it does not answer."""
        ...

    def probe_push(self, repository: str) -> bool:
        """Open a blob upload session in `repository` (`POST /v2/<name>/blobs/uploads/`) and cancel it at once
        (`DELETE` on the session's location): the push right is proven and no blob, manifest or tag is written.
        True when the registry accepted the cancel; False when it did not (the empty session is then left to the
        registry's purge of abandoned uploads). Unauthorized when the push is refused."""
        ...


@runtime_checkable
class PeeksQueue(Protocol):
    """An event queue that can be looked at without taking a message (Azure Storage Queues' peek)."""

    def peek(self, *, limit: int = 1) -> int:
        """Look at up to `limit` waiting messages of the queue and of its dead letters without receiving them (their
        visibility and dequeue counts do not change); how many of the queue's own there were."""
        ...


@dataclass(frozen=True, slots=True)
class Permission:
    """One permission set the caller holds on a resource, as ARM lists it (one per role assignment that applies)."""

    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()


class ReadsPermissions(Protocol):
    """ARM's `Permissions - List For Resource`: what the caller may do on one resource."""

    def permissions(self, resource_id: str) -> tuple[Permission, ...]:
        """Every permission set of the caller on `resource_id` (all pages); PermissionsRefused when ARM refuses to
        tell, Unreachable when it does not answer, IdentityUnavailable when there is no token to ask with."""
        ...


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the Azure credential is, read from the claims of a token it issued (never the token itself)."""

    object_id: str | None  # `oid`: the principal id role assignments name
    principal_type: str | None  # "ServicePrincipal" (apps and managed identities) or "User"; None when unknown
    client_id: str | None  # `appid`/`azp` of an application or managed identity
    tenant_id: str | None


class KnowsIdentity(Protocol):
    """The Azure identity the app runs as."""

    def identity(self) -> Identity:
        """Get a token and read who it names; IdentityUnavailable when no token can be had."""
        ...


class AnswersHttp(Protocol):
    """Whether an HTTP endpoint answers, without sending it anything it would act on."""

    def status(self, url: str, *, method: str, headers: Mapping[str, str] | None = None) -> int:
        """Send one bodiless request; the status of the answer (any status below 500 but 429 counts as an
        answer). Unreachable when nothing answers."""
        ...
