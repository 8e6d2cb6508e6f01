"""AcrRegistry: the Registry port for Azure Container Registry, plus the ACR-only operations remediation needs.

    registry = AcrRegistry("myreg.azurecr.io", credential=azure_credential(client_id))   # any TokenCredential
    fetched = registry.get_manifest("team/app", "1.0")        # the /v2 API: everything OciRegistry does
    registry.lock_manifest("team/app", fetched.digest, read=False, write=False, delete=False)
    registry.delete_tag("team/app", "1.0")                     # ACR only: /acr/v1/...
    for tag in registry.list_tag_properties("team/app", order_by="timedesc"): ...

The requests go through the generic OCI client's transport, not azure-containerregistry (why: docs/design.md,
"Azure adapters").

Authentication (ACR's "AAD OAuth2 flow"). Until the registry first challenges, requests
go without credentials (a plain distribution registry never does, so the same code runs locally with or without a
credential). After a `Bearer` challenge every request carries a token fetched before it is sent:
  1. an AAD access token from the TokenCredential for `<audience>/.default` (`https://containerregistry.azure.net`);
  2. `POST <endpoint>/oauth2/exchange` form `grant_type=access_token, service=<host>[, tenant], access_token` →
     `{"refresh_token": …}`, cached until 5 minutes before its JWT `exp` (one exchange per registry at a time);
  3. `POST <endpoint>/oauth2/token` form `grant_type=refresh_token, service=<host>, scope=… (one field per scope),
     refresh_token` → `{"access_token": …}`, cached per set of scopes until shortly before its `exp`.
The challenge's realm URL is never followed: the AAD and refresh tokens only ever go to the configured endpoint,
and a challenge naming another `service` raises ProtocolError. When the registry refuses a token we sent, the
access token and the refresh token behind it are dropped and fetched again once (role assignments may have changed).
Scopes: `pull` to read, `pull,push` to write, `delete` to delete manifests and tags, `metadata_read` for properties
and tag listings, `metadata_read,metadata_write` for locks, `registry:catalog:*` for the catalog.
Without a credential, the generic Docker token auth of auth.py applies (anonymous pull).

Endpoint: requests go to `endpoint` (default `https://<host>`); `service` in token requests is always `host`, so a
test or a private link can point at another address. Plain http is refused for non-loopback endpoints (http.py).
Against a plain distribution registry every `/acr/v1` operation raises RegistryError saying it is not ACR.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Self
from urllib.parse import urlencode, urlsplit

from importer.adapters.registry.auth import (
    CATALOG_SCOPE,
    MAX_TOKEN_RESPONSE_BYTES,
    TOKEN_CACHE_ENTRIES,
    Scopes,
    jwt_claims,
    read_challenge,
    repository_scope,
)
from importer.adapters.registry.http import (
    MIN_TRANSFER_RATE,
    REQUEST_DEADLINE_SECONDS,
    HttpTransport,
    Response,
    error_detail,
)
from importer.adapters.registry.oci import DEFAULT_CACHE_BYTES, OciRegistry
from importer.core.bounded_json import loads_object
from importer.core.reference import validate_digest, validate_repository, validate_tag
from importer.core.retry import REGISTRY_RETRY, RetryPolicy
from importer.ports.abilities import ManifestProperties, TagProperties
from importer.ports.metrics import RegistryRequestObserver
from importer.ports.registry import ProtocolError, RegistryError, TransientRegistryError, Unauthorized

if TYPE_CHECKING:  # azure-core is only imported when a credential is actually used
    from azure.core.credentials import TokenCredential

__all__ = ["AcrRegistry", "AcrTokenAuth", "azure_credential"]

DEFAULT_AUDIENCE = "https://containerregistry.azure.net"
API_VERSION = "2021-07-01"
TAG_ORDERS = frozenset({"timedesc", "timeasc"})
DEFAULT_ACCESS_TOKEN_LIFETIME = 60.0  # when ACR's answer says nothing about expiry
DEFAULT_REFRESH_TOKEN_LIFETIME = 600.0  # when neither the refresh token nor the AAD token tells
ACCESS_TOKEN_MARGIN = 60.0  # stop using a token this long before it expires (clock skew, request time)
REFRESH_TOKEN_MARGIN = 300.0
_LOCK_STRIPES = 16
_FORM = "application/x-www-form-urlencoded"


def azure_credential(client_id: str | None = None) -> TokenCredential:
    """The credential for Azure: the user-assigned managed identity `client_id`, else DefaultAzureCredential."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if client_id:
        return ManagedIdentityCredential(client_id=client_id)
    return DefaultAzureCredential()


