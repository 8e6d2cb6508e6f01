"""Adapters for `doctor`'s probes (importer.ports.probes): the caller's Azure identity and ARM permissions, and
whether an HTTP endpoint answers. Every request goes through the registry transport (importer/adapters/registry/
http.py): bounded timeouts and retries, plain http to loopback only, no request outlasting the time limit of the work
in hand.

    identity = AzureIdentity(credential).identity()              # Identity(object_id, principal_type, client_id, …)
    sets = ArmPermissions(credential).permissions(registry_id)  # (Permission(actions, not_actions, …), …)
    HttpProbe().status("https://hooks.example.com/x", method="OPTIONS")   # 405: it answers

ARM `Permissions - List For Resource` (Microsoft.Authorization, api-version 2022-04-01):
`GET {resourceId}/providers/Microsoft.Authorization/permissions` answers `{"value": [{"actions": […],
"notActions": […], "dataActions": […], "notDataActions": […]}, …], "nextLink": …}` for the caller, one entry per
role assignment that applies. Tokens are asked for `<arm endpoint>/.default`; the token itself is never kept, logged
or shown, only the claims that name the principal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from importer.adapters.registry.auth import jwt_claims
from importer.adapters.registry.http import HttpTransport, Response, redact_url
from importer.core.bounded_json import loads as load_bounded_json
from importer.core.bounded_json import loads_object
from importer.core.retry import REGISTRY_RETRY
from importer.ports.probes import (
    Identity,
    IdentityUnavailable,
    Permission,
    PermissionsRefused,
    ProbeFailed,
    Unreachable,
)
from importer.ports.registry import RegistryError, TransientRegistryError

DEFAULT_ARM_ENDPOINT = "https://management.azure.com"
PERMISSIONS_API_VERSION = "2022-04-01"
MAX_PERMISSION_PAGES = 20
MAX_ANSWER_BYTES = 4 * 1024 * 1024
_PROBE_RETRY = REGISTRY_RETRY.replace(attempts=2)


def _transport(timeout: float, *, allow_http: bool = False) -> HttpTransport:
    return HttpTransport(allow_http=allow_http, timeout=timeout, retry=_PROBE_RETRY, request_deadline=timeout)


def _first_line(text: object, most: int = 300) -> str:
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if len(line) <= most else line[: most - 1] + "…"


class AzureIdentity:
    """The principal an azure-core TokenCredential stands for, from the claims of an ARM token."""

    def __init__(self, credential: Any, *, arm_endpoint: str = DEFAULT_ARM_ENDPOINT) -> None:
        self._credential = credential
        self._scope = arm_endpoint.rstrip("/") + "/.default"

    def token(self) -> str:
        """An ARM access token (for ArmPermissions); IdentityUnavailable when the credential has none."""
        try:
            return str(self._credential.get_token(self._scope).token)
        except Exception as error:  # noqa: BLE001  # credentials raise many kinds; each means "no token"
            raise IdentityUnavailable(
                f"{type(self._credential).__name__} could not get a token for {self._scope}: "
                f"{type(error).__name__}: {_first_line(getattr(error, 'message', None) or error)}"
            ) from None

    def identity(self) -> Identity:
        claims = jwt_claims(self.token())
        object_id = _text(claims.get("oid"))
        kind = _text(claims.get("idtyp"))
        principal_type = {"app": "ServicePrincipal", "user": "User"}.get((kind or "").lower())
        if principal_type is None and object_id is not None:  # tokens without `idtyp`: delegated ones carry `scp`
            delegated = claims.get("scp") is not None or claims.get("upn") is not None
            principal_type = "User" if delegated else ("ServicePrincipal" if _text(claims.get("appid")) else None)
        return Identity(
            object_id=object_id,
            principal_type=principal_type,
            client_id=_text(claims.get("appid")) or _text(claims.get("azp")),
            tenant_id=_text(claims.get("tid")),
        )


class ArmPermissions:
    """ARM `Permissions - List For Resource` for the caller (importer.ports.probes.ReadsPermissions)."""

    def __init__(
        self, credential: Any, *, arm_endpoint: str = DEFAULT_ARM_ENDPOINT, timeout: float = 20.0
    ) -> None:
        self.arm_endpoint = arm_endpoint.rstrip("/")
        self._identity = AzureIdentity(credential, arm_endpoint=self.arm_endpoint)
        self._http = _transport(timeout)
        self._http.check_url(self.arm_endpoint, "ARM endpoint")

    def permissions(self, resource_id: str) -> tuple[Permission, ...]:
        if not resource_id.startswith("/subscriptions/") or any(c in resource_id for c in "?#\\ "):
            raise ValueError(f"not an ARM resource id: {resource_id!r}")
        url: str | None = (
            f"{self.arm_endpoint}{resource_id.rstrip('/')}/providers/Microsoft.Authorization/permissions"
            f"?api-version={PERMISSIONS_API_VERSION}"
        )
        context = f"ARM permissions of the caller on {resource_id}"
        token = self._identity.token()
        found: list[Permission] = []
        pages = 0
        while url is not None:
            pages += 1
            if pages > MAX_PERMISSION_PAGES:
                raise ProbeFailed(f"{context}: more than {MAX_PERMISSION_PAGES} pages")
            response = self._get(url, token, context)
            if response.status in (401, 403):
                raise PermissionsRefused(f"{context}: HTTP {response.status}{_arm_error(response.body)}")
            if response.status != 200:
                raise ProbeFailed(f"{context}: unexpected HTTP {response.status}{_arm_error(response.body)}")
            document = _object(response.body, context)
            entries = document.get("value")
            if not isinstance(entries, list):
                raise ProbeFailed(f"{context}: the answer has no 'value' list")
            found += [_permission(entry, context) for entry in entries]
            url = _next_link(document.get("nextLink"), self.arm_endpoint, context)
        return tuple(found)

    def _get(self, url: str, token: str, context: str) -> Response:
        try:
            return self._http.request("GET", url, context=context, max_body=MAX_ANSWER_BYTES,
                                      headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
        except TransientRegistryError as error:
            raise Unreachable(str(error)) from None
        except RegistryError as error:
            raise ProbeFailed(str(error)) from None

    def close(self) -> None:
        self._http.close()


class HttpProbe:
    """Whether an endpoint answers one bodiless request (importer.ports.probes.AnswersHttp); the URL is shown without
    its path or query in messages (a webhook URL may hold its secret there)."""

    def __init__(self, *, timeout: float = 10.0) -> None:
        # The URLs come from settings, where plain http was already refused but for loopback and insecure hosts.
        self._http = _transport(timeout, allow_http=True)

    def status(self, url: str, *, method: str, headers: Mapping[str, str] | None = None) -> int:
        parts = urlsplit(url)
        context = f"{method} {parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        try:
            response = self._http.request(method, url, context=context, headers=headers, max_body=64 * 1024,
                                          follow_redirects=False)
        except TransientRegistryError as error:
            raise Unreachable(_without_path(str(error), url)) from None
        except RegistryError as error:
            raise ProbeFailed(_without_path(str(error), url)) from None
        return response.status

    def close(self) -> None:
        self._http.close()


def _without_path(message: str, url: str) -> str:
    parts = urlsplit(url)
    for shown in (url, redact_url(url)):
        message = message.replace(shown, f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…")
    return message


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _object(body: bytes, context: str) -> dict[str, Any]:
    try:
        return loads_object(body, f"{context}: the answer")
    except ValueError as error:
        raise ProbeFailed(str(error)) from None


def _strings(entry: Mapping[str, Any], key: str, context: str) -> tuple[str, ...]:
    value = entry.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ProbeFailed(f"{context}: {key!r} is not a list of strings")
    return tuple(value)


def _permission(entry: object, context: str) -> Permission:
    if not isinstance(entry, dict):
        raise ProbeFailed(f"{context}: a permission entry is not a JSON object")
    return Permission(
        actions=_strings(entry, "actions", context),
        not_actions=_strings(entry, "notActions", context),
        data_actions=_strings(entry, "dataActions", context),
        not_data_actions=_strings(entry, "notDataActions", context),
    )


def _next_link(link: object, endpoint: str, context: str) -> str | None:
    """The next page, only on the ARM endpoint itself (the token goes nowhere else)."""
    if link is None or link == "":
        return None
    if not isinstance(link, str):
        raise ProbeFailed(f"{context}: 'nextLink' is not a string")
    wanted, given = urlsplit(endpoint), urlsplit(link)
    if (given.scheme, given.netloc.lower()) != (wanted.scheme, wanted.netloc.lower()):
        raise ProbeFailed(f"{context}: 'nextLink' leads away from {endpoint} ({redact_url(link)})")
    return link


def _arm_error(body: bytes) -> str:
    """`: Code: message` from an ARM error body, or nothing."""
    try:
        document = load_bounded_json(body)
    except ValueError:
        return ""
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict):
        return ""
    return f": {error.get('code', '?')}: {_first_line(error.get('message', ''))}"
