"""Server-side re-import into Azure Container Registry through ARM `importImage`: no layer bytes pass through us.

    importer = AcrImporter(subscription_id=sub, resource_group="rg", registry_name="myacr",
                           credential=DefaultAzureCredential(),
                           login_server="myacr-abc123.azurecr.io",     # default: myacr.azurecr.io
                           source_resource_ids={"base.azurecr.io": "/subscriptions/…/registries/base"})
    importer.serves(registry)                       # True for the registry client of myacr's login server
    importer.import_digests(source_registry="docker.io", source_repository="library/nginx",
                            digests=plan.imports, target_repository="dockerhub/library/nginx")

The call is `POST …/registries/{name}/importImage` made by azure-mgmt-containerregistry (imported on first use);
the SDK's poller follows the long-running operation, bounded by `timeout` and by the time limit of the work in hand
(importer.ports.deadlines: an event's), whichever ends first (past it: a transient AcrImportError).
408/429/5xx are retried by the SDK's retry policy, configured from the `retry` RetryPolicy
(importer.core.retry.ACR_IMPORT_RETRY by default), before they become transient errors. What to import is planned
by `importer.core.selection.plan_import`; how remediation uses it is in docs/design.md, "Remediation". Source
registry secrets are scrubbed from every message this module raises or logs.

The source: `source.registryUri` (the host, with `credentials` when a username and password are given), except for
the registries named by ARM resource id — the guarded registry itself (a same-registry import) and the hosts of
`source_resource_ids` (private ACRs in the same tenant) — which go as `source.resourceId`, never with credentials:
ACR reads them with the caller's Microsoft Entra identity.

Authorisation. The identity needs the built-in role "Container Registry Data Importer and Data Reader"
(IMPORT_ROLE_ID) on the guarded registry, and on a source registry named by resource id. ARM answers an import with
202 and a URL to poll; a 401 or 403 — on the import or on that poll — raises AcrImportUnauthorized, an
`Unauthorized` registry error (tried again while role assignments propagate: docs/design.md "Errors and retries")
whose message names ARM's refusal and the role, and says when the import itself may have run (a refused poll).
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from importer.adapters.retrying import azure_retry_options
from importer.core.bounded_json import loads as load_bounded_json
from importer.core.reference import (
    DOCKER_HUB,
    DOCKER_HUB_ALIASES,
    DOCKER_HUB_OFFICIAL_PREFIX,
    ReferenceError,
    is_loopback_host,
    validate_digest,
    validate_host,
    validate_repository,
    validate_tag,
)
from importer.core.retry import ACR_IMPORT_RETRY, RetryPolicy
from importer.ports.abilities import IMPORT_ROLE, IMPORT_ROLE_ID
from importer.ports.deadlines import current_time_limit
from importer.ports.registry import Registry, RegistryError, Unauthorized

__all__ = [
    "AcrImportError",
    "AcrImportUnauthorized",
    "AcrImporter",
    "DEFAULT_ARM_ENDPOINT",
    "IMPORT_MODES",
    "IMPORT_ROLE",
    "IMPORT_ROLE_ID",
    "ImportResult",
]

DEFAULT_ARM_ENDPOINT = "https://management.azure.com"
IMPORT_MODES = ("Force", "NoForce")
# Usernames shorter than this are not scrubbed from messages: they would mangle ordinary words.
MIN_REDACTED_USERNAME = 4
REDACTED = "***"

# ARM error codes of a failed operation that may pass when the operation is tried again later.
TRANSIENT_ERROR_CODES = frozenset(
    code.lower()
    for code in (
        "InternalServerError",
        "ServiceUnavailable",
        "TooManyRequests",
        "Throttled",
        "GatewayTimeout",
        "RequestTimeout",
        "OperationTimedOut",
        "Timeout",
    )
)
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# ARM's codes for a caller without the permission (also seen in the error of a failed operation).
AUTHORIZATION_ERROR_CODES = frozenset(code.lower() for code in ("AuthorizationFailed", "LinkedAuthorizationFailed"))
AUTHORIZATION_STATUSES = frozenset({401, 403})

_REGISTRY_ID = re.compile(
    r"^/subscriptions/[^/\s]+/resourceGroups/[^/\s]+/providers/Microsoft\.ContainerRegistry/registries/[A-Za-z0-9]+$",
    re.IGNORECASE,
)

_LOG = logging.getLogger(__name__)


class AcrImportError(RegistryError):
    """An ACR import that did not succeed; `transient` says whether trying again later may help.

    The message names the registry, the source image and the targets, and carries ARM's error code and message
    (with the source credentials scrubbed). `code` is ARM's error code and `status` the HTTP status when known.
    """

    def __init__(self, message: str, *, transient: bool, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.code = code
        self.status = status


class AcrImportUnauthorized(AcrImportError, Unauthorized):
    """ARM refused the identity (401, 403, AuthorizationFailed) on the import or on the poll of its operation, or the
    credential gave no token: an `Unauthorized` registry error, tried again while role assignments propagate.

    The message says which request was refused and names the role the identity needs (IMPORT_ROLE) and where.
    """

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message, transient=False, code=code, status=status)


@dataclass(frozen=True, slots=True)
class ImportResult:
    """A finished import: ARM's final status, the operation it was followed through, and how long it took."""

    status: str
    source: str
    target_tags: tuple[str, ...]
    untagged_repositories: tuple[str, ...]
    operation_url: str | None
    request_id: str | None
    duration_s: float
    source_resource_id: str | None = None  # the source went as `source.resourceId` (Entra auth), not registryUri


