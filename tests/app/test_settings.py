"""Settings: every setting the code reads is documented, and bad values are refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from importer.app import settings as settings_module
from importer.app.settings import KNOWN_SETTINGS, SettingsError, load_settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
SAMPLE = (Path(__file__).resolve().parents[2] / "local.settings.sample.json").read_text()


@pytest.mark.parametrize("name", KNOWN_SETTINGS)
def test_every_setting_is_documented(name: str) -> None:
    """Each setting the code reads appears in the README table and the module's own table."""
    assert f"`{name}`" in README
    assert name in (settings_module.__doc__ or "")


SUB = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-guard/providers"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"PLATFORM_GUARD_ACR_RESOURCE_ID": "/subscriptions/x/registries/y"}, "PLATFORM_GUARD_ACR_RESOURCE_ID"),
        ({"PLATFORM_GUARD_TABLES_ENDPOINT": "http://acct.table.core.windows.net"}, "plain http"),
        ({"PLATFORM_GUARD_EVENTGRID_TOPIC_ENDPOINT": "ftp://x"}, r"expected an http\(s\) URL"),
        ({"PLATFORM_GUARD_LOOP_GUARD": "3"}, "N/SECONDS"),
        ({"PLATFORM_GUARD_LOOP_GUARD": "0/60"}, "N/SECONDS"),
        ({"PLATFORM_GUARD_PAUSED_REPOSITORIES": "Team/App"}, "lower-case"),
        ({"PLATFORM_GUARD_ALERT_WEBHOOK_URL": "http://alerts.example.com/x"}, "plain http"),
        ({"PLATFORM_GUARD_POLICY": "version: 2\n"}, "PLATFORM_GUARD_POLICY"),
        ({"PLATFORM_GUARD_LOOP_GUARD": "3/nan"}, "PLATFORM_GUARD_LOOP_GUARD"),
        ({"PLATFORM_GUARD_LOOP_GUARD": "3/inf"}, "PLATFORM_GUARD_LOOP_GUARD"),
        ({"PLATFORM_GUARD_EVENT_RETRY": "0/5"}, "PLATFORM_GUARD_EVENT_RETRY"),
        ({"PLATFORM_GUARD_EVENT_RETRY": "101/5"}, "PLATFORM_GUARD_EVENT_RETRY"),
        ({"PLATFORM_GUARD_EVENT_RETRY": "8/nan"}, "PLATFORM_GUARD_EVENT_RETRY"),
        ({"PLATFORM_GUARD_EVENT_RETRY": "8"}, "N/SECONDS"),
        ({"PLATFORM_GUARD_AUTH_RETRY_SECONDS": "nan"}, "PLATFORM_GUARD_AUTH_RETRY_SECONDS"),
        ({"PLATFORM_GUARD_AUTH_RETRY_SECONDS": "-1"}, "PLATFORM_GUARD_AUTH_RETRY_SECONDS"),
        ({"PLATFORM_GUARD_AUTH_RETRY_SECONDS": "1e9"}, "PLATFORM_GUARD_AUTH_RETRY_SECONDS"),
    ],
    ids=["bad-acr-id", "tables-over-http", "eventgrid-not-http", "loop-guard-no-window", "loop-guard-zero",
         "paused-upper-case", "webhook-over-http", "bad-inline-policy", "loop-guard-nan-window",
         "loop-guard-infinite-window", "event-retry-zero-attempts", "event-retry-too-many-attempts",
         "event-retry-nan-delay", "event-retry-no-delay", "auth-retry-nan", "auth-retry-negative",
         "auth-retry-beyond-a-day"],
)
def test_invalid_settings_are_refused_by_name(environ: dict[str, str], message: str) -> None:
    """A bad value raises SettingsError naming the setting or the problem."""
    with pytest.raises(SettingsError, match=message):
        load_settings(environ)


def test_acr_resource_id_guards_its_host() -> None:
    """The ACR named by its resource id is guarded without listing its host again."""
    loaded = load_settings({"PLATFORM_GUARD_ACR_RESOURCE_ID": f"{SUB}/Microsoft.ContainerRegistry/registries/MyAcr01"})
    assert loaded.registries == ("myacr01.azurecr.io",)


def test_secrets_stay_out_of_repr() -> None:
    """Tokens, keys and connection strings are not in the settings' repr."""
    loaded = load_settings({
        "PLATFORM_GUARD_WEBHOOK_TOKEN": "webhook-secret-0123456789",
        "PLATFORM_GUARD_TABLES_CONNECTION_STRING": "AccountKey=table-secret",
        "PLATFORM_GUARD_EVENTGRID_TOPIC_KEY": "topic-secret",
        "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=ikey-secret",
    })
    text = repr(loaded)
    for secret in ("webhook-secret", "table-secret", "topic-secret", "ikey-secret"):
        assert secret not in text


def test_event_retry_and_authorisation_window_are_read() -> None:
    """`N/SECONDS` and the window reach the settings the workers are built from."""
    loaded = load_settings({"PLATFORM_GUARD_EVENT_RETRY": "3/0.5", "PLATFORM_GUARD_AUTH_RETRY_SECONDS": "60"})
    assert (loaded.event_attempts, loaded.event_retry_seconds, loaded.auth_retry_seconds) == (3, 0.5, 60.0)
    defaults = load_settings({})
    assert (defaults.event_attempts, defaults.event_retry_seconds, defaults.auth_retry_seconds) == (8, 5.0, 900.0)


def test_queue_settings_select_storage_queues() -> None:
    """An https Queue endpoint (or a connection string) puts the event queue on Storage Queues, the queue name has a
    default, plain http is refused by name, and the connection string stays out of the repr."""
    defaults = load_settings({})
    assert (defaults.uses_storage_queue, defaults.queue_name) == (False, "platform-guard-events")
    loaded = load_settings({"PLATFORM_GUARD_QUEUE_ENDPOINT": "https://acct.queue.core.windows.net",
                            "PLATFORM_GUARD_QUEUE_NAME": "events"})
    assert (loaded.uses_storage_queue, loaded.queue_endpoint, loaded.queue_name) == (
        True, "https://acct.queue.core.windows.net", "events")
    with pytest.raises(SettingsError, match="PLATFORM_GUARD_QUEUE_ENDPOINT: plain http"):
        load_settings({"PLATFORM_GUARD_QUEUE_ENDPOINT": "http://acct.queue.core.windows.net"})
    secret = load_settings({"PLATFORM_GUARD_QUEUE_CONNECTION_STRING": "AccountKey=queue-secret"})
    assert secret.uses_storage_queue and "queue-secret" not in repr(secret)
