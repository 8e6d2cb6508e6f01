"""`doctor` (importer/app/doctor.py) against the local stack: real distribution registries, Azurite for Table Storage
and Storage Queues, local HTTP servers for the webhook and the Event Grid endpoint, and a local server answering ARM's
documented `Permissions - List For Resource` shape for the server-side import check.

Each check is made to fail the way it fails in Azure — nothing answers, 403 on push, 403 on delete, deletes turned
off, a table that may only be read, the import right missing — and the printed fix is asserted. A FaultProxy
(testbed/faults.py) makes the registry refuse one kind of request, or answers the ACR-only endpoints
(`/acr/v1/_catalog`, tag deletes, manifest attributes) with their documented shapes so that the real ACR adapter runs.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.data.tables import TableClient

from importer.adapters.probes import ArmPermissions, AzureIdentity, HttpProbe
from importer.adapters.registry.acr import AcrRegistry
from importer.adapters.registry.oci import OciRegistry
from importer.app.doctor import (
    ERROR,
    EXIT_MISSING,
    EXIT_OK,
    EXIT_UNREACHABLE,
    IMPORT_ACTION,
    IMPORT_ROLE,
    MISSING,
    NOT_CHECKED,
    NOT_CONFIGURED,
    OK,
    PROBE_DIGEST,
    PROBE_KEY_PREFIX,
    PROBE_REPOSITORY,
    PROBE_TAG,
    REGISTRY_READ_ACTION,
    UNREACHABLE,
    Diagnosis,
    Doctor,
    DoctorServices,
    Finding,
    Grants,
    allows,
)
from importer.app.settings import Settings
from importer.core.policy import parse_policy
from importer.entry.composition import ledger_for, queue_for, registry_directory_for
from importer.entry.doctor import refused, unreachable
from importer.ports.probes import Identity, IdentityUnavailable, Permission, PermissionsRefused
from testbed.azurite import ACCOUNT_KEY, ACCOUNT_NAME, Azurite, read_only_tables
from testbed.faults import FaultProxy
from testbed.http_server import LocalHttpServer, QuietRequestHandler
from testbed.images import ImageBuilder, single
from testbed.push import list_tags, push
from testbed.registry import LocalRegistry, free_port

pytestmark = pytest.mark.timeout(120)

SUB = "00000000-0000-0000-0000-0000000000aa"
ACR_HOST = "guardacr.azurecr.io"
ACR_ID = f"/subscriptions/{SUB}/resourceGroups/rg-guard/providers/Microsoft.ContainerRegistry/registries/guardacr"
CLIENT_ID = "22222222-3333-4444-5555-666666666666"
OBJECT_ID = "99999999-8888-7777-6666-555555555555"
IDENTITY = Identity(object_id=OBJECT_ID, principal_type="ServicePrincipal", client_id=CLIENT_ID, tenant_id=None)
ASSIGNEE = f"--assignee-object-id {OBJECT_ID} --assignee-principal-type ServicePrincipal"
UPLOADS = r"^POST /v2/.+/blobs/uploads/"


# --- helpers ------------------------------------------------------------------------------------------------------


def settings_for(tmp_path: Path, *registries: str, **fields: Any) -> Settings:
    return Settings(registries=registries, ledger_path=tmp_path / "state" / "ledger.db", **fields)


def services_for(settings: Settings, **overrides: Any) -> DoctorServices:
    """The services the entry point makes, without an Azure identity unless a test gives one."""
    options: dict[str, Any] = {
        "client": registry_directory_for(settings).client,
        "open_ledger": lambda: ledger_for(settings),
        "open_queue": lambda: queue_for(settings),
        "http": HttpProbe(timeout=5.0),
        "refused": refused,
        "unreachable": unreachable,
    }
    options.update(overrides)
    return DoctorServices(**options)


def diagnose(settings: Settings, *, timeout: float = 20.0, **overrides: Any) -> Diagnosis:
    return Doctor(settings, services_for(settings, **overrides), timeout=timeout).run()


def found(diagnosis: Diagnosis, check: str) -> Finding:
    matching = [finding for finding in diagnosis.findings if finding.check == check]
    assert len(matching) == 1, f"{check}: {matching}"
    return matching[0]


class FixedIdentity:
    def __init__(self, identity: Identity | None = IDENTITY) -> None:
        self._identity = identity

    def identity(self) -> Identity:
        if self._identity is None:
            raise IdentityUnavailable("ManagedIdentityCredential could not get a token: no managed identity here")
        return self._identity


class FixedPermissions:
    def __init__(self, *sets: Permission, refuse: bool = False) -> None:
        self.sets, self.refuse, self.asked = sets, refuse, []

    def permissions(self, resource_id: str) -> tuple[Permission, ...]:
        self.asked.append(resource_id)
        if self.refuse:
            raise PermissionsRefused(f"ARM permissions of the caller on {resource_id}: HTTP 403: AuthorizationFailed")
        return self.sets


def jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.signature"


class FakeCredential:
    """A TokenCredential handing out one unsigned JWT whose claims name a managed identity."""

    def __init__(self, claims: dict[str, Any] | None = None) -> None:
        self.token = jwt(claims or {"oid": OBJECT_ID, "idtyp": "app", "appid": CLIENT_ID, "tid": "tenant"})
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **options: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


@pytest.fixture
def pushed(registry: LocalRegistry, builder: ImageBuilder) -> LocalRegistry:
    """The plain registry holding team/app:1."""
    push(builder, single(builder, "linux/amd64", seed="doctor"), registry.host, "team/app", "1")
    return registry


# --- the local stack, all ok ----------------------------------------------------------------------------------------


def test_local_stack_is_ok_and_nothing_is_left_behind(pushed: LocalRegistry, tmp_path: Path) -> None:
    """Every check passes on a registry, SQLite ledger and queue; afterwards the registry lists the same repositories
    and tags, and the ledger holds no probe claim."""
    settings = settings_for(tmp_path, pushed.host)
    diagnosis = diagnose(settings)
    assert diagnosis.exit_code == EXIT_OK, diagnosis.as_dict()
    results = {finding.check: finding.result for finding in diagnosis.findings}
    assert results == {"policy": OK, "reachable": OK, "catalog": OK, "read": OK, "push": OK, "delete": OK,
                       "import": NOT_CONFIGURED, "ledger": OK, "queue": OK, "topic": NOT_CONFIGURED,
                       "alert webhook": NOT_CONFIGURED}
    assert found(diagnosis, "read").target == f"{pushed.host}/team/app"
    assert ":1 read" in found(diagnosis, "read").detail
    assert "opened and cancelled" in found(diagnosis, "push").detail
    assert "404" in found(diagnosis, "delete").detail
    with OciRegistry(pushed.host) as client:
        assert list(client.catalog()) == ["team/app"]
        assert client.head_manifest("team/app", PROBE_DIGEST) is None
    assert list_tags(pushed.host, "team/app") == ["1"]
    with sqlite3.connect(settings.ledger_path) as db:
        left = db.execute("SELECT count(*) FROM claims WHERE event_id LIKE ?", (PROBE_KEY_PREFIX + "%",)).fetchone()
    assert left == (0,)


def test_an_empty_registry_is_probed_on_a_repository_that_cannot_exist(registry: LocalRegistry, tmp_path: Path) -> None:
    """With nothing listed, reads, the push and the delete are probed on platform-guard-doctor/probe: 404s prove the
    rights, and the catalog stays empty."""
    diagnosis = diagnose(settings_for(tmp_path, registry.host))
    assert diagnosis.exit_code == EXIT_OK
    for check in ("read", "push", "delete"):
        assert found(diagnosis, check).target == f"{registry.host}/{PROBE_REPOSITORY}"
        assert found(diagnosis, check).result == OK
    with OciRegistry(registry.host) as client:
        assert list(client.catalog()) == []


# --- failures, one kind each ----------------------------------------------------------------------------------------


def test_an_unreachable_registry_is_reported_within_the_time_limit(tmp_path: Path) -> None:
    """Nothing listens: `unreachable` (exit 3), the registry's other checks not run, and the run stays short."""
    host = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    diagnosis = diagnose(settings_for(tmp_path, host), timeout=10.0)
    assert time.monotonic() - started < 15
    assert found(diagnosis, "reachable").result == UNREACHABLE
    assert host in found(diagnosis, "reachable").detail
    for check in ("catalog", "read", "push", "delete"):
        assert found(diagnosis, check).result == NOT_CHECKED
    assert diagnosis.exit_code == EXIT_UNREACHABLE


