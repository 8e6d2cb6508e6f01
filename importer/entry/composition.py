"""The composition root: the one place that knows which backends exist and picks one adapter per port.

    pipeline = pipeline_for(settings)        # the pipeline every entry point runs, wired from the settings
    queue = queue_for(settings)              # the events between intake and workers: Storage Queues, else SQLite
    directory = registry_directory_for(settings)  # ACR adapter for *.azurecr.io (managed identity), else OCI
                                             # with credentials from the settings, else from the docker config
    ledger = ledger_for(settings)            # TableLedger with PLATFORM_GUARD_TABLES_*, else SQLite
    ledger = existing_ledger_for(settings)   # the same choice for readers; None while the SQLite file does not exist
    importer = server_importer_for(settings) # ARM importImage for the guarded ACR, else None (the copy engine)
    sinks = sinks_for(settings)              # JSON log always; webhook, Event Grid topic, App Insights when set
    credential = azure_credential(settings)  # DefaultAzureCredential for the user-assigned identity (lazy)

Azure SDKs are imported only when a setting asks for them, so a local run (and a cold start) pays for none of them.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

from importer.adapters.registry.oci import OciRegistry
from importer.adapters.sinks.log import LogSink
from importer.app import failpoints
from importer.app.pipeline import Pipeline
from importer.app.registries import ACR_SUFFIX, RegistryDirectory
from importer.app.settings import PREFIX, Settings, SettingsError
from importer.ports.ledger import Ledger
from importer.ports.metrics import Metrics
from importer.ports.queue import Doorbell, EventQueue
from importer.ports.registry import Registry
from importer.ports.sinks import OutcomeSink

if TYPE_CHECKING:
    from importer.adapters.registry.acr_import import AcrImporter
    from importer.adapters.registry.docker_config import DockerCredentialStore
    from importer.app.worker import WorkerPolicy


@functools.lru_cache(maxsize=4)
def _credential(client_id: str | None) -> Any:
    from importer.adapters.registry.acr import azure_credential as make_credential

    return make_credential(client_id)


def azure_credential(settings: Settings) -> Any:
    """One credential per identity for the process, so every client shares its token cache."""
    return _credential(settings.azure_client_id)


def server_importer_for(settings: Settings) -> "AcrImporter | None":
    """ARM importImage for the guarded ACR when PLATFORM_GUARD_ACR_RESOURCE_ID is set (re-imports move no bytes), at its
    login server, reading PLATFORM_GUARD_UPSTREAM_RESOURCE_IDS upstreams (and itself) by resource id."""
    if not settings.acr_resource_id:
        return None
    from importer.adapters.registry.acr_import import AcrImporter

    parts = settings.acr_resource_id.strip("/").split("/")
    return AcrImporter(
        subscription_id=parts[1], resource_group=parts[3], registry_name=parts[7],
        credential=azure_credential(settings), login_server=settings.acr_login_server,
        source_resource_ids=settings.upstream_resource_ids,
    )


def worker_policy_for(settings: Settings) -> WorkerPolicy:
    """How the workers retry and give up, from the settings (loaded only where workers run, not at cold start)."""
    from importer.app.worker import WorkerPolicy
    from importer.core.retry import EVENT_RETRY

    retry = EVENT_RETRY.replace(attempts=settings.event_attempts, base_delay=settings.event_retry_seconds)
    return WorkerPolicy(lease_seconds=settings.lease_seconds, retry=retry,
                        authorization_window=settings.auth_retry_seconds)


def queue_for(settings: Settings) -> EventQueue:
    """The queue between the intake and the workers: Azure Storage Queues when configured (connection string first,
    else endpoint + identity), otherwise SQLite next to the ledger file."""
    if settings.uses_storage_queue:
        from importer.adapters.queue.storage import StorageQueue

        try:
            if settings.queue_connection_string:
                return StorageQueue(connection_string=settings.queue_connection_string, queue_name=settings.queue_name)
            return StorageQueue(account_url=settings.queue_endpoint, credential=azure_credential(settings),
                                queue_name=settings.queue_name)
        except ValueError as error:  # a queue name the service would refuse, an endpoint that is not a Queue service
            setting = "QUEUE_NAME" if "queue name" in str(error) else "QUEUE_ENDPOINT"
            raise SettingsError(f"{PREFIX}{setting}: {error}") from None
    from importer.adapters.queue.sqlite import SqliteQueue

    return SqliteQueue(settings.queue_path)


def doorbell_for(settings: Settings) -> Doorbell | None:
    """The wake-up between the local intake and worker processes on the SQLite queue (None with Storage Queues,
    where the Functions host polls, and where Unix sockets are not available)."""
    if settings.uses_storage_queue:
        return None
    from importer.adapters.queue.doorbell import doorbell_for_queue

    return doorbell_for_queue(settings.queue_path)


def _table_ledger_configured(settings: Settings) -> bool:
    return bool(settings.tables_connection_string or settings.tables_endpoint)


def ledger_for(settings: Settings) -> Ledger:
    """Table Storage when configured (connection string first, else endpoint + identity), otherwise SQLite."""
    if _table_ledger_configured(settings):
        from importer.adapters.ledger.tables import TableLedger

        if settings.tables_connection_string:
            return TableLedger(connection_string=settings.tables_connection_string)
        return TableLedger(endpoint=settings.tables_endpoint, credential=azure_credential(settings))
    from importer.adapters.ledger.sqlite import SqliteLedger

    return SqliteLedger(settings.ledger_path)


def existing_ledger_for(settings: Settings) -> Ledger | None:
    """The ledger `ledger_for` picks, for commands that only read it (`outcomes`, a dry-run `audit`), without
    creating one: None when that is a SQLite file not written yet. Table Storage is always opened."""
    if not _table_ledger_configured(settings) and not settings.ledger_path.exists():
        return None
    return ledger_for(settings)


def sinks_for(settings: Settings) -> list[OutcomeSink]:
    """Where outcomes go besides the ledger."""
    sinks: list[OutcomeSink] = [LogSink()]
    if settings.alert_webhook_url:
        from importer.adapters.sinks.webhook import WebhookSink

        sinks.append(WebhookSink(settings.alert_webhook_url, token=settings.alert_webhook_token))
    if settings.eventgrid_topic_endpoint:
        from importer.adapters.sinks.eventgrid import EventGridSink

        if settings.eventgrid_topic_key:
            from azure.core.credentials import AzureKeyCredential

            credential: Any = AzureKeyCredential(settings.eventgrid_topic_key)
        else:
            credential = azure_credential(settings)
        sinks.append(EventGridSink(settings.eventgrid_topic_endpoint, credential=credential))
    if settings.appinsights_connection_string:
        from importer.adapters.sinks.telemetry import configure_telemetry

        telemetry = configure_telemetry(settings.appinsights_connection_string)
        if telemetry is not None:
            sinks.append(telemetry)
    return sinks


def registry_client_for(
    settings: Settings, host: str, *, docker_credentials: DockerCredentialStore, metrics: Metrics | None = None
) -> Registry:
    """A client for `host`: ACR with the managed identity for `*.azurecr.io` and the guarded ACR's login server without
    username/password settings, the generic OCI client for everything else; each HTTP request it sends is counted by
    `metrics` when given.

    The OCI client's credentials: the username/password settings for the host when there are some, else what
    `docker_credentials` (the docker config: `auths`, `credHelpers`, `credsStore`) has for it, looked up when the
    registry first asks for credentials, so an anonymous registry never runs a credential helper."""
    configured = settings.credentials_for(host)
    observer = metrics.registry_observer(host) if metrics is not None else None
    is_acr = host.endswith(ACR_SUFFIX) or host == settings.acr_login_server
    if is_acr and configured is None:
        from importer.adapters.registry.acr import AcrRegistry

        return AcrRegistry(host, credential=azure_credential(settings), observer=observer)
    if configured is None:
        return OciRegistry(host, credential_source=functools.partial(docker_credentials.lookup, host),
                           allow_http=settings.allows_http(host), observer=observer)
    return OciRegistry(host, credentials=configured, allow_http=settings.allows_http(host), observer=observer)


def docker_credentials_for() -> DockerCredentialStore:
    """The docker config's credentials (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`), read on first use;
    each host is looked up once per store."""
    from importer.adapters.registry.docker_config import DockerCredentialStore

    return DockerCredentialStore.from_environment(os.environ)


def registry_directory_for(settings: Settings, *, metrics: Metrics | None = None) -> RegistryDirectory:
    """The guarded registries of the settings, with one client per host made by `registry_client_for`, sharing one
    docker config store (a credential helper runs at most once per host for the directory)."""
    factory = functools.partial(registry_client_for, settings, docker_credentials=docker_credentials_for(),
                                metrics=metrics)
    return RegistryDirectory(settings, factory=factory)


def pipeline_for(settings: Settings, *, ledger: Ledger | None = None, metrics: Metrics | None = None) -> Pipeline:
    """The pipeline the entry points use, with the adapters the settings select (and the test-only failpoints);
    `metrics` (the local host's) sees every outcome and every registry request."""
    failpoints.arm(settings.failpoints)
    return Pipeline(
        policy=settings.policy,
        ledger=ledger or ledger_for(settings),
        registries=registry_directory_for(settings, metrics=metrics),
        sinks=[*sinks_for(settings), *([metrics] if metrics is not None else [])],
        loop_limit=settings.loop_limit,
        loop_window=settings.loop_window,
        paused_repositories=settings.paused_repositories,
        server_import=server_importer_for(settings),
        event_deadline=settings.event_deadline_seconds,
    )