@dataclass(frozen=True, slots=True)
class _RefreshToken:
    value: str = field(repr=False)
    usable_until: float
    generation: int


@dataclass(frozen=True, slots=True)
class _AccessToken:
    header: str = field(repr=False)
    usable_until: float
    generation: int  # of the refresh token it was obtained with


class AcrTokenAuth:
    """ACR token state for one registry: one refresh token, access tokens per set of scopes; thread-safe.

    Same interface as auth.RegistryAuth (`authorization`, `answer_challenge`), so OciRegistry uses either.
    """

    def __init__(
        self,
        transport: HttpTransport,
        *,
        service: str,
        endpoint: str,
        credential: TokenCredential,
        tenant_id: str | None = None,
        audience: str = DEFAULT_AUDIENCE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._transport = transport
        self._service = service
        self._endpoint = endpoint.rstrip("/")
        self._credential = credential
        self._credential_name = type(credential).__name__
        self._tenant_id = tenant_id
        self._aad_scope = audience.rstrip("/") + "/.default"
        self._clock = clock  # wall clock: token expiries are epoch seconds
        self._lock = threading.Lock()
        self._challenged = False
        self._tokens: OrderedDict[Scopes, _AccessToken] = OrderedDict()
        self._fetch_locks = tuple(threading.Lock() for _ in range(_LOCK_STRIPES))
        self._refresh_lock = threading.Lock()
        self._refresh: _RefreshToken | None = None
        self._generation = 0

    def __repr__(self) -> str:
        return (
            f"AcrTokenAuth(service={self._service!r}, endpoint={self._endpoint!r}, "
            f"credential={self._credential_name})"
        )

    def authorization(self, scopes: Scopes, context: str) -> str | None:
        """The Authorization header for a request needing `scopes`; None until the registry has challenged once."""
        with self._lock:
            if not self._challenged:
                return None
        key = _key(scopes)
        return self._access(key, key, context, refused=None).header

    def answer_challenge(self, header: str | None, scopes: Scopes, context: str, *, sent: str | None) -> bool:
        """Get a token for a 401's Bearer challenge; True when sending the request once more may succeed."""
        if header is None:
            return False
        challenge = read_challenge(header, context)
        if challenge.scheme != "bearer":
            return False  # an AAD identity has no password for a Basic challenge
        service = challenge.params.get("service")
        if service is not None and service.lower() != self._service.lower():
            raise ProtocolError(
                f"{context}: the registry at {self._endpoint} challenges for service {service!r}, "
                f"not {self._service!r}: the endpoint serves another registry"
            )
        with self._lock:
            self._challenged = True
        key = _key(scopes)
        wanted = _key(scopes + tuple(challenge.params.get("scope", "").split()))
        self._access(key, wanted, context, refused=sent)
        return True

    def _access(self, key: Scopes, wanted: Scopes, context: str, *, refused: str | None) -> _AccessToken:
        with self._fetch_locks[hash(key) % _LOCK_STRIPES]:
            cached = self._cached(key)
            if cached is not None and cached.header != refused:
                return cached
            if cached is not None:
                # The registry refused the token we hold: the refresh token behind it may be stale too.
                self._forget(key)
                self._drop_refresh(cached.generation)
            return self._fetch_access(key, wanted, context)

    def _cached(self, key: Scopes) -> _AccessToken | None:
        with self._lock:
            entry = self._tokens.get(key)
            if entry is None:
                return None
            if self._clock() >= entry.usable_until:
                del self._tokens[key]
                return None
            self._tokens.move_to_end(key)
            return entry

    def _forget(self, key: Scopes) -> None:
        with self._lock:
            self._tokens.pop(key, None)

    def _fetch_access(self, key: Scopes, scopes: Scopes, context: str) -> _AccessToken:
        token_context = f"{context}: ACR access token from {urlsplit(self._endpoint).netloc}"
        for attempt in (1, 2):
            refresh, just_exchanged = self._refresh_token(context)
            form = [("grant_type", "refresh_token"), ("service", self._service)]
            form += [("scope", scope) for scope in scopes]
            form.append(("refresh_token", refresh.value))
            started = self._clock()
            response = self._post_form("/oauth2/token", form, token_context)
            if response.status == 401 and attempt == 1 and not just_exchanged:
                self._drop_refresh(refresh.generation)  # expired or revoked early: exchange again, once
                continue
            if response.status != 200:
                what = f"refused the refresh token for {' '.join(scopes) or 'no scope'}"
                raise self._token_failure(response, "/oauth2/token", what, token_context)
            document = _json_object(response.body, token_context)
            value = document.get("access_token")
            if not isinstance(value, str) or not value:
                raise ProtocolError(f"{token_context}: the answer has no 'access_token'")
            expires_in = document.get("expires_in")
            if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool) and expires_in > 0:
                expires_at: float | None = started + float(expires_in)
            else:
                expires_at = _jwt_expiry(value)
            usable_until = _usable_until(started, expires_at, DEFAULT_ACCESS_TOKEN_LIFETIME, ACCESS_TOKEN_MARGIN)
            entry = _AccessToken(f"Bearer {value}", usable_until, refresh.generation)
            with self._lock:
                self._tokens[key] = entry
                self._tokens.move_to_end(key)
                while len(self._tokens) > TOKEN_CACHE_ENTRIES:
                    self._tokens.popitem(last=False)
            return entry
        raise AssertionError("unreachable")

    def _refresh_token(self, context: str) -> tuple[_RefreshToken, bool]:
        """The cached refresh token, or a new one from the exchange; True when it was exchanged just now."""
        with self._refresh_lock:
            current = self._refresh
            if current is not None and self._clock() < current.usable_until:
                return current, False
            exchange_context = f"{context}: ACR refresh token from {urlsplit(self._endpoint).netloc}"
            aad_token, aad_expires_on = self._aad_token(exchange_context)
            form = [("grant_type", "access_token"), ("service", self._service)]
            if self._tenant_id:
                form.append(("tenant", self._tenant_id))
            form.append(("access_token", aad_token))
            started = self._clock()
            response = self._post_form("/oauth2/exchange", form, exchange_context)
            if response.status != 200:
                who = f"the Azure AD token of {self._credential_name}"
                raise self._token_failure(response, "/oauth2/exchange", f"refused {who}", exchange_context)
            document = _json_object(response.body, exchange_context)
            value = document.get("refresh_token")
            if not isinstance(value, str) or not value:
                raise ProtocolError(f"{exchange_context}: the answer has no 'refresh_token'")
            expires_at = _jwt_expiry(value) or aad_expires_on
            self._generation += 1
            self._refresh = _RefreshToken(
                value,
                _usable_until(started, expires_at, DEFAULT_REFRESH_TOKEN_LIFETIME, REFRESH_TOKEN_MARGIN),
                self._generation,
            )
            return self._refresh, True

    def _drop_refresh(self, generation: int) -> None:
        with self._refresh_lock:
            if self._refresh is not None and self._refresh.generation == generation:
                self._refresh = None

    def _aad_token(self, context: str) -> tuple[str, float | None]:
        try:
            token = self._credential.get_token(self._aad_scope, tenant_id=self._tenant_id)
        except Exception as error:  # noqa: BLE001  # credentials raise many types; each becomes a registry error
            from azure.core.exceptions import ServiceRequestError, ServiceResponseError

            problem = f"{context}: {self._credential_name} could not get an Azure AD token for {self._aad_scope}"
            if isinstance(error, (ServiceRequestError, ServiceResponseError)):
                raise TransientRegistryError(f"{problem}: {type(error).__name__}: {error}") from None
            raise Unauthorized(f"{problem}: {type(error).__name__}: {error}") from None
        expires_on = token.expires_on if token.expires_on > 0 else None
        return token.token, expires_on

    def _post_form(self, path: str, form: list[tuple[str, str]], context: str) -> Response:
        return self._transport.request(
            "POST",
            f"{self._endpoint}{path}?{urlencode({'api-version': API_VERSION})}",
            context=context,
            headers={"Content-Type": _FORM, "Accept": "application/json"},
            body=urlencode(form).encode("ascii"),
            max_body=MAX_TOKEN_RESPONSE_BYTES,
        )

    def _token_failure(self, response: Response, path: str, what: str, context: str) -> RegistryError:
        _, detail, readable = error_detail(response.body)
        where = f"{self._endpoint}{path}"
        if response.status in (401, 403):
            return Unauthorized(f"{context}: {where} {what} (HTTP {response.status}{detail})")
        if response.status == 404 and not readable:
            return RegistryError(
                f"{context}: {where} does not exist (HTTP 404{detail}): {self._service} is not an Azure Container "
                "Registry, or the endpoint points elsewhere"
            )
        if 400 <= response.status < 500:
            return RegistryError(f"{context}: {where} answered HTTP {response.status}{detail}")
        return ProtocolError(f"{context}: {where} answered an unexpected HTTP {response.status}{detail}")