def test_a_push_refused_with_403_is_missing_with_what_grants_it(pushed: LocalRegistry, tmp_path: Path) -> None:
    """The registry answers 403 to the upload session: push is `missing` (exit 1), the rest still passes, and the fix
    names the credentials settings of a registry that is not Azure's."""
    with FaultProxy(pushed.host, rate=1.0, faults=("403",), match=UPLOADS) as proxy:
        diagnosis = diagnose(settings_for(tmp_path, proxy.host))
    push_finding = found(diagnosis, "push")
    assert push_finding.result == MISSING and "HTTP 403" in push_finding.detail
    key = "PLATFORM_GUARD_REGISTRY_127_0_0_1_" + proxy.host.rsplit(":", 1)[1]
    assert push_finding.fix == (
        f"# {proxy.host} is reached anonymously: set {key}_USERNAME and {key}_PASSWORD to an account that may push "
        f"{proxy.host} (its own access control)",
    )
    assert {f.check for f in diagnosis.findings if f.result not in (OK, NOT_CONFIGURED)} == {"push"}
    assert diagnosis.exit_code == EXIT_MISSING


def test_a_cancel_the_registry_refuses_still_proves_the_push(pushed: LocalRegistry, tmp_path: Path) -> None:
    """The session opened (the push right) but its cancel was refused: ok, saying the empty session is left to the
    registry's purge of abandoned uploads."""
    with FaultProxy(pushed.host, rate=1.0, faults=("403",), match=r"^DELETE /v2/.+/blobs/uploads/") as proxy:
        push_finding = found(diagnose(settings_for(tmp_path, proxy.host)), "push")
    assert push_finding.result == OK and "did not accept its cancel" in push_finding.detail


