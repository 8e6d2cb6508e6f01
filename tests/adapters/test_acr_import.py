"""AcrImporter against a local server playing ARM (contract tests), and plan_import on images built in code.

ARM cannot be reached from here, so `FakeArm` answers on 127.0.0.1 with the documented shapes of
`Registries - Import Image` and of ARM's asynchronous operations (202 + `Azure-AsyncOperation` / `Location`,
`{"status": "InProgress" | "Succeeded" | "Failed", "error": {"code", "message"}}`, 429/5xx with Retry-After).
The real azure-mgmt-containerregistry and azure-core HTTP code talks to it; the credential is a TokenCredential
that hands out a fixed token, so nothing ever asks Microsoft Entra ID or management.azure.com.
The authorisation tests also run against testbed/arm.py's ArmImportSimulator, which performs the import for real
(into a local registry) and answers 202 + Location, or 403 AuthorizationFailed on the import or on its poll.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from importer.adapters.registry.acr_import import (
    IMPORT_ROLE,
    IMPORT_ROLE_ID,
    AcrImporter,
    AcrImportError,
    AcrImportUnauthorized,
    ImportResult,
)
from importer.adapters.registry.oci import OciRegistry
from importer.app.copying import CopyError
from importer.core.platforms import parse
from importer.core.selection import ImportPlan, plan_import
from importer.ports.deadlines import time_limit
from importer.ports.registry import FetchedManifest, RegistryError, Unauthorized
from testbed.arm import IMPORT_ACTION, POLL_ACTION, ArmImportSimulator
from testbed.http_server import LocalHttpServer, QuietRequestHandler
from testbed.images import ImageBuilder, children_of, multi, single
from testbed.push import push
from testbed.registry import LocalRegistry

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
RESOURCE_GROUP = "rg-guard"
REGISTRY_NAME = "guardacr"
IMPORT_PATH = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
    f"/providers/Microsoft.ContainerRegistry/registries/{REGISTRY_NAME}/importImage"
)
LOCATION_PATH = f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.ContainerRegistry/locations/westeurope"
STATUS_PATH = f"{LOCATION_PATH}/operationStatuses/op-1"  # the Azure-AsyncOperation URL
RESULT_PATH = f"{LOCATION_PATH}/operationResults/op-1"  # the Location URL
REGISTRY_ID = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
               f"/providers/Microsoft.ContainerRegistry/registries/{REGISTRY_NAME}")
BASE_ID = ("/subscriptions/00000000-0000-0000-0000-000000000002/resourceGroups/rg-base"
           "/providers/Microsoft.ContainerRegistry/registries/baseimages")
TOKEN = "fixed-arm-token-7c1e"
USERNAME = "guard-puller"
PASSWORD = "pw-Zk9!q4-not-for-logs"
DIGEST = "sha256:" + "ab" * 32
RETRIES = 2


# --- a local server playing ARM -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP answer; "{base}" in a header value becomes the server's own http://127.0.0.1:PORT."""

    status: int
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request the server received."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


ASYNC_HEADERS = {"Azure-AsyncOperation": "{base}" + STATUS_PATH, "Location": "{base}" + RESULT_PATH}
ACCEPTED = Reply(202, headers={**ASYNC_HEADERS, "Retry-After": "0", "x-ms-request-id": "req-42"})
IN_PROGRESS = Reply(200, {"status": "InProgress"})
SUCCEEDED = Reply(200, {"status": "Succeeded"})
NO_CONTENT = Reply(204)


def failed(code: str, message: str) -> Reply:
    return Reply(200, {"status": "Failed", "error": {"code": code, "message": message}})


def arm_error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}}, headers or {})


THROTTLED = arm_error(429, "TooManyRequests", "Too many requests, retry later", {"Retry-After": "0"})
UNAVAILABLE = arm_error(503, "ServiceUnavailable", "The service is unavailable")


