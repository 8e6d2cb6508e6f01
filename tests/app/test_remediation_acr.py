"""Remediation on Azure Container Registry: contract tests of the ACR-only steps, with real registries for the rest.

ACR's `/acr/v1` API cannot run here. A FaultProxy in front of a real distribution registry answers the documented
ACR endpoints (tag delete: `DELETE /acr/v1/{repo}/_tags/{tag}` → 202; lock: `PATCH /acr/v1/{repo}/_manifests/{digest}`
→ 200 with the manifest's attributes) and forwards everything else (`/v2`) to the registry, so the pipeline runs with
the AcrRegistry adapter end to end. Adapter selection by settings is checked without any network.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from importer.adapters.ledger.sqlite import SqliteLedger
from importer.adapters.registry.acr import AcrRegistry
from importer.adapters.registry.oci import OciRegistry
from importer.app.pipeline import AUTHORIZATION, Pipeline, TransientFailure
from importer.app.registries import RegistryDirectory
from importer.app.remediation import ReleaseError, quarantine_tag, registry_origin, release
from importer.app.settings import Settings, load_settings
from importer.core.events import PushEvent
from importer.core.manifests import Descriptor
from importer.core.media_types import OCI_INDEX, OCI_MANIFEST, QUARANTINE_ORIGIN_ARTIFACT
from importer.core.policy import parse_policy
from importer.core.quarantine_names import QuarantineOrigin
from importer.core.quarantine_origin import digest_of, origin_artifact
from importer.entry.composition import pipeline_for, registry_directory_for
from testbed.faults import CANNED, FaultProxy
from testbed.images import ImageBuilder, single
from testbed.push import fetch_manifest, push
from testbed.registry import LocalRegistry

SUB = "00000000-0000-0000-0000-000000000000"
ACR_ID = f"/subscriptions/{SUB}/resourceGroups/rg-guard/providers/Microsoft.ContainerRegistry/registries/myacr"
BASE_ID = f"/subscriptions/{SUB}/resourceGroups/rg-base/providers/Microsoft.ContainerRegistry/registries/baseimages"


def _policy(mode: str) -> str:
    return f"version: 1\ndefaults:\n  require: [linux/amd64]\n  on_violation: quarantine\nquarantine:\n  mode: {mode}\n"


def _properties(digest: str, *, read: bool) -> bytes:
    return json.dumps({"registry": "myacr.azurecr.io", "imageName": "team/app", "manifest": {
        "digest": digest, "imageSize": 1, "createdTime": "2026-11-26T00:00:00Z",
        "lastUpdateTime": "2026-11-26T00:00:00Z", "architecture": "arm64", "os": "linux", "tags": ["1"],
        "changeableAttributes": {"deleteEnabled": read, "writeEnabled": read, "readEnabled": read,
                                 "listEnabled": True}}}).encode()


@pytest.fixture
def acr(tmp_path: Path) -> Iterator[tuple[LocalRegistry, FaultProxy]]:
    """A real registry behind a proxy that plays the ACR-only endpoints."""
    with LocalRegistry(tmp_path / "acr") as registry, FaultProxy(registry.host) as proxy:
        yield registry, proxy


def _pipeline(tmp_path: Path, proxy: FaultProxy, mode: str) -> Pipeline:
    settings = Settings(registries=(proxy.host,), policy=parse_policy(_policy(mode)), ledger_path=tmp_path / "l.db")
    directory = RegistryDirectory(settings, factory=lambda host: AcrRegistry(host, endpoint=proxy.url, allow_http=True))
    return Pipeline(policy=settings.policy, ledger=SqliteLedger(settings.ledger_path), registries=directory)


def _event(host: str, digest: str) -> PushEvent:
    return PushEvent(event_id="e-1", schema="eventgrid", action="push", origin=host, repository="team/app", tag="1",
                     digest=digest, media_type=OCI_MANIFEST, size=1, artifact="image", actor="dev",
                     user_agent="docker", occurred_at=None)


def test_contract_move_on_acr_deletes_only_the_tag(acr: tuple[LocalRegistry, FaultProxy], builder: ImageBuilder,
                                                   tmp_path: Path) -> None:
    """`mode: move` on ACR copies the offender to quarantine, then DELETEs only its tag (the manifest stays)."""
    registry, proxy = acr
    bad = push(builder, single(builder, "linux/arm64"), registry.host, "team/app", "1")
    proxy.respond("/acr/v1/team/app/_tags/1", status=202, methods=("DELETE",))
    outcome = _pipeline(tmp_path, proxy, "move").handle(_event(proxy.host, bad))
    assert outcome is not None and outcome.result == "quarantined", outcome
    assert outcome.affected_tags == ("1",)
    assert [(r.method, r.path) for r in proxy.history() if r.fate == CANNED] == [("DELETE", "/acr/v1/team/app/_tags/1")]
    direct = OciRegistry(registry.host)
    assert direct.head_manifest("team/app", bad) is not None  # not deleted by digest, unlike on distribution
    assert direct.head_manifest("quarantine/team/app", quarantine_tag("1", bad)).digest == bad  # type: ignore[union-attr]


def test_contract_lock_quarantine_and_release(acr: tuple[LocalRegistry, FaultProxy], builder: ImageBuilder,
                                              tmp_path: Path) -> None:
    """`mode: lock` PATCHes the manifest's attributes off in place; `release` PATCHes them back on."""
    registry, proxy = acr
    bad = push(builder, single(builder, "linux/arm64"), registry.host, "team/app", "1")
    path = f"/acr/v1/team/app/_manifests/{bad}"
    proxy.respond(path, body=_properties(bad, read=False), headers={"Content-Type": "application/json"},
                  methods=("PATCH",))
    pipeline = _pipeline(tmp_path, proxy, "lock")
    outcome = pipeline.handle(_event(proxy.host, bad))
    assert outcome is not None and outcome.result == "quarantined", outcome
    assert outcome.preserved_as == f"{proxy.host}/team/app@{bad}" and "locked" in (outcome.reason or "")
    assert [(r.method, r.path) for r in proxy.history() if r.fate == CANNED] == [("PATCH", path)]
    assert "quarantine/team/app" not in list(OciRegistry(registry.host).catalog())  # nothing copied: locked in place

    proxy.respond(path, body=_properties(bad, read=False), headers={"Content-Type": "application/json"},
                  methods=("GET",))  # what the lock left: pulls disabled
    proxy.respond(path, body=_properties(bad, read=True), headers={"Content-Type": "application/json"},
                  methods=("PATCH",))
    released = release(pipeline.registries.client(proxy.host), pipeline.policy, pipeline.ledger, host=proxy.host,
                       quarantine_repository="team/app", quarantine_reference=bad)
    assert released.digest == bad
    assert [(r.method, r.path) for r in proxy.history() if r.fate == CANNED] == [
        ("PATCH", path), ("GET", path), ("PATCH", path)]
    assert pipeline.ledger.is_released(f"{proxy.host}/team/app", bad)


