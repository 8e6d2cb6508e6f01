"""Tests for importer.adapters.registry.acr.AcrRegistry, the Registry port for Azure Container Registry.

Real: the adapter's /v2 paths (manifests, blobs, mounts, uploads, deletes) against a real distribution registry
(testbed.registry.LocalRegistry), anonymous, the way the pipeline runs locally.
Contract (`test_contract_…`): FakeAcr, a small HTTP server on 127.0.0.1 that answers like ACR with the documented
shapes: the AAD OAuth2 flow of Azure/acr docs/AAD-OAuth.md (`WWW-Authenticate: Bearer realm=…,service=…,scope=…`,
`POST /oauth2/exchange` → `{"refresh_token"}`, `POST /oauth2/token` → `{"access_token"}`, JWT tokens) and the
data-plane REST API 2021-07-01 (azure-rest-api-specs …/Azure.ContainerRegistry/stable/2021-07-01/examples:
GetManifestAttributes, UpdateManifestAttributes, DeleteTag, GetTagList, GetRepositoryList; `Link` pagination with
`n` and `last`). The AAD credential is FixedCredential, a TokenCredential returning a fixed token: no test sends
anything beyond 127.0.0.1 (the registry host myreg.azurecr.io only ever appears as the token `service`).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import jwt
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError

from importer.adapters.registry.acr import AcrRegistry, azure_credential
from importer.core.media_types import OCI_INDEX, OCI_MANIFEST
from importer.core.reference import ReferenceError
from importer.ports.abilities import ManifestProperties, TagProperties
from importer.ports.registry import (
    InsecureTransportRefused,
    ManifestHead,
    NotFound,
    ProtocolError,
    Registry,
    RegistryError,
    TransientRegistryError,
    Unauthorized,
)
from testbed.http_server import LocalHttpServer, QuietRequestHandler
from testbed.registry import LocalRegistry

pytestmark = pytest.mark.timeout(60)

ACR_HOST = "myreg.azurecr.io"
AAD_TOKEN = "aad-token-of-the-function-identity"
AAD_SCOPE = "https://containerregistry.azure.net/.default"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
CREATED = "2018-09-06T06:17:20.9983915Z"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_manifest(config: bytes, layer: bytes) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": digest_of(layer), "size": len(layer)}],
        },
        sort_keys=True,
    ).encode()


def sample_manifest(seed: str) -> bytes:
    return image_manifest(f'{{"os":"linux","seed":"{seed}"}}'.encode(), f"layer {seed}".encode())


# The AAD credential: an input, returning a fixed token (or raising what it is told to)


class FixedCredential:
    """A TokenCredential that returns a fixed AAD token and records what it was asked for."""

    def __init__(self, token: str = AAD_TOKEN, *, lifetime: int = 3600, error: Exception | None = None) -> None:
        self.token = token
        self.lifetime = lifetime
        self.error = error
        self.calls: list[tuple[tuple[str, ...], str | None]] = []

    def get_token(self, *scopes: str, tenant_id: str | None = None, **options: Any) -> AccessToken:
        self.calls.append((scopes, tenant_id))
        if self.error is not None:
            raise self.error
        return AccessToken(self.token, int(time.time()) + self.lifetime)


class FakeClock:
    """A wall clock the test moves forward by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# FakeAcr: answers like ACR, with the documented shapes


@dataclass(frozen=True, slots=True)
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode(), keep_blank_values=True)


@dataclass(slots=True)
class StoredManifest:
    raw: bytes
    media_type: str
    attributes: dict[str, bool] = field(
        default_factory=lambda: {"deleteEnabled": True, "writeEnabled": True, "readEnabled": True, "listEnabled": True}
    )


V2_MANIFEST = re.compile(r"/v2/(?P<repo>.+)/manifests/(?P<ref>[^/]+)")
V2_UPLOADS = re.compile(r"/v2/(?P<repo>.+)/blobs/uploads/")
ACR_TAG = re.compile(r"/acr/v1/(?P<repo>.+)/_tags/(?P<tag>[^/]+)")
ACR_TAGS = re.compile(r"/acr/v1/(?P<repo>.+)/_tags")
ACR_MANIFEST = re.compile(r"/acr/v1/(?P<repo>.+)/_manifests/(?P<digest>[^/]+)")
Grant = tuple[str, str, str]  # (type, name, action)


def parse_scope(scope: str) -> set[Grant]:
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    return {(kind, name, action) for action in actions.split(",")}


def acr_error(code: str, message: str) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": message}]}).encode()