class AcrRegistry(OciRegistry):
    """The Registry port for one Azure Container Registry, with its `/acr/v1` operations; thread-safe."""

    def __init__(
        self,
        host: str,
        *,
        credential: TokenCredential | None = None,
        endpoint: str | None = None,
        tenant_id: str | None = None,
        audience: str = DEFAULT_AUDIENCE,
        allow_http: bool = False,
        timeout: float = 10.0,
        retry: RetryPolicy = REGISTRY_RETRY,
        max_attempts: int | None = None,
        backoff: float | None = None,
        max_retry_after: float | None = None,
        pool_size: int = 16,
        config_cache: int = 512,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        clock: Callable[[], float] = time.time,
        request_deadline: float = REQUEST_DEADLINE_SECONDS,
        min_transfer_rate: float = MIN_TRANSFER_RATE,
        observer: RegistryRequestObserver | None = None,
    ) -> None:
        super().__init__(
            host,
            allow_http=allow_http,
            timeout=timeout,
            retry=retry,
            max_attempts=max_attempts,
            backoff=backoff,
            max_retry_after=max_retry_after,
            pool_size=pool_size,
            config_cache=config_cache,
            cache_bytes=cache_bytes,
            request_deadline=request_deadline,
            min_transfer_rate=min_transfer_rate,
            observer=observer,
        )
        if endpoint is not None:
            self.base_url = _endpoint_base_url(endpoint, host)
            self.http.check_url(self.base_url, f"registry {host}")
        self._credential_name = type(credential).__name__ if credential is not None else None
        if credential is not None:
            self._auth = AcrTokenAuth(  # type: ignore[assignment]  # RegistryAuth's interface, ACR's token flow
                self.http,
                service=host.lower(),
                endpoint=self.base_url,
                credential=credential,
                tenant_id=tenant_id,
                audience=audience,
                clock=clock,
            )

    def __repr__(self) -> str:
        return f"AcrRegistry({self.host!r}, base_url={self.base_url!r}, credential={self._credential_name})"

    def __enter__(self) -> Self:
        return self

    # ACR-only operations (/acr/v1)

    def delete_tag(self, repository: str, tag: str) -> None:
        """Remove a tag (the manifest stays); NotFound when the tag does not exist."""
        validate_repository(repository)
        validate_tag(tag)
        context = f"deletion of tag {self.host}/{repository}:{tag}"
        response = self._request(
            "DELETE",
            self._acr_url(f"{repository}/_tags/{tag}"),
            scopes=(repository_scope(repository, "delete"),),
            context=context,
        )
        if response.status not in (200, 202, 204):
            raise self._acr_failure(response, context)

    def lock_manifest(
        self, repository: str, digest: str, *, read: bool, write: bool, delete: bool
    ) -> ManifestProperties:
        """Set whether a manifest may be pulled, overwritten and deleted; returns its properties afterwards."""
        validate_repository(repository)
        validate_digest(digest)
        context = f"lock of manifest {self.host}/{repository}@{digest}"
        body = json.dumps({"readEnabled": read, "writeEnabled": write, "deleteEnabled": delete}).encode()
        response = self._request(
            "PATCH",
            self._acr_url(f"{repository}/_manifests/{digest}"),
            scopes=(repository_scope(repository, "metadata_read", "metadata_write"),),
            context=context,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            body=body,
        )
        if response.status != 200:
            raise self._acr_failure(response, context)
        return _manifest_properties(response.body, repository, digest, context)

    def manifest_properties(self, repository: str, digest: str) -> ManifestProperties:
        """ACR's properties of a manifest: size, platform, tags and its read/write/delete/list locks."""
        validate_repository(repository)
        validate_digest(digest)
        context = f"properties of manifest {self.host}/{repository}@{digest}"
        response = self._request(
            "GET",
            self._acr_url(f"{repository}/_manifests/{digest}"),
            scopes=(repository_scope(repository, "metadata_read"),),
            context=context,
            headers={"Accept": "application/json"},
        )
        if response.status != 200:
            raise self._acr_failure(response, context)
        return _manifest_properties(response.body, repository, digest, context)

    def list_repository_names(self, *, page_size: int | None = None) -> Iterator[str]:
        """Every repository, from `/acr/v1/_catalog`, following `Link` pagination (`n`, `last`)."""
        url = self._acr_url("_catalog", n=_page_size(page_size))
        context = f"ACR catalog of {self.host}"
        pages = self._acr_pages(url, (CATALOG_SCOPE,), context)
        return (name for page in pages for name in _strings(page, "repositories", context))

    def list_tag_properties(
        self,
        repository: str,
        *,
        page_size: int | None = None,
        order_by: str | None = None,
        digest: str | None = None,
    ) -> Iterator[TagProperties]:
        """Every tag of a repository with its properties, optionally ordered (`timedesc`, `timeasc`) or only
        those pointing at `digest`; follows `Link` pagination."""
        validate_repository(repository)
        if order_by is not None and order_by not in TAG_ORDERS:
            raise ValueError(f"order_by must be one of {sorted(TAG_ORDERS)}, not {order_by!r}")
        if digest is not None:
            validate_digest(digest)
        url = self._acr_url(f"{repository}/_tags", n=_page_size(page_size), orderby=order_by, digest=digest)
        context = f"ACR tags of {self.host}/{repository}"
        pages = self._acr_pages(url, (repository_scope(repository, "metadata_read"),), context)
        return (tag for page in pages for tag in _tag_properties(page, repository, context))

    # Plumbing

    def _acr_url(self, path: str, **query: str | int | None) -> str:
        parameters = {name: str(value) for name, value in query.items() if value is not None}
        parameters["api-version"] = API_VERSION
        return f"{self.base_url}/acr/v1/{path}?{urlencode(parameters)}"

    def _acr_pages(self, url: str, scopes: Scopes, context: str) -> Iterator[Mapping[str, object]]:
        for response in self._pages(url, scopes, context, failure=self._acr_failure):
            yield _json_object(response.body, context)

    def _acr_failure(self, response: Response, context: str) -> RegistryError:
        _, detail, readable = error_detail(response.body)
        if response.status == 404 and not readable:
            # distribution answers unknown routes with a plain-text "404 page not found"
            return RegistryError(
                f"{context}: {self.base_url} does not serve the ACR /acr/v1 API (HTTP 404{detail}); "
                "this operation needs Azure Container Registry"
            )
        return self._failure(response.status, response.body, context)

    def _failure(self, status: int, body: bytes, context: str) -> RegistryError:
        if status == 401 and self._credential_name is not None:
            _, detail, _ = error_detail(body)
            return Unauthorized(
                f"{context}: the registry refused the token obtained with {self._credential_name} (HTTP 401{detail})"
            )
        return super()._failure(status, body, context)