# --- what to import (pure) ------------------------------------------------------------------------------


# --- the importer ---------------------------------------------------------------------------------------


class AcrImporter:
    """Imports images into one ACR registry through ARM, following each long-running operation to its end.

    One instance may be shared by threads; the ARM client is built on the first import and reused. `retry`
    configures the SDK's retry policy (`retries` and `retry_backoff`, when given, override its attempts - 1 and
    base_delay); `credential` is any azure-core TokenCredential.
    `login_server` is the registry's host (default `<registry_name>.azurecr.io`; a registry with a domain-name-label
    scope has `<name>-<hash>.azurecr.io`). `source_resource_ids` maps source registry hosts to their ARM resource ids:
    those sources, and this registry's own host, are imported by `source.resourceId` with no credentials.
    Plain http is accepted for a loopback `arm_endpoint` only (local contract tests).
    """

    def __init__(
        self,
        *,
        subscription_id: str,
        resource_group: str,
        registry_name: str,
        credential: object,
        login_server: str | None = None,
        source_resource_ids: Mapping[str, str] | None = None,
        arm_endpoint: str = DEFAULT_ARM_ENDPOINT,
        poll_interval: float = 2.0,
        timeout: float = 300.0,
        retry: RetryPolicy = ACR_IMPORT_RETRY,
        retries: int | None = None,
        retry_backoff: float | None = None,
    ) -> None:
        for name, value in (
            ("subscription_id", subscription_id),
            ("resource_group", resource_group),
            ("registry_name", registry_name),
        ):
            if not value or value != value.strip() or "/" in value:
                raise ValueError(f"AcrImporter: {name}={value!r} must be a non-empty name without '/' or spaces")
        if poll_interval <= 0 or timeout <= 0:
            raise ValueError(f"AcrImporter: poll_interval={poll_interval} and timeout={timeout} must be positive")
        if (retries is not None and retries < 0) or (retry_backoff is not None and retry_backoff < 0):
            raise ValueError(f"AcrImporter: retries={retries} and retry_backoff={retry_backoff} must not be negative")
        self.subscription_id = subscription_id
        self.resource_group = resource_group
        self.registry_name = registry_name
        self.login_server = _check_host(login_server or f"{registry_name}.azurecr.io", "login_server").lower()
        self.source_resource_ids = _check_resource_ids(source_resource_ids or {}, self.login_server, self.registry_id)
        self.arm_endpoint = arm_endpoint.rstrip("/")
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.retry = retry.replace(attempts=None if retries is None else retries + 1, base_delay=retry_backoff)
        self._enforce_https = _check_endpoint(self.arm_endpoint)
        self._credential = credential
        self._client: Any = None
        self._client_lock = threading.Lock()

    @property
    def registry_id(self) -> str:
        """The registry's ARM resource id."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.ContainerRegistry/registries/{self.registry_name}"
        )

    def import_image(
        self,
        *,
        source_registry: str,
        source_image: str,
        target_tags: Sequence[str] = (),
        untagged_repositories: Sequence[str] = (),
        username: str | None = None,
        password: str | None = None,
        mode: str = "Force",
    ) -> ImportResult:
        """Import `source_registry/source_image` ("repo@sha256:…" or "repo:tag") and wait for it to finish.

        `target_tags` are "repo:tag" strings to (re-)point; `untagged_repositories` get the manifest by digest
        with no tag. At least one target is needed. Raises ValueError for malformed input (before any request)
        and AcrImportError when ARM refuses or fails the import, or it does not finish within `timeout`.
        """
        registry_uri, image = _normalise_source(source_registry, source_image)
        tags = tuple(_check_target_tag(tag) for tag in target_tags)
        repositories = tuple(_check_repository(name) for name in untagged_repositories)
        if not tags and not repositories:
            raise ValueError(
                f"import of {source_registry}/{source_image}: give target_tags or untagged_repositories "
                "(ACR would otherwise invent the target name)"
            )
        if mode not in IMPORT_MODES:
            raise ValueError(f"import of {source_registry}/{source_image}: mode={mode!r}, expected Force or NoForce")
        if username is not None and not password:
            raise ValueError(f"import of {source_registry}/{source_image}: a username needs a password")
        source = f"{registry_uri}/{image}"
        where = f"ACR import of {source} into {self.registry_name} ({_describe_targets(tags, repositories)})"
        source_id = self.source_resource_ids.get(registry_uri.lower())
        if source_id is not None:  # the caller's Entra identity reads it: no username/password goes to ARM
            username = password = None
        secrets = _secrets(username, password)
        parameters = self._parameters(registry_uri, source_id, image, tags, repositories, username, password, mode)
        from azure.core.exceptions import AzureError

        started = time.monotonic()
        # The importer's own bound, or the time limit of the work in hand (an event) when that ends sooner.
        limit = current_time_limit()
        bound = self.timeout if limit is None else min(self.timeout, limit.remaining())
        if limit is not None and bound <= 0:
            raise AcrImportError(f"{where}: {limit.describe()} ran out before the import was asked for",
                                 transient=True)
        deadline = started + bound
        polling = _bounded_polling_class()(
            self.poll_interval,
            deadline=deadline,
            path_format_arguments={"endpoint": self.arm_endpoint},
            **self._call_options(),
        )
        try:
            poller = self._management_client().registries.begin_import_image(
                self.resource_group, self.registry_name, parameters, polling=polling, timeout=bound,
                **self._call_options(),
            )
            poller.wait(timeout=max(0.0, deadline - time.monotonic()))
            if not poller.done():
                raise _DeadlinePassed()
            poller.result()
            status = poller.status()
        except _DeadlinePassed:
            operation = f"operation {polling.operation_url or 'unknown'}"
            if limit is not None and bound < self.timeout:
                raise AcrImportError(f"{where}: {limit.describe()} ran out before it finished ({operation})",
                                     transient=True) from None
            raise AcrImportError(f"{where}: not finished after {self.timeout:g} s ({operation})",
                                 transient=True) from None
        except _NothingToFollow:
            raise AcrImportError(
                f"{where}: ARM accepted it (202) but named no operation to follow "
                "(no Azure-AsyncOperation or Location header)",
                transient=False,
                status=202,
            ) from None
        except AzureError as error:  # HttpResponseError, ServiceRequestError, ClientAuthenticationError, …
            raise _import_error(error, where, secrets, self._role_hint(source_id)) from None
        duration = time.monotonic() - started
        _LOG.info("%s: %s in %.1f s", where, status, duration)
        return ImportResult(
            status=status,
            source=source,
            target_tags=tags,
            untagged_repositories=repositories,
            operation_url=polling.operation_url,
            request_id=polling.request_id,
            duration_s=duration,
            source_resource_id=source_id,
        )

    def _role_hint(self, source_id: str | None) -> str:
        """What the identity needs for this import, said when ARM refuses it."""
        where = f"registry {self.registry_id}"
        if source_id is not None and source_id.lower() != self.registry_id.lower():
            where += f" and on the source registry {source_id}"
        return (f'the identity needs the role "{IMPORT_ROLE}" ({IMPORT_ROLE_ID}) on {where} '
                "(a new role assignment takes minutes to apply)")

    def serves(self, registry: Registry) -> bool:
        """True when `registry` is the client of this importer's registry (its login server)."""
        return registry.host.lower() == self.login_server

    def import_digests(
        self,
        *,
        source_registry: str,
        source_repository: str,
        digests: Sequence[str],
        target_repository: str,
        username: str | None = None,
        password: str | None = None,
    ) -> tuple[ImportResult, ...]:
        """Import each of `digests` from `source_repository` into `target_repository`, untagged, one by one.

        This is `ImportPlan.imports` carried out; the first failure stops the rest and is raised.
        """
        return tuple(
            self.import_image(
                source_registry=source_registry,
                source_image=f"{source_repository}@{digest}",
                untagged_repositories=(target_repository,),
                username=username,
                password=password,
            )
            for digest in digests
        )

    def close(self) -> None:
        """Close the ARM client's connections (a later import opens new ones)."""
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def __enter__(self) -> AcrImporter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    # -- SDK plumbing --------------------------------------------------------------------------------------

    def _management_client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                from azure.mgmt.containerregistry import ContainerRegistryManagementClient

                self._client = ContainerRegistryManagementClient(
                    self._credential,  # type: ignore[arg-type]  # any object with get_token (the azure-core protocol)
                    self.subscription_id,
                    base_url=self.arm_endpoint,
                    credential_scopes=[f"{self.arm_endpoint}/.default"],
                    polling_interval=self.poll_interval,
                    **azure_retry_options(self.retry),
                    retry_connect=self.retry.retries,
                    retry_read=self.retry.retries,
                    retry_status=self.retry.retries,
                    timeout=self.timeout,  # the retry policy's bound on one request and its retries
                    connection_timeout=min(self.timeout, 30.0),
                    read_timeout=min(self.timeout, 60.0),
                )
            return self._client

    def _call_options(self) -> dict[str, Any]:
        # The bearer token policy refuses http unless told; _check_endpoint allowed it for loopback only.
        return {} if self._enforce_https else {"enforce_https": False}

    @staticmethod
    def _parameters(
        registry_uri: str,
        resource_id: str | None,
        image: str,
        tags: tuple[str, ...],
        repositories: tuple[str, ...],
        username: str | None,
        password: str | None,
        mode: str,
    ) -> Any:
        from azure.mgmt.containerregistry.models import ImportImageParameters, ImportSource, ImportSourceCredentials

        if resource_id is not None:
            source = ImportSource(resource_id=resource_id, source_image=image)
        else:
            credentials = ImportSourceCredentials(username=username, password=password) if password else None
            source = ImportSource(registry_uri=registry_uri, source_image=image, credentials=credentials)
        return ImportImageParameters(
            source=source,
            target_tags=list(tags) or None,
            untagged_target_repositories=list(repositories) or None,
            mode=mode,
        )