class FakeAcr:
    """An HTTP server on 127.0.0.1 answering ACR's token exchange, /v2 manifests and /acr/v1 metadata calls."""

    def __init__(
        self,
        *,
        host: str = ACR_HOST,
        jwt_tokens: bool = True,
        refresh_lifetime: int = 3 * 3600,
        access_lifetime: int = 75 * 60,
        challenge_service: str | None = None,
        denied_repositories: frozenset[str] = frozenset(),
    ) -> None:
        self.host = host
        self.jwt_tokens = jwt_tokens
        self.refresh_lifetime = refresh_lifetime
        self.access_lifetime = access_lifetime
        self.challenge_service = challenge_service or host
        self.denied_repositories = denied_repositories
        self.lock = threading.Lock()
        self.seen: list[Seen] = []
        self.overrides: dict[str, tuple[int, bytes]] = {}  # path → fixed answer
        self.loop_pagination = False
        self.refresh_tokens: set[str] = set()
        self.access_tokens: dict[str, set[Grant]] = {}
        self.manifests: dict[tuple[str, str], StoredManifest] = {}
        self.tags: dict[str, dict[str, dict[str, str]]] = {}
        self._clock = 0
        owner = self

        class Handler(QuietRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes: no delayed-ACK stalls

            def handle_one(self) -> None:
                body = self.read_body()
                parts = urlsplit(self.path)
                seen = Seen(
                    self.command,
                    unquote(parts.path),
                    parse_qs(parts.query, keep_blank_values=True),
                    self.lowercase_headers(),
                    body,
                )
                with owner.lock:
                    owner.seen.append(seen)
                    status, headers, answer = owner.answer(seen)
                self.send_body(status, answer, headers)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_one

        self._http = LocalHttpServer(Handler, name="fake-acr")
        self.endpoint = self._http.url

    def start(self) -> FakeAcr:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    # Content

    def add_image(self, repository: str, tag: str | None, raw: bytes, media_type: str = OCI_MANIFEST) -> str:
        digest = digest_of(raw)
        self.manifests[(repository, digest)] = StoredManifest(raw, media_type)
        repository_tags = self.tags.setdefault(repository, {})
        if tag is not None:
            self._clock += 1
            moment = f"2024-01-01T00:00:{self._clock:02d}.0000000Z"
            repository_tags[tag] = {"digest": digest, "createdTime": moment, "lastUpdateTime": moment}
        return digest

    def revoke(self, *, refresh: bool = True, access: bool = True) -> None:
        with self.lock:
            if refresh:
                self.refresh_tokens.clear()
            if access:
                self.access_tokens.clear()

    def requests_to(self, path: str) -> list[Seen]:
        with self.lock:
            return [seen for seen in self.seen if seen.path == path]

    # Answers

    def answer(self, request: Seen) -> tuple[int, dict[str, str], bytes]:
        if request.path in self.overrides:
            status, body = self.overrides[request.path]
            return status, {"Content-Type": "application/json"}, body
        if request.path == "/oauth2/exchange" and request.method == "POST":
            return self.exchange(request.form)
        if request.path == "/oauth2/token" and request.method == "POST":
            return self.token(request.form)
        needed = self.required(request)
        granted = self.grants_of(request.headers.get("authorization"))
        if not needed <= granted:
            scope = " ".join(sorted(f"{kind}:{name}:{action}" for kind, name, action in needed - granted))
            challenge = (
                f'Bearer realm="https://{self.host}/oauth2/token",service="{self.challenge_service}",scope="{scope}"'
            )
            return 401, {"WWW-Authenticate": challenge}, acr_error("UNAUTHORIZED", "authentication required")
        return self.serve(request)

    def issue(self, claims: dict[str, object], lifetime: int) -> str:
        if not self.jwt_tokens:
            return f"opaque-{uuid.uuid4()}"
        claims = {**claims, "exp": int(time.time()) + lifetime, "jti": str(uuid.uuid4()), "aud": self.host}
        return jwt.encode(claims, "a signing key only this fake server knows", algorithm="HS256")

    def exchange(self, form: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes]:
        if form.get("grant_type") != ["access_token"] or form.get("service") != [self.host]:
            return 400, {}, acr_error("UNSUPPORTED", "grant_type must be access_token for this service")
        if form.get("access_token") != [AAD_TOKEN]:
            return 401, {}, acr_error("UNAUTHORIZED", "the AAD access token is not valid")
        token = self.issue({"grant_type": "refresh_token"}, self.refresh_lifetime)
        self.refresh_tokens.add(token)
        return 200, {"Content-Type": "application/json"}, json.dumps({"refresh_token": token}).encode()

    def token(self, form: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes]:
        if form.get("grant_type") != ["refresh_token"] or form.get("service") != [self.host]:
            return 400, {}, acr_error("UNSUPPORTED", "grant_type must be refresh_token for this service")
        if len(form.get("refresh_token", [])) != 1 or form["refresh_token"][0] not in self.refresh_tokens:
            return 401, {}, acr_error("UNAUTHORIZED", "the refresh token is not valid")
        grants = {grant for scope in form.get("scope", []) for grant in parse_scope(scope)}
        grants = {grant for grant in grants if grant[1] not in self.denied_repositories}
        token = self.issue({"access": sorted(grants)}, self.access_lifetime)
        self.access_tokens[token] = grants
        return 200, {"Content-Type": "application/json"}, json.dumps({"access_token": token}).encode()

    def grants_of(self, authorization: str | None) -> set[Grant]:
        if not authorization or not authorization.startswith("Bearer "):
            return set()
        return self.access_tokens.get(authorization.removeprefix("Bearer "), set())

    @staticmethod
    def required(request: Seen) -> set[Grant]:
        method, path = request.method, request.path
        if path == "/acr/v1/_catalog":
            return {("registry", "catalog", "*")}
        if match := V2_MANIFEST.fullmatch(path):
            action = {"GET": "pull", "HEAD": "pull", "PUT": "push", "DELETE": "delete"}[method]
            return {("repository", match["repo"], action)}
        if match := V2_UPLOADS.fullmatch(path):
            needed = {("repository", match["repo"], "push")}
            return needed | {("repository", origin, "pull") for origin in request.query.get("from", [])}
        if match := ACR_MANIFEST.fullmatch(path):
            return {("repository", match["repo"], "metadata_write" if method == "PATCH" else "metadata_read")}
        if match := ACR_TAG.fullmatch(path):
            return {("repository", match["repo"], "delete" if method == "DELETE" else "metadata_read")}
        if match := ACR_TAGS.fullmatch(path):
            return {("repository", match["repo"], "metadata_read")}
        return set()

    def serve(self, request: Seen) -> tuple[int, dict[str, str], bytes]:
        json_type = {"Content-Type": "application/json"}
        if request.path == "/acr/v1/_catalog":
            names = sorted(self.tags)
            return self.page(request, "/acr/v1/_catalog", names, lambda page: {"repositories": page})
        if match := V2_MANIFEST.fullmatch(request.path):
            return self.serve_manifest(request, match["repo"], match["ref"])
        if V2_UPLOADS.fullmatch(request.path):
            return 201, {"Location": request.path}, b""
        if match := ACR_MANIFEST.fullmatch(request.path):
            stored = self.manifests.get((match["repo"], match["digest"]))
            if stored is None:
                return 404, json_type, acr_error("MANIFEST_UNKNOWN", "manifest unknown")
            if request.method == "PATCH":
                if request.headers.get("content-type") != "application/json":
                    return 415, json_type, acr_error("UNSUPPORTED", "expected application/json")
                changes = json.loads(request.body)
                stored.attributes.update({key: value for key, value in changes.items() if key in stored.attributes})
            return 200, json_type, json.dumps(self.properties(match["repo"], match["digest"])).encode()
        if (match := ACR_TAG.fullmatch(request.path)) and request.method == "DELETE":
            if self.tags.get(match["repo"], {}).pop(match["tag"], None) is None:
                return 404, json_type, acr_error("TAG_UNKNOWN", "the specified tag does not exist")
            return 202, {}, b""
        if match := ACR_TAGS.fullmatch(request.path):
            return self.serve_tags(request, match["repo"])
        return 404, {"Content-Type": "text/plain"}, b"404 page not found\n"

    def serve_manifest(self, request: Seen, repository: str, reference: str) -> tuple[int, dict[str, str], bytes]:
        if request.method == "PUT":
            digest = self.add_image(repository, None if ":" in reference else reference, request.body,
                                    request.headers["content-type"])
            return 201, {"Docker-Content-Digest": digest, "Location": request.path}, b""
        tagged = self.tags.get(repository, {}).get(reference)
        digest = tagged["digest"] if tagged else reference
        if request.method == "DELETE":
            self.manifests.pop((repository, digest))
            self.tags[repository] = {n: t for n, t in self.tags[repository].items() if t["digest"] != digest}
            return 202, {}, b""
        stored = self.manifests.get((repository, digest))
        if stored is None:
            return 404, {"Content-Type": "application/json"}, acr_error("MANIFEST_UNKNOWN", "manifest unknown")
        return 200, {"Content-Type": stored.media_type, "Docker-Content-Digest": digest}, stored.raw

    def properties(self, repository: str, digest: str) -> dict[str, object]:
        stored = self.manifests[(repository, digest)]
        tags = sorted(name for name, tag in self.tags.get(repository, {}).items() if tag["digest"] == digest)
        return {
            "registry": self.host,
            "imageName": repository,
            "manifest": {
                "digest": digest,
                "imageSize": len(stored.raw),
                "createdTime": CREATED,
                "lastUpdateTime": CREATED,
                "architecture": "amd64",
                "os": "linux",
                "tags": tags,
                "changeableAttributes": dict(stored.attributes),
            },
        }

    def serve_tags(self, request: Seen, repository: str) -> tuple[int, dict[str, str], bytes]:
        entries = sorted(self.tags.get(repository, {}).items())
        order = request.query.get("orderby", [""])[0]
        if order in ("timedesc", "timeasc"):
            entries.sort(key=lambda item: item[1]["lastUpdateTime"], reverse=order == "timedesc")
        wanted = request.query.get("digest", [None])[0]
        entries = [entry for entry in entries if wanted is None or entry[1]["digest"] == wanted]

        def document(page: list[str]) -> dict[str, object]:
            listed = dict(entries)
            return {
                "registry": self.host,
                "imageName": repository,
                "tags": [
                    {
                        "name": name,
                        **listed[name],
                        "signed": False,
                        "changeableAttributes": dict(self.manifests[(repository, listed[name]["digest"])].attributes),
                    }
                    for name in page
                ],
            }

        return self.page(request, f"/acr/v1/{repository}/_tags", [name for name, _ in entries], document)

    def page(
        self, request: Seen, path: str, names: list[str], document: Callable[[list[str]], dict[str, object]]
    ) -> tuple[int, dict[str, str], bytes]:
        size = int(request.query.get("n", ["100"])[0])
        last = request.query.get("last", [None])[0]
        start = names.index(last) + 1 if last in names else 0
        page = names[start : start + size]
        headers = {"Content-Type": "application/json"}
        if self.loop_pagination:
            headers["Link"] = f'<{path}?{urlencode({"n": size})}>; rel="next"'
        elif start + size < len(names):
            query = urlencode({"last": page[-1], "n": size, "orderby": request.query.get("orderby", [""])[0]})
            headers["Link"] = f'<{path}?{query}>; rel="next"'
        return 200, headers, json.dumps(document(page)).encode()


@pytest.fixture
def fake_acr() -> Iterator[FakeAcr]:
    """A started FakeAcr holding team/app:1.0 and base/os:3.19, stopped after the test."""
    fake = FakeAcr().start()
    fake.add_image("team/app", "1.0", sample_manifest("app"))
    fake.add_image("base/os", "3.19", sample_manifest("os"))
    yield fake
    fake.stop()


@pytest.fixture
def start_fake_acr() -> Iterator[Callable[..., FakeAcr]]:
    """Start FakeAcr with options (holding team/app:1.0); every one started is stopped after the test."""
    started: list[FakeAcr] = []

    def start(**options: Any) -> FakeAcr:
        fake = FakeAcr(**options).start()
        fake.add_image("team/app", "1.0", sample_manifest("app"))
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.stop()


def acr_client(fake: FakeAcr, credential: FixedCredential | None = None, **options: Any) -> AcrRegistry:
    return AcrRegistry(
        ACR_HOST, credential=credential or FixedCredential(), endpoint=fake.endpoint, backoff=0.01, **options
    )


def secrets_of(fake: FakeAcr) -> set[str]:
    with fake.lock:
        return {AAD_TOKEN, *fake.refresh_tokens, *fake.access_tokens}


# Contract: the AAD OAuth2 flow


def test_contract_challenge_exchange_token_then_bearer(fake_acr: FakeAcr) -> None:
    """Pins AAD-OAuth.md: a 401 Bearer challenge, the /oauth2/exchange and /oauth2/token forms, then the Bearer call."""
    credential = FixedCredential()
    client = acr_client(fake_acr, credential)

    fetched = client.get_manifest("team/app", "1.0")

    assert fetched.raw == sample_manifest("app")
    first, exchange, token, second = fake_acr.seen
    assert (first.method, first.path, "authorization" in first.headers) == ("GET", "/v2/team/app/manifests/1.0", False)
    assert (exchange.method, exchange.path) == ("POST", "/oauth2/exchange")
    assert exchange.headers["content-type"] == "application/x-www-form-urlencoded"
    assert exchange.form == {"grant_type": ["access_token"], "service": [ACR_HOST], "access_token": [AAD_TOKEN]}
    (refresh_token,) = fake_acr.refresh_tokens
    assert (token.method, token.path) == ("POST", "/oauth2/token")
    assert token.form == {
        "grant_type": ["refresh_token"],
        "service": [ACR_HOST],
        "scope": ["repository:team/app:pull"],
        "refresh_token": [refresh_token],
    }
    (access_token,) = fake_acr.access_tokens
    assert (second.path, second.headers["authorization"]) == ("/v2/team/app/manifests/1.0", f"Bearer {access_token}")
    assert credential.calls == [((AAD_SCOPE,), None)]


@pytest.mark.parametrize(
    ("options", "exchange_tenant", "credential_call"),
    [
        ({}, None, ((AAD_SCOPE,), None)),
        ({"tenant_id": "72f988bf"}, ["72f988bf"], ((AAD_SCOPE,), "72f988bf")),
        ({"audience": "https://acr.sovereign.example"}, None, (("https://acr.sovereign.example/.default",), None)),
    ],
    ids=["defaults", "tenant-goes-to-the-credential-and-the-exchange", "audience-sets-the-aad-scope"],
)
def test_contract_tenant_and_audience(
    fake_acr: FakeAcr, options: dict[str, str], exchange_tenant: list[str] | None, credential_call: object
) -> None:
    """Pins the exchange form's optional `tenant` field and the AAD scope `<audience>/.default`."""
    credential = FixedCredential()
    acr_client(fake_acr, credential, **options).get_manifest("team/app", "1.0")

    (exchange,) = fake_acr.requests_to("/oauth2/exchange")
    assert exchange.form.get("tenant") == exchange_tenant
    assert credential.calls == [credential_call]


def test_contract_service_is_the_registry_host_while_requests_go_to_the_endpoint(fake_acr: FakeAcr) -> None:
    """Pins that token requests name `service=<registry host>` even though they are sent to the configured endpoint."""
    client = acr_client(fake_acr)
    client.get_manifest("team/app", "1.0")

    assert client.base_url == fake_acr.endpoint
    forms = [seen.form for seen in fake_acr.seen if seen.path.startswith("/oauth2/")]
    assert [form["service"] for form in forms] == [[ACR_HOST], [ACR_HOST]]


SCOPE_CASES: dict[str, tuple[Callable[[AcrRegistry, FakeAcr], object], set[str]]] = {
    "get-manifest": (lambda c, f: c.get_manifest("team/app", "1.0"), {"repository:team/app:pull"}),
    "head-manifest": (lambda c, f: c.head_manifest("team/app", "1.0"), {"repository:team/app:pull"}),
    "put-manifest": (
        lambda c, f: c.put_manifest("team/app", "2.0", sample_manifest("new"), OCI_MANIFEST),
        {"repository:team/app:pull,push"},
    ),
    "delete-manifest": (
        lambda c, f: c.delete_manifest("team/app", digest_of(sample_manifest("app"))),
        {"repository:team/app:delete"},
    ),
    "mount-blob": (
        lambda c, f: c.mount_blob("team/app", digest_of(b"layer os"), "base/os"),
        {"repository:team/app:pull,push", "repository:base/os:pull"},
    ),
    "delete-tag": (lambda c, f: c.delete_tag("team/app", "1.0"), {"repository:team/app:delete"}),
    "manifest-properties": (
        lambda c, f: c.manifest_properties("team/app", digest_of(sample_manifest("app"))),
        {"repository:team/app:metadata_read"},
    ),
    "lock-manifest": (
        lambda c, f: c.lock_manifest("team/app", digest_of(sample_manifest("app")), read=False, write=False,
                                     delete=False),
        {"repository:team/app:metadata_read,metadata_write"},
    ),
    "list-tag-properties": (lambda c, f: list(c.list_tag_properties("team/app")),
                            {"repository:team/app:metadata_read"}),
    "list-repository-names": (lambda c, f: list(c.list_repository_names()), {"registry:catalog:*"}),
}


@pytest.mark.parametrize("case", list(SCOPE_CASES.values()), ids=list(SCOPE_CASES))
def test_contract_scope_per_repository_and_action(
    fake_acr: FakeAcr, case: tuple[Callable[[AcrRegistry, FakeAcr], object], set[str]]
) -> None:
    """Pins the scope each operation asks /oauth2/token for (az acr's choice of actions), with no second challenge."""
    operation, expected_scopes = case
    client = acr_client(fake_acr)
    client.head_manifest("warm/up", "latest")  # the first challenge; from here on tokens are fetched up front
    before = len(fake_acr.requests_to("/oauth2/token"))

    operation(client, fake_acr)

    token_requests = fake_acr.requests_to("/oauth2/token")[before:]
    assert [set(seen.form["scope"]) for seen in token_requests] == [expected_scopes]
    assert len(fake_acr.requests_to("/oauth2/exchange")) == 1


def test_contract_one_exchange_and_one_token_per_scope_for_many_calls(fake_acr: FakeAcr) -> None:
    """Pins the caches: one AAD token and one exchange for a whole session, one /oauth2/token per set of scopes."""
    credential = FixedCredential()
    client = acr_client(fake_acr, credential)
    digest = digest_of(sample_manifest("app"))

    for _ in range(5):
        client.get_manifest("team/app", "1.0")
        client.head_manifest("base/os", "3.19")
        client.manifest_properties("team/app", digest)
        list(client.list_tag_properties("team/app"))
        list(client.list_repository_names())

    assert len(credential.calls) == 1
    assert len(fake_acr.requests_to("/oauth2/exchange")) == 1
    # four sets of scopes: team/app pull, base/os pull, team/app metadata_read (properties, tags), the catalog
    assert len(fake_acr.requests_to("/oauth2/token")) == 4
    assert len(fake_acr.seen) == 25 + 1 + 1 + 4  # the calls, one challenge, one exchange, the tokens


def test_contract_concurrent_first_calls_share_one_exchange(fake_acr: FakeAcr) -> None:
    """Pins one exchange per registry when many threads meet the first challenge at once."""
    repositories = [f"team/app{number}" for number in range(4)]
    for repository in repositories:
        fake_acr.add_image(repository, "1.0", sample_manifest(repository))
    client = acr_client(fake_acr)

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda n: client.get_manifest(repositories[n % 4], "1.0"), range(32)))

    assert {result.raw for result in results} == {sample_manifest(repository) for repository in repositories}
    assert len(fake_acr.requests_to("/oauth2/exchange")) == 1
    assert len(fake_acr.requests_to("/oauth2/token")) == 4