@pytest.mark.parametrize("any_source", [False, True], ids=["refused", "with-any-source"])
def test_contract_release_unlocks_only_what_a_quarantine_locked(
    acr: tuple[LocalRegistry, FaultProxy], builder: ImageBuilder, tmp_path: Path, any_source: bool
) -> None:
    """On ACR a manifest outside the quarantine repository is released by unlocking it: one whose pulls are enabled
    was never locked by a quarantine, so it is refused (nothing PATCHed, nothing marked released) unless any_source."""
    registry, proxy = acr
    good = push(builder, single(builder, "linux/amd64"), registry.host, "team/app", "1")
    path = f"/acr/v1/team/app/_manifests/{good}"
    proxy.respond(path, body=_properties(good, read=True), headers={"Content-Type": "application/json"},
                  methods=("GET", "PATCH"))
    pipeline = _pipeline(tmp_path, proxy, "lock")
    client = pipeline.registries.client(proxy.host)

    def release_it() -> object:
        return release(client, pipeline.policy, pipeline.ledger, host=proxy.host, quarantine_repository="team/app",
                       quarantine_reference=good, any_source=any_source)

    if any_source:
        assert release_it().digest == good  # type: ignore[attr-defined]
        assert [(r.method, r.path) for r in proxy.history() if r.fate == CANNED] == [("PATCH", path)]
    else:
        refusal = (rf"{proxy.host}/team/app@{good} is not in a quarantine repository "
                   r"\(quarantine/\{repository\}\) nor locked by a quarantine.*--any-source")
        with pytest.raises(ReleaseError, match=refusal):
            release_it()
        assert [(r.method, r.path) for r in proxy.history() if r.fate == CANNED] == [("GET", path)]
    assert pipeline.ledger.is_released(f"{proxy.host}/team/app", good) is any_source


