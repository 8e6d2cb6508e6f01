"""The two registry flavours of testbed/registry.py, distribution 2.8 and v3.1.2: what they share and what they serve.

Runs on both through `any_registry` (v3 skips where scripts/setup did not build it, or fails under
PLATFORM_GUARD_REQUIRE_TOOLS=1). The facts the product relies on: neither serves the OCI referrers API, neither
answers a manifest with `subject` with an `OCI-Subject` header, and both refuse an index whose children are missing.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from testbed.http_server import LocalHttpServer, QuietRequestHandler
from testbed.images import OCI_INDEX, OCI_MANIFEST, ImageBuilder, canonical_json, multi, single
from testbed.push import PushError, fetch_manifest, push, push_blob, push_raw_manifest
from testbed.registry import V3_TOOL, LocalRegistry
from testbed.tools import TOOLS_DIR_VARIABLE, require_tool

pytestmark = pytest.mark.timeout(120)


def http_status(url: str, *, method: str = "GET", accept: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_neither_flavour_serves_the_referrers_api(any_registry: LocalRegistry, builder: ImageBuilder) -> None:
    """An artifact with `subject` is stored, but `GET /v2/<name>/referrers/<digest>` is not a route (404, plain
    text), and the manifest PUT carries no `OCI-Subject` header: clients fall back to the referrers tag schema."""
    image = single(builder, "linux/amd64")
    push(builder, image, any_registry.host, "team/app", "1.0")
    artifact = builder.artifact(subject=image)
    for blob in (builder.document(artifact)["config"]["digest"], builder.document(artifact)["layers"][0]["digest"]):
        push_blob(any_registry.host, "team/app", builder.blob(blob))
    request = urllib.request.Request(
        f"{any_registry.url}/v2/team/app/manifests/{artifact.digest}", data=builder.blob(artifact.digest),
        method="PUT", headers={"Content-Type": OCI_MANIFEST},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 201
        assert "OCI-Subject" not in answer.headers

    status, headers, body = http_status(
        f"{any_registry.url}/v2/team/app/referrers/{image.digest}", accept=OCI_INDEX
    )
    assert (status, headers.get("Content-Type"), body.strip()) == (404, "text/plain; charset=utf-8",
                                                                  b"404 page not found")
    assert fetch_manifest(any_registry.host, "team/app", artifact.digest).digest == artifact.digest


def test_both_flavours_refuse_an_index_whose_children_are_missing(
    any_registry: LocalRegistry, builder: ImageBuilder
) -> None:
    """2.8 always checks an index's children; v3 does by default (`validation.manifests.indexes.platforms: all`)."""
    index = multi(builder, ["linux/amd64", "linux/arm64"])
    with pytest.raises(PushError, match="MANIFEST_BLOB_UNKNOWN|manifest blob unknown"):
        push_raw_manifest(any_registry.host, "team/app", "1.0", builder.blob(index.digest), OCI_INDEX)


def test_both_flavours_serve_what_was_pushed(any_registry: LocalRegistry, builder: ImageBuilder) -> None:
    index = multi(builder, ["linux/amd64", "linux/arm64"], attestations=True)
    assert push(builder, index, any_registry.host, "team/app", "1.0") == index.digest
    assert fetch_manifest(any_registry.host, "team/app", "1.0").body == canonical_json(builder.document(index))


@pytest.mark.parametrize("flavour", ["2.8", "v3"], ids=["distribution-2.8", "distribution-v3"])
def test_both_flavours_notify_a_push_with_the_bearer_token(
    tmp_path: Path, builder: ImageBuilder, flavour: str
) -> None:
    """The same notification settings work on v3: a push event for the tag, with the configured Authorization."""
    if flavour == "v3":
        require_tool(V3_TOOL)
    received: list[tuple[str, dict[str, Any]]] = []

    class Receiver(QuietRequestHandler):
        def do_POST(self) -> None:
            received.append((self.headers.get("Authorization", ""), json.loads(self.read_body())))
            self.send_body(200)

    image = single(builder, "linux/amd64")
    with LocalHttpServer(Receiver) as receiver, LocalRegistry(
        tmp_path / "registry", notify_url=f"{receiver.url}/events", token="t0ken", flavour=flavour  # type: ignore[arg-type]
    ) as registry:
        push(builder, image, registry.host, "team/app", "1.0")
        deadline = time.monotonic() + 10
        pushes: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not pushes:
            pushes = [event for _, envelope in list(received) for event in envelope["events"]
                      if event["action"] == "push" and event["target"].get("tag") == "1.0"]
            time.sleep(0.05)
    assert pushes, f"no push event for team/app:1.0 within 10 s: {received}"
    assert {authorization for authorization, _ in received} == {"Bearer t0ken"}
    target = pushes[0]["target"]
    assert (target["repository"], target["digest"], target["mediaType"]) == ("team/app", image.digest, OCI_MANIFEST)


@pytest.mark.parametrize(
    ("flavour", "error", "message"),
    [
        pytest.param("v3", RuntimeError, "registry is not built: run scripts/setup", id="v3-not-built"),
        pytest.param("v2", ValueError, "expected one of 2.8, v3", id="unknown-flavour"),
    ],
)
def test_a_flavour_that_cannot_start_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flavour: str, error: type[Exception], message: str
) -> None:
    monkeypatch.setenv(TOOLS_DIR_VARIABLE, str(tmp_path / "empty-tools"))
    with pytest.raises(error, match=message):
        LocalRegistry(tmp_path / "registry", flavour=flavour).start()  # type: ignore[arg-type]
