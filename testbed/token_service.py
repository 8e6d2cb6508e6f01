"""A distribution token service on 127.0.0.1 that also takes refresh tokens (docker's identity tokens).

    with TokenService(tmp_path, users={"ci": "pw"}, refresh_tokens={"rt-1": "ci"}) as tokens:
        LocalRegistry(root, token_auth=tokens.registry_settings())   # the registry trusts its tokens
        tokens.requests   # [("GET", "ci", ("repository:a:pull",)), ("POST", "ci", (...))]: who asked for what

- `GET realm?service=…&scope=…` with basic credentials of `users` (the token spec's first flow): `{"token": …}`.
- `POST realm` with the form `grant_type=refresh_token&refresh_token=…&service=…&scope=…` (the OAuth2 flow):
  `{"access_token": …}`; a refresh token it does not know is answered 401, as is a GET without valid credentials.
Tokens are ES256 JWTs whose certificate (x5c) is in `root_bundle`, granting every scope asked for.
"""

from __future__ import annotations

import base64
import datetime
import time
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from testbed.http_server import LocalHttpServer, QuietRequestHandler

ISSUER = "testbed-token-issuer"
SERVICE = "testbed-registry"
LIFETIME_SECONDS = 300  # the default `lifetime` of the tokens issued (their `exp` and `expires_in`)


class _Handler(QuietRequestHandler):
    def do_GET(self) -> None:
        service: TokenService = self.server.owner  # type: ignore[attr-defined]
        scopes = tuple(parse_qs(urlsplit(self.path).query).get("scope", []))
        user = service.basic_user(self.lowercase_headers().get("authorization"))
        service.requests.append(("GET", user, scopes))
        if user is None:
            self.send_json(401, {"details": "credentials required"})
            return
        self.send_json(200, {"token": service.token(user, scopes), "expires_in": service.lifetime})

    def do_POST(self) -> None:
        service: TokenService = self.server.owner  # type: ignore[attr-defined]
        form = parse_qs(self.read_body().decode())
        scopes = tuple(" ".join(form.get("scope", [])).split())
        user = None
        if form.get("grant_type") == ["refresh_token"]:
            user = service.refresh_tokens.get((form.get("refresh_token") or [""])[0])
        service.requests.append(("POST", user, scopes))
        if user is None:
            self.send_json(401, {"error": "invalid_grant"})
            return
        self.send_json(200, {"access_token": service.token(user, scopes), "expires_in": service.lifetime})


class TokenService:
    """The token service; start it (or use it as a context manager) before the registry that trusts it.

    `lifetime` is how long the tokens it issues from now on are good for, in seconds (`exp` and `expires_in`); a test
    may shorten it to see a client fetch a new token.
    """

    def __init__(self, root: Path, *, users: dict[str, str], refresh_tokens: dict[str, str]) -> None:
        self.users, self.refresh_tokens = users, refresh_tokens
        self.lifetime = LIFETIME_SECONDS
        self.requests: list[tuple[str, str | None, tuple[str, ...]]] = []
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "testbed token issuer")])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        root.mkdir(parents=True, exist_ok=True)
        self.root_bundle = root / "token-ca.pem"
        self.root_bundle.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        self._x5c = base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()
        self._server = LocalHttpServer(_Handler, owner=self, silenced_errors=(ConnectionError,))
        self.realm = f"{self._server.url}/token"

    def registry_settings(self) -> dict[str, str]:
        """The registry's `auth.token` configuration (testbed.registry.LocalRegistry's `token_auth`)."""
        return {"realm": self.realm, "service": SERVICE, "issuer": ISSUER, "rootcertbundle": str(self.root_bundle)}

    def basic_user(self, header: str | None) -> str | None:
        if not header or not header.startswith("Basic "):
            return None
        username, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return username if self.users.get(username) == password else None

    def token(self, user: str, scopes: tuple[str, ...]) -> str:
        now = int(time.time())
        access = []
        for scope in scopes:
            kind, rest = scope.split(":", 1)
            resource, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": resource, "actions": actions.split(",")})
        claims = {"iss": ISSUER, "sub": user, "aud": SERVICE, "exp": now + self.lifetime, "nbf": now - 5,
                  "iat": now, "jti": f"{now}-{len(self.requests)}", "access": access}
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"x5c": [self._x5c]})

    def start(self) -> Self:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