class _DeadlinePassed(Exception):
    """Raised in the poller's thread (and by the caller) once the import's time bound has passed."""


class _NothingToFollow(Exception):
    """ARM answered 202 Accepted without an Azure-AsyncOperation or Location header to follow."""


@functools.cache
def _bounded_polling_class() -> type:
    """ARMPolling that stops polling once `deadline` (time.monotonic) has passed, and remembers the operation URL.

    Built on first use so that importing this module does not import azure-mgmt-core. The SDK's poller thread
    would otherwise go on polling after the caller gave up; raising from `update_status` ends that thread.
    """
    from azure.mgmt.core.polling.arm_polling import ARMPolling

    class BoundedArmPolling(ARMPolling):
        def __init__(self, interval: float, *, deadline: float, **options: Any) -> None:
            super().__init__(interval, **options)
            self.deadline = deadline
            self.operation_url: str | None = None
            self.request_id: str | None = None

        def initialize(self, client: Any, initial_response: Any, deserialization_callback: Any) -> None:
            headers = initial_response.http_response.headers
            self.operation_url = headers.get("Azure-AsyncOperation") or headers.get("Location")
            self.request_id = headers.get("x-ms-request-id")
            if initial_response.http_response.status_code == 202 and self.operation_url is None:
                # The SDK would call this a success; we cannot know that the import ever ran.
                raise _NothingToFollow()
            super().initialize(client, initial_response, deserialization_callback)

        def update_status(self) -> None:
            if time.monotonic() >= self.deadline:
                raise _DeadlinePassed()
            super().update_status()

    return BoundedArmPolling