class FakeArm:
    """ARM's importImage and its operation endpoints, answering from scripts (the last reply of each repeats).

    `post` answers POST importImage; `status` answers GETs on the Azure-AsyncOperation URL; `result` answers
    GETs on the Location URL. Every request is recorded in `requests`.
    """

    def __init__(self, *, post: Sequence[Reply], status: Sequence[Reply] = (), result: Sequence[Reply] = ()) -> None:
        self._scripts = {"post": list(post), "status": list(status), "result": list(result)}
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        # A client dropping its kept-alive connection prints no traceback.
        self._http = LocalHttpServer(self._handler(), name="fake-arm", silenced_errors=(ConnectionError,))
        self.base = self._http.url

    def start(self) -> FakeArm:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return sum(1 for request in self.requests if request.method == method and request.path == path)

    def _next(self, script: str) -> Reply:
        with self._lock:
            replies = self._scripts[script]
            if not replies:
                return Reply(404, {"error": {"code": "NotFound", "message": f"no {script} reply scripted"}})
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def _answer(self, method: str, path: str) -> Reply:
        if method == "POST" and path == IMPORT_PATH:
            return self._next("post")
        if method == "GET" and path == STATUS_PATH:
            return self._next("status")
        if method == "GET" and path == RESULT_PATH:
            return self._next("result")
        return Reply(404, {"error": {"code": "NotFound", "message": f"{method} {path}"}})

    def _handler(self) -> type[QuietRequestHandler]:
        arm = self

        class Handler(QuietRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                body = self.read_body()
                with arm._lock:
                    arm.requests.append(
                        Recorded(self.command, parts.path, parse_qs(parts.query), self.lowercase_headers(), body)
                    )
                reply = arm._answer(self.command, parts.path)
                payload = b"" if reply.body is None else json.dumps(reply.body).encode()
                headers = {name: value.replace("{base}", arm.base) for name, value in reply.headers.items()}
                if payload:
                    headers["Content-Type"] = "application/json"
                self.send_body(reply.status, payload, headers)

            do_GET = do_POST = _serve

        return Handler


class FixedTokenCredential:
    """A TokenCredential (azure-core protocol) handing out one fixed token; remembers the scopes it was asked for."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **options: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(TOKEN, int(time.time()) + 3600)


@pytest.fixture
def arm() -> Iterator[Callable[..., FakeArm]]:
    """Start a FakeArm with the given scripts: `server = arm(post=[ACCEPTED], status=[SUCCEEDED])`."""
    servers: list[FakeArm] = []

    def start(**scripts: Sequence[Reply]) -> FakeArm:
        server = FakeArm(**scripts).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def importer_for(server: FakeArm, credential: object | None = None, **options: Any) -> AcrImporter:
    """An AcrImporter pointed at `server`, with fast polling and retries (overridable through `options`)."""
    settings: dict[str, Any] = {"poll_interval": 0.02, "timeout": 10.0, "retries": RETRIES, "retry_backoff": 0.01}
    settings.update(options)
    return AcrImporter(
        subscription_id=SUBSCRIPTION,
        resource_group=RESOURCE_GROUP,
        registry_name=REGISTRY_NAME,
        credential=credential or FixedTokenCredential(),
        arm_endpoint=server.base,
        **settings,
    )


def run_import(server: FakeArm, **options: Any) -> ImportResult | AcrImportError:
    """Import with the usual arguments (overridable; `timeout`/`poll_interval` go to the importer).

    Returns the result, or the AcrImportError raised.
    """
    arguments: dict[str, Any] = {
        "source_registry": "upstream.example.com",
        "source_image": f"team/app@{DIGEST}",
        "target_tags": ["team/app:1.0"],
        "username": USERNAME,
        "password": PASSWORD,
    }
    settings = {name: options.pop(name) for name in ("timeout", "poll_interval") if name in options}
    arguments.update(options)
    with importer_for(server, **settings) as importer:
        try:
            return importer.import_image(**arguments)
        except AcrImportError as error:
            return error


# --- the request ----------------------------------------------------------------------------------------


REQUEST_CASES = [
    pytest.param(
        {
            "source_registry": "upstream.example.com",
            "source_image": f"team/app@{DIGEST}",
            "target_tags": ["team/app:1.0"],
            "untagged_repositories": ["mirror/app"],
            "username": USERNAME,
            "password": PASSWORD,
        },
        {
            "source": {
                "registryUri": "upstream.example.com",
                "sourceImage": f"team/app@{DIGEST}",
                "credentials": {"username": USERNAME, "password": PASSWORD},
            },
            "targetTags": ["team/app:1.0"],
            "untaggedTargetRepositories": ["mirror/app"],
            "mode": "Force",
        },
        id="by-digest-with-credentials",
    ),
    pytest.param(
        {"source_registry": "mcr.microsoft.com", "source_image": "dotnet/runtime:8.0", "target_tags": ["rt:8.0"],
         "mode": "NoForce"},
        {"source": {"registryUri": "mcr.microsoft.com", "sourceImage": "dotnet/runtime:8.0"},
         "targetTags": ["rt:8.0"], "mode": "NoForce"},
        id="by-tag-anonymous-noforce",
    ),
    pytest.param(
        {"source_registry": "registry-1.docker.io", "source_image": f"nginx@{DIGEST}",
         "untagged_repositories": ["dockerhub/library/nginx"]},
        {"source": {"registryUri": "docker.io", "sourceImage": f"library/nginx@{DIGEST}"},
         "untaggedTargetRepositories": ["dockerhub/library/nginx"], "mode": "Force"},
        id="docker-hub-alias-official-image",
    ),
]


@pytest.mark.parametrize(("arguments", "expected_body"), REQUEST_CASES)
def test_contract_import_request_shape(
    arm: Callable[..., FakeArm], arguments: dict[str, Any], expected_body: dict[str, Any]
) -> None:
    """Pins Registries - Import Image: POST …/importImage?api-version=…, a bearer token, the documented JSON body."""
    server = arm(post=[Reply(200)])
    credential = FixedTokenCredential()
    with importer_for(server, credential) as importer:
        result = importer.import_image(**arguments)
    assert result.status == "Succeeded"
    [request] = server.requests
    assert (request.method, request.path) == ("POST", IMPORT_PATH)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}(-preview)?", request.query["api-version"][0])
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"].startswith("application/json")
    assert request.json() == expected_body
    assert credential.scopes == [(f"{server.base}/.default",)]


def test_contract_import_digests_sends_one_untagged_import_per_digest(arm: Callable[..., FakeArm]) -> None:
    """Pins import_digests: each digest is its own importImage call, `repo@digest` into untaggedTargetRepositories."""
    server = arm(post=[Reply(200)])
    digests = ["sha256:" + "01" * 32, "sha256:" + "02" * 32]
    with importer_for(server) as importer:
        results = importer.import_digests(
            source_registry="upstream.example.com", source_repository="team/app", digests=digests,
            target_repository="mirror/app",
        )
    assert [result.status for result in results] == ["Succeeded", "Succeeded"]
    bodies = [request.json() for request in server.requests]
    assert [body["source"]["sourceImage"] for body in bodies] == [f"team/app@{digest}" for digest in digests]
    assert all(body["untaggedTargetRepositories"] == ["mirror/app"] and "targetTags" not in body for body in bodies)


RESOURCE_ID_CASES = [
    pytest.param({}, "baseimages.azurecr.io", BASE_ID, id="upstream-acr-by-resource-id"),
    pytest.param({}, "BaseImages.AzureCR.io", BASE_ID, id="upstream-host-in-any-case"),
    pytest.param({}, f"{REGISTRY_NAME}.azurecr.io", REGISTRY_ID, id="same-registry-by-its-own-id"),
    pytest.param({"login_server": "guardacr-h7b2d9fcdeb5gq8.azurecr.io"}, "guardacr-h7b2d9fcdeb5gq8.azurecr.io",
                 REGISTRY_ID, id="same-registry-with-domain-name-label-login-server"),
]


@pytest.mark.parametrize(("options", "source_registry", "resource_id"), RESOURCE_ID_CASES)
def test_contract_a_registry_known_by_resource_id_goes_as_resource_id_without_credentials(
    arm: Callable[..., FakeArm], options: dict[str, Any], source_registry: str, resource_id: str
) -> None:
    """Pins ImportSource.resourceId: a source registry named by ARM resource id (an upstream ACR in
    source_resource_ids, or the importer's own registry) is sent as `resourceId` with the bare `sourceImage` and no
    `registryUri` or `credentials` (Entra auth with the caller's identity), even when a username and password are
    given for its host."""
    server = arm(post=[Reply(200)])
    with importer_for(server, source_resource_ids={"baseimages.azurecr.io": BASE_ID}, **options) as importer:
        result = importer.import_image(source_registry=source_registry, source_image=f"team/app@{DIGEST}",
                                       untagged_repositories=["team/app"], username=USERNAME, password=PASSWORD)
    assert result.source_resource_id == resource_id
    [request] = server.requests
    assert request.json() == {
        "source": {"resourceId": resource_id, "sourceImage": f"team/app@{DIGEST}"},
        "untaggedTargetRepositories": ["team/app"],
        "mode": "Force",
    }


def test_contract_other_registries_still_go_by_registry_uri(arm: Callable[..., FakeArm]) -> None:
    """A host that is not named by resource id (here another ACR) keeps `registryUri` and its credentials."""
    server = arm(post=[Reply(200)])
    with importer_for(server, source_resource_ids={"baseimages.azurecr.io": BASE_ID}) as importer:
        result = importer.import_image(source_registry="other.azurecr.io", source_image=f"team/app@{DIGEST}",
                                       untagged_repositories=["team/app"], username=USERNAME, password=PASSWORD)
    assert result.source_resource_id is None
    assert server.requests[0].json()["source"] == {
        "registryUri": "other.azurecr.io", "sourceImage": f"team/app@{DIGEST}",
        "credentials": {"username": USERNAME, "password": PASSWORD}}


BAD_RESOURCE_ID_CASES = [
    pytest.param({"source_resource_ids": {"bad host!": BASE_ID}}, "source_resource_ids", id="bad-host"),
    pytest.param({"source_resource_ids": {"base.azurecr.io": "/subscriptions/x/registries/y"}},
                 "is not a registry's ARM resource id", id="not-a-registry-id"),
    pytest.param({"source_resource_ids": {f"{REGISTRY_NAME}.azurecr.io": BASE_ID}},
                 "is this importer's registry", id="own-host-with-another-id"),
    pytest.param({"login_server": "https://guardacr.azurecr.io"}, "login_server", id="login-server-with-scheme"),
]


@pytest.mark.parametrize(("options", "message"), BAD_RESOURCE_ID_CASES)
def test_bad_login_server_or_resource_ids_are_refused(options: dict[str, Any], message: str) -> None:
    """A malformed host or resource id, or the importer's own host mapped to another registry, is a ValueError."""
    with pytest.raises(ValueError, match=re.escape(message)):
        AcrImporter(subscription_id=SUBSCRIPTION, resource_group=RESOURCE_GROUP, registry_name=REGISTRY_NAME,
                    credential=FixedTokenCredential(), **options)


# --- the long-running operation -------------------------------------------------------------------------


LRO_CASES = [
    pytest.param(
        {"post": [ACCEPTED], "status": [IN_PROGRESS, IN_PROGRESS, SUCCEEDED], "result": [NO_CONTENT]},
        "{base}" + STATUS_PATH, 3, 1,
        id="azure-asyncoperation-then-location",
    ),
    pytest.param(
        {"post": [Reply(202, headers={"Location": "{base}" + RESULT_PATH, "Retry-After": "0"})],
         "result": [Reply(202, headers={"Retry-After": "0"}), Reply(202), Reply(200, {})]},
        "{base}" + RESULT_PATH, 0, 3,
        id="location-only",
    ),
    pytest.param({"post": [Reply(200)]}, None, 0, 0, id="finished-synchronously"),
]


@pytest.mark.parametrize(("scripts", "operation_url", "status_polls", "result_polls"), LRO_CASES)
def test_contract_long_running_operation_is_followed_to_success(
    arm: Callable[..., FakeArm], scripts: dict[str, list[Reply]], operation_url: str | None, status_polls: int,
    result_polls: int,
) -> None:
    """Pins ARM async operations: 202 + Azure-AsyncOperation/Location is polled, with the token, until it succeeds."""
    server = arm(**scripts)
    result = run_import(server)
    assert not isinstance(result, Exception), result
    assert result.status == "Succeeded"
    assert result.operation_url == (operation_url.replace("{base}", server.base) if operation_url else None)
    assert result.source == f"upstream.example.com/team/app@{DIGEST}"
    assert result.target_tags == ("team/app:1.0",)
    assert (server.count("GET", STATUS_PATH), server.count("GET", RESULT_PATH)) == (status_polls, result_polls)
    assert all(request.headers["authorization"] == f"Bearer {TOKEN}" for request in server.requests)


FAILURE_CASES = [
    pytest.param(
        {"post": [ACCEPTED], "status": [IN_PROGRESS, failed("InvalidParameters", "Image team/app not found")]},
        "InvalidParameters", "Image team/app not found", False,
        id="operation-failed-validation",
    ),
    pytest.param(
        {"post": [ACCEPTED], "status": [failed("InternalServerError", "Something went wrong in ACR")]},
        "InternalServerError", "Something went wrong in ACR", True,
        id="operation-failed-server-side",
    ),
    pytest.param(
        {"post": [Reply(202, headers={"Location": "{base}" + RESULT_PATH})],
         "result": [Reply(202), arm_error(400, "ImportSourceNotFound", "Source image was not found")]},
        "ImportSourceNotFound", "Source image was not found", False,
        id="location-poll-400",
    ),
    pytest.param(
        {"post": [arm_error(400, "InvalidParameter", "Invalid source image format")]},
        "InvalidParameter", "Invalid source image format", False,
        id="post-400",
    ),
    pytest.param(
        {"post": [arm_error(403, "AuthorizationFailed", "No importImage/action permission")]},
        "AuthorizationFailed", "No importImage/action permission", False,
        id="post-403",
    ),
    pytest.param(
        {"post": [arm_error(404, "ResourceNotFound", "Registry guardacr not found")]},
        "ResourceNotFound", "Registry guardacr not found", False,
        id="post-404",
    ),
]


@pytest.mark.parametrize(("scripts", "code", "message", "transient"), FAILURE_CASES)
def test_contract_failure_becomes_acr_import_error(
    arm: Callable[..., FakeArm], scripts: dict[str, list[Reply]], code: str, message: str, transient: bool
) -> None:
    """Pins ARM error bodies ({"error": {"code", "message"}}, status Failed): the error carries them and transience."""
    server = arm(**scripts)
    error = run_import(server)
    assert isinstance(error, AcrImportError) and isinstance(error, RegistryError)
    assert (error.code, error.transient) == (code, transient)
    assert f"{code}: {message}" in str(error)
    assert f"upstream.example.com/team/app@{DIGEST}" in str(error) and REGISTRY_NAME in str(error)


ODD_ANSWER_CASES = [
    pytest.param({"post": [ACCEPTED], "status": [Reply(200, {"status": "Canceled"})]}, "operation Canceled", False,
                 id="operation-canceled-without-error"),
    pytest.param({"post": [Reply(202)]}, "named no operation to follow", False, id="accepted-without-operation-header"),
    pytest.param({"post": [Reply(401)]}, "(HTTP 401)", False, id="post-401-without-body"),
]


@pytest.mark.parametrize(("scripts", "text", "transient"), ODD_ANSWER_CASES)
def test_contract_answers_without_error_code(
    arm: Callable[..., FakeArm], scripts: dict[str, list[Reply]], text: str, transient: bool
) -> None:
    """Pins answers outside the happy shapes (Canceled, 202 with nothing to poll, bare 401): permanent errors."""
    server = arm(**scripts)
    error = run_import(server)
    assert isinstance(error, AcrImportError)
    assert (error.code, error.transient) == (None, transient)
    assert text in str(error)


class RefusingCredential:
    """A TokenCredential whose token request fails, as azure-identity's do when no identity is available."""

    def get_token(self, *scopes: str, **options: Any) -> AccessToken:
        raise ClientAuthenticationError("ManagedIdentityCredential: no managed identity endpoint found")


def test_credential_failure_is_an_authorization_failure_and_nothing_is_sent(arm: Callable[..., FakeArm]) -> None:
    """When the credential yields no token the import fails as Unauthorized (as AcrRegistry's token failures do: an
    identity just assigned may not be usable yet), not transient, and no request reaches ARM."""
    server = arm(post=[Reply(200)])
    with importer_for(server, RefusingCredential()) as importer, pytest.raises(AcrImportUnauthorized) as raised:
        importer.import_image(source_registry="upstream.example.com", source_image=f"team/app@{DIGEST}",
                              target_tags=["team/app:1.0"])
    assert isinstance(raised.value, Unauthorized) and not raised.value.transient
    assert "no ARM token from the credential" in str(raised.value) and "no managed identity" in str(raised.value)
    assert server.requests == []


def test_unreachable_arm_is_transient(arm: Callable[..., FakeArm]) -> None:
    """A refused connection (after the SDK's connection retries) is a transient error naming the import."""
    server = arm(post=[Reply(200)])
    server.stop()
    error = run_import(server)
    assert isinstance(error, AcrImportError) and error.transient
    assert "ARM did not answer" in str(error) and REGISTRY_NAME in str(error)


THROTTLING_CASES = [
    pytest.param([THROTTLED, ACCEPTED], 2, "Succeeded", id="429-then-accepted"),
    pytest.param([UNAVAILABLE, UNAVAILABLE, ACCEPTED], 3, "Succeeded", id="503-twice-then-accepted"),
    pytest.param([arm_error(500, "InternalServerError", "oops"), ACCEPTED], 2, "Succeeded", id="500-then-accepted"),
    pytest.param([THROTTLED], RETRIES + 1, "TooManyRequests", id="429-beyond-retries"),
    pytest.param([UNAVAILABLE], RETRIES + 1, "ServiceUnavailable", id="503-beyond-retries"),
]


@pytest.mark.parametrize(("post", "posts", "outcome"), THROTTLING_CASES)
def test_contract_throttling_is_retried_then_transient(
    arm: Callable[..., FakeArm], post: list[Reply], posts: int, outcome: str
) -> None:
    """Pins ARM throttling (429 + Retry-After, 5xx): the SDK retries the POST, then a transient error is raised."""
    server = arm(post=post, status=[SUCCEEDED], result=[NO_CONTENT])
    result = run_import(server)
    assert server.count("POST", IMPORT_PATH) == posts
    if outcome == "Succeeded":
        assert not isinstance(result, Exception), result
        assert result.status == "Succeeded"
    else:
        assert isinstance(result, AcrImportError)
        assert result.transient and result.code == outcome


def test_contract_operation_that_never_finishes_times_out_within_the_bound(arm: Callable[..., FakeArm]) -> None:
    """Pins the bound: an operation stuck InProgress gives a transient error after `timeout`, and polling stops."""
    server = arm(post=[ACCEPTED], status=[IN_PROGRESS])
    with importer_for(server, timeout=0.6, poll_interval=0.02) as importer:  # stays open: a shared importer
        started = time.monotonic()
        with pytest.raises(AcrImportError) as raised:
            importer.import_image(source_registry="upstream.example.com", source_image=f"team/app@{DIGEST}",
                                  target_tags=["team/app:1.0"])
        elapsed = time.monotonic() - started
        assert raised.value.transient
        assert "not finished after 0.6 s" in str(raised.value) and STATUS_PATH in str(raised.value)
        assert 0.6 <= elapsed < 2.0
        time.sleep(0.2)
        polls = server.count("GET", STATUS_PATH)
        assert polls >= 3
        time.sleep(0.3)
        assert server.count("GET", STATUS_PATH) == polls, "the SDK's poller thread kept polling after the timeout"


@pytest.mark.parametrize("imports", [1, 3], ids=["one-import", "three-imports"])
def test_the_time_limit_of_the_work_in_hand_ends_imports_before_their_own_timeout(
    arm: Callable[..., FakeArm], imports: int
) -> None:
    """An operation stuck InProgress under the time limit of an event (importer.ports.deadlines) ends when that limit
    runs out, not after the importer's own 300 s, and the imports after it are not even asked for."""
    server = arm(post=[ACCEPTED], status=[IN_PROGRESS])
    digests = [f"sha256:{str(n) * 64}" for n in range(1, imports + 1)]
    with importer_for(server, timeout=300.0, poll_interval=0.02) as importer:
        started = time.monotonic()
        with time_limit(0.6, "event e-import"), pytest.raises(AcrImportError) as raised:
            importer.import_digests(source_registry="upstream.example.com", source_repository="team/app",
                                    digests=digests, target_repository="team/app")
        elapsed = time.monotonic() - started
    assert raised.value.transient
    assert "the time limit of event e-import (0.6 s) ran out" in str(raised.value)
    assert elapsed < 2.0
    assert server.count("POST", IMPORT_PATH) == 1


# --- authorisation: 401/403 on the import or on its poll -------------------------------------------------


def authorization_failed(action: str, scope: str) -> Reply:
    return arm_error(403, "AuthorizationFailed", f"The client 'c' with object id 'c' does not have authorization to "
                     f"perform action '{action}' over scope '{scope}' or the scope is invalid.")


ROLE = f'the identity needs the role "{IMPORT_ROLE}" ({IMPORT_ROLE_ID}) on registry {REGISTRY_ID}'

AUTHORIZATION_CASES = [
    pytest.param({"post": [authorization_failed(IMPORT_ACTION, REGISTRY_ID)]}, 403,
                 f"ARM refused the import: AuthorizationFailed: The client 'c' with object id 'c' does not have "
                 f"authorization to perform action '{IMPORT_ACTION}'", id="403-on-the-import"),
    pytest.param({"post": [arm_error(401, "InvalidAuthenticationToken", "The access token is invalid.")]}, 401,
                 "ARM did not accept the identity's token: InvalidAuthenticationToken: The access token is invalid.",
                 id="401-on-the-import"),
    pytest.param({"post": [Reply(202, headers={"Location": "{base}" + RESULT_PATH, "Retry-After": "0"})],
                  "result": [authorization_failed(POLL_ACTION, RESULT_PATH)]}, 403,
                 f"ARM accepted the import (202) but refused to report its progress: GET {{base}}{RESULT_PATH} "
                 f"answered HTTP 403: AuthorizationFailed", id="403-on-the-location-poll"),
    pytest.param({"post": [ACCEPTED], "status": [IN_PROGRESS, authorization_failed(POLL_ACTION, STATUS_PATH)]}, 403,
                 f"refused to report its progress: GET {{base}}{STATUS_PATH} answered HTTP 403",
                 id="403-on-the-azure-asyncoperation-poll-after-a-first-answer"),
    pytest.param({"post": [ACCEPTED], "status": [failed("AuthorizationFailed", "no access to the source")]}, 200,
                 "the import operation failed: AuthorizationFailed: no access to the source",
                 id="operation-failed-unauthorized"),
]


@pytest.mark.parametrize(("scripts", "status", "text"), AUTHORIZATION_CASES)
def test_contract_a_refused_identity_is_unauthorized_and_names_the_role(
    arm: Callable[..., FakeArm], scripts: dict[str, list[Reply]], status: int, text: str
) -> None:
    """Pins ARM's refusals (401, 403 AuthorizationFailed) of the importImage POST or of the GET of its operation:
    AcrImportUnauthorized, an `Unauthorized` registry error (tried again while role assignments propagate, like every
    401/403 in the product), saying which request was refused and what ARM said, and naming the role and its scope;
    a refused poll says the import may still finish."""
    server = arm(**scripts)
    error = run_import(server)
    assert isinstance(error, AcrImportUnauthorized) and isinstance(error, Unauthorized), error
    assert (error.status, error.transient) == (status, False)
    message = str(error)
    assert text.replace("{base}", server.base) in message
    assert message.endswith(f"{ROLE} (a new role assignment takes minutes to apply)")
    assert ("the import may still finish" in message) == ("poll" in text or "progress" in text)
    assert PASSWORD not in message and USERNAME not in message


def test_contract_a_source_by_resource_id_names_the_role_on_both_registries(arm: Callable[..., FakeArm]) -> None:
    """With the source named by resource id, the identity needs the role on the source registry too."""
    server = arm(post=[authorization_failed(IMPORT_ACTION, REGISTRY_ID)])
    with importer_for(server, source_resource_ids={"baseimages.azurecr.io": BASE_ID}) as importer:
        with pytest.raises(AcrImportUnauthorized) as raised:
            importer.import_image(source_registry="baseimages.azurecr.io", source_image=f"team/app@{DIGEST}",
                                  untagged_repositories=["team/app"])
    assert f"on registry {REGISTRY_ID} and on the source registry {BASE_ID}" in str(raised.value)


def simulated_importer(simulator: ArmImportSimulator, **options: Any) -> AcrImporter:
    return AcrImporter(subscription_id=SUBSCRIPTION, resource_group=RESOURCE_GROUP, registry_name=REGISTRY_NAME,
                       credential=FixedTokenCredential(), arm_endpoint=simulator.url, poll_interval=0.02, timeout=10.0,
                       retries=0, **options)


@pytest.mark.parametrize("refused", ["import", "poll"], ids=["403-on-the-import", "403-on-the-poll"])
def test_contract_simulator_403_is_unauthorized_and_names_the_role(
    registry: LocalRegistry, upstream: LocalRegistry, builder: ImageBuilder, refused: str
) -> None:
    """Against the ARM simulator: a 403 AuthorizationFailed on the import, or on the poll of the 202's Location (the
    import ran), is AcrImportUnauthorized naming ARM's missing action and the role the identity needs."""
    digest = push(builder, single(builder, "linux/amd64"), upstream.host, "mirror/app", "1")
    with ArmImportSimulator(target_host=registry.host, refuse={refused}) as simulator:
        with simulated_importer(simulator) as importer, pytest.raises(AcrImportUnauthorized) as raised:
            importer.import_digests(source_registry=upstream.host, source_repository="mirror/app", digests=[digest],
                                    target_repository="team/app")
    message = str(raised.value)
    assert isinstance(raised.value, Unauthorized) and raised.value.status == 403
    assert f'"{IMPORT_ROLE}" ({IMPORT_ROLE_ID}) on registry {REGISTRY_ID}' in message
    if refused == "import":
        assert "ARM refused the import: AuthorizationFailed" in message and IMPORT_ACTION in message
        assert simulator.polls == [] and OciRegistry(registry.host).head_manifest("team/app", digest) is None
    else:
        assert "ARM accepted the import (202) but refused to report its progress" in message
        assert POLL_ACTION in message and "the import may still finish" in message
        assert len(simulator.polls) == 1 and simulator.polls[0] in message
        assert OciRegistry(registry.host).head_manifest("team/app", digest) is not None  # it did run


def test_contract_simulator_imports_by_resource_id_through_a_202(
    registry: LocalRegistry, upstream: LocalRegistry, builder: ImageBuilder
) -> None:
    """Against the ARM simulator answering 202 + Location: an upstream named by resource id is imported with
    `source.resourceId` (no registryUri, no credentials), the Location is polled to success, the image arrives."""
    digest = push(builder, multi(builder, ["linux/amd64", "linux/arm64"]), upstream.host, "mirror/app", "1")
    with ArmImportSimulator(target_host=registry.host, registries={BASE_ID: upstream.host},
                            asynchronous=True) as simulator:
        with simulated_importer(simulator, source_resource_ids={upstream.host: BASE_ID}) as importer:
            [result] = importer.import_digests(source_registry=upstream.host, source_repository="mirror/app",
                                               digests=[digest], target_repository="team/app", username=USERNAME,
                                               password=PASSWORD)
    assert simulator.imports == [{"source": {"resourceId": BASE_ID, "sourceImage": f"mirror/app@{digest}"},
                                  "untaggedTargetRepositories": ["team/app"], "mode": "Force"}]
    assert result.status == "Succeeded" and result.operation_url is not None
    assert simulator.polls and result.operation_url.startswith(f"{simulator.url}{simulator.polls[0]}")
    assert OciRegistry(registry.host).head_manifest("team/app", digest) is not None


# --- secrets --------------------------------------------------------------------------------------------


LEAK_CASES = [
    pytest.param(
        {"post": [ACCEPTED], "status": [failed("ImportSourceUnauthorized", f"login {USERNAME}/{PASSWORD} refused")]},
        id="operation-failure-echoing-credentials",
    ),
    pytest.param({"post": [arm_error(400, "InvalidParameter", f"bad password {PASSWORD}")]}, id="post-400-echo"),
    pytest.param({"post": [THROTTLED]}, id="throttled"),
    pytest.param({"post": [ACCEPTED], "status": [IN_PROGRESS]}, id="timeout"),
    pytest.param({"post": [ACCEPTED], "status": [SUCCEEDED], "result": [NO_CONTENT]}, id="success"),
]


@pytest.mark.parametrize("scripts", LEAK_CASES)
def test_credentials_never_appear_in_errors_or_logs(
    arm: Callable[..., FakeArm], scripts: dict[str, list[Reply]], caplog: pytest.LogCaptureFixture
) -> None:
    """The source password, username and the ARM token reach the server but no exception text or log record."""
    caplog.set_level(logging.DEBUG)
    server = arm(**scripts)
    outcome = run_import(server, timeout=0.5)
    assert server.requests[0].json()["source"]["credentials"] == {"username": USERNAME, "password": PASSWORD}
    texts = [caplog.text, *(record.getMessage() for record in caplog.records)]
    if isinstance(outcome, Exception):
        texts += [str(outcome), repr(outcome)]
    else:
        texts.append(repr(outcome))
    for text in texts:
        assert PASSWORD not in text and USERNAME not in text and TOKEN not in text


# --- input checks ---------------------------------------------------------------------------------------


BAD_INPUT_CASES = [
    pytest.param({"source_image": "team/app"}, "neither a tag nor a digest", id="no-tag-no-digest"),
    pytest.param({"source_image": "team/app@sha256:123"}, "source_image 'team/app@sha256:123'", id="short-digest"),
    pytest.param({"source_image": "Team/App:1"}, "lower-case", id="upper-case-repository"),
    pytest.param({"source_registry": "bad host!"}, "source_registry", id="bad-registry"),
    pytest.param({"target_tags": ["team/app"]}, "target tag 'team/app'", id="target-without-tag"),
    pytest.param({"target_tags": [], "untagged_repositories": []}, "give target_tags", id="no-target"),
    pytest.param({"untagged_repositories": ["Mirror"]}, "untagged repository", id="bad-untagged-repository"),
    pytest.param({"mode": "force"}, "mode='force'", id="mode-is-case-sensitive"),
    pytest.param({"password": None}, "a username needs a password", id="username-without-password"),
]


@pytest.mark.parametrize(("override", "message"), BAD_INPUT_CASES)
def test_bad_input_is_refused_before_any_request(
    arm: Callable[..., FakeArm], override: dict[str, Any], message: str
) -> None:
    """Malformed arguments raise ValueError naming the input, and nothing is sent to ARM."""
    server = arm(post=[Reply(200)])
    arguments: dict[str, Any] = {
        "source_registry": "upstream.example.com",
        "source_image": f"team/app@{DIGEST}",
        "target_tags": ["team/app:1.0"],
        "username": USERNAME,
        "password": PASSWORD,
        **override,
    }
    with importer_for(server) as importer, pytest.raises(ValueError, match=re.escape(message)):
        importer.import_image(**arguments)
    assert server.requests == []


ENDPOINT_CASES = [
    pytest.param("http://management.example.com", "loopback addresses only", id="http-to-a-remote-host"),
    pytest.param("ftp://127.0.0.1", "expected https://host", id="not-http"),
    pytest.param("https://management.azure.com/subscriptions", "no path", id="with-a-path"),
]


@pytest.mark.parametrize(("endpoint", "message"), ENDPOINT_CASES)
def test_arm_endpoint_must_be_https_or_loopback(endpoint: str, message: str) -> None:
    """Plain http is allowed for loopback ARM endpoints only, and the endpoint is a bare origin."""
    with pytest.raises(ValueError, match=re.escape(message)):
        AcrImporter(subscription_id=SUBSCRIPTION, resource_group=RESOURCE_GROUP, registry_name=REGISTRY_NAME,
                    credential=FixedTokenCredential(), arm_endpoint=endpoint)


def test_module_import_does_not_load_the_azure_sdk() -> None:
    """Importing the module (a cold start) loads no Azure SDK module; the SDK comes in with the first import."""
    code = "import sys, importer.adapters.registry.acr_import; print(sorted(m for m in sys.modules if m.startswith('azure')))"
    output = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert output.stdout.strip() == "[]"


# --- plan_import ----------------------------------------------------------------------------------------


def fetched(builder: ImageBuilder, descriptor: Any) -> FetchedManifest:
    return FetchedManifest(builder.blob(descriptor.digest), descriptor.media_type, descriptor.digest)


def children(builder: ImageBuilder, descriptor: Any) -> list[str]:
    return [child.digest for child in children_of(builder, descriptor)]


WHOLE_CASES = [
    pytest.param({}, id="no-options"),
    pytest.param({"exclude": ("windows/*",)}, id="exclusion-matching-nothing"),
    pytest.param({"platforms": (parse("linux/amd64"), parse("linux/arm64"))}, id="every-platform-requested"),
]


@pytest.mark.parametrize("options", WHOLE_CASES)
def test_plan_import_whole_index_when_nothing_is_left_out(builder: ImageBuilder, options: dict[str, Any]) -> None:
    """When the subset keeps every child, the index itself is imported and its digest is kept."""
    index = multi(builder, ["linux/amd64", "linux/arm64"], attestations=True)
    plan = plan_import(fetched(builder, index), **options)
    assert plan == ImportPlan("whole", (index.digest,), index.digest, index.media_type)


def test_plan_import_filtered_index_is_assembled_from_kept_children(builder: ImageBuilder) -> None:
    """An exclusion that drops a child: the kept children (with their attestations) are imported, the index is ours."""
    index = multi(builder, ["linux/amd64", "windows/amd64", "linux/arm64"], attestations=True)
    amd64, windows, arm64, amd64_att, windows_att, arm64_att = children(builder, index)
    plan = plan_import(fetched(builder, index), exclude=("windows/*",))
    assert plan.shape == "assembled"
    assert plan.imports == (amd64, arm64, amd64_att, arm64_att)
    assert plan.manifest is not None and [entry["digest"] for entry in json.loads(plan.manifest)["manifests"]] == [
        amd64, arm64, amd64_att, arm64_att
    ]
    assert plan.digest == "sha256:" + hashlib.sha256(plan.manifest).hexdigest() != index.digest
    assert plan.media_type == index.media_type


def test_plan_import_flatten_imports_the_single_child(builder: ImageBuilder) -> None:
    """Flatten to one platform: the best child manifest is imported by digest and the tag ends on it."""
    index = multi(builder, ["linux/amd64", "linux/arm/v7", "linux/arm64"], attestations=True)
    _, arm_v7, arm64, *_ = children(builder, index)
    for requested, expected in (("linux/arm64/v8", arm64), ("linux/arm/v7", arm_v7)):
        plan = plan_import(fetched(builder, index), platforms=(parse(requested),), flatten=True)
        assert (plan.shape, plan.imports, plan.digest, plan.manifest) == ("single", (expected,), expected, None)


def test_plan_import_single_image_is_imported_whole(builder: ImageBuilder) -> None:
    """An image manifest (not an index) is imported as it is, whatever the options."""
    image = single(builder, "linux/amd64")
    plan = plan_import(fetched(builder, image), exclude=("windows/*",))
    assert plan == ImportPlan("whole", (image.digest,), image.digest, image.media_type)


def test_plan_import_index_larger_than_one_import_is_assembled_unchanged(builder: ImageBuilder) -> None:
    """An index with more children than one ACR import takes: children one by one, then the original bytes."""
    index = multi(builder, ["linux/amd64", "linux/arm64", "linux/s390x"])
    plan = plan_import(fetched(builder, index), max_manifests=2)
    assert plan.shape == "assembled"
    assert plan.imports == tuple(children(builder, index))
    assert (plan.manifest, plan.digest) == (builder.blob(index.digest), index.digest)


PLAN_ERROR_CASES = [
    pytest.param({"platforms": ("linux/amd64", "linux/arm64"), "flatten": True}, "flatten needs exactly one",
                 id="flatten-two-platforms"),
    pytest.param({"platforms": ("linux/ppc64le",)}, "not offered", id="platform-not-offered"),
    pytest.param({"exclude": ("linux/*",)}, "leaves no platform", id="everything-excluded"),
]


@pytest.mark.parametrize(("options", "message"), PLAN_ERROR_CASES)
def test_plan_import_refuses_what_cannot_be_met(builder: ImageBuilder, options: dict[str, Any], message: str) -> None:
    """Requests the upstream cannot satisfy raise CopyError, as the copy engine does."""
    index = multi(builder, ["linux/amd64", "linux/arm64"])
    options = {**options, "platforms": tuple(parse(text) for text in options.get("platforms", ()))}
    with pytest.raises(CopyError, match=message):
        plan_import(fetched(builder, index), **options)