def test_lock_needs_acr(registry: LocalRegistry, builder: ImageBuilder, tmp_path: Path) -> None:
    """`mode: lock` against a plain distribution registry fails clearly and changes nothing."""
    bad = push(builder, single(builder, "linux/arm64"), registry.host, "team/app", "1")
    settings = Settings(registries=(registry.host,), policy=parse_policy(_policy("lock")), ledger_path=tmp_path / "l.db")
    outcome = pipeline_for(settings).handle(_event(registry.host, bad))
    assert outcome is not None and outcome.result == "failed" and "needs Azure Container Registry" in (outcome.reason or "")
    assert OciRegistry(registry.host).head_manifest("team/app", "1").digest == bad  # type: ignore[union-attr]


def test_settings_alone_select_the_azure_adapters(tmp_path: Path) -> None:
    """With the Azure settings, the same pipeline builds the ACR adapter, ARM import and the Table ledger."""
    from importer.adapters.ledger.tables import TableLedger
    from importer.adapters.registry.acr_import import AcrImporter
    from importer.entry.composition import ledger_for, server_importer_for

    settings = load_settings({
        "PLATFORM_GUARD_ACR_RESOURCE_ID": ACR_ID,
        "PLATFORM_GUARD_TABLES_ENDPOINT": "https://account.table.core.windows.net",
        "AZURE_CLIENT_ID": "11111111-1111-1111-1111-111111111111",
    })
    assert settings.registries == ("myacr.azurecr.io",)
    assert isinstance(registry_directory_for(settings).client("myacr.azurecr.io"), AcrRegistry)
    assert isinstance(registry_directory_for(settings).client("docker.io"), OciRegistry)
    assert not isinstance(registry_directory_for(settings).client("docker.io"), AcrRegistry)
    importer = server_importer_for(settings)
    assert isinstance(importer, AcrImporter) and importer.registry_id.lower() == ACR_ID.lower()
    ledger = ledger_for(settings)
    assert isinstance(ledger, TableLedger)
    local = ledger_for(load_settings({"PLATFORM_GUARD_LEDGER": str(tmp_path / "x.db")}))
    assert isinstance(local, SqliteLedger)
    assert server_importer_for(load_settings({})) is None


class _FixedToken:
    """A TokenCredential input for the ARM client (azure-core protocol), handing out one fixed token."""

    def get_token(self, *scopes: str, **options: object) -> object:
        import time

        from azure.core.credentials import AccessToken

        return AccessToken("arm-token", int(time.time()) + 3600)


def _server_side_pipeline(tmp_path: Path, proxy: FaultProxy, upstream: LocalRegistry, arm: Any) -> Pipeline:
    """A re-import pipeline whose guarded registry is the ACR behind `proxy`, importing server-side through `arm`."""
    from importer.adapters.registry.acr_import import AcrImporter

    policy = parse_policy(
        "version: 1\ndefaults:\n  require: [linux/amd64, linux/arm64]\n  on_violation: reimport\n"
        f"  upstream: \"{upstream.host}/mirror/{{repository}}\"\n"
    )
    settings = Settings(registries=(proxy.host,), policy=policy, ledger_path=tmp_path / "l.db")
    directory = RegistryDirectory(
        settings,
        factory=lambda host: AcrRegistry(host, endpoint=proxy.url, allow_http=True) if host == proxy.host
        else OciRegistry(host),
    )
    importer = AcrImporter(subscription_id=SUB, resource_group="rg-guard", registry_name="myacr",
                           credential=_FixedToken(), login_server=proxy.host, arm_endpoint=arm.url,
                           poll_interval=0.05, timeout=30)
    return Pipeline(policy=policy, ledger=SqliteLedger(settings.ledger_path), registries=directory,
                    server_import=importer)