@pytest.mark.parametrize(
    ("jwt_tokens", "advance", "exchanges", "token_requests"),
    [
        (True, 600, 1, 1),
        (True, 75 * 60 - 30, 1, 2),
        (True, 3 * 3600 - 200, 2, 2),
        (False, 30, 1, 1),
        (False, 50, 1, 2),
        (False, 3400, 2, 2),
    ],
    ids=[
        "jwt-tokens-still-fresh",
        "jwt-access-token-within-a-minute-of-exp",
        "jwt-refresh-token-within-five-minutes-of-exp",
        "opaque-tokens-still-fresh",
        "opaque-access-token-past-the-default-minute",
        "opaque-refresh-token-lives-as-long-as-the-aad-token",
    ],
)
def test_contract_tokens_are_renewed_near_expiry(
    start_fake_acr: Callable[..., FakeAcr], jwt_tokens: bool, advance: float, exchanges: int, token_requests: int
) -> None:
    """Pins token lifetimes: the JWT `exp` of ACR tokens, else a minute (access) or the AAD token's expiry (refresh)."""
    fake = start_fake_acr(jwt_tokens=jwt_tokens)
    clock = FakeClock()
    client = acr_client(fake, clock=clock)
    client.get_manifest("team/app", "1.0")

    clock.advance(advance)
    client.get_manifest("team/app", "1.0")

    assert len(fake.requests_to("/oauth2/exchange")) == exchanges
    assert len(fake.requests_to("/oauth2/token")) == token_requests