@pytest.fixture
def acr_proxy(pushed: LocalRegistry) -> Iterator[FaultProxy]:
    """The registry behind a proxy that also answers ACR's own endpoints as documented."""
    with FaultProxy(pushed.host) as proxy:
        proxy.respond("/acr/v1/_catalog", body=json.dumps({"repositories": ["team/app"]}).encode(),
                      headers={"Content-Type": "application/json"})
        not_found = json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}).encode()
        proxy.respond(f"/acr/v1/team/app/_tags/{PROBE_TAG}", status=404, body=not_found, methods=("DELETE",),
                      headers={"Content-Type": "application/json"})
        proxy.respond(f"/acr/v1/team/app/_manifests/{PROBE_DIGEST}", status=404, body=not_found, methods=("PATCH",),
                      headers={"Content-Type": "application/json"})
        yield proxy


def acr_doctor(proxy: FaultProxy, tmp_path: Path, *, policy: str | None = None,
               permissions: FixedPermissions | None = None) -> Diagnosis:
    """Doctor on the guarded ACR guardacr.azurecr.io, played by the proxy, through the real ACR adapter."""
    fields: dict[str, Any] = {"acr_resource_id": ACR_ID, "azure_client_id": CLIENT_ID}
    if policy:
        fields["policy"] = parse_policy(policy, source="test-policy.yaml")
    settings = settings_for(tmp_path, ACR_HOST, **fields)
    client = AcrRegistry(ACR_HOST, endpoint=proxy.url)
    return diagnose(settings, client=lambda host: client, identity=FixedIdentity(), registry_ids={ACR_HOST: ACR_ID},
                    permissions=permissions or FixedPermissions(Permission(actions=(IMPORT_ACTION,
                                                                                    REGISTRY_READ_ACTION))))


def test_on_acr_every_check_passes_through_the_acr_adapter(acr_proxy: FaultProxy, tmp_path: Path) -> None:
    """Catalog through /acr/v1/_catalog, the delete probe as a tag delete answered 404, the import right from ARM."""
    diagnosis = acr_doctor(acr_proxy, tmp_path)
    results = {finding.check: finding.result for finding in diagnosis.findings}
    assert results["identity"] == results["catalog"] == results["read"] == results["push"] == OK
    assert results["delete"] == results["import"] == OK
    assert "/acr/v1/_catalog" in found(diagnosis, "catalog").detail
    assert PROBE_TAG in found(diagnosis, "delete").detail
    assert diagnosis.exit_code == EXIT_OK, diagnosis.as_dict()