def test_reimport_on_acr_runs_server_side_through_arm_import(
    acr: tuple[LocalRegistry, FaultProxy], builder: ImageBuilder, tmp_path: Path
) -> None:
    """With an ACR resource id, a re-import asks ARM importImage for the chosen digest; no blob passes through us."""
    from testbed.arm import ArmImportSimulator
    from testbed.images import multi

    registry, proxy = acr
    with LocalRegistry(tmp_path / "upstream") as upstream, ArmImportSimulator(target_host=registry.host) as arm:
        good = push(builder, multi(builder, ["linux/amd64", "linux/arm64"]), upstream.host, "mirror/team/app", "1")
        bad = push(builder, single(builder, "linux/arm64", seed="laptop"), registry.host, "team/app", "1")
        pipeline = _server_side_pipeline(tmp_path, proxy, upstream, arm)
        outcome = pipeline.handle(_event(proxy.host, bad))
        assert outcome is not None and outcome.result == "reimported", outcome
        assert outcome.new_digest == good
        assert [body["source"]["sourceImage"] for body in arm.imports] == [f"mirror/team/app@{good}"]
        assert arm.imports[0]["untaggedTargetRepositories"] == ["team/app"]
        assert OciRegistry(registry.host).head_manifest("team/app", "1").digest == good  # type: ignore[union-attr]
        # The function itself uploaded no blob: every blob write went from the simulator straight to the registry.
        assert not [r for r in proxy.history() if r.method in ("POST", "PUT", "PATCH") and "/blobs/" in r.path
                    and "/quarantine/" not in r.path]


WIRING_CASES = {
    "derived-login-server": ({}, "myacr.azurecr.io", {}),
    "domain-name-label-login-server": ({"PLATFORM_GUARD_ACR_LOGIN_SERVER": "myacr-h7b2d9fcdeb5gq8.azurecr.io"},
                                       "myacr-h7b2d9fcdeb5gq8.azurecr.io", {}),
    "another-cloud-login-server": ({"PLATFORM_GUARD_ACR_LOGIN_SERVER": "myacr.azurecr.cn"}, "myacr.azurecr.cn", {}),
    "upstream-by-resource-id": ({"PLATFORM_GUARD_UPSTREAM_RESOURCE_IDS": f"base.azurecr.io={BASE_ID}"},
                                "myacr.azurecr.io", {"base.azurecr.io": BASE_ID}),
}


@pytest.mark.parametrize(("environ", "host", "upstreams"), WIRING_CASES.values(), ids=WIRING_CASES.keys())
def test_the_login_server_and_upstream_ids_reach_the_adapters(
    environ: dict[str, str], host: str, upstreams: dict[str, str]
) -> None:
    """The guarded ACR's host (PLATFORM_GUARD_ACR_LOGIN_SERVER, else derived) is the host that is guarded, reached with
    the ACR adapter, and the ARM importer's login server; the importer reads the upstream ids and itself by id."""
    from importer.adapters.registry.acr_import import AcrImporter
    from importer.entry.composition import server_importer_for

    settings = load_settings({"PLATFORM_GUARD_ACR_RESOURCE_ID": ACR_ID, **environ})
    assert settings.registries == (host,)
    assert isinstance(registry_directory_for(settings).client(host), AcrRegistry)
    importer = server_importer_for(settings)
    assert isinstance(importer, AcrImporter)
    assert importer.login_server == host
    assert importer.source_resource_ids == {**upstreams, host: importer.registry_id}
    assert importer.registry_id.lower() == ACR_ID.lower()