@pytest.mark.parametrize(
    ("revoke", "advance"),
    [
        ({"refresh": True, "access": True}, 0),
        ({"refresh": False, "access": True}, 0),
        ({"refresh": True, "access": False}, 75 * 60),
    ],
    ids=[
        "both-tokens-refused",
        "access-token-refused-refresh-token-still-accepted",
        "refresh-token-refused-at-the-next-token-request",
    ],
)
def test_contract_a_refused_token_is_replaced_once(
    fake_acr: FakeAcr, revoke: dict[str, bool], advance: float
) -> None:
    """Pins recovery when ACR stops accepting our tokens (role change, rotation): one new exchange, then success.

    A refused access token drops its refresh token too: permissions are looked up at the exchange.
    """
    clock = FakeClock()
    client = acr_client(fake_acr, clock=clock)
    client.get_manifest("team/app", "1.0")
    fake_acr.revoke(**revoke)
    clock.advance(advance)

    assert client.get_manifest("team/app", "1.0").raw == sample_manifest("app")
    assert len(fake_acr.requests_to("/oauth2/exchange")) == 2


def test_contract_a_registry_that_keeps_refusing_raises_unauthorized(start_fake_acr: Callable[..., FakeAcr]) -> None:
    """Pins that a permanent refusal (identity without a role on the repository) ends after one retry, naming it."""
    fake = start_fake_acr(denied_repositories=frozenset({"team/app"}))
    client = acr_client(fake)

    with pytest.raises(Unauthorized, match=r"manifest myreg\.azurecr\.io/team/app:1\.0: the registry refused the "
                                           r"token obtained with FixedCredential \(HTTP 401: UNAUTHORIZED"):
        client.get_manifest("team/app", "1.0")
    assert [seen.path for seen in fake.seen].count("/v2/team/app/manifests/1.0") == 2