def test_on_acr_a_refused_push_prints_the_role_assignment(acr_proxy: FaultProxy, tmp_path: Path) -> None:
    """403 on push to the ACR: the fix is `az role assignment create` for the identity's object id, AcrPush on the
    registry's resource id, and the ABAC-mode role for a registry in that mode."""
    acr_proxy.configure(rate=1.0, faults=("403",), match=UPLOADS)
    diagnosis = acr_doctor(acr_proxy, tmp_path)
    push_finding = found(diagnosis, "push")
    assert push_finding.result == MISSING
    assert push_finding.fix[0] == f'az role assignment create {ASSIGNEE} --role "AcrPush" --scope {ACR_ID}'
    assert push_finding.fix[2] == (
        f'az role assignment create {ASSIGNEE} --role "Container Registry Repository Writer" --scope {ACR_ID}'
    )
    assert "AbacRepositoryPermissions" in push_finding.fix[1]
    assert diagnosis.exit_code == EXIT_MISSING


def test_on_acr_lock_mode_probes_the_manifest_attributes(acr_proxy: FaultProxy, tmp_path: Path) -> None:
    """quarantine.mode lock: changing the attributes of a digest that does not exist answers 404, so locks are
    allowed; refused (403), the fix is the role that writes metadata."""
    policy = "version: 1\nquarantine:\n  mode: lock\n"
    assert found(acr_doctor(acr_proxy, tmp_path, policy=policy), "lock").result == OK
    acr_proxy.clear_responses()
    acr_proxy.configure(rate=1.0, faults=("403",), match=r"^PATCH /acr/v1/")
    lock = found(acr_doctor(acr_proxy, tmp_path, policy=policy), "lock")
    assert lock.result == MISSING
    assert f'--role "AcrPush" --scope {ACR_ID}' in lock.fix[0]
    assert '--role "Container Registry Repository Contributor"' in lock.fix[2]


def test_lock_mode_on_a_registry_that_cannot_lock_is_missing(pushed: LocalRegistry, tmp_path: Path) -> None:
    policy = parse_policy("version: 1\nquarantine:\n  mode: lock\n", source="p.yaml")
    lock = found(diagnose(settings_for(tmp_path, pushed.host, policy=policy)), "lock")
    assert lock.result == MISSING and "needs Azure Container Registry" in lock.detail


def test_a_refused_delete_and_turned_off_deletes_are_missing(pushed: LocalRegistry, tmp_path: Path) -> None:
    """403 on DELETE: missing, with the credentials fix; 405 UNSUPPORTED (deletes off): missing, with the registry
    setting that turns them on."""
    with FaultProxy(pushed.host, rate=1.0, faults=("403",), match=r"^DELETE /v2/.+/manifests/") as proxy:
        delete = found(diagnose(settings_for(tmp_path, proxy.host)), "delete")
        assert delete.result == MISSING and "may delete" in delete.fix[0]
        proxy.configure(rate=0.0)
        body = json.dumps({"errors": [{"code": "UNSUPPORTED", "message": "The operation is unsupported."}]}).encode()
        proxy.respond(f"/v2/team/app/manifests/{PROBE_DIGEST}", status=405, body=body, methods=("DELETE",),
                      headers={"Content-Type": "application/json"})
        off = found(diagnose(settings_for(tmp_path, proxy.host)), "delete")
    assert off.result == MISSING and "refuses deletes" in off.detail
    assert "REGISTRY_STORAGE_DELETE_ENABLED=true" in off.fix[0]


def test_a_policy_that_never_quarantines_needs_no_delete(pushed: LocalRegistry, tmp_path: Path) -> None:
    policy = parse_policy("version: 1\ndefaults:\n  on_violation: alert\n", source="p.yaml")
    assert found(diagnose(settings_for(tmp_path, pushed.host, policy=policy)), "delete").result == NOT_CONFIGURED


def test_a_refused_catalog_matters_only_with_the_sweep(pushed: LocalRegistry, tmp_path: Path) -> None:
    """403 on /v2/_catalog: `not configured` while the sweep is off (only audit lists it), `missing` with a sweep
    schedule; the other probes then fall back to the probe repository."""
    with FaultProxy(pushed.host, rate=1.0, faults=("403",), match=r"^GET /v2/_catalog") as proxy:
        off = diagnose(settings_for(tmp_path, proxy.host))
        on = diagnose(settings_for(tmp_path, proxy.host, sweep_schedule="0 0 3 * * *"))
    assert found(off, "catalog").result == NOT_CONFIGURED and off.exit_code == EXIT_OK
    assert found(on, "catalog").result == MISSING and on.exit_code == EXIT_MISSING
    assert found(on, "read").target.endswith(PROBE_REPOSITORY) and found(on, "read").result == OK