def _settings_pipeline(tmp_path: Path, proxy: FaultProxy, arm: Any, upstream: str, environ: dict[str, str]) -> Pipeline:
    """A re-import pipeline from the settings `environ` (the guarded ACR at the proxy's host, its login server), with
    the ARM importer wired as composition.server_importer_for wires it, but pointed at `arm` with a fixed token."""
    from importer.adapters.registry.acr_import import AcrImporter

    policy = ("version: 1\ndefaults:\n  require: [linux/amd64, linux/arm64]\n  on_violation: reimport\n"
              f"  upstream: \"{upstream}/{{repository}}\"\n")
    settings = load_settings({"PLATFORM_GUARD_ACR_RESOURCE_ID": ACR_ID, "PLATFORM_GUARD_ACR_LOGIN_SERVER": proxy.host,
                              "PLATFORM_GUARD_POLICY": policy, "PLATFORM_GUARD_LEDGER": str(tmp_path / "l.db"),
                              **environ})
    directory = RegistryDirectory(
        settings,
        factory=lambda host: AcrRegistry(host, endpoint=proxy.url, allow_http=True) if host == proxy.host
        else OciRegistry(host),
    )
    importer = AcrImporter(subscription_id=SUB, resource_group="rg-guard", registry_name="myacr",
                           credential=_FixedToken(), login_server=settings.acr_login_server,
                           source_resource_ids=settings.upstream_resource_ids, arm_endpoint=arm.url,
                           poll_interval=0.05, timeout=30, retries=0)
    return Pipeline(policy=settings.policy, ledger=SqliteLedger(settings.ledger_path), registries=directory,
                    server_import=importer)


def test_contract_server_side_reimport_reads_an_upstream_acr_by_resource_id(
    acr: tuple[LocalRegistry, FaultProxy], builder: ImageBuilder, tmp_path: Path
) -> None:
    """With PLATFORM_GUARD_UPSTREAM_RESOURCE_IDS naming the upstream, the importImage body the ARM simulator receives
    has `source.resourceId` and no registryUri or credentials, and the simulator finds and imports the image."""
    from testbed.arm import ArmImportSimulator
    from testbed.images import multi

    registry, proxy = acr
    with LocalRegistry(tmp_path / "upstream") as upstream, ArmImportSimulator(
        target_host=registry.host, registries={BASE_ID: upstream.host}, asynchronous=True
    ) as arm:
        good = push(builder, multi(builder, ["linux/amd64", "linux/arm64"]), upstream.host, "mirror/team/app", "1")
        bad = push(builder, single(builder, "linux/arm64", seed="laptop"), registry.host, "team/app", "1")
        pipeline = _settings_pipeline(tmp_path, proxy, arm, f"{upstream.host}/mirror",
                                      {"PLATFORM_GUARD_UPSTREAM_RESOURCE_IDS": f"{upstream.host}={BASE_ID}"})
        outcome = pipeline.handle(_event(proxy.host, bad))
        assert outcome is not None and outcome.result == "reimported", outcome
        assert [body["source"] for body in arm.imports] == [
            {"resourceId": BASE_ID, "sourceImage": f"mirror/team/app@{good}"}]
        assert OciRegistry(registry.host).head_manifest("team/app", "1").digest == good  # type: ignore[union-attr]


def test_contract_a_same_registry_import_goes_by_the_registry_own_resource_id(
    acr: tuple[LocalRegistry, FaultProxy], builder: ImageBuilder, tmp_path: Path
) -> None:
    """An upstream inside the guarded registry itself (at its login server) is imported with `source.resourceId` =
    PLATFORM_GUARD_ACR_RESOURCE_ID: ACR reads itself with the identity, no registryUri and no credentials."""
    from testbed.arm import ArmImportSimulator
    from testbed.images import multi

    registry, proxy = acr
    with ArmImportSimulator(target_host=registry.host, registries={ACR_ID: registry.host}) as arm:
        good = push(builder, multi(builder, ["linux/amd64", "linux/arm64"]), registry.host, "mirror/team/app", "1")
        bad = push(builder, single(builder, "linux/arm64", seed="laptop"), registry.host, "team/app", "1")
        pipeline = _settings_pipeline(tmp_path, proxy, arm, f"{proxy.host}/mirror", {})
        outcome = pipeline.handle(_event(proxy.host, bad))
        assert outcome is not None and outcome.result == "reimported", outcome
        assert [body["source"] for body in arm.imports] == [
            {"resourceId": ACR_ID, "sourceImage": f"mirror/team/app@{good}"}]
        assert OciRegistry(registry.host).head_manifest("team/app", "1").digest == good  # type: ignore[union-attr]


