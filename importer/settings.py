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
| PLATFORM_GUARD_LOOP_GUARD | at most N remediations of one tag per window: `N/SECONDS` | 3/3600 |
| PLATFORM_GUARD_PAUSED_REPOSITORIES | comma-separated repository globs whose violations are only alerted (remediation paused) | none |
| PLATFORM_GUARD_ALERT_WEBHOOK_URL | CloudEvents 1.0 webhook that receives every alerting outcome | none |
| PLATFORM_GUARD_ALERT_WEBHOOK_TOKEN | bearer token sent to that webhook | none |

Secrets (the webhook token, passwords) never appear in a repr, a log line or an error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from importer.policy import DEFAULT_POLICY, Policy, PolicyError, load_policy, parse_policy, repository_matcher
from importer.reference import is_loopback_host
from importer.registry.oci import Credentials

PREFIX = "PLATFORM_GUARD_"
_HOST = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$")


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
    paused_repositories: tuple[str, ...] = ()
    alert_webhook_url: str | None = None
    alert_webhook_token: str | None = field(default=None, repr=False)

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


def _loop_guard(environ: Mapping[str, str]) -> tuple[int, float]:
    name = PREFIX + "LOOP_GUARD"
    raw = environ.get(name, "3/3600")
    count, slash, window = raw.partition("/")
    try:
        limit, seconds = int(count), float(window)
    except ValueError:
        limit, seconds = -1, -1.0
    if not slash or limit < 1 or seconds <= 0:
        raise SettingsError(f"{name}: expected N/SECONDS with N ≥ 1 and SECONDS > 0, e.g. 3/3600 (got {raw!r})")
    return limit, seconds


def _paused(environ: Mapping[str, str]) -> tuple[str, ...]:
    name = PREFIX + "PAUSED_REPOSITORIES"
    globs = tuple(part.strip() for part in environ.get(name, "").split(",") if part.strip())
    try:
        repository_matcher(globs)
    except ValueError as error:
        raise SettingsError(f"{name}: {error}") from None
    return globs


def _webhook_url(environ: Mapping[str, str], insecure: tuple[str, ...]) -> str | None:
    name = PREFIX + "ALERT_WEBHOOK_URL"
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


def _upstream_hosts(policy: Policy) -> tuple[str, ...]:
    """Registry hosts the policy re-imports from: they may need credentials too."""
    templates = [policy.defaults.upstream, *(rule.upstream for rule in policy.rules)]
    return tuple(dict.fromkeys(t.split("/", 1)[0].lower() for t in templates if t))


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
    return Settings(
        loop_limit=loop_limit,
        loop_window=loop_window,
        paused_repositories=_paused(environ),
        alert_webhook_url=_webhook_url(environ, insecure),
        alert_webhook_token=environ.get(PREFIX + "ALERT_WEBHOOK_TOKEN") or None,
        registries=registries,
        insecure_registries=frozenset(insecure),
        policy=policy,
        ledger_path=Path(ledger) if ledger else default_ledger_path(environ),
        webhook_token=token,
        credentials=_credentials(environ, registries + _upstream_hosts(policy)),
    )