# --- helpers --------------------------------------------------------------------------------------------


def _check_endpoint(endpoint: str) -> bool:
    """Validate the ARM endpoint; True when https must be enforced (everything but loopback http)."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"arm_endpoint {endpoint!r}: expected https://host[:port] with no path")
    if parts.scheme == "http":
        if not is_loopback_host(parts.hostname):
            raise ValueError(f"arm_endpoint {endpoint!r}: plain http is allowed for loopback addresses only")
        return False
    return True


def _check_host(host: str, name: str) -> str:
    try:
        return validate_host(host)
    except ReferenceError as error:
        raise ValueError(f"AcrImporter: {name}: {error}") from None


def _check_resource_ids(resource_ids: Mapping[str, str], login_server: str, registry_id: str) -> dict[str, str]:
    """Source host (lower-case) → registry resource id, this registry's own host included."""
    checked: dict[str, str] = {}
    for host, resource_id in resource_ids.items():
        host = _check_host(host, "source_resource_ids").lower()
        if not _REGISTRY_ID.match(resource_id):
            raise ValueError(
                f"AcrImporter: source_resource_ids[{host!r}] = {resource_id!r} is not a registry's ARM resource id "
                "(/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.ContainerRegistry/registries/<name>)"
            )
        if host == login_server and resource_id.lower() != registry_id.lower():
            raise ValueError(f"AcrImporter: source_resource_ids[{host!r}] names {resource_id}, but {host} is "
                             f"this importer's registry, {registry_id}")
        checked[host] = resource_id
    checked[login_server] = registry_id
    return checked


