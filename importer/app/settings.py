"""App settings: read once at start-up from the environment (Azure app settings, local.settings.json, a shell).

    settings = load_settings(os.environ)      # SettingsError names the setting and what is wrong

| setting | meaning | default |
|---|---|---|
| PLATFORM_GUARD_REGISTRIES | comma-separated hosts of the guarded registries; events from others are rejected | none |
| PLATFORM_GUARD_POLICY_FILE | path of the policy YAML | (embedded default policy) |
| PLATFORM_GUARD_POLICY | the policy YAML itself (for an app setting); wins over the file | |
| PLATFORM_GUARD_LEDGER | SQLite ledger file | $XDG_STATE_HOME/platform-guard/ledger.db |
| PLATFORM_GUARD_WEBHOOK_TOKEN | bearer token registries send to /api/registry-events and /api/cloudevents | none: those routes refuse |
| PLATFORM_GUARD_INSECURE_REGISTRIES | hosts that may be reached over plain HTTP besides loopback | none |
| PLATFORM_GUARD_REGISTRY_<KEY>_USERNAME, _PASSWORD | credentials for a registry; KEY is its host upper-cased with every non-alphanumeric character as `_` (`docker.io` → `DOCKER_IO`) | anonymous |
| PLATFORM_GUARD_LOOP_GUARD | at most N remediations of one tag per window: `N/SECONDS`, N 1–1000000, SECONDS 1–2592000 (30 days) | 3/3600 |
| PLATFORM_GUARD_EVENT_RETRY | a queued event is tried at most N times, the first retry after SECONDS (doubling, up to 5 minutes): `N/SECONDS`, N 1–100, SECONDS 0.1–300 | 8/5 |
| PLATFORM_GUARD_LEASE_SECONDS | how long a worker holds a queued event before another may take it over (renewed every third while it works), 1–3600 | 60 |
| PLATFORM_GUARD_EVENT_DEADLINE_SECONDS | time limit of one try of an event, every registry request and wait included; a try that runs out of time is retried later. On Azure keep it a minute under host.json's functionTimeout (5 minutes), 1–3600 | 240 |
| PLATFORM_GUARD_FAILPOINTS | test only: comma-separated failpoints (importer/app/failpoints.py) where a worker kills itself, or pauses with `NAME=PATH` | none |
| PLATFORM_GUARD_AUTH_RETRY_SECONDS | how long 401/403 answers are tried again after an event's first try (role assignments propagate), 0–86400 | 900 |
| PLATFORM_GUARD_PAUSED_REPOSITORIES | comma-separated repository globs whose violations are only alerted (remediation paused) | none |
| PLATFORM_GUARD_ALERT_WEBHOOK_URL | CloudEvents 1.0 webhook that receives every alerting outcome | none |
| PLATFORM_GUARD_ALERT_WEBHOOK_TOKEN | bearer token sent to that webhook | none |
| PLATFORM_GUARD_ACR_RESOURCE_ID | ARM id of the guarded Azure Container Registry: its host is guarded, its Event Grid topic accepted, re-imports run server-side (ARM importImage) and `quarantine.mode: lock` works | none |
| PLATFORM_GUARD_ACR_LOGIN_SERVER | login server (host) of that registry, from its `loginServer` property: needed when it is not `<name>.azurecr.io` (a domain-name-label scope gives `<name>-<hash>.azurecr.io`); only with PLATFORM_GUARD_ACR_RESOURCE_ID | `<name>.azurecr.io` |
| PLATFORM_GUARD_UPSTREAM_RESOURCE_IDS | comma-separated `host=resourceId` pairs: upstream ACRs (same tenant) that ARM import reads by resource id with the app's identity, never with a username and password; only with PLATFORM_GUARD_ACR_RESOURCE_ID (the guarded registry itself always goes by its id) | none: by host |
| PLATFORM_GUARD_TABLES_ENDPOINT | `https://<account>.table.core.windows.net`: the ledger on Table Storage, with the managed identity | none: SQLite |
| PLATFORM_GUARD_TABLES_CONNECTION_STRING | the ledger on Table Storage with a connection string (Azurite, development) | none |
| PLATFORM_GUARD_QUEUE_ENDPOINT | `https://<account>.queue.core.windows.net`: the event queue on Azure Storage Queues, with the managed identity (the Functions app's routes put events there; `outcomes --failed` and `redrive` read its poison queue) | none: SQLite next to the ledger |
| PLATFORM_GUARD_QUEUE_CONNECTION_STRING | the event queue on Azure Storage Queues with a connection string (Azurite, development) | none |
| PLATFORM_GUARD_QUEUE_NAME | name of that Storage queue (its dead letters: `<name>-poison`); the Functions queue trigger listens on it | platform-guard-events |
| PLATFORM_GUARD_EVENTGRID_TOPIC_ENDPOINT | Event Grid custom topic endpoint that receives outcome events (managed identity) | none |
| PLATFORM_GUARD_EVENTGRID_TOPIC_KEY | topic access key instead of the identity (development only) | none |
| APPLICATIONINSIGHTS_CONNECTION_STRING | send outcomes to Application Insights, every field a custom dimension | none |
| AZURE_CLIENT_ID | client id of the user-assigned managed identity (read by DefaultAzureCredential) | system identity / developer login |
| PLATFORM_GUARD_SWEEP_SCHEDULE | NCRONTAB schedule (6 fields, UTC) of the timer that sweeps every guarded registry (importer/entry/sweep_timer.py); unset or `off`: the timer function is not even declared | off |
| PLATFORM_GUARD_SWEEP_REMEDIATE | `true`: the timer's sweep remediates like the event path; `false`: it records violations as `alerted` and changes nothing | false |
| PLATFORM_GUARD_SWEEP_PARALLEL | tags a sweep reads at once (1–64) | 8 |

Registries whose host ends in `.azurecr.io` are reached with the ACR adapter and the managed identity.

Numbers are read strictly (importer.core.numbers): ASCII digits, a fraction like `2.5` only where seconds are meant;
no sign, spaces, `_`, exponent, hex, other scripts' digits, nan or infinity; a value outside its range above is
refused by name. An empty numeric setting means its default.

Secrets (the webhook token, passwords) never appear in a repr, a log line or an error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from importer.app.failpoints import POINTS as FAILPOINTS
from importer.app.policy_file import load_policy
from importer.core.numbers import NumberError, parse_decimal, parse_whole_number, shown, written
from importer.core.policy import DEFAULT_POLICY, Policy, PolicyError, parse_policy, repository_matcher
from importer.core.reference import ReferenceError, is_loopback_host, validate_host
from importer.ports.registry import Credentials

PREFIX = "PLATFORM_GUARD_"
_HOST = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$")


# Every setting the code reads (the credential pair is a pattern: PLATFORM_GUARD_REGISTRY_<KEY>_USERNAME/_PASSWORD).
# The README table, the infra templates and their tests are checked against this list.
KNOWN_SETTINGS: tuple[str, ...] = (
    PREFIX + "REGISTRIES",
    PREFIX + "POLICY_FILE",
    PREFIX + "POLICY",
    PREFIX + "LEDGER",
    PREFIX + "WEBHOOK_TOKEN",
    PREFIX + "INSECURE_REGISTRIES",
    PREFIX + "LOOP_GUARD",
    PREFIX + "EVENT_RETRY",
    PREFIX + "AUTH_RETRY_SECONDS",
    PREFIX + "LEASE_SECONDS",
    PREFIX + "EVENT_DEADLINE_SECONDS",
    PREFIX + "FAILPOINTS",
    PREFIX + "PAUSED_REPOSITORIES",
    PREFIX + "ALERT_WEBHOOK_URL",
    PREFIX + "ALERT_WEBHOOK_TOKEN",
    PREFIX + "ACR_RESOURCE_ID",
    PREFIX + "ACR_LOGIN_SERVER",
    PREFIX + "UPSTREAM_RESOURCE_IDS",
    PREFIX + "TABLES_ENDPOINT",
    PREFIX + "TABLES_CONNECTION_STRING",
    PREFIX + "QUEUE_ENDPOINT",
    PREFIX + "QUEUE_CONNECTION_STRING",
    PREFIX + "QUEUE_NAME",
    PREFIX + "EVENTGRID_TOPIC_ENDPOINT",
    PREFIX + "EVENTGRID_TOPIC_KEY",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "AZURE_CLIENT_ID",
    PREFIX + "SWEEP_SCHEDULE",
    PREFIX + "SWEEP_REMEDIATE",
    PREFIX + "SWEEP_PARALLEL",
)
CREDENTIAL_SETTING = re.compile(r"^PLATFORM_GUARD_REGISTRY_[A-Z0-9_]+_(USERNAME|PASSWORD)$")
SECRET_SETTINGS = frozenset(
    {PREFIX + "WEBHOOK_TOKEN", PREFIX + "ALERT_WEBHOOK_TOKEN", PREFIX + "TABLES_CONNECTION_STRING",
     PREFIX + "QUEUE_CONNECTION_STRING", PREFIX + "EVENTGRID_TOPIC_KEY"}
)


DEFAULT_QUEUE_NAME = "platform-guard-events"
# One try of an event (importer.app.pipeline): a minute under the Functions host's 5-minute functionTimeout, which
# leaves time to record the outcome and settle the message after a try that ran out of time.
DEFAULT_EVENT_DEADLINE_SECONDS = 240.0


def queue_name_setting(environ: Mapping[str, str]) -> str:
    """The Storage queue's name, read without validation at import time (function_app.py's queue trigger listens on
    it); a bad name is refused by name when the queue is first opened (importer.entry.composition.queue_for)."""
    return environ.get(PREFIX + "QUEUE_NAME", "").strip() or DEFAULT_QUEUE_NAME


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names it."""