@dataclass(frozen=True, slots=True)
class RefusalCase:
    credential: FixedCredential
    override: tuple[str, int, bytes] | None
    error: type[RegistryError]
    message: str


REFUSAL_CASES = {
    "aad-token-refused-by-the-exchange": RefusalCase(
        FixedCredential("a-token-for-another-identity"), None, Unauthorized,
        r"ACR refresh token from 127\.0\.0\.1:\d+: http://127\.0\.0\.1:\d+/oauth2/exchange refused the Azure AD "
        r"token of FixedCredential \(HTTP 401: UNAUTHORIZED: the AAD access token is not valid\)",
    ),
    "credential-cannot-authenticate": RefusalCase(
        FixedCredential(error=ClientAuthenticationError("no managed identity endpoint")), None, Unauthorized,
        r"FixedCredential could not get an Azure AD token for https://containerregistry\.azure\.net/\.default: "
        r"ClientAuthenticationError: no managed identity endpoint",
    ),
    "credential-network-failure-is-transient": RefusalCase(
        FixedCredential(error=ServiceRequestError("connection reset")), None, TransientRegistryError,
        r"FixedCredential could not get an Azure AD token .*ServiceRequestError: connection reset",
    ),
    "exchange-answer-without-refresh-token": RefusalCase(
        FixedCredential(), ("/oauth2/exchange", 200, b"{}"), ProtocolError, r"the answer has no 'refresh_token'"
    ),
    "token-answer-not-json": RefusalCase(
        FixedCredential(), ("/oauth2/token", 200, b"<html>"), ProtocolError, r"access token .*: the answer is not JSON"
    ),
    "no-exchange-endpoint-at-all": RefusalCase(
        FixedCredential(), ("/oauth2/exchange", 404, b"404 page not found\n"), RegistryError,
        r"/oauth2/exchange does not exist \(HTTP 404: 404 page not found\): myreg\.azurecr\.io is not an Azure "
        r"Container Registry",
    ),
}


@pytest.mark.parametrize("case", list(REFUSAL_CASES.values()), ids=list(REFUSAL_CASES))
def test_contract_token_failures_name_the_cause_and_hide_the_secrets(fake_acr: FakeAcr, case: RefusalCase) -> None:
    """Pins the error for each way the token flow can fail; no message carries an AAD, refresh or access token."""
    if case.override is not None:
        path, status, body = case.override
        fake_acr.overrides[path] = (status, body)
    client = acr_client(fake_acr, case.credential)

    with pytest.raises(case.error, match=case.message) as raised:
        client.get_manifest("team/app", "1.0")
    assert str(raised.value).startswith("manifest myreg.azurecr.io/team/app:1.0: ")
    assert not any(secret in str(raised.value) for secret in secrets_of(fake_acr) | {case.credential.token})


def test_contract_challenge_for_another_service_is_refused(start_fake_acr: Callable[..., FakeAcr]) -> None:
    """Pins that a challenge naming another `service` stops before any token is exchanged."""
    fake = start_fake_acr(challenge_service="other.azurecr.io")
    credential = FixedCredential()

    with pytest.raises(ProtocolError, match=r"challenges for service 'other\.azurecr\.io', not 'myreg\.azurecr\.io'"):
        acr_client(fake, credential).get_manifest("team/app", "1.0")
    assert credential.calls == []
    assert fake.requests_to("/oauth2/exchange") == []


def test_contract_aad_and_refresh_tokens_go_only_to_the_token_endpoints(fake_acr: FakeAcr) -> None:
    """Pins where secrets travel: the AAD token only in the exchange form, refresh tokens only in token forms."""
    client = acr_client(fake_acr)
    client.get_manifest("team/app", "1.0")
    client.lock_manifest("team/app", digest_of(sample_manifest("app")), read=False, write=False, delete=False)
    list(client.list_repository_names())

    for seen in fake_acr.seen:
        carries_aad = AAD_TOKEN in seen.body.decode() or AAD_TOKEN in json.dumps(seen.headers)
        sent = seen.body.decode() + json.dumps(seen.headers)
        carries_refresh = any(token in sent for token in fake_acr.refresh_tokens)
        assert carries_aad == (seen.path == "/oauth2/exchange"), seen.path
        assert carries_refresh == (seen.path == "/oauth2/token"), seen.path