def test_upstreams_are_checked_for_reads(pushed: LocalRegistry, tmp_path: Path) -> None:
    """Each upstream host of the policy: reachable with its credentials, or unreachable (exit 3)."""
    closed = f"127.0.0.1:{free_port()}"
    policy = parse_policy(
        "version: 1\nrules:\n"
        f"  - repositories: ['a/**']\n    upstream: '{pushed.host}/vendor/{{path}}'\n    on_violation: reimport\n"
        f"  - repositories: ['b/**']\n    upstream: '{closed}/{{path}}'\n    on_violation: reimport\n",
        source="p.yaml",
    )
    guarded = LocalRegistry(tmp_path / "guarded")
    with guarded:
        diagnosis = diagnose(settings_for(tmp_path, guarded.host, policy=policy), timeout=10.0)
    upstreams = {f.target: f.result for f in diagnosis.findings if f.check == "upstream"}
    assert upstreams == {pushed.host: OK, closed: UNREACHABLE}
    assert diagnosis.exit_code == EXIT_UNREACHABLE


# --- Table Storage and Storage Queues (Azurite) ---------------------------------------------------------------------


def test_table_ledger_and_storage_queue_are_ok(azurite: Azurite, pushed: LocalRegistry, tmp_path: Path) -> None:
    """The ledger probe creates, reads and deletes its claim in Azurite (nothing left in its partition); the queue is
    peeked at, not received."""
    settings = settings_for(tmp_path, pushed.host, tables_connection_string=azurite.connection_string,
                            queue_connection_string=azurite.connection_string, queue_name="doctor-events")
    diagnosis = diagnose(settings)
    assert found(diagnosis, "ledger").result == OK and found(diagnosis, "ledger").target == (
        f"Table Storage account {ACCOUNT_NAME}")
    assert found(diagnosis, "queue").result == OK and "peeked" in found(diagnosis, "queue").detail
    assert diagnosis.exit_code == EXIT_OK
    claims = TableClient.from_connection_string(azurite.connection_string, "platformguardclaims")
    with claims:
        left = [entity["PartitionKey"] for entity in claims.list_entities()
                if entity["PartitionKey"].startswith("platform-guard-doctor")]
    assert left == []


def test_a_table_that_may_only_be_read_is_missing_with_the_role_assignment(
    azurite: Azurite, pushed: LocalRegistry, tmp_path: Path
) -> None:
    """A read-only SAS: Azurite answers 403, the ledger is `missing`, and the fix names Storage Table Data Contributor
    on the account for the app's identity (its client id)."""
    settings = settings_for(tmp_path, pushed.host, tables_connection_string=read_only_tables(azurite),
                            azure_client_id=CLIENT_ID)
    ledger = found(diagnose(settings), "ledger")
    assert ledger.result == MISSING and "403" in ledger.detail
    assert ledger.fix[1] == (
        f'az role assignment create --assignee {CLIENT_ID} --role "Storage Table Data Contributor" '
        f'--scope "$(az storage account show --name {ACCOUNT_NAME} --query id --output tsv)"'
    )
    assert "SharedAccessSignature" not in json.dumps(ledger.as_dict())


def test_storage_that_does_not_answer_is_unreachable(pushed: LocalRegistry, tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}/{ACCOUNT_NAME}"
    connection = (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
                  f"TableEndpoint={closed};QueueEndpoint={closed};")
    settings = settings_for(tmp_path, pushed.host, tables_connection_string=connection,
                            queue_connection_string=connection)
    diagnosis = diagnose(settings, timeout=15.0)
    assert found(diagnosis, "ledger").result == UNREACHABLE
    assert found(diagnosis, "queue").result == UNREACHABLE
    assert ACCOUNT_KEY not in json.dumps(diagnosis.as_dict())
    assert diagnosis.exit_code == EXIT_UNREACHABLE