@pytest.mark.parametrize("refused", ["import", "poll"], ids=["403-on-the-import", "403-on-the-poll"])
def test_contract_a_refused_import_is_an_authorization_failure_tried_again(
    acr: tuple[LocalRegistry, FaultProxy], builder: ImageBuilder, tmp_path: Path, refused: str
) -> None:
    """ARM's 403 on importImage, or on the poll of its operation, ends the try as an AUTHORIZATION failure (tried
    again until PLATFORM_GUARD_AUTH_RETRY_SECONDS have passed, as every 401/403), not a permanent `failed` outcome,
    and the error names the role the identity needs."""
    from testbed.arm import ArmImportSimulator
    from testbed.images import multi

    registry, proxy = acr
    with LocalRegistry(tmp_path / "upstream") as upstream, ArmImportSimulator(
        target_host=registry.host, refuse={refused}
    ) as arm:
        push(builder, multi(builder, ["linux/amd64", "linux/arm64"]), upstream.host, "mirror/team/app", "1")
        bad = push(builder, single(builder, "linux/arm64", seed="laptop"), registry.host, "team/app", "1")
        pipeline = _settings_pipeline(tmp_path, proxy, arm, f"{upstream.host}/mirror", {})
        with pytest.raises(TransientFailure) as raised:
            pipeline.handle(_event(proxy.host, bad))
    assert raised.value.kind == AUTHORIZATION
    assert '"Container Registry Data Importer and Data Reader" (577a9874-89fd-4f24-9dbd-b5034d0ad23a)' in str(
        raised.value)
    assert not pipeline.has_final_outcome("e-1")


def _origin_artifact_digest(registry_host: str, digest: str) -> str:
    """The digest of the origin artifact a quarantine of team/app:1 at `digest` writes (it is deterministic)."""
    kept = fetch_manifest(registry_host, "team/app", digest)
    raw = origin_artifact(QuarantineOrigin("team/app", "1", digest), kept_tag=quarantine_tag("1", digest),
                          subject=Descriptor(kept.media_type, digest, len(kept.body)))
    return digest_of(raw)


def test_a_registry_that_refuses_the_origin_artifact_still_quarantines(
    acr: tuple[LocalRegistry, FaultProxy], builder: ImageBuilder, tmp_path: Path
) -> None:
    """When the registry refuses the origin artifact, the quarantine goes on and the ledger's record is enough for
    `release` to put the image back where it came from."""
    registry, proxy = acr
    bad = push(builder, single(builder, "linux/arm64"), registry.host, "team/app", "1")
    refused = f"/v2/quarantine/team/app/manifests/{_origin_artifact_digest(registry.host, bad)}"
    proxy.respond(refused, status=400, methods=("PUT",), headers={"Content-Type": "application/json"},
                  body=b'{"errors":[{"code":"MANIFEST_INVALID","message":"artifacts are not allowed"}]}')
    proxy.respond("/acr/v1/team/app/_tags/1", status=202, methods=("DELETE",))
    pipeline = _pipeline(tmp_path, proxy, "move")
    outcome = pipeline.handle(_event(proxy.host, bad))
    assert outcome is not None and outcome.result == "quarantined", outcome
    assert ("PUT", refused) in [(r.method, r.path) for r in proxy.history()]
    kept_tag = quarantine_tag("1", bad)
    assert pipeline.ledger.quarantine_origin(proxy.host, "quarantine/team/app", kept_tag) == QuarantineOrigin(
        "team/app", "1", bad)
    client = pipeline.registries.client(proxy.host)
    assert registry_origin(client, "quarantine/team/app", bad, kept_tag=kept_tag) is None
    released = release(client, pipeline.policy, pipeline.ledger, host=proxy.host,
                       quarantine_repository="quarantine/team/app", quarantine_reference=kept_tag)
    assert released.destination == f"{proxy.host}/team/app:1" and released.digest == bad