# Contract: /acr/v1 operations


@pytest.mark.parametrize(
    ("read", "write", "delete"),
    [(False, False, False), (True, False, False), (True, True, True)],
    ids=["quarantine-lock", "readable-but-frozen", "release"],
)
def test_contract_lock_manifest_patches_changeable_attributes(
    fake_acr: FakeAcr, read: bool, write: bool, delete: bool
) -> None:
    """Pins UpdateManifestAttributes: PATCH /acr/v1/{repo}/_manifests/{digest}, ManifestWriteableProperties as JSON."""
    digest = digest_of(sample_manifest("app"))
    client = acr_client(fake_acr)

    properties = client.lock_manifest("team/app", digest, read=read, write=write, delete=delete)

    (patch,) = [seen for seen in fake_acr.seen if seen.method == "PATCH" and "authorization" in seen.headers]
    assert patch.path == f"/acr/v1/team/app/_manifests/{digest}"
    assert patch.query["api-version"] == ["2021-07-01"]
    assert patch.headers["content-type"] == "application/json"
    assert json.loads(patch.body) == {"readEnabled": read, "writeEnabled": write, "deleteEnabled": delete}
    assert (properties.can_read, properties.can_write, properties.can_delete, properties.can_list) == (
        read, write, delete, True
    )
    assert client.manifest_properties("team/app", digest) == properties


def test_contract_manifest_properties_reads_the_documented_shape(fake_acr: FakeAcr) -> None:
    """Pins GetManifestAttributes: `manifest` with digest, imageSize, times, platform, tags, changeableAttributes."""
    raw = sample_manifest("app")
    fake_acr.add_image("team/app", "latest", raw)

    properties = acr_client(fake_acr).manifest_properties("team/app", digest_of(raw))

    assert properties == ManifestProperties(
        repository="team/app", digest=digest_of(raw), size=len(raw), created_on=CREATED, last_updated_on=CREATED,
        architecture="amd64", os="linux", tags=("1.0", "latest"),
        can_read=True, can_write=True, can_delete=True, can_list=True,
    )


def manifest_answer(**changes: object) -> bytes:
    manifest = {"digest": digest_of(sample_manifest("app")), "imageSize": 10, "changeableAttributes": {}}
    manifest.update(changes)
    return json.dumps({"registry": ACR_HOST, "imageName": "team/app", "manifest": manifest}).encode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"registry": "myreg.azurecr.io"}', "the answer has no 'manifest' object"),
        (manifest_answer(digest="sha256:" + "0" * 64), "the answer describes manifest 'sha256:000"),
        (manifest_answer(changeableAttributes={"readEnabled": "no"}), r"changeableAttributes\.readEnabled is 'no'"),
        (manifest_answer(imageSize="ten"), "'imageSize' is str, expected int"),
        (b"[]", "the answer is not a JSON object"),
    ],
    ids=["no-manifest", "another-digest", "flag-not-boolean", "size-not-a-number", "not-an-object"],
)
def test_contract_malformed_properties_raise_protocol_error(fake_acr: FakeAcr, body: bytes, message: str) -> None:
    """Pins that answers off the documented shape are refused with a message naming the manifest and the problem."""
    digest = digest_of(sample_manifest("app"))
    fake_acr.overrides[f"/acr/v1/team/app/_manifests/{digest}"] = (200, body)
    client = acr_client(fake_acr)
    client.head_manifest("team/app", "1.0")  # the challenge happens on /v2 (overrides skip the auth check)

    with pytest.raises(ProtocolError, match=rf"properties of manifest myreg\.azurecr\.io/team/app@{digest}: {message}"):
        client.manifest_properties("team/app", digest)


def test_contract_delete_tag(fake_acr: FakeAcr) -> None:
    """Pins DeleteTag: DELETE /acr/v1/{repo}/_tags/{tag} answered 202; a missing tag (404) raises NotFound."""
    client = acr_client(fake_acr)

    client.delete_tag("team/app", "1.0")

    deletes = [seen for seen in fake_acr.seen if seen.method == "DELETE"]
    assert [seen.path for seen in deletes] == ["/acr/v1/team/app/_tags/1.0"] * 2  # challenged, then authorised
    assert [tag.name for tag in client.list_tag_properties("team/app")] == []
    with pytest.raises(NotFound, match=r"deletion of tag myreg\.azurecr\.io/team/app:1\.0: not found .*TAG_UNKNOWN"):
        client.delete_tag("team/app", "1.0")


def test_contract_catalog_follows_link_pagination(fake_acr: FakeAcr) -> None:
    """Pins GetRepositoryList paging: `n` is the page size, `Link: <…?last=…&n=…>; rel="next"` the next page."""
    for name in ("alpine", "nginx", "redis"):
        fake_acr.add_image(f"library/{name}", "1", sample_manifest(name))

    names = list(acr_client(fake_acr).list_repository_names(page_size=2))

    assert names == ["base/os", "library/alpine", "library/nginx", "library/redis", "team/app"]
    pages = [seen.query for seen in fake_acr.requests_to("/acr/v1/_catalog") if "authorization" in seen.headers]
    assert [(page["n"], page.get("last")) for page in pages] == [
        (["2"], None), (["2"], ["library/alpine"]), (["2"], ["library/redis"])
    ]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, ["1.0", "1.1", "2.0", "latest"]),
        ({"order_by": "timedesc"}, ["latest", "2.0", "1.1", "1.0"]),
        ({"order_by": "timeasc"}, ["1.0", "1.1", "2.0", "latest"]),
        ({"digest": digest_of(sample_manifest("two"))}, ["2.0", "latest"]),
    ],
    ids=["by-name", "newest-first", "oldest-first", "tags-of-one-digest"],
)
def test_contract_tag_listing_pages_orders_and_filters(
    fake_acr: FakeAcr, options: dict[str, str], expected: list[str]
) -> None:
    """Pins GetTagList: `n`, `orderby`, `digest` and `Link` paging over `{"tags": [{name, digest, …}]}`."""
    fake_acr.add_image("team/app", "1.1", sample_manifest("app"))
    fake_acr.add_image("team/app", "2.0", sample_manifest("two"))
    fake_acr.add_image("team/app", "latest", sample_manifest("two"))

    tags = list(acr_client(fake_acr).list_tag_properties("team/app", page_size=2, **options))

    assert [tag.name for tag in tags] == expected
    pages = [seen for seen in fake_acr.requests_to("/acr/v1/team/app/_tags") if "authorization" in seen.headers]
    assert len(pages) == (len(expected) + 1) // 2