def credentials_key(host: str) -> str:
    """The KEY part of PLATFORM_GUARD_REGISTRY_<KEY>_USERNAME for a registry host."""
    return re.sub(r"[^A-Za-z0-9]", "_", host).upper()


def default_ledger_path(environ: Mapping[str, str]) -> Path:
    state = environ.get("XDG_STATE_HOME") or str(Path(environ.get("HOME", "/tmp")) / ".local" / "state")
    return Path(state) / "platform-guard" / "ledger.db"


def _hosts(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = environ.get(name, "")
    hosts = tuple(dict.fromkeys(part.strip().lower() for part in raw.split(",") if part.strip()))
    for host in hosts:
        if not _HOST.match(host):
            raise SettingsError(f"{name}: {host!r} is not a registry host (expected host or host:port)")
    return hosts


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the entry points need to build the pipeline."""

    registries: tuple[str, ...] = ()
    insecure_registries: frozenset[str] = frozenset()
    policy: Policy = DEFAULT_POLICY
    ledger_path: Path = Path("ledger.db")
    webhook_token: str | None = field(default=None, repr=False)
    credentials: Mapping[str, Credentials] = field(default_factory=dict, repr=False)
    loop_limit: int = 3
    loop_window: float = 3600.0
    event_attempts: int = 8
    event_retry_seconds: float = 5.0
    auth_retry_seconds: float = 900.0
    lease_seconds: float = 60.0
    event_deadline_seconds: float = DEFAULT_EVENT_DEADLINE_SECONDS
    failpoints: str | None = None  # test only
    paused_repositories: tuple[str, ...] = ()
    alert_webhook_url: str | None = None
    alert_webhook_token: str | None = field(default=None, repr=False)
    acr_resource_id: str | None = None
    acr_login_server: str | None = None  # the guarded ACR's host: the setting, else `<name>.azurecr.io` from its id
    upstream_resource_ids: Mapping[str, str] = field(default_factory=dict)  # upstream host → ACR resource id
    tables_endpoint: str | None = None
    tables_connection_string: str | None = field(default=None, repr=False)
    queue_endpoint: str | None = None
    queue_connection_string: str | None = field(default=None, repr=False)
    queue_name: str = DEFAULT_QUEUE_NAME
    eventgrid_topic_endpoint: str | None = None
    eventgrid_topic_key: str | None = field(default=None, repr=False)
    appinsights_connection_string: str | None = field(default=None, repr=False)
    azure_client_id: str | None = None
    sweep_schedule: str | None = None
    sweep_remediate: bool = False
    sweep_parallel: int = 8

    @property
    def queue_path(self) -> Path:
        """The SQLite queue of the local host's intake and workers: next to the ledger (`ledger.db` → `ledger.queue.db`)."""
        return self.ledger_path.with_suffix(".queue.db")

    @property
    def uses_storage_queue(self) -> bool:
        """Whether the event queue is on Azure Storage Queues (an endpoint or a connection string is set)."""
        return bool(self.queue_endpoint or self.queue_connection_string)

    def credentials_for(self, host: str) -> Credentials | None:
        return self.credentials.get(host.lower())

    def allows_http(self, host: str) -> bool:
        return host.lower() in self.insecure_registries


def _policy(environ: Mapping[str, str]) -> Policy:
    inline = environ.get(PREFIX + "POLICY")
    path = environ.get(PREFIX + "POLICY_FILE")
    try:
        if inline:
            return parse_policy(inline, source=PREFIX + "POLICY")
        if path:
            return load_policy(path)
    except PolicyError as error:
        raise SettingsError(str(error)) from None
    return DEFAULT_POLICY


def _credentials(environ: Mapping[str, str], hosts: tuple[str, ...]) -> dict[str, Credentials]:
    found: dict[str, Credentials] = {}
    for host in hosts:
        key = credentials_key(host)
        user = environ.get(f"{PREFIX}REGISTRY_{key}_USERNAME")
        password = environ.get(f"{PREFIX}REGISTRY_{key}_PASSWORD")
        if bool(user) != bool(password):
            missing = "PASSWORD" if user else "USERNAME"
            raise SettingsError(f"{PREFIX}REGISTRY_{key}_{missing} is missing (the other half is set)")
        if user and password:
            found[host] = Credentials(user, password)
    return found


# Documented ranges of the numeric settings (numbers are read by importer.core.numbers: ASCII digits, no sign).
LOOP_GUARD_MOST_REMEDIATIONS = 1_000_000
LOOP_GUARD_WINDOW_SECONDS = (1.0, 2_592_000.0)  # one second to 30 days
EVENT_RETRY_MOST_ATTEMPTS = 100
EVENT_RETRY_FIRST_DELAY_SECONDS = (0.1, 300.0)  # the delay doubles up to 5 minutes
AUTH_RETRY_SECONDS_RANGE = (0.0, 86_400.0)
LEASE_SECONDS_RANGE = (1.0, 3600.0)
EVENT_DEADLINE_SECONDS_RANGE = (1.0, 3600.0)
SWEEP_MOST_PARALLEL = 64


def _loop_guard(environ: Mapping[str, str]) -> tuple[int, float]:
    return _count_per_seconds(environ, PREFIX + "LOOP_GUARD", "3/3600", most=LOOP_GUARD_MOST_REMEDIATIONS,
                              seconds=LOOP_GUARD_WINDOW_SECONDS)


def _event_retry(environ: Mapping[str, str]) -> tuple[int, float]:
    return _count_per_seconds(environ, PREFIX + "EVENT_RETRY", "8/5", most=EVENT_RETRY_MOST_ATTEMPTS,
                              seconds=EVENT_RETRY_FIRST_DELAY_SECONDS)


def _count_per_seconds(
    environ: Mapping[str, str], name: str, default: str, *, most: int, seconds: tuple[float, float]
) -> tuple[int, float]:
    """`N/SECONDS`: N a whole number from 1 to `most`, SECONDS a number in the range `seconds` (unset or empty: the
    default)."""
    raw = environ.get(name) or default
    count, slash, window = raw.partition("/")
    try:
        if not slash:
            raise NumberError("no '/'")
        return (parse_whole_number(count, least=1, most=most),
                parse_decimal(window, least=seconds[0], most=seconds[1]))
    except NumberError:
        raise SettingsError(
            f"{name}: expected N/SECONDS with N a whole number from 1 to {most} and SECONDS a number from "
            f"{written(seconds[0])} to {written(seconds[1])}, e.g. {default} (got {shown(raw)})"
        ) from None


def _seconds(environ: Mapping[str, str], name: str, default: float, *, least: float, most: float) -> float:
    """A number of seconds from `least` to `most` (unset or empty: the default)."""
    raw = environ.get(name)
    if not raw:
        return default
    try:
        return parse_decimal(raw, least=least, most=most, what="a number of seconds")
    except NumberError as error:
        raise SettingsError(f"{name}: {error}") from None


def _lease_seconds(environ: Mapping[str, str]) -> float:
    least, most = LEASE_SECONDS_RANGE
    return _seconds(environ, PREFIX + "LEASE_SECONDS", 60.0, least=least, most=most)


def _failpoints(environ: Mapping[str, str]) -> str | None:
    name = PREFIX + "FAILPOINTS"
    spec = environ.get(name) or None
    for item in (spec or "").split(","):
        point = item.strip().partition("=")[0]
        if point and point not in FAILPOINTS:
            raise SettingsError(f"{name}: unknown failpoint {point!r}; known: {', '.join(sorted(FAILPOINTS))}")
    return spec


def _paused(environ: Mapping[str, str]) -> tuple[str, ...]:
    name = PREFIX + "PAUSED_REPOSITORIES"
    globs = tuple(part.strip() for part in environ.get(name, "").split(",") if part.strip())
    try:
        repository_matcher(globs)
    except ValueError as error:
        raise SettingsError(f"{name}: {error}") from None
    return globs


_ACR_RESOURCE_ID = re.compile(
    r"^/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[\w.()-]{1,90}"
    r"/providers/Microsoft\.ContainerRegistry/registries/(?P<name>[a-zA-Z0-9]{5,50})$",
    re.IGNORECASE,
)


def acr_host(resource_id: str) -> str:
    """The login server of the registry an ARM resource id names, as derived from its name (`<name>.azurecr.io`)."""
    found = _ACR_RESOURCE_ID.match(resource_id)
    if found is None:
        raise SettingsError(
            f"{PREFIX}ACR_RESOURCE_ID: expected /subscriptions/<id>/resourceGroups/<rg>/providers/"
            f"Microsoft.ContainerRegistry/registries/<name> (got {resource_id!r})"
        )
    return f"{found.group('name').lower()}.azurecr.io"


def _quoted(text: str, most: int = 160) -> str:
    """`text` as a message quotes it, cut after `most` characters."""
    return repr(text) if len(text) <= most else repr(text[:most]) + f"… ({len(text)} characters)"


def _acr_login_server(environ: Mapping[str, str], acr_resource_id: str | None) -> str | None:
    """The guarded ACR's host: PLATFORM_GUARD_ACR_LOGIN_SERVER, else derived from its resource id; None without one."""
    name = PREFIX + "ACR_LOGIN_SERVER"
    raw = environ.get(name, "").strip()
    derived = acr_host(acr_resource_id) if acr_resource_id is not None else None  # validates the id
    if not raw:
        return derived
    if acr_resource_id is None:
        raise SettingsError(f"{name}: set without {PREFIX}ACR_RESOURCE_ID; it is that registry's login server (to "
                            f"guard a registry by its host alone, list the host in {PREFIX}REGISTRIES)")
    try:
        return validate_host(raw).lower()
    except ReferenceError:
        raise SettingsError(f"{name}: expected the registry's login server, a host like myacr-abc123.azurecr.io, with "
                            f"no scheme or path (got {_quoted(raw)})") from None


def _upstream_resource_ids(
    environ: Mapping[str, str], acr_resource_id: str | None, acr_login_server: str | None
) -> dict[str, str]:
    """PLATFORM_GUARD_UPSTREAM_RESOURCE_IDS: `host=resourceId` pairs, comma-separated (host lower-cased)."""
    name = PREFIX + "UPSTREAM_RESOURCE_IDS"
    entries = [entry.strip() for entry in environ.get(name, "").split(",") if entry.strip()]
    if entries and acr_resource_id is None:
        raise SettingsError(f"{name}: only ARM import reads it, and that needs {PREFIX}ACR_RESOURCE_ID")
    found: dict[str, str] = {}
    for entry in entries:
        host, equals, resource_id = (part.strip() for part in entry.partition("="))
        if not equals or not host or not resource_id:
            raise SettingsError(f"{name}: entry {_quoted(entry)} is not host=resourceId")
        try:
            host = validate_host(host).lower()
        except ReferenceError:
            raise SettingsError(f"{name}: entry {_quoted(entry)}: {_quoted(host)} is not a registry host") from None
        if not _ACR_RESOURCE_ID.match(resource_id):
            raise SettingsError(
                f"{name}: entry {_quoted(entry)}: expected an ACR resource id, /subscriptions/<id>/resourceGroups/"
                "<rg>/providers/Microsoft.ContainerRegistry/registries/<name>")
        if host in found:
            raise SettingsError(f"{name}: {host} is listed twice")
        if host == acr_login_server and resource_id.lower() != (acr_resource_id or "").lower():
            raise SettingsError(f"{name}: entry {_quoted(entry)}: {host} is the guarded registry, whose id is "
                                f"{PREFIX}ACR_RESOURCE_ID ({acr_resource_id})")
        found[host] = resource_id
    return found


def _https_url(environ: Mapping[str, str], name: str, insecure: tuple[str, ...]) -> str | None:
    """An endpoint setting: https, or plain http only to loopback or an allowed host."""
    url = environ.get(name) or None
    if url is None:
        return None
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    if scheme not in ("http", "https") or not host:
        raise SettingsError(f"{name}: expected an http(s) URL (got {url!r})")
    if scheme == "http" and not (is_loopback_host(host) or host.lower() in insecure):
        raise SettingsError(f"{name}: plain http is only allowed to loopback or PLATFORM_GUARD_INSECURE_REGISTRIES hosts")
    return url


def upstream_hosts(policy: Policy, *, written_out: bool = False) -> tuple[str, ...]:
    """Registry hosts the policy re-imports from, each once: they may need credentials too. `written_out`: only hosts
    written out (not empty, no `{…}` placeholder; a policy read from a file has no other), as `doctor` probes them."""
    templates = [policy.defaults.upstream, *(rule.upstream for rule in policy.rules)]
    hosts = (template.split("/", 1)[0].lower() for template in templates if template)
    return tuple(dict.fromkeys(host for host in hosts if not written_out or (host and "{" not in host)))


_SWEEP_OFF = frozenset({"", "off"})
_NCRONTAB_FIELD = re.compile(r"^[0-9A-Za-z*/,?-]+$")


def sweep_timer_configured(environ: Mapping[str, str]) -> bool:
    """Whether PLATFORM_GUARD_SWEEP_SCHEDULE asks for the sweep timer, read without validation (`load_settings`
    validates the schedule and refuses a bad one by name; function_app.py declares the timer from the loaded
    settings' `sweep_schedule`, so a bad schedule stops the app at start-up like any bad setting)."""
    return environ.get(PREFIX + "SWEEP_SCHEDULE", "").strip().lower() not in _SWEEP_OFF


def _sweep_schedule(environ: Mapping[str, str]) -> str | None:
    name = PREFIX + "SWEEP_SCHEDULE"
    raw = environ.get(name, "").strip()
    if raw.lower() in _SWEEP_OFF:
        return None
    fields = raw.split()
    if len(fields) != 6 or not all(_NCRONTAB_FIELD.match(part) for part in fields):
        raise SettingsError(
            f"{name}: expected an NCRONTAB expression of 6 fields (second minute hour day month day-of-week), "
            f"e.g. '0 0 3 * * *' for 03:00 UTC daily, or 'off' (got {raw!r})"
        )
    return " ".join(fields)


def _flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("true", "1", "yes"):
        return True
    if raw in ("false", "0", "no"):
        return False
    raise SettingsError(f"{name}: expected true or false (got {raw!r})")


def _sweep_parallel(environ: Mapping[str, str]) -> int:
    name = PREFIX + "SWEEP_PARALLEL"
    try:
        return parse_whole_number(environ.get(name) or "8", least=1, most=SWEEP_MOST_PARALLEL)
    except NumberError as error:
        raise SettingsError(f"{name}: {error}") from None


def load_settings(environ: Mapping[str, str] | None = None, *, policy: Policy | None = None) -> Settings:
    """Read and validate every setting; `policy` overrides the policy settings (the CLI's --policy)."""
    environ = os.environ if environ is None else environ
    registries = _hosts(environ, PREFIX + "REGISTRIES")
    insecure = _hosts(environ, PREFIX + "INSECURE_REGISTRIES")
    ledger = environ.get(PREFIX + "LEDGER")
    token = environ.get(PREFIX + "WEBHOOK_TOKEN") or None
    if token is not None and len(token) < 16:
        raise SettingsError(f"{PREFIX}WEBHOOK_TOKEN: must be at least 16 characters long")
    policy = policy or _policy(environ)
    loop_limit, loop_window = _loop_guard(environ)
    event_attempts, event_retry_seconds = _event_retry(environ)
    acr_resource_id = environ.get(PREFIX + "ACR_RESOURCE_ID") or None
    acr_login_server = _acr_login_server(environ, acr_resource_id)
    if acr_login_server is not None and acr_login_server not in registries:
        registries = (*registries, acr_login_server)
    return Settings(
        acr_resource_id=acr_resource_id,
        acr_login_server=acr_login_server,
        upstream_resource_ids=_upstream_resource_ids(environ, acr_resource_id, acr_login_server),
        tables_endpoint=_https_url(environ, PREFIX + "TABLES_ENDPOINT", insecure),
        tables_connection_string=environ.get(PREFIX + "TABLES_CONNECTION_STRING") or None,
        queue_endpoint=_https_url(environ, PREFIX + "QUEUE_ENDPOINT", insecure),
        queue_connection_string=environ.get(PREFIX + "QUEUE_CONNECTION_STRING") or None,
        queue_name=queue_name_setting(environ),
        eventgrid_topic_endpoint=_https_url(environ, PREFIX + "EVENTGRID_TOPIC_ENDPOINT", insecure),
        eventgrid_topic_key=environ.get(PREFIX + "EVENTGRID_TOPIC_KEY") or None,
        appinsights_connection_string=environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING") or None,
        azure_client_id=environ.get("AZURE_CLIENT_ID") or None,
        sweep_schedule=_sweep_schedule(environ),
        sweep_remediate=_flag(environ, PREFIX + "SWEEP_REMEDIATE", False),
        sweep_parallel=_sweep_parallel(environ),
        loop_limit=loop_limit,
        loop_window=loop_window,
        event_attempts=event_attempts,
        event_retry_seconds=event_retry_seconds,
        auth_retry_seconds=_seconds(environ, PREFIX + "AUTH_RETRY_SECONDS", 900.0, least=AUTH_RETRY_SECONDS_RANGE[0],
                                    most=AUTH_RETRY_SECONDS_RANGE[1]),
        lease_seconds=_lease_seconds(environ),
        event_deadline_seconds=_seconds(environ, PREFIX + "EVENT_DEADLINE_SECONDS", DEFAULT_EVENT_DEADLINE_SECONDS,
                                        least=EVENT_DEADLINE_SECONDS_RANGE[0], most=EVENT_DEADLINE_SECONDS_RANGE[1]),
        failpoints=_failpoints(environ),
        paused_repositories=_paused(environ),
        alert_webhook_url=_https_url(environ, PREFIX + "ALERT_WEBHOOK_URL", insecure),
        alert_webhook_token=environ.get(PREFIX + "ALERT_WEBHOOK_TOKEN") or None,
        registries=registries,
        insecure_registries=frozenset(insecure),
        policy=policy,
        ledger_path=Path(ledger) if ledger else default_ledger_path(environ),
        webhook_token=token,
        credentials=_credentials(environ, registries + upstream_hosts(policy)),
    )