def test_a_registry_with_the_referrers_api_gets_no_referrers_tag(
    acr: tuple[LocalRegistry, FaultProxy], builder: ImageBuilder, tmp_path: Path
) -> None:
    """Where the registry answers the referrers API (ACR does), the origin artifact is found through it: no
    `sha256-<hex>` tag is written, and `release` with a ledger that knows nothing reads the origin from it."""
    registry, proxy = acr
    bad = push(builder, single(builder, "linux/arm64"), registry.host, "team/app", "1")
    artifact = _origin_artifact_digest(registry.host, bad)
    listing = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": artifact, "size": 1, "artifactType": QUARANTINE_ORIGIN_ARTIFACT}]}
    proxy.respond(f"/v2/quarantine/team/app/referrers/{bad}", body=json.dumps(listing).encode(),
                  headers={"Content-Type": OCI_INDEX})
    proxy.respond("/acr/v1/team/app/_tags/1", status=202, methods=("DELETE",))
    outcome = _pipeline(tmp_path, proxy, "move").handle(_event(proxy.host, bad))
    assert outcome is not None and outcome.result == "quarantined", outcome
    direct = OciRegistry(registry.host)
    assert sorted(direct.list_tags("quarantine/team/app")) == [quarantine_tag("1", bad)]  # no referrers tag
    assert direct.head_manifest("quarantine/team/app", artifact) is not None  # the artifact, by digest
    client = AcrRegistry(proxy.host, endpoint=proxy.url, allow_http=True)
    released = release(client, parse_policy(_policy("move")), SqliteLedger(tmp_path / "empty.db"), host=proxy.host,
                       quarantine_repository="quarantine/team/app", quarantine_reference=quarantine_tag("1", bad))
    assert released.destination == f"{proxy.host}/team/app:1" and released.digest == bad


def test_server_side_reimport_imports_the_referrers_by_digest_too(
    acr: tuple[LocalRegistry, FaultProxy], builder: ImageBuilder, tmp_path: Path
) -> None:
    """ARM importImage copies no referrers (Azure/acr#496): the signature manifests are imported by digest after the
    image, the cosign tags and the referrers index are written by us, and the outcome says the signatures came."""
    from testbed.arm import ArmImportSimulator
    from testbed.images import cosign_tag
    from testbed.signatures import signed_index

    registry, proxy = acr
    with LocalRegistry(tmp_path / "upstream") as upstream, ArmImportSimulator(target_host=registry.host) as arm:
        index, children, _ = signed_index(builder, upstream.host, "mirror/team/app", "1", ["linux/amd64", "linux/arm64"])
        bad = push(builder, single(builder, "linux/arm64", seed="laptop"), registry.host, "team/app", "1")
        pipeline = _server_side_pipeline(tmp_path, proxy, upstream, arm)
        outcome = pipeline.handle(_event(proxy.host, bad))
        assert outcome is not None and outcome.result == "reimported", outcome
        assert (outcome.new_digest, outcome.referrers_copied, outcome.signatures) == (index.digest, 3, "kept")
        imported = [body["source"]["sourceImage"] for body in arm.imports]
        assert imported[0] == f"mirror/team/app@{index.digest}"
        assert len(imported) == 4 and all(source.startswith("mirror/team/app@sha256:") for source in imported)
        tags = set(OciRegistry(registry.host).list_tags("team/app"))
        assert {cosign_tag(child, "sig") for child in children} <= tags
        assert "sha256-" + index.digest.removeprefix("sha256:") in tags  # the referrers index of the index