def test_contract_tag_listing_reads_the_documented_shape(fake_acr: FakeAcr) -> None:
    """Pins GetTagList's entries: name, digest, createdTime, lastUpdateTime and changeableAttributes."""
    digest = digest_of(sample_manifest("app"))
    client = acr_client(fake_acr)
    client.lock_manifest("team/app", digest, read=True, write=False, delete=False)

    assert list(client.list_tag_properties("team/app")) == [
        TagProperties(
            repository="team/app", name="1.0", digest=digest,
            created_on="2024-01-01T00:00:01.0000000Z", last_updated_on="2024-01-01T00:00:01.0000000Z",
            can_read=True, can_write=False, can_delete=False, can_list=True,
        )
    ]


def test_contract_pagination_that_loops_raises_protocol_error(fake_acr: FakeAcr) -> None:
    """Pins that a `Link` leading back to a page already read ends the listing with ProtocolError."""
    fake_acr.loop_pagination = True

    with pytest.raises(ProtocolError, match=r"ACR catalog of myreg\.azurecr\.io: pagination leads back"):
        list(acr_client(fake_acr).list_repository_names(page_size=1))


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda c: c.list_tag_properties("team/app", order_by="newest"), ValueError, "order_by must be one of"),
        (lambda c: c.list_tag_properties("team/app", page_size=0), ValueError, "page_size must be at least 1"),
        (lambda c: c.list_repository_names(page_size=-1), ValueError, "page_size must be at least 1"),
        (lambda c: c.lock_manifest("team/app", "1.0", read=False, write=False, delete=False), ReferenceError,
         "invalid digest '1.0'"),
        (lambda c: c.manifest_properties("Team/App", "sha256:" + "a" * 64), ReferenceError, "must be lower-case"),
        (lambda c: c.delete_tag("team/app", "-bad"), ReferenceError, "invalid tag '-bad'"),
    ],
    ids=["unknown-order", "page-size-zero", "negative-page-size", "lock-by-tag", "upper-case-repository", "bad-tag"],
)
def test_invalid_arguments_are_refused_before_any_request(
    fake_acr: FakeAcr, call: Callable[[AcrRegistry], object], error: type[Exception], message: str
) -> None:
    """An invalid argument raises at the call, naming it, and nothing is sent."""
    with pytest.raises(error, match=message):
        call(acr_client(fake_acr))
    assert fake_acr.seen == []


# Real: the /v2 paths against a distribution registry


@pytest.fixture(scope="module")
def local_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    with LocalRegistry(tmp_path_factory.mktemp("acr-adapter-registry")) as running:
        yield running


@pytest.fixture
def local_client(local_registry: LocalRegistry) -> Iterator[AcrRegistry]:
    """An anonymous AcrRegistry for the local registry (no credential, plain http to loopback)."""
    with AcrRegistry(local_registry.host) as client:
        yield client


@dataclass(frozen=True, slots=True)
class Pushed:
    repository: str
    digest: str
    raw: bytes
    layer: bytes
    config: bytes


def push(client: AcrRegistry, repository: str, tag: str) -> Pushed:
    layer = f"layer of {repository}:{tag}\n".encode() * 40
    config = json.dumps({"architecture": "arm64", "os": "linux", "rootfs": {"type": "layers"}}).encode()
    client.upload_blob(repository, digest_of(layer), [layer], size=len(layer))
    client.upload_blob(repository, digest_of(config), [config], size=len(config))
    raw = image_manifest(config, layer)
    return Pushed(repository, client.put_manifest(repository, tag, raw, OCI_MANIFEST), raw, layer, config)


def test_adapter_satisfies_the_registry_port(local_client: AcrRegistry) -> None:
    """AcrRegistry is a Registry, so the pipeline can use it wherever it uses OciRegistry."""
    assert isinstance(local_client, Registry)


@pytest.mark.parametrize("by", ["tag", "digest"])
def test_get_and_head_manifest_by_tag_or_digest(local_client: AcrRegistry, by: str) -> None:
    """Manifests come back verified, by tag and by digest, with the same digest, media type and size from HEAD."""
    pushed = push(local_client, "team/reads", "1.0")
    reference = "1.0" if by == "tag" else pushed.digest

    fetched = local_client.get_manifest("team/reads", reference)

    assert (fetched.raw, fetched.digest, fetched.media_type) == (pushed.raw, digest_of(pushed.raw), OCI_MANIFEST)
    head = local_client.head_manifest("team/reads", reference)
    assert head == ManifestHead(pushed.digest, OCI_MANIFEST, len(pushed.raw))
    assert local_client.head_manifest("team/reads", "absent") is None


def test_blobs_get_stream_and_head(local_client: AcrRegistry) -> None:
    """A pushed layer reads back whole and streamed; HEAD gives its size, or None where it is absent."""
    pushed = push(local_client, "team/blobs", "1.0")
    digest = digest_of(pushed.layer)

    assert local_client.get_blob("team/blobs", digest, max_bytes=1 << 20) == pushed.layer
    with local_client.open_blob("team/blobs", digest) as chunks:
        assert b"".join(chunks) == pushed.layer
    assert local_client.head_blob("team/blobs", digest) == len(pushed.layer)
    assert local_client.head_blob("team/blobs", digest_of(b"never pushed")) is None