def test_an_unwritable_sqlite_ledger_is_missing(pushed: LocalRegistry, tmp_path: Path) -> None:
    """The ledger's folder cannot be made (a file stands where it should be; read-only folders are no obstacle to
    root, who runs CI here): `missing`, with where to put the ledger instead."""
    blocker = tmp_path / "state"
    blocker.write_text("not a folder")
    settings = Settings(registries=(pushed.host,), ledger_path=blocker / "ledger.db")
    diagnosis = diagnose(settings)
    ledger = found(diagnosis, "ledger")
    assert ledger.result == MISSING, ledger
    assert ledger.fix == (f"# make {blocker} writable for the user that runs Platform Guard, or set "
                          "PLATFORM_GUARD_LEDGER to a writable path",)
    assert found(diagnosis, "queue").result == MISSING


# --- server-side import: ARM permissions ----------------------------------------------------------------------------


class FakeArm:
    """ARM's `Permissions - List For Resource` (api-version 2022-04-01) on 127.0.0.1, answering the documented
    shape: {"value": [{"actions", "notActions", "dataActions", "notDataActions"}], "nextLink"}."""

    def __init__(self, pages: list[dict[str, Any]], *, status: int = 200) -> None:
        self.pages, self.status = pages, status
        self.requests: list[tuple[str, str | None]] = []
        arm = self

        class Handler(QuietRequestHandler):
            def do_GET(self) -> None:
                arm.requests.append((self.path, self.headers.get("Authorization")))
                path, _, query = self.path.partition("?")
                if not path.endswith("/providers/Microsoft.Authorization/permissions") or (
                        "api-version=2022-04-01" not in query):
                    self.send_json(404, {"error": {"code": "NotFound", "message": self.path}})
                elif arm.status != 200:
                    self.send_json(arm.status, {"error": {"code": "AuthorizationFailed",
                                                          "message": "The client does not have authorization"}})
                else:
                    page = int(dict(p.split("=") for p in query.split("&")).get("page", "0"))
                    body = dict(arm.pages[page])
                    if page + 1 < len(arm.pages):
                        body["nextLink"] = f"{arm.url}{path}?api-version=2022-04-01&page={page + 1}"
                    self.send_json(200, body)

        self._http = LocalHttpServer(Handler, name="fake-arm-permissions", silenced_errors=(ConnectionError,))
        self.url = self._http.url

    def __enter__(self) -> FakeArm:
        self._http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.stop()


def entry(actions: list[str], not_actions: list[str] | None = None) -> dict[str, Any]:
    return {"actions": actions, "notActions": not_actions or [], "dataActions": [], "notDataActions": []}


def test_arm_permissions_contract_pages_and_token() -> None:
    """The adapter asks the documented path with api-version 2022-04-01 and a bearer token for ARM, follows nextLink,
    and reads every entry."""
    credential = FakeCredential()
    pages = [{"value": [entry(["Microsoft.ContainerRegistry/registries/pull/read"])]},
             {"value": [entry([IMPORT_ACTION, REGISTRY_READ_ACTION])]}]
    with FakeArm(pages) as arm:
        found_sets = ArmPermissions(credential, arm_endpoint=arm.url).permissions(ACR_ID)
    assert [s.actions for s in found_sets] == [("Microsoft.ContainerRegistry/registries/pull/read",),
                                               (IMPORT_ACTION, REGISTRY_READ_ACTION)]
    path, authorization = arm.requests[0]
    assert path == f"{ACR_ID}/providers/Microsoft.Authorization/permissions?api-version=2022-04-01"
    assert authorization == f"Bearer {credential.token}" and len(arm.requests) == 2
    assert credential.scopes[0] == (f"{arm.url}/.default",)
    identity = AzureIdentity(credential, arm_endpoint=arm.url).identity()
    assert identity == Identity(object_id=OBJECT_ID, principal_type="ServicePrincipal", client_id=CLIENT_ID,
                                tenant_id="tenant")


def test_arm_refusing_to_list_permissions_is_permissions_refused() -> None:
    with FakeArm([], status=403) as arm, pytest.raises(PermissionsRefused, match="HTTP 403: AuthorizationFailed"):
        ArmPermissions(FakeCredential(), arm_endpoint=arm.url).permissions(ACR_ID)