def _endpoint_base_url(endpoint: str, host: str) -> str:
    parts = urlsplit(endpoint)
    problem = None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problem = "it must be an http(s) URL"
    elif parts.path not in ("", "/") or parts.query or parts.fragment:
        problem = "it must not have a path, query or fragment"
    elif "@" in parts.netloc:
        problem = "it must not carry user information"
    if problem is not None:
        raise ValueError(f"AcrRegistry {host}: invalid endpoint {endpoint!r}: {problem}")
    return f"{parts.scheme}://{parts.netloc}"


def _page_size(page_size: int | None) -> int | None:
    if page_size is not None and page_size < 1:
        raise ValueError(f"page_size must be at least 1, got {page_size}")
    return page_size


def _key(scopes: Scopes) -> Scopes:
    return tuple(sorted({scope for scope in scopes if scope}))


def _usable_until(started: float, expires_at: float | None, default_lifetime: float, margin: float) -> float:
    """When to stop using a token: before its expiry by `margin` (at most a fifth of its lifetime)."""
    lifetime = expires_at - started if expires_at is not None else 0.0
    if lifetime <= 0:  # unknown, or our clock is ahead of the issuer's: the registry will tell us with a 401
        lifetime = default_lifetime
    return started + lifetime - min(margin, lifetime / 5)