@pytest.mark.parametrize(
    ("size", "size_known"),
    [(3000, True), (3000, False), (5 * 1024 * 1024 + 7, True)],
    ids=["small-with-size", "chunked-without-size", "streamed-over-four-mebibytes"],
)
def test_upload_blob(local_client: AcrRegistry, size: int, size_known: bool) -> None:
    """Uploads land whole whichever way they are sent (one PUT, chunked PATCHes, streamed PUT)."""
    blob = (f"upload {size} {size_known} ".encode() * (size // 10 + 1))[:size]
    digest = digest_of(blob)
    chunks = [blob[start : start + 65536] for start in range(0, size, 65536)]

    local_client.upload_blob("team/uploads", digest, chunks, size=size if size_known else None)

    assert local_client.head_blob("team/uploads", digest) == size


def test_mount_blob_between_repositories(local_client: AcrRegistry) -> None:
    """A blob mounts from another repository of the same registry; an absent one does not."""
    pushed = push(local_client, "team/source", "1.0")

    assert local_client.mount_blob("team/target", digest_of(pushed.layer), "team/source") is True
    assert local_client.head_blob("team/target", digest_of(pushed.layer)) == len(pushed.layer)
    assert local_client.mount_blob("team/target", digest_of(b"nowhere"), "team/source") is False


def test_put_index_by_tag_and_manifest_by_digest_then_delete(local_client: AcrRegistry) -> None:
    """An index is stored under a tag with its media type, a child by digest; deleting by digest removes both."""
    child = push(local_client, "team/multi", "child")
    index = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": child.digest, "size": len(child.raw),
             "platform": {"os": "linux", "architecture": "arm64"}}]},
        sort_keys=True,
    ).encode()

    assert local_client.put_manifest("team/multi", child.digest, child.raw, OCI_MANIFEST) == child.digest
    index_digest = local_client.put_manifest("team/multi", "2.0", index, OCI_INDEX)
    assert local_client.get_manifest("team/multi", "2.0").media_type == OCI_INDEX

    local_client.delete_manifest("team/multi", index_digest)
    assert local_client.head_manifest("team/multi", "2.0") is None
    assert local_client.head_manifest("team/multi", index_digest) is None


def test_a_credential_is_not_used_by_a_registry_that_never_challenges(local_registry: LocalRegistry) -> None:
    """With a credential, the local registry (which never challenges) is still read anonymously, no AAD token asked."""
    credential = FixedCredential()
    with AcrRegistry(local_registry.host, credential=credential) as client:
        pushed = push(client, "team/credential", "1.0")
        assert client.get_manifest("team/credential", "1.0").digest == pushed.digest
    assert credential.calls == []


ACR_ONLY_CALLS: dict[str, Callable[[AcrRegistry], object]] = {
    "delete-tag": lambda c: c.delete_tag("team/reads", "1.0"),
    "lock-manifest": lambda c: c.lock_manifest("team/reads", "sha256:" + "a" * 64, read=False, write=False,
                                               delete=False),
    "manifest-properties": lambda c: c.manifest_properties("team/reads", "sha256:" + "a" * 64),
    "list-repository-names": lambda c: list(c.list_repository_names()),
    "list-tag-properties": lambda c: list(c.list_tag_properties("team/reads")),
}


@pytest.mark.parametrize("call", list(ACR_ONLY_CALLS.values()), ids=list(ACR_ONLY_CALLS))
def test_acr_only_operations_on_distribution_say_they_need_acr(
    local_client: AcrRegistry, local_registry: LocalRegistry, call: Callable[[AcrRegistry], object]
) -> None:
    """On a plain distribution registry an /acr/v1 operation fails saying so, not with a misleading NotFound."""
    with pytest.raises(RegistryError, match=r"does not serve the ACR /acr/v1 API .*needs Azure Container") as e:
        call(local_client)
    assert type(e.value) is RegistryError
    assert local_registry.url in str(e.value)


# Construction: endpoints and the plain-http rule (no network)


@pytest.mark.parametrize(
    ("host", "endpoint", "allow_http", "base_url"),
    [
        (ACR_HOST, None, False, "https://myreg.azurecr.io"),
        (ACR_HOST, "http://127.0.0.1:5000", False, "http://127.0.0.1:5000"),
        (ACR_HOST, "https://10.1.2.3/", False, "https://10.1.2.3"),
        (ACR_HOST, "http://10.1.2.3:8080", True, "http://10.1.2.3:8080"),
        ("127.0.0.1:5000", None, False, "http://127.0.0.1:5000"),
    ],
    ids=["default-https-to-the-host", "loopback-http", "private-endpoint-address", "http-when-allowed", "local-host"],
)
def test_endpoint_sets_where_requests_go(host: str, endpoint: str | None, allow_http: bool, base_url: str) -> None:
    """Requests go to the endpoint when given, else to https://host (http for a loopback host)."""
    with AcrRegistry(host, endpoint=endpoint, allow_http=allow_http) as client:
        assert (client.host, client.base_url) == (host, base_url)


@pytest.mark.parametrize(
    ("endpoint", "error", "message"),
    [
        ("http://10.1.2.3", InsecureTransportRefused, "refusing plain http to 10.1.2.3"),
        ("https://10.1.2.3/v2", ValueError, "must not have a path, query or fragment"),
        ("https://10.1.2.3?x=1", ValueError, "must not have a path, query or fragment"),
        ("ftp://10.1.2.3", ValueError, "must be an http\\(s\\) URL"),
        ("https://user:secret@10.1.2.3", ValueError, "must not carry user information"),
    ],
    ids=["plain-http-to-a-remote-host", "with-a-path", "with-a-query", "not-http", "with-user-info"],
)
def test_bad_endpoints_are_refused(endpoint: str, error: type[Exception], message: str) -> None:
    """An endpoint that is not a bare http(s) origin, or plain http to a remote host, is refused at construction."""
    with pytest.raises(error, match=message):
        AcrRegistry(ACR_HOST, endpoint=endpoint, credential=FixedCredential())


def test_repr_names_the_registry_and_credential_but_no_secret(fake_acr: FakeAcr) -> None:
    """The repr tells which registry, endpoint and credential type, never a token."""
    client = acr_client(fake_acr)
    client.get_manifest("team/app", "1.0")

    text = repr(client) + repr(client._auth)
    expected = f"AcrRegistry('myreg.azurecr.io', base_url='{fake_acr.endpoint}', credential=FixedCredential)"
    assert text.startswith(expected)
    assert not any(secret in text for secret in secrets_of(fake_acr))


@pytest.mark.parametrize(
    ("client_id", "expected"),
    [("0b6f6a5e-client-id", "ManagedIdentityCredential"), (None, "DefaultAzureCredential")],
    ids=["user-assigned-identity", "default-chain"],
)
def test_azure_credential_picks_the_identity(client_id: str | None, expected: str) -> None:
    """A client id selects that user-assigned managed identity; without one, DefaultAzureCredential (built offline)."""
    credential = azure_credential(client_id)
    try:
        assert type(credential).__name__ == expected
    finally:
        credential.close()  # type: ignore[attr-defined]
