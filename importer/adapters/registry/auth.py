"""Registry authentication: Docker token auth (Bearer challenges) and basic auth, with a token cache.

    auth = RegistryAuth(transport, registry="myreg.example.com", credentials=Credentials("ci", "secret"))
    header = auth.authorization(scopes, context)     # None until the registry has challenged us once
    # … send; on 401:
    if auth.answer_challenge(response.headers.get("WWW-Authenticate"), scopes, context, sent=header):
        ...  # send once more with auth.authorization(scopes, context)

How it works (the distribution token protocol): a 401 carries `WWW-Authenticate: Bearer realm=…,service=…,
scope=…`. We GET `realm?service=…&scope=…` (anonymously, or with basic credentials when configured), read
`token` (or `access_token`) and `expires_in` (60 s when absent), and cache the token per set of scopes until
shortly before it expires. Once a registry has challenged, later requests get a token before they are sent, so
streamed uploads never meet a 401. A `Basic` challenge makes us send the credentials on every request.
The realm must obey the same plain-http rule as the registry (the transport checks every URL).
Secrets (password, tokens) never appear in messages, logs or reprs.

An `IdentityToken` (docker's identity token, a refresh token from the docker config or a credential helper) is
exchanged with the distribution OAuth2 flow instead: `POST realm` with the form `grant_type=refresh_token`,
`refresh_token`, `service`, `scope` (space-separated) and `client_id`, answered with `access_token` (or `token`) and
`expires_in`. It cannot answer a `Basic` challenge. `credential_source` defers finding the credentials until the
registry first challenges (so an anonymous registry never costs a credential helper); once it has answered it is
not called again; what it raises (an Unauthorized) fails that request, and the next challenge asks it again.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from importer.adapters.registry.http import HttpTransport, redact_url
from importer.core.bounded_json import loads as load_bounded_json
from importer.core.bounded_json import loads_object
from importer.ports.registry import Credentials, ProtocolError, RegistryError, Unauthorized

DEFAULT_TOKEN_LIFETIME = 60.0
OAUTH_CLIENT_ID = "platform-guard"  # names this client to the token service's audit log (the spec asks for one)
MAX_TOKEN_RESPONSE_BYTES = 1024 * 1024
TOKEN_CACHE_ENTRIES = 1024
_LOCK_STRIPES = 16

Scopes = tuple[str, ...]

_TOKEN = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
_SCHEME = re.compile(rf"\s*({_TOKEN})(?:\s+|$)")
_PARAM = re.compile(rf'\s*({_TOKEN})\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,"]*)\s*(?:,|$)')
_ESCAPE = re.compile(r"\\(.)")


@dataclass(frozen=True, slots=True)
class IdentityToken(Credentials):
    """A refresh token for the token service (docker's `identitytoken`); `password` holds it, left out of repr."""


CredentialSource = Callable[[], "Credentials | None"]


@dataclass(frozen=True, slots=True)
class Challenge:
    """One parsed `WWW-Authenticate` challenge: lower-case scheme and parameters (keys lower-cased)."""

    scheme: str
    params: Mapping[str, str]


def repository_scope(repository: str, *actions: str) -> str:
    """The token scope for actions on a repository, e.g. `repository:team/app:pull,push`."""
    return f"repository:{repository}:{','.join(actions)}"


CATALOG_SCOPE = "registry:catalog:*"


def parse_challenge(header: str) -> Challenge:
    """Parse the first challenge of a `WWW-Authenticate` header; ValueError naming the header if malformed."""
    scheme_match = _SCHEME.match(header)
    if scheme_match is None:
        raise ValueError(f"malformed WWW-Authenticate header {header!r}: no auth scheme")
    params: dict[str, str] = {}
    position = scheme_match.end()
    while position < len(header):
        param = _PARAM.match(header, position)
        if param is None or param.end() == position:
            break  # the start of a second challenge, or trailing noise: keep what was read
        name, value = param.group(1).lower(), param.group(2)
        if value.startswith('"'):
            value = _ESCAPE.sub(r"\1", value[1:-1])
        params[name] = value
        position = param.end()
    return Challenge(scheme=scheme_match.group(1).lower(), params=params)


@dataclass(frozen=True, slots=True)
class _BearerSettings:
    realm: str
    service: str | None


class RegistryAuth:
    """Per-registry authentication state; thread-safe."""

    def __init__(
        self,
        transport: HttpTransport,
        *,
        registry: str,
        credentials: Credentials | None,
        credential_source: CredentialSource | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transport = transport
        self._registry = registry
        self._credentials = credentials
        self._source = credential_source if credentials is None else None
        self._source_lock = threading.Lock()
        self._clock = clock
        self._lock = threading.Lock()
        self._basic = False
        self._bearer: _BearerSettings | None = None
        self._tokens: OrderedDict[Scopes, tuple[str, float]] = OrderedDict()
        self._fetch_locks = tuple(threading.Lock() for _ in range(_LOCK_STRIPES))

    def __repr__(self) -> str:
        return f"RegistryAuth(registry={self._registry!r}, user={self.username!r})"

    @property
    def username(self) -> str | None:
        """The user of the credentials in use (None: anonymous, or not looked up yet); never a secret."""
        credentials = self._credentials
        return credentials.username if credentials else None

    def _resolved_credentials(self) -> Credentials | None:
        """The credentials, asking `credential_source` until it answers (one thread at a time). What it raises goes to
        the caller and leaves it in place, to be asked again next time: the source decides how long a failure stands
        (the docker config store: 30 s, raising a fresh exception each time), so that a long-running host recovers
        once the helper works again."""
        if self._source is not None:
            with self._source_lock:
                if self._source is not None:
                    self._credentials = self._source()
                    self._source = None
        return self._credentials

    def authorization(self, scopes: Scopes, context: str) -> str | None:
        """The Authorization header value for a request needing `scopes`, or None (anonymous, or not challenged yet)."""
        with self._lock:
            basic, bearer = self._basic, self._bearer
        if basic:
            return self._basic_header()
        if bearer is None:
            return None
        key = _key(scopes)
        cached = self._cached(key)
        if cached is not None:
            return cached
        with self._fetch_locks[hash(key) % _LOCK_STRIPES]:
            cached = self._cached(key)
            if cached is not None:
                return cached
            return self._fetch(bearer, key, key, context)

    def answer_challenge(self, header: str | None, scopes: Scopes, context: str, *, sent: str | None) -> bool:
        """Prepare credentials for a 401's challenge; True when sending the request once more may succeed."""
        if header is None:
            return False
        challenge = read_challenge(header, context)
        credentials = self._resolved_credentials()
        if challenge.scheme == "basic":
            if credentials is None or isinstance(credentials, IdentityToken) or (
                sent is not None and sent.startswith("Basic ")
            ):
                return False  # nothing to send, or the credentials were just refused
            with self._lock:
                self._basic = True
            return True
        if challenge.scheme != "bearer":
            raise ProtocolError(f"{context}: unsupported auth scheme {challenge.scheme!r} in WWW-Authenticate")
        realm = challenge.params.get("realm")
        if not realm:
            raise ProtocolError(f"{context}: Bearer challenge without a realm")
        bearer = _BearerSettings(realm=realm, service=challenge.params.get("service"))
        with self._lock:
            self._bearer = bearer
        key = _key(scopes)
        wanted = _key(scopes + tuple(challenge.params.get("scope", "").split()))
        with self._fetch_locks[hash(key) % _LOCK_STRIPES]:
            cached = self._cached(key)
            if cached is not None and cached != sent:
                return True  # another thread fetched a fresh token meanwhile
            self._fetch(bearer, key, wanted, context)
        return True

    def _basic_header(self) -> str:
        assert self._credentials is not None
        pair = f"{self._credentials.username}:{self._credentials.password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def _cached(self, key: Scopes) -> str | None:
        with self._lock:
            entry = self._tokens.get(key)
            if entry is None:
                return None
            header, expires_at = entry
            if self._clock() >= expires_at:
                del self._tokens[key]
                return None
            self._tokens.move_to_end(key)
            return header

    def _fetch(self, bearer: _BearerSettings, key: Scopes, scopes: Scopes, context: str) -> str:
        realm_host = urlsplit(bearer.realm).netloc
        token_context = f"{context}: token from {realm_host}"
        headers = {"Accept": "application/json"}
        started = self._clock()
        if isinstance(self._credentials, IdentityToken):
            who = "the identity token"
            form = [("grant_type", "refresh_token"), ("refresh_token", self._credentials.password),
                    ("client_id", OAUTH_CLIENT_ID)]
            if bearer.service:
                form.append(("service", bearer.service))
            if scopes:
                form.append(("scope", " ".join(scopes)))
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            response = self._transport.request(
                "POST", bearer.realm, context=token_context, headers=headers, body=urlencode(form).encode(),
                max_body=MAX_TOKEN_RESPONSE_BYTES,
            )
        else:
            who = f"user {self._credentials.username!r}" if self._credentials else "anonymous access"
            query = [("service", bearer.service)] if bearer.service else []
            query.extend(("scope", scope) for scope in scopes)
            separator = "&" if urlsplit(bearer.realm).query else "?"
            url = bearer.realm + (separator + urlencode(query) if query else "")
            if self._credentials is not None:
                headers["Authorization"] = self._basic_header()
            response = self._transport.request(
                "GET", url, context=token_context, headers=headers, max_body=MAX_TOKEN_RESPONSE_BYTES
            )
        if response.status in (401, 403):
            raise Unauthorized(
                f"{token_context}: the token service {redact_url(bearer.realm)} refused {who} "
                f"for {' '.join(scopes) or 'no scope'} (HTTP {response.status})"
            )
        if response.status != 200:
            raise RegistryError(
                f"{token_context}: the token service {redact_url(bearer.realm)} answered HTTP {response.status}"
            )
        token, lifetime = _read_token(response.body, token_context)
        header = f"Bearer {token}"
        expires_at = started + lifetime - min(10.0, lifetime / 5)
        with self._lock:
            self._tokens[key] = (header, expires_at)
            self._tokens.move_to_end(key)
            while len(self._tokens) > TOKEN_CACHE_ENTRIES:
                self._tokens.popitem(last=False)
        return header



def read_challenge(header: str, context: str) -> Challenge:
    """`parse_challenge` for a registry's answer: a malformed header is the registry's fault (ProtocolError)."""
    try:
        return parse_challenge(header)
    except ValueError as problem:
        raise ProtocolError(f"{context}: {problem}") from None

def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, not verified (only to read what it says of itself: its expiry, its principal); {} when
    `token` is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = load_bounded_json(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:  # binascii.Error, UnicodeDecodeError and JSONDecodeError are ValueErrors
        return {}
    return claims if isinstance(claims, dict) else {}


def _key(scopes: Scopes) -> Scopes:
    """Scopes in one canonical form: one per resource, its actions merged and sorted.

    Registries build challenge scopes from unordered sets (distribution sends `push,pull` or `pull,push` from one
    request to the next), so `repository:x:pull,push` and `repository:x:push,pull` must be the same token.
    """
    actions: dict[str, set[str]] = {}
    for scope in scopes:
        if not scope:
            continue
        resource, colon, wanted = scope.rpartition(":")
        if not colon or not resource:
            actions.setdefault(scope, set())
            continue
        actions.setdefault(resource, set()).update(action for action in wanted.split(",") if action)
    return tuple(sorted(f"{resource}:{','.join(sorted(verbs))}" if verbs else resource
                        for resource, verbs in actions.items()))


def _read_token(body: bytes, context: str) -> tuple[str, float]:
    try:
        document = loads_object(body, f"{context}: the token response")
    except ValueError as error:
        raise ProtocolError(str(error)) from None
    token = document.get("token") or document.get("access_token")
    if not isinstance(token, str) or not token:
        raise ProtocolError(f"{context}: the token response has no 'token' or 'access_token'")
    lifetime = document.get("expires_in", DEFAULT_TOKEN_LIFETIME)
    if not isinstance(lifetime, (int, float)) or isinstance(lifetime, bool) or lifetime <= 0:
        lifetime = DEFAULT_TOKEN_LIFETIME
    return token, float(lifetime)