@pytest.mark.parametrize(
    ("sets", "result"),
    [
        ([entry([IMPORT_ACTION, REGISTRY_READ_ACTION])], OK),
        ([entry(["Microsoft.ContainerRegistry/registries/*"])], OK),
        ([entry(["*"], [IMPORT_ACTION])], MISSING),
        ([entry(["Microsoft.ContainerRegistry/registries/pull/read", "Microsoft.ContainerRegistry/registries/push/write"])],
         MISSING),
        ([entry([IMPORT_ACTION]), entry([REGISTRY_READ_ACTION])], OK),
    ],
    ids=["import-role", "registry-wildcard", "not-actions-subtract", "acr-push-only", "two-assignments"],
)
def test_the_import_check_reads_arm_permissions(pushed: LocalRegistry, tmp_path: Path,
                                                sets: list[dict[str, Any]], result: str) -> None:
    """Against the local ARM: the import right is importImage/action plus registries/read (what Microsoft's built-in
    importer role holds); missing, the fix assigns that role on the registry's resource id to the identity."""
    credential = FakeCredential()
    with FakeArm([{"value": sets}]) as arm:
        settings = settings_for(tmp_path, pushed.host, acr_resource_id=ACR_ID)
        diagnosis = diagnose(settings, identity=AzureIdentity(credential, arm_endpoint=arm.url),
                             permissions=ArmPermissions(credential, arm_endpoint=arm.url),
                             registry_ids={ACR_HOST: ACR_ID})
    finding = found(diagnosis, "import")
    assert finding.result == result, finding
    if result == MISSING:
        assert finding.fix == (f'az role assignment create {ASSIGNEE} --role "{IMPORT_ROLE}" --scope {ACR_ID}',)
        assert diagnosis.exit_code == EXIT_MISSING


def test_arm_that_will_not_tell_is_an_error_with_the_grant_shown(pushed: LocalRegistry, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, pushed.host, acr_resource_id=ACR_ID, azure_client_id=CLIENT_ID)
    diagnosis = diagnose(settings, permissions=FixedPermissions(refuse=True), registry_ids={ACR_HOST: ACR_ID})
    finding = found(diagnosis, "import")
    assert finding.result == ERROR and "cannot be told" in finding.detail
    assert finding.fix == (f'az role assignment create --assignee {CLIENT_ID} --role "{IMPORT_ROLE}" --scope {ACR_ID}',)
    assert diagnosis.exit_code == EXIT_UNREACHABLE


def test_an_identity_without_a_token_is_an_error(pushed: LocalRegistry, tmp_path: Path) -> None:
    diagnosis = diagnose(settings_for(tmp_path, pushed.host, azure_client_id=CLIENT_ID),
                         identity=FixedIdentity(None))
    identity = found(diagnosis, "identity")
    assert identity.result == ERROR and "no managed identity here" in identity.detail
    assert identity.target == f"managed identity {CLIENT_ID}"


@pytest.mark.parametrize(
    ("pattern", "action", "allowed"),
    [
        ("*", IMPORT_ACTION, True),
        ("microsoft.containerregistry/registries/importimage/action", IMPORT_ACTION, True),
        ("Microsoft.ContainerRegistry/*/read", REGISTRY_READ_ACTION, True),
        ("Microsoft.ContainerRegistry/*/read", IMPORT_ACTION, False),
        ("Microsoft.ContainerRegistry/registries/importImage", IMPORT_ACTION, False),
    ],
)
def test_allows_matches_actions_like_azure_rbac(pattern: str, action: str, allowed: bool) -> None:
    assert allows([Permission(actions=(pattern,))], action) is allowed


def test_not_actions_subtract_only_from_their_own_set() -> None:
    sets = [Permission(actions=("*",), not_actions=(IMPORT_ACTION,)), Permission(actions=(IMPORT_ACTION,))]
    assert allows(sets, IMPORT_ACTION)
    assert not allows(sets[:1], IMPORT_ACTION)


# --- webhook and topic ----------------------------------------------------------------------------------------------


