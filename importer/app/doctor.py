"""`doctor`, the post-deploy smoke check: with the app's own settings and identity, check every permission the app
needs, change nothing, and for each one that is missing say the command that grants it.

    doctor = Doctor(settings, DoctorServices(client=…, open_ledger=…, open_queue=…, http=…))   # entry/doctor.py
    diagnosis = doctor.run()              # Findings: check, target, result, detail, fix (commands)
    diagnosis.exit_code                   # 0 all ok, 1 something missing, 2 settings, 3 unreachable or undecided

What is checked, through ports only (importer/ports/probes.py has the probes), and how it stays harmless:

| check | how |
|---|---|
| identity | an Azure token for ARM; its claims name the principal the grant commands are for |
| policy | it parses (settings load it) |
| reachable | `GET /v2/` with the app's credentials, per guarded registry |
| catalog | the first page of `/v2/_catalog` (ACR: `/acr/v1/_catalog`): what the sweep and `audit` list |
| read | a tag listing and a manifest read of a listed repository (or 404s for a repository that cannot exist) |
| push | a blob upload session opened and cancelled (`POST …/blobs/uploads/`, then `DELETE` its location) |
| delete | `quarantine.mode: move`: deleting a manifest digest (ACR: a tag) that does not exist must answer 404 |
| lock | `quarantine.mode: lock`: changing the attributes of a manifest digest that does not exist must answer 404 |
| import | ARM permissions of the caller on the guarded ACR: importImage/action and registries/read |
| upstream | `GET /v2/` on each upstream host of the policy, with its credentials |
| ledger | a probe claim created, read, deleted (its own key, `platform-guard-doctor/…`), the newest outcome read |
| queue | Storage Queues: a peek at the queue and its poison queue; SQLite: opened and counted |
| topic | the Event Grid endpoint answers; sending is not probed (every subscriber would get the event) |
| alert webhook | the URL answers an `OPTIONS` request (nothing is posted); its token is not verified |

Results: `ok`, `missing` (refused: the fix says how to grant it), `not configured`, `not checked` (no harmless
probe, or an earlier check failed), `unreachable`, `error` (an answer that does not tell). Every check runs under
its own time limit (importer.ports.deadlines) and in its own thread, so no check waits longer than `timeout`.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from importer.app.registries import ACR_SUFFIX
from importer.app.settings import PREFIX, Settings, credentials_key, upstream_hosts
from importer.core.policy import Policy
from importer.core.program import PROGRAM
from importer.core.words import counted, noun_for
from importer.ports.abilities import IMPORT_ROLE, DeletesTags, ListsTagDigests, LocksManifests
from importer.ports.deadlines import time_limit
from importer.ports.ledger import Ledger, LedgerUnavailable
from importer.ports.probes import (
    AnswersHttp,
    Identity,
    IdentityUnavailable,
    KnowsIdentity,
    PeeksQueue,
    Permission,
    PermissionsRefused,
    ProbesRegistry,
    ReadsPermissions,
    Unreachable,
)
from importer.ports.queue import EventQueue, QueueUnavailable
from importer.ports.registry import NotFound, Registry, RegistryError, TransientRegistryError, Unauthorized

OK = "ok"
MISSING = "missing"
NOT_CONFIGURED = "not configured"
NOT_CHECKED = "not checked"
UNREACHABLE = "unreachable"
ERROR = "error"
RESULTS = (OK, MISSING, NOT_CONFIGURED, NOT_CHECKED, UNREACHABLE, ERROR)

EXIT_OK = 0
EXIT_MISSING = 1
EXIT_SETTINGS = 2
EXIT_UNREACHABLE = 3

DEFAULT_TIMEOUT_SECONDS = 30.0
# Probes name things that cannot exist: a repository of this name, a digest of these bytes (no registry holds them
# by chance), a tag and a ledger key made of a fresh random part.
PROBE_REPOSITORY = "platform-guard-doctor/probe"
PROBE_DIGEST = "sha256:" + hashlib.sha256(b"platform-guard doctor: a digest that names no content").hexdigest()
PROBE_TAG = "platform-guard-doctor-" + PROBE_DIGEST[7:23]  # deleted only after a HEAD found no such tag
PROBE_KEY_PREFIX = "platform-guard-doctor/"
CATALOG_PAGE = 20
TAG_PAGE = 5

IMPORT_ACTION = "Microsoft.ContainerRegistry/registries/importImage/action"
REGISTRY_READ_ACTION = "Microsoft.ContainerRegistry/registries/read"
TABLE_ROLE = "Storage Table Data Contributor"
QUEUE_ROLE = "Storage Queue Data Contributor"
TOPIC_ROLE = "EventGrid Data Sender"
# The role per registry right: (registry in "RBAC Registry Permissions" mode, in "RBAC Registry + ABAC Repository
# Permissions" mode, where AcrPull/AcrPush/AcrDelete are not honoured).
REGISTRY_ROLES: Mapping[str, tuple[str, str]] = {
    "read": ("AcrPull", "Container Registry Repository Reader"),
    "push": ("AcrPush", "Container Registry Repository Writer"),
    "delete": ("AcrDelete", "Container Registry Repository Contributor"),
    "lock": ("AcrPush", "Container Registry Repository Contributor"),
    "catalog": ("AcrPull", "Container Registry Repository Catalog Lister"),
}
_VERBS = {"read": "pull", "push": "push", "delete": "delete", "lock": "change the attributes of manifests in",
          "catalog": "list the repositories of"}


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of the report: what was checked, on what, the result, what was seen, and how to fix it."""

    check: str
    target: str
    result: str
    detail: str
    fix: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {"check": self.check, "target": self.target, "result": self.result, "detail": self.detail,
                "fix": list(self.fix)}


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """Every finding, in the order checked; `settings_problem` when the settings themselves are wrong (the policy)."""

    findings: tuple[Finding, ...]
    settings_problem: bool = False

    @property
    def exit_code(self) -> int:
        results = {finding.result for finding in self.findings}
        if self.settings_problem:
            return EXIT_SETTINGS
        if results & {UNREACHABLE, ERROR}:
            return EXIT_UNREACHABLE
        return EXIT_MISSING if MISSING in results else EXIT_OK

    def counts(self) -> dict[str, int]:
        return {result: sum(f.result == result for f in self.findings) for result in RESULTS
                if any(f.result == result for f in self.findings)}

    def as_dict(self) -> dict[str, object]:
        return {"exit_code": self.exit_code, "counts": self.counts(),
                "checks": [finding.as_dict() for finding in self.findings]}