def _jwt_expiry(token: str) -> float | None:
    """The `exp` claim of a JWT (not verified: only to know when to fetch a new one), or None."""
    expiry = jwt_claims(token).get("exp")
    if isinstance(expiry, (int, float)) and not isinstance(expiry, bool):
        return float(expiry)
    return None


def _json_object(body: bytes, context: str) -> dict[str, object]:
    try:
        return loads_object(body, f"{context}: the answer")
    except ValueError as error:
        raise ProtocolError(str(error)) from None


def _optional(document: Mapping[str, object], key: str, kind: type, context: str) -> object:
    value = document.get(key)
    if value is not None and (not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)):
        raise ProtocolError(f"{context}: {key!r} is {type(value).__name__}, expected {kind.__name__}")
    return value


def _changeable_attributes(document: Mapping[str, object], context: str) -> tuple[bool, bool, bool, bool]:
    """(read, write, delete, list); an attribute ACR leaves out has its default, enabled."""
    attributes = document.get("changeableAttributes") or {}
    if not isinstance(attributes, dict):
        raise ProtocolError(f"{context}: 'changeableAttributes' is not a JSON object")
    flags = []
    for key in ("readEnabled", "writeEnabled", "deleteEnabled", "listEnabled"):
        value = attributes.get(key, True)
        if not isinstance(value, bool):
            raise ProtocolError(f"{context}: changeableAttributes.{key} is {value!r}, expected true or false")
        flags.append(value)
    return flags[0], flags[1], flags[2], flags[3]