def _normalise_source(registry: str, image: str) -> tuple[str, str]:
    """(registryUri, sourceImage) for ARM; Docker Hub aliases become docker.io with `library/` spelled out."""
    try:
        validate_host(registry)
    except ReferenceError as error:
        raise ValueError(f"source_registry: {error}") from None
    registry_uri = DOCKER_HUB if registry.lower() in DOCKER_HUB_ALIASES else registry
    name, at, digest = image.partition("@")
    try:
        if at:
            validate_digest(digest)
        else:
            name, colon, tag = image.rpartition(":")
            if not colon:
                raise ReferenceError(f"{image!r} has neither a tag nor a digest")
            validate_tag(tag)
        validate_repository(name)
    except ReferenceError as error:
        raise ValueError(f"source_image {image!r}: expected repo:tag or repo@sha256:…: {error}") from None
    if registry_uri == DOCKER_HUB and "/" not in name:
        image = DOCKER_HUB_OFFICIAL_PREFIX + image
    return registry_uri, image


def _check_target_tag(target: str) -> str:
    repository, colon, tag = target.rpartition(":")
    try:
        if not colon:
            raise ReferenceError("no tag")
        validate_repository(repository)
        validate_tag(tag)
    except ReferenceError as error:
        raise ValueError(f"target tag {target!r}: expected repo:tag: {error}") from None
    return target