def _never(error: BaseException) -> bool:
    return False


@dataclass(frozen=True)
class DoctorServices:
    """What the composition root hands the doctor: clients and probes, made from the same settings as the app's."""

    client: Callable[[str], Registry]  # a registry client for a host, as the app makes it
    open_ledger: Callable[[], Ledger]
    open_queue: Callable[[], EventQueue]
    http: AnswersHttp
    identity: KnowsIdentity | None = None  # None: nothing configured needs an Azure identity
    permissions: ReadsPermissions | None = None
    registry_ids: Mapping[str, str] = field(default_factory=dict)  # guarded host -> its ARM resource id (ACR)
    refused: Callable[[BaseException], bool] = _never  # backend errors that mean "refused" (HTTP 401/403, read-only)
    unreachable: Callable[[BaseException], bool] = _never  # backend errors that mean "no answer"


class _Missing(Exception):
    """Raised by a probe that found a right missing for a reason of its own, with its own fix."""

    def __init__(self, detail: str, fix: tuple[str, ...]) -> None:
        super().__init__(detail)
        self.fix = fix


class Doctor:
    """Runs every check once (`run`); each check is bounded by `timeout` seconds."""

    def __init__(self, settings: Settings, services: DoctorServices, *, policy_problem: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be above 0 seconds, got {timeout!r}")
        self.settings = settings
        self.services = services
        self.policy_problem = policy_problem
        self.timeout = timeout
        self.grants = Grants(settings, services.registry_ids)

    def run(self) -> Diagnosis:
        findings: list[Finding] = [self._policy()]
        if self.services.identity is not None:
            findings.append(self._identity(self.services.identity))
        for host in self.settings.registries:
            findings += self._registry(host)
        findings += self._imports()
        findings += self._upstreams()
        findings.append(self._bounded("ledger", self._ledger_target(), self._ledger, self.grants.ledger))
        findings.append(self._bounded("queue", self._queue_target(), self._queue, self.grants.queue))
        findings.append(self._topic())
        findings.append(self._webhook())
        return Diagnosis(tuple(findings), settings_problem=self.policy_problem is not None)

    # -- running one check ---------------------------------------------------------------------------------

    def _bounded(self, check: str, target: str, probe: Callable[[], str | Finding],
                 fix: Callable[[], tuple[str, ...]] | tuple[str, ...] = ()) -> Finding:
        """Run `probe` in a thread of its own under a time limit; its text is the `ok` detail, or it returns a
        whole Finding; what it raises is classified (refused: `missing` with `fix`, no answer: `unreachable`)."""
        outcome: list[str | Finding | BaseException] = []

        def work() -> None:
            try:
                with time_limit(self.timeout, f"doctor check {check} of {target}"):
                    outcome.append(probe())
            except BaseException as error:  # noqa: BLE001  # reported as the check's result, never raised
                outcome.append(error)

        thread = threading.Thread(target=work, name=f"doctor {check}", daemon=True)
        thread.start()
        thread.join(self.timeout + 1.0)
        if not outcome:
            return Finding(check, target, UNREACHABLE, f"no answer within {self.timeout:g} s")
        found = outcome[0]
        if isinstance(found, Finding):
            return found
        if isinstance(found, str):
            return Finding(check, target, OK, found)
        if isinstance(found, _Missing):
            return Finding(check, target, MISSING, str(found), found.fix)
        result = self._classify(found)
        detail = _describe(found)
        if result == MISSING:
            return Finding(check, target, MISSING, detail, fix() if callable(fix) else fix)
        return Finding(check, target, result, detail)

    def _classify(self, error: BaseException) -> str:
        if isinstance(error, Unauthorized) or self.services.refused(error):
            return MISSING
        if isinstance(error, (TransientRegistryError, Unreachable, LedgerUnavailable, QueueUnavailable)):
            return UNREACHABLE
        if self.services.unreachable(error):
            return UNREACHABLE
        return ERROR

    # -- settings and identity -----------------------------------------------------------------------------

    def _policy(self) -> Finding:
        policy = self.settings.policy
        if self.policy_problem is not None:
            fix = (f"# correct the policy the message names ({PREFIX}POLICY wins over {PREFIX}POLICY_FILE);"
                   f" {PROGRAM} check REF --policy FILE reports the same problems",)
            return Finding("policy", "settings", ERROR, self.policy_problem, fix)
        return Finding("policy", policy.source, OK,
                       f"parsed: {counted(len(policy.rules), 'rule')}, quarantine mode {policy.quarantine.mode}, "
                       f"{'quarantines' if _quarantines(policy) else 'never quarantines'}")

    def _identity(self, source: KnowsIdentity) -> Finding:
        def probe() -> str:
            identity = source.identity()
            self.grants.identity = identity
            kind = {"ServicePrincipal": "service principal or managed identity", "User": "user"}.get(
                identity.principal_type or "", "principal of unknown type")
            parts = [f"object id {identity.object_id or 'unknown'} ({kind})"]
            if identity.client_id:
                parts.append(f"client id {identity.client_id}")
            return "token for Azure Resource Manager: " + ", ".join(parts)

        finding = self._bounded("identity", self._identity_target(), probe)
        if finding.result != OK:
            return Finding(finding.check, finding.target, ERROR, finding.detail, (
                "# the app's identity gave no token: run doctor where it is available (in Azure), or with "
                "AZURE_CLIENT_ID unset and `az login` done, to check your own identity instead",))
        return finding

    def _identity_target(self) -> str:
        client_id = self.settings.azure_client_id
        return f"managed identity {client_id}" if client_id else "DefaultAzureCredential"

    # -- registries ----------------------------------------------------------------------------------------

    def _registry(self, host: str) -> list[Finding]:
        try:
            client = self.services.client(host)
        except (ValueError, RegistryError) as error:
            return [Finding("reachable", host, ERROR, _describe(error))]
        reach = self._bounded("reachable", host, lambda: self._reach(client, self._who(host)),
                              lambda: self.grants.registry(host, "read"))
        later = ("catalog", "read", "push", self._removal_check())
        if reach.result == UNREACHABLE:
            return [reach, *(Finding(check, host, NOT_CHECKED, "the registry is unreachable") for check in later)]
        listed: list[str] = []
        catalog = self._bounded("catalog", host, lambda: self._catalog(client, listed),
                                lambda: self.grants.registry(host, "catalog"))
        if catalog.result == MISSING and not self.settings.sweep_schedule:
            catalog = Finding("catalog", host, NOT_CONFIGURED,
                              "refused, and only the sweep and `audit` list the catalog; the sweep is off "
                              f"({PREFIX}SWEEP_SCHEDULE): " + catalog.detail, catalog.fix)
        repository = listed[0] if listed else PROBE_REPOSITORY
        where = f"{host}/{repository}"
        read = self._bounded("read", where, lambda: self._read(client, repository, listed=bool(listed)),
                             lambda: self.grants.registry(host, "read"))
        push = self._bounded("push", where, lambda: self._push(client, repository),
                             lambda: self.grants.registry(host, "push"))
        return [reach, catalog, read, push, self._removal(host, client, repository)]

    def _who(self, host: str) -> str:
        credentials = self.settings.credentials_for(host)
        if credentials is not None:
            return f"as {credentials.username}"
        if host.endswith(ACR_SUFFIX):
            return "with the Azure identity"
        return "anonymously"

    @staticmethod
    def _reach(client: Registry, who: str) -> str:
        if not isinstance(client, ProbesRegistry):
            next(iter(client.catalog(page_size=1)), None)
            return f"answers (catalog read {who})"
        try:
            client.check_api()
        except NotFound as error:
            raise _Missing(f"answers, but not as an OCI registry: {error}",
                           (f"# check {PREFIX}REGISTRIES: the host does not serve /v2/",)) from None
        return f"GET /v2/ answered 200 {who}"

    def _catalog(self, client: Registry, listed: list[str]) -> str:
        acr = isinstance(client, ListsTagDigests)
        names = (client.list_repository_names(page_size=CATALOG_PAGE) if isinstance(client, ListsTagDigests)
                 else client.catalog(page_size=CATALOG_PAGE))
        first = list(itertools.islice(names, CATALOG_PAGE))
        quarantine = self.settings.policy.quarantine
        judged = [name for name in first if not quarantine.holds(name) and not self._ignored(name)]
        listed += judged or first
        api = "/acr/v1/_catalog" if acr else "/v2/_catalog"
        if not first:
            return f"{api} answered: no repository yet"
        more = "+" if len(first) == CATALOG_PAGE else ""
        return f"{api} answered: {len(first)}{more} {noun_for(len(first), 'repository')} on the first page"

    def _ignored(self, repository: str) -> bool:
        return self.settings.policy.rule_for(repository).ignore

    @staticmethod
    def _read(client: Registry, repository: str, *, listed: bool) -> str:
        try:
            tags = list(itertools.islice(client.list_tags(repository, page_size=TAG_PAGE), TAG_PAGE))
        except NotFound:
            if listed:
                raise
            client.head_manifest(repository, PROBE_DIGEST)
            return "no repository to read yet: listing the tags and reading a manifest of one that does not exist " \
                   "answered 404 (not 401/403), so reads are allowed"
        if not tags:
            client.head_manifest(repository, PROBE_DIGEST)
            return "tags listed (none); a manifest read answered 404 for a digest it does not hold"
        fetched = client.get_manifest(repository, tags[0])
        return f"tags listed; manifest :{tags[0]} read ({fetched.digest[:19]}…)"

    @staticmethod
    def _push(client: Registry, repository: str) -> str | Finding:
        if not isinstance(client, ProbesRegistry):
            return Finding("push", f"{client.host}/{repository}", NOT_CHECKED, "this client has no push probe")
        if client.probe_push(repository):
            return "an upload session was opened and cancelled: no blob, manifest or tag was written"
        return ("an upload session was opened; the registry did not accept its cancel, so the empty session waits "
                "for the registry's purge of abandoned uploads (nothing was written)")

    def _removal_check(self) -> str:
        return "lock" if self.settings.policy.quarantine.mode == "lock" else "delete"

    def _removal(self, host: str, client: Registry, repository: str) -> Finding:
        check = self._removal_check()
        where = f"{host}/{repository}"
        if not _quarantines(self.settings.policy):
            return Finding(check, where, NOT_CONFIGURED, "the policy never quarantines (every rule alerts or is ignored)")
        if check == "lock":
            if not isinstance(client, LocksManifests):
                return Finding(check, where, MISSING, f"quarantine.mode lock needs Azure Container Registry; {host} "
                               "is not one", ("# set quarantine.mode: move in the policy, or guard an Azure Container "
                                              "Registry",))
            return self._bounded(check, where, lambda: self._lock(client, repository),
                                 lambda: self.grants.registry(host, "lock"))
        return self._bounded(check, where, lambda: self._delete(host, client, repository),
                             lambda: self.grants.registry(host, "delete"))

    def _delete(self, host: str, client: Registry, repository: str) -> str | Finding:
        if isinstance(client, DeletesTags):
            if client.head_manifest(repository, PROBE_TAG) is not None:
                return Finding("delete", f"{host}/{repository}", NOT_CHECKED,
                               f"the probe tag {PROBE_TAG} exists there: not deleted, so not checked")
            try:
                client.delete_tag(repository, PROBE_TAG)
            except NotFound:
                return f"deleting tag {PROBE_TAG}, which does not exist, answered 404 (not 401/403): deletes are allowed"
            return f"deleting tag {PROBE_TAG}, which did not exist, answered as done: deletes are allowed"
        try:
            client.delete_manifest(repository, PROBE_DIGEST)
        except NotFound:
            return "deleting a manifest digest that does not exist answered 404 (not 401/403): deletes are allowed"
        except RegistryError as error:
            if "UNSUPPORTED" in error.codes or "HTTP 405" in str(error):
                raise _Missing(f"the registry refuses deletes: {error}", self.grants.deletes_disabled(host)) from None
            raise
        return "deleting a manifest digest that does not exist answered as done: deletes are allowed"

    @staticmethod
    def _lock(client: LocksManifests, repository: str) -> str:
        try:  # unlocked values: were the digest ever to exist, nothing would be locked by this
            client.lock_manifest(repository, PROBE_DIGEST, read=True, write=True, delete=True)
        except NotFound:
            return ("changing the attributes of a manifest digest that does not exist answered 404 (not 401/403): "
                    "locks are allowed")
        return "changing the attributes of a manifest digest that does not exist answered as done: locks are allowed"

    # -- server-side import and upstreams ------------------------------------------------------------------

    def _imports(self) -> list[Finding]:
        if not self.settings.acr_resource_id:
            return [Finding("import", "ARM importImage", NOT_CONFIGURED,
                            f"re-imports copy through the app ({PREFIX}ACR_RESOURCE_ID is not set)")]
        permissions = self.services.permissions
        if permissions is None or not self.services.registry_ids:
            return [Finding("import", self.settings.acr_resource_id, NOT_CHECKED, "no ARM client to ask with")]
        findings = []
        for host, resource_id in self.services.registry_ids.items():
            def probe(resource_id: str = resource_id, host: str = host) -> str | Finding:
                try:
                    sets = permissions.permissions(resource_id)
                except PermissionsRefused as error:
                    return Finding("import", resource_id, ERROR, f"ARM would not list the identity's own "
                                   f"permissions, so the import right cannot be told: {error}",
                                   self.grants.import_(host))
                lacking = [action for action in (IMPORT_ACTION, REGISTRY_READ_ACTION) if not allows(sets, action)]
                if lacking:
                    raise _Missing(f"the identity's permissions on the registry lack {', '.join(lacking)}",
                                   self.grants.import_(host))
                return f"{IMPORT_ACTION} and {REGISTRY_READ_ACTION} are granted"

            findings.append(self._bounded("import", resource_id, probe, lambda host=host: self.grants.import_(host)))
        return findings

    def _upstreams(self) -> list[Finding]:
        findings = []
        for host in upstream_hosts(self.settings.policy, written_out=True):
            if host in self.settings.registries:
                continue  # checked as a guarded registry
            def probe(host: str = host) -> str:
                client = self.services.client(host)
                if not isinstance(client, ProbesRegistry):
                    return "not probed: this client has no API check"
                client.check_api()
                return f"GET /v2/ answered 200 {self._who(host)}: re-imports can read it"

            findings.append(self._bounded("upstream", host, probe,
                                          lambda host=host: self.grants.registry_credentials(host, "read")))
        return findings

    # -- ledger, queue, topic, webhook ---------------------------------------------------------------------

    def _ledger_target(self) -> str:
        settings = self.settings
        if settings.tables_connection_string or settings.tables_endpoint:
            return f"Table Storage account {self.grants.table_account() or '?'}"
        return f"SQLite {settings.ledger_path}"

    def _ledger(self) -> str | Finding:
        ledger = self.services.open_ledger()
        try:
            key = PROBE_KEY_PREFIX + uuid.uuid4().hex
            if not ledger.claim(key):
                return Finding("ledger", self._ledger_target(), ERROR,
                               f"a fresh probe claim {key} was answered as taken already")
            try:
                if ledger.claim(key):
                    raise RuntimeError(f"the probe claim {key} was not found when claimed again")
            finally:
                ledger.release(key)
            if not ledger.claim(key):
                raise RuntimeError(f"the probe claim {key} was still there after it was deleted")
            ledger.release(key)
            ledger.outcomes(limit=1)
        finally:
            ledger.close()
        return f"probe claim {PROBE_KEY_PREFIX}… created, read and deleted; outcomes read"

    def _queue_target(self) -> str:
        settings = self.settings
        if settings.uses_storage_queue:
            return f"Storage queue {self.grants.queue_account() or '?'}/{settings.queue_name} (and -poison)"
        return f"SQLite {settings.queue_path}"

    def _queue(self) -> str:
        queue = self.services.open_queue()
        try:
            if isinstance(queue, PeeksQueue):
                waiting = queue.peek(limit=1)
                return (f"peeked at the queue and its poison queue ({'a message waiting' if waiting else 'empty'}); "
                        "nothing was received or sent")
            depth = queue.depth(now=time.time())
            return f"opened: {depth.ready} ready, {depth.delayed} delayed, {depth.leased} in work, {depth.dead} dead"
        finally:
            queue.close()

    def _topic(self) -> Finding:
        endpoint = self.settings.eventgrid_topic_endpoint
        if not endpoint:
            return Finding("topic", "Event Grid", NOT_CONFIGURED,
                           f"outcomes are not published ({PREFIX}EVENTGRID_TOPIC_ENDPOINT is not set)")
        target = _origin(endpoint)
        keyed = bool(self.settings.eventgrid_topic_key)

        def probe() -> Finding:
            status = self.services.http.status(endpoint, method="OPTIONS")
            how = f"the key in {PREFIX}EVENTGRID_TOPIC_KEY" if keyed else "the identity's send right"
            return Finding("topic", target, NOT_CHECKED,
                           f"the endpoint answers (HTTP {status}); {how} is not probed: there is no harmless probe, "
                           "any event sent reaches every subscriber", () if keyed else self.grants.topic())

        return self._bounded("topic", target, probe)

    def _webhook(self) -> Finding:
        url = self.settings.alert_webhook_url
        if not url:
            return Finding("alert webhook", "-", NOT_CONFIGURED,
                           f"alerts go to the log only ({PREFIX}ALERT_WEBHOOK_URL is not set)")
        target = _origin(url)

        def probe() -> str | Finding:
            status = self.services.http.status(
                url, method="OPTIONS", headers={"WebHook-Request-Origin": "platform-guard-doctor.invalid"})
            if status >= 500:
                return Finding("alert webhook", target, ERROR, f"answers an OPTIONS request with HTTP {status}")
            token = " and its token" if self.settings.alert_webhook_token else ""
            return (f"answers (HTTP {status} to an OPTIONS request; nothing was posted); whether it accepts an alert"
                    f"{token} shows with the first real one")

        return self._bounded("alert webhook", target, probe)


class Grants:
    """The commands that grant a missing right to the app's identity, from the settings alone (no lookups)."""

    def __init__(self, settings: Settings, registry_ids: Mapping[str, str], identity: Identity | None = None) -> None:
        self.settings = settings
        self.registry_ids = dict(registry_ids)
        self.identity = identity

    def assignee(self) -> str:
        identity = self.identity
        if identity is not None and identity.object_id:
            if identity.principal_type:
                return f"--assignee-object-id {identity.object_id} --assignee-principal-type {identity.principal_type}"
            return f"--assignee {identity.object_id}"
        if self.settings.azure_client_id:
            return f"--assignee {self.settings.azure_client_id}"
        return "--assignee <object id of the app's identity>"

    def assign(self, role: str, scope: str) -> str:
        return f'az role assignment create {self.assignee()} --role "{role}" --scope {scope}'

    # registries

    def registry_scope(self, host: str) -> str | None:
        if host in self.registry_ids:
            return self.registry_ids[host]
        if host.endswith(ACR_SUFFIX):
            return f'"$(az acr show --name {host.removesuffix(ACR_SUFFIX)} --query id --output tsv)"'
        return None

    def registry(self, host: str, right: str) -> tuple[str, ...]:
        scope = self.registry_scope(host)
        if scope is None or self.settings.credentials_for(host) is not None:
            return self.registry_credentials(host, right)
        legacy, abac = REGISTRY_ROLES[right]
        name = host.removesuffix(ACR_SUFFIX)
        return (
            self.assign(legacy, scope),
            f"# a registry in ABAC mode (az acr show --name {name} --query roleAssignmentMode: "
            f"AbacRepositoryPermissions) does not honour {legacy}; there:",
            self.assign(abac, scope),
        )

    def registry_credentials(self, host: str, right: str) -> tuple[str, ...]:
        key = f"{PREFIX}REGISTRY_{credentials_key(host)}"
        credentials = self.settings.credentials_for(host)
        verb = _VERBS.get(right, right)
        if credentials is None:
            return (f"# {host} is reached anonymously: set {key}_USERNAME and {key}_PASSWORD to an account that "
                    f"may {verb} {host} (its own access control)",)
        return (f"# give the account {credentials.username} ({key}_USERNAME) the right to {verb} {host} "
                "(its own access control: for an ACR token, its scope map)",)

    @staticmethod
    def deletes_disabled(host: str) -> tuple[str, ...]:
        return (f"# {host} has deletes turned off: start it with storage.delete.enabled: true "
                "(REGISTRY_STORAGE_DELETE_ENABLED=true), or set quarantine.mode: lock on an Azure Container Registry",)

    def import_(self, host: str) -> tuple[str, ...]:
        scope = self.registry_scope(host) or "<registry resource id>"
        return (self.assign(IMPORT_ROLE, scope),)

    # storage and topic

    def table_account(self) -> str | None:
        return _account(self.settings.tables_endpoint, self.settings.tables_connection_string, "table")

    def queue_account(self) -> str | None:
        return _account(self.settings.queue_endpoint, self.settings.queue_connection_string, "queue")

    @staticmethod
    def _account_id(account: str | None) -> str:
        """A shell expression for the storage account's resource id."""
        return f"$(az storage account show --name {account or '<storage account>'} --query id --output tsv)"

    def ledger(self) -> tuple[str, ...]:
        settings = self.settings
        account_scope = f'"{self._account_id(self.table_account())}"'
        if settings.tables_connection_string:
            return ("# the ledger's connection string must allow creating tables and adding, reading, updating and "
                    "deleting entities; with the identity instead "
                    f"({PREFIX}TABLES_ENDPOINT):", self.assign(TABLE_ROLE, account_scope))
        if settings.tables_endpoint:
            return (self.assign(TABLE_ROLE, account_scope),)
        return (f"# make {settings.ledger_path.parent} writable for the user that runs Platform Guard, or set "
                f"{PREFIX}LEDGER to a writable path",)

    def queue(self) -> tuple[str, ...]:
        settings = self.settings
        if not settings.uses_storage_queue:
            return (f"# make {settings.queue_path.parent} writable for the user that runs Platform Guard (the queue "
                    f"sits next to {PREFIX}LEDGER)",)
        account = self._account_id(self.queue_account())
        queue = f"{account}/queueServices/default/queues/{settings.queue_name}"
        commands = (self.assign(QUEUE_ROLE, f'"{queue}"'), self.assign(QUEUE_ROLE, f'"{queue}-poison"'),
                    "# the queue keeps its key leases in a table of the same account:",
                    self.assign(TABLE_ROLE, f'"{account}"'))
        if settings.queue_connection_string:
            return ("# the queue's connection string must allow creating queues and tables and adding, reading, "
                    f"processing and deleting messages; with the identity instead ({PREFIX}QUEUE_ENDPOINT):",
                    *commands)
        return commands

    def topic(self) -> tuple[str, ...]:
        endpoint = self.settings.eventgrid_topic_endpoint or ""
        name = (_host(endpoint).split(".", 1)[0]) or "<topic>"
        scope = (f'"$(az resource list --resource-type Microsoft.EventGrid/topics --name {name} --query [0].id '
                 '--output tsv)"')
        return ("# if publishing fails with 401/403:", self.assign(TOPIC_ROLE, scope))


def allows(permissions: Iterable[Permission], action: str, *, data: bool = False) -> bool:
    """Whether ARM permission sets allow `action`: one set's actions (`*` wildcards, any case) match it and that same
    set's notActions do not (Azure RBAC: notActions subtract from their own role only; deny assignments and ABAC
    conditions are not in this answer)."""
    for permission in permissions:
        granted = permission.data_actions if data else permission.actions
        denied = permission.not_data_actions if data else permission.not_actions
        if any(_matches(pattern, action) for pattern in granted) and not any(
            _matches(pattern, action) for pattern in denied
        ):
            return True
    return False


def _matches(pattern: str, action: str) -> bool:
    expression = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(expression, action, re.IGNORECASE) is not None


def _quarantines(policy: Policy) -> bool:
    """Whether any rule may quarantine (a failed re-import quarantines too)."""
    return any(not rule.ignore and rule.on_violation in ("quarantine", "reimport")
               for rule in (policy.defaults, *policy.rules))


def _describe(error: BaseException, most: int = 600) -> str:
    """The error on one line (services answer with several: request ids, times), cut after `most` characters."""
    text = " ".join(str(error).split()) or type(error).__name__
    if not isinstance(error, (RegistryError, Unreachable, LedgerUnavailable, QueueUnavailable, IdentityUnavailable)):
        text = f"{type(error).__name__}: {text}"
    return text if len(text) <= most else text[: most - 1] + "…"


def _host(url: str) -> str:
    rest = url.partition("://")[2]
    return rest.split("/", 1)[0].rpartition("@")[2].split(":", 1)[0].lower()


def _origin(url: str) -> str:
    """scheme://host[:port] only: a URL's path or query may hold its secret (webhook URLs often do)."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0].split('?', 1)[0].rpartition('@')[2]}"


def _account(endpoint: str | None, connection_string: str | None, service: str) -> str | None:
    """The storage account of an endpoint (`https://<account>.<service>.core.windows.net`) or of a connection string
    (`AccountName=`; the development storage's is devstoreaccount1). Keys are never read."""
    if connection_string:
        fields = dict(part.split("=", 1) for part in connection_string.split(";") if "=" in part)
        if fields.get("AccountName"):
            return fields["AccountName"]
        if fields.get("UseDevelopmentStorage", "").lower() == "true":
            return "devstoreaccount1"
        endpoint = fields.get(f"{service.capitalize()}Endpoint")
    if not endpoint:
        return None
    host = _host(endpoint)
    if host.endswith(f".{service}.core.windows.net"):
        return host.split(".", 1)[0]
    path = endpoint.partition("://")[2].split("/")  # Azurite: http://127.0.0.1:10002/devstoreaccount1
    return path[1] if len(path) > 1 and path[1] else None