class Endpoint:
    """A local endpoint that answers OPTIONS with `status` (after `delay` seconds) and records the requests."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        endpoint = self
        self.release = threading.Event()

        class Handler(QuietRequestHandler):
            def do_OPTIONS(self) -> None:
                endpoint.requests.append(("OPTIONS", self.path, self.lowercase_headers()))
                endpoint.release.wait(delay)
                origin = self.headers.get("WebHook-Request-Origin", "")
                self.send_body(status, headers={"WebHook-Allowed-Origin": origin})

            def do_POST(self) -> None:
                endpoint.requests.append(("POST", self.path, self.lowercase_headers()))
                self.send_body(500)

        self._http = LocalHttpServer(Handler, name="doctor-endpoint", silenced_errors=(Exception,))
        self.url = self._http.url

    def __enter__(self) -> Endpoint:
        self._http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._http.stop()


def test_the_alert_webhook_is_asked_with_options_only(pushed: LocalRegistry, tmp_path: Path) -> None:
    """An OPTIONS request with WebHook-Request-Origin, no POST, no token; the path (where webhook URLs keep their
    secret) is never shown."""
    with Endpoint(status=200) as hook:
        url = f"{hook.url}/hooks/T0-secret-path-B1"
        settings = settings_for(tmp_path, pushed.host, alert_webhook_url=url, alert_webhook_token="tok-" + "x" * 20)
        diagnosis = diagnose(settings)
    webhook = found(diagnosis, "alert webhook")
    assert webhook.result == OK and "HTTP 200" in webhook.detail and webhook.target == hook.url
    assert [(method, path) for method, path, _ in hook.requests] == [("OPTIONS", "/hooks/T0-secret-path-B1")]
    assert "authorization" not in hook.requests[0][2]
    shown = json.dumps(diagnosis.as_dict())
    assert "secret-path" not in shown and "tok-" not in shown


def test_a_webhook_that_does_not_answer_is_unreachable_within_the_time_limit(pushed: LocalRegistry,
                                                                            tmp_path: Path) -> None:
    with Endpoint(delay=30.0) as slow:
        settings = settings_for(tmp_path, pushed.host, alert_webhook_url=f"{slow.url}/hook")
        started = time.monotonic()
        webhook = found(diagnose(settings, timeout=2.0), "alert webhook")
        assert time.monotonic() - started < 20
    assert webhook.result == UNREACHABLE


def test_the_topic_is_not_probed_but_its_grant_is_shown(pushed: LocalRegistry, tmp_path: Path) -> None:
    """No harmless probe exists for sending to Event Grid: `not checked`, with the EventGrid Data Sender assignment."""
    with Endpoint(status=401) as topic:
        settings = settings_for(tmp_path, pushed.host, eventgrid_topic_endpoint=f"{topic.url}/api/events",
                                azure_client_id=CLIENT_ID)
        diagnosis = diagnose(settings)
    finding = found(diagnosis, "topic")
    assert finding.result == NOT_CHECKED and "HTTP 401" in finding.detail and "no harmless probe" in finding.detail
    assert '--role "EventGrid Data Sender"' in finding.fix[1]
    assert diagnosis.exit_code == EXIT_OK


# --- grants ---------------------------------------------------------------------------------------------------------


def test_grants_for_a_registry_named_only_by_host(tmp_path: Path) -> None:
    """An ACR without PLATFORM_GUARD_ACR_RESOURCE_ID: the scope is looked up by name; without any identity known the
    assignee is a placeholder to fill in."""
    grants = Grants(settings_for(tmp_path, "other.azurecr.io"), {})
    assert grants.registry("other.azurecr.io", "catalog")[0] == (
        'az role assignment create --assignee <object id of the app\'s identity> --role "AcrPull" '
        '--scope "$(az acr show --name other --query id --output tsv)"'
    )
    assert '"Container Registry Repository Catalog Lister"' in grants.registry("other.azurecr.io", "catalog")[2]


def test_grants_for_the_storage_queue(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "r.azurecr.io", queue_endpoint="https://acct.queue.core.windows.net",
                            queue_name="events", azure_client_id=CLIENT_ID)
    account = "$(az storage account show --name acct --query id --output tsv)"
    assert Grants(settings, {}).queue() == (
        f'az role assignment create --assignee {CLIENT_ID} --role "Storage Queue Data Contributor" '
        f'--scope "{account}/queueServices/default/queues/events"',
        f'az role assignment create --assignee {CLIENT_ID} --role "Storage Queue Data Contributor" '
        f'--scope "{account}/queueServices/default/queues/events-poison"',
        "# the queue keeps its key leases in a table of the same account:",
        f'az role assignment create --assignee {CLIENT_ID} --role "Storage Table Data Contributor" --scope "{account}"',
    )