def _check_repository(name: str) -> str:
    try:
        return validate_repository(name)
    except ReferenceError as error:
        raise ValueError(f"untagged repository: {error}") from None


def _describe_targets(tags: Sequence[str], repositories: Sequence[str]) -> str:
    return ", ".join([*tags, *(f"{name} (untagged)" for name in repositories)])


def _secrets(username: str | None, password: str | None) -> tuple[str, ...]:
    found = [password] if password else []
    if username and len(username) >= MIN_REDACTED_USERNAME:
        found.append(username)
    return tuple(sorted(found, key=len, reverse=True))


def _redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def _import_error(error: Any, where: str, secrets: Sequence[str], role_hint: str) -> AcrImportError:
    """Turn an azure-core exception into an AcrImportError saying what ARM said and whether to try again; a refusal
    of the identity is an AcrImportUnauthorized naming the role it needs (`role_hint`)."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    if isinstance(error, HttpResponseError) and error.response is not None:
        status = error.status_code
        code, message = _arm_error(error)
        what = f"{code}: {message}" if code else message
        if status in AUTHORIZATION_STATUSES or (code or "").lower() in AUTHORIZATION_ERROR_CODES:
            text = f"{where}: {_refused(error, what, status, role_hint)}"
            return AcrImportUnauthorized(_redact(text, secrets), code=code, status=status)
        transient = (code or "").lower() in TRANSIENT_ERROR_CODES or status in TRANSIENT_STATUSES
        text = f"{where}: {what} (HTTP {status})"
        return AcrImportError(_redact(text, secrets), transient=transient, code=code, status=status)
    if isinstance(error, ClientAuthenticationError):  # the credential gave no token (like AcrRegistry: Unauthorized)
        text = f"{where}: no ARM token from the credential: {error.message}"
        return AcrImportUnauthorized(_redact(text, secrets))
    if isinstance(error, (ServiceRequestError, ServiceResponseError)):
        return AcrImportError(_redact(f"{where}: ARM did not answer: {error}", secrets), transient=True)
    return AcrImportError(_redact(f"{where}: {type(error).__name__}: {error.message}", secrets), transient=False)


def _refused(error: Any, what: str, status: int, role_hint: str) -> str:
    """Which request ARM refused (the import, or the poll of its operation after a 202), what it said, and the role."""
    request = getattr(error.response, "request", None)
    method = getattr(request, "method", None)
    if status not in AUTHORIZATION_STATUSES:  # the operation ran and failed with an authorisation error code
        refused = f"the import operation failed: {what}"
    elif method == "GET":  # the poll: ARM accepted the import and may have run it
        url = str(getattr(request, "url", "") or "").split("?", 1)[0] or "its operation URL"
        refused = (f"ARM accepted the import (202) but refused to report its progress: GET {url} answered "
                   f"HTTP {status}: {what}; the import may still finish")
    elif status == 401:
        refused = f"ARM did not accept the identity's token: {what} (HTTP 401)"
    else:
        refused = f"ARM refused the import: {what} (HTTP {status})"
    return f"{refused}; {role_hint}"


def _arm_error(error: Any) -> tuple[str | None, str]:
    """ARM's `error.code` and `error.message` from a response body, falling back to the SDK's own message."""
    body: Any = None
    try:
        body = load_bounded_json(error.response.text() or "null")
    except (ValueError, TypeError, AttributeError):
        body = None
    details = body.get("error") if isinstance(body, dict) else None
    if isinstance(details, dict):
        code = details.get("code")
        message = details.get("message")
        return (str(code) if code else None), str(message or "no message")
    if isinstance(body, dict) and body.get("status") in ("Failed", "Canceled"):
        return None, f"operation {body['status']}"
    return None, str(error.message).splitlines()[0] if error.message else f"{error.response.reason}"