def _strings(document: Mapping[str, object], key: str, context: str) -> tuple[str, ...]:
    items = document.get(key)
    if items is None:
        return ()
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ProtocolError(f"{context}: {key!r} is not a list of strings")
    return tuple(items)


def _manifest_properties(body: bytes, repository: str, digest: str, context: str) -> ManifestProperties:
    manifest = _json_object(body, context).get("manifest")
    if not isinstance(manifest, dict):
        raise ProtocolError(f"{context}: the answer has no 'manifest' object")
    if manifest.get("digest") != digest:
        raise ProtocolError(f"{context}: the answer describes manifest {manifest.get('digest')!r}")
    can_read, can_write, can_delete, can_list = _changeable_attributes(manifest, context)
    size = _optional(manifest, "imageSize", int, context)
    return ManifestProperties(
        repository=repository,
        digest=digest,
        size=size if isinstance(size, int) else None,
        created_on=_text(manifest, "createdTime", context),
        last_updated_on=_text(manifest, "lastUpdateTime", context),
        architecture=_text(manifest, "architecture", context),
        os=_text(manifest, "os", context),
        tags=_strings(manifest, "tags", context),
        can_read=can_read,
        can_write=can_write,
        can_delete=can_delete,
        can_list=can_list,
    )


def _text(document: Mapping[str, object], key: str, context: str) -> str | None:
    value = _optional(document, key, str, context)
    return value if isinstance(value, str) else None


def _tag_properties(page: Mapping[str, object], repository: str, context: str) -> list[TagProperties]:
    items = page.get("tags") or []
    if not isinstance(items, list):
        raise ProtocolError(f"{context}: 'tags' is not a list")
    tags = []
    for item in items:
        if not isinstance(item, dict):
            raise ProtocolError(f"{context}: a tag entry is not a JSON object")
        name, digest = item.get("name"), item.get("digest")
        if not isinstance(name, str) or not isinstance(digest, str):
            raise ProtocolError(f"{context}: a tag entry lacks a string 'name' or 'digest'")
        can_read, can_write, can_delete, can_list = _changeable_attributes(item, f"{context}: tag {name}")
        tags.append(
            TagProperties(
                repository=repository,
                name=name,
                digest=digest,
                created_on=_text(item, "createdTime", context),
                last_updated_on=_text(item, "lastUpdateTime", context),
                can_read=can_read,
                can_write=can_write,
                can_delete=can_delete,
                can_list=can_list,
            )
        )
    return tags
