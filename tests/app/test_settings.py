"""Settings: every setting the code reads is documented, and bad values are refused by name."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from importer.app import settings as settings_module
from importer.app.registries import RegistryDirectory
from importer.app.settings import KNOWN_SETTINGS, Settings, SettingsError, load_settings

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


# -- the guarded ACR's login server, upstream ACRs by resource id ----------------------------------------------------

ACR_RESOURCE_ID = "PLATFORM_GUARD_ACR_RESOURCE_ID"
ACR_LOGIN_SERVER = "PLATFORM_GUARD_ACR_LOGIN_SERVER"
UPSTREAM_RESOURCE_IDS = "PLATFORM_GUARD_UPSTREAM_RESOURCE_IDS"
ACR_ID = f"{SUB}/Microsoft.ContainerRegistry/registries/myacr01"
DNL_HOST = "myacr01-h7b2d9fcdeb5gq8.azurecr.io"  # a registry created with a domain-name-label scope
BASE_ID = f"{SUB}/Microsoft.ContainerRegistry/registries/baseimages"
MIRROR_ID = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-m/providers/" \
    "Microsoft.ContainerRegistry/registries/mirror01"

LOGIN_SERVER_CASES = {
    "unset-derived-from-the-name": ({ACR_RESOURCE_ID: ACR_ID}, "myacr01.azurecr.io"),
    "empty-derived-from-the-name": ({ACR_RESOURCE_ID: ACR_ID, ACR_LOGIN_SERVER: ""}, "myacr01.azurecr.io"),
    "domain-name-label-scope": ({ACR_RESOURCE_ID: ACR_ID, ACR_LOGIN_SERVER: DNL_HOST}, DNL_HOST),
    "case-and-spaces-normalised": ({ACR_RESOURCE_ID: ACR_ID, ACR_LOGIN_SERVER: f" {DNL_HOST.upper()} "}, DNL_HOST),
    "another-cloud": ({ACR_RESOURCE_ID: ACR_ID, ACR_LOGIN_SERVER: "myacr01.azurecr.cn"}, "myacr01.azurecr.cn"),
    "no-acr": ({}, None),
}


@pytest.mark.parametrize(("environ", "host"), LOGIN_SERVER_CASES.values(), ids=LOGIN_SERVER_CASES.keys())
def test_the_guarded_acr_host_is_its_login_server(environ: dict[str, str], host: str | None) -> None:
    """PLATFORM_GUARD_ACR_LOGIN_SERVER, when set, is the guarded ACR's host (guarded, and its Event Grid topic stands
    for it); unset, the host is derived from the resource id as before, `<name>.azurecr.io`."""
    loaded = load_settings(environ)
    assert loaded.acr_login_server == host
    assert loaded.registries == ((host,) if host else ())
    directory = RegistryDirectory(loaded, factory=lambda _: pytest.fail("no client is made"))
    assert directory.guarded_host(ACR_ID) == host
    assert directory.guarded_host(ACR_ID.upper() + "/") == host  # topics are matched case-insensitively


TOPIC_CASES = {
    "the-guarded-acr": (ACR_ID, DNL_HOST),
    "its-login-server": (DNL_HOST, DNL_HOST),
    "the-derived-host-is-not-guarded": ("myacr01.azurecr.io", None),
    "same-name-in-another-subscription": (ACR_ID.replace("00000000-0000-0000-0000-000000000000",
                                                         "22222222-2222-2222-2222-222222222222"), None),
    "another-acr-listed-by-host": (MIRROR_ID, "mirror01.azurecr.io"),
    "another-acr-not-listed": (BASE_ID, None),
}


@pytest.mark.parametrize(("origin", "host"), TOPIC_CASES.values(), ids=TOPIC_CASES.keys())
def test_event_origins_map_onto_the_login_server(origin: str, host: str | None) -> None:
    """With a login server set, the guarded ACR's topic (its resource id) stands for that host, and a topic that only
    shares the registry's name does not; other ACRs listed in PLATFORM_GUARD_REGISTRIES keep `<name>.azurecr.io`."""
    loaded = load_settings({ACR_RESOURCE_ID: ACR_ID, ACR_LOGIN_SERVER: DNL_HOST,
                            "PLATFORM_GUARD_REGISTRIES": "mirror01.azurecr.io"})
    assert set(loaded.registries) == {DNL_HOST, "mirror01.azurecr.io"}
    directory = RegistryDirectory(loaded, factory=lambda _: pytest.fail("no client is made"))
    assert directory.guarded_host(origin) == host


UPSTREAM_CASES = {
    "unset": ({}, {}),
    "one-pair": ({UPSTREAM_RESOURCE_IDS: f"baseimages.azurecr.io={BASE_ID}"}, {"baseimages.azurecr.io": BASE_ID}),
    "two-pairs-spaces-and-case": ({UPSTREAM_RESOURCE_IDS: f" BaseImages.azurecr.io = {BASE_ID} , "
                                                          f"mirror01.azurecr.io={MIRROR_ID},"},
                                  {"baseimages.azurecr.io": BASE_ID, "mirror01.azurecr.io": MIRROR_ID}),
    "the-guarded-acr-with-its-own-id": ({UPSTREAM_RESOURCE_IDS: f"{DNL_HOST}={ACR_ID}"}, {DNL_HOST: ACR_ID}),
}


@pytest.mark.parametrize(("environ", "expected"), UPSTREAM_CASES.values(), ids=UPSTREAM_CASES.keys())
def test_upstream_resource_ids_are_read(environ: dict[str, str], expected: dict[str, str]) -> None:
    """`host=resourceId` pairs, comma-separated: hosts lower-cased, resource ids kept as written."""
    loaded = load_settings({ACR_RESOURCE_ID: ACR_ID, ACR_LOGIN_SERVER: DNL_HOST, **environ})
    assert dict(loaded.upstream_resource_ids) == expected


BAD_ACR_CASES = {
    "login-server-without-resource-id": ({ACR_LOGIN_SERVER: DNL_HOST},
                                         f"{ACR_LOGIN_SERVER}: set without {ACR_RESOURCE_ID}"),
    "login-server-with-scheme": ({ACR_RESOURCE_ID: ACR_ID, ACR_LOGIN_SERVER: f"https://{DNL_HOST}"},
                                 f"{ACR_LOGIN_SERVER}: expected the registry's login server.*'https://"),
    "login-server-with-path": ({ACR_RESOURCE_ID: ACR_ID, ACR_LOGIN_SERVER: f"{DNL_HOST}/v2"},
                               f"{ACR_LOGIN_SERVER}: expected the registry's login server"),
    "login-server-bad-label": ({ACR_RESOURCE_ID: ACR_ID, ACR_LOGIN_SERVER: "-myacr01.azurecr.io"},
                               f"{ACR_LOGIN_SERVER}: expected the registry's login server"),
    "login-server-with-bad-resource-id": ({ACR_RESOURCE_ID: "/subscriptions/x", ACR_LOGIN_SERVER: DNL_HOST},
                                          f"{ACR_RESOURCE_ID}: expected"),
    "upstream-ids-without-resource-id": ({UPSTREAM_RESOURCE_IDS: f"baseimages.azurecr.io={BASE_ID}"},
                                         f"{UPSTREAM_RESOURCE_IDS}: only ARM import reads it"),
    "upstream-entry-without-equals": ({ACR_RESOURCE_ID: ACR_ID, UPSTREAM_RESOURCE_IDS: "baseimages.azurecr.io"},
                                      f"{UPSTREAM_RESOURCE_IDS}: entry 'baseimages.azurecr.io' is not host=resourceId"),
    "upstream-entry-without-host": ({ACR_RESOURCE_ID: ACR_ID, UPSTREAM_RESOURCE_IDS: f"={BASE_ID}"},
                                    f"{UPSTREAM_RESOURCE_IDS}: entry .* is not host=resourceId"),
    "upstream-entry-without-id": ({ACR_RESOURCE_ID: ACR_ID, UPSTREAM_RESOURCE_IDS: "baseimages.azurecr.io="},
                                  f"{UPSTREAM_RESOURCE_IDS}: entry 'baseimages.azurecr.io=' is not host=resourceId"),
    "upstream-bad-host": ({ACR_RESOURCE_ID: ACR_ID, UPSTREAM_RESOURCE_IDS: f"https://base.azurecr.io={BASE_ID}"},
                          f"{UPSTREAM_RESOURCE_IDS}: entry 'https://base.azurecr.io=.*'https://base.azurecr.io' "
                          "is not a registry host"),
    "upstream-not-an-acr-id": ({ACR_RESOURCE_ID: ACR_ID,
                                UPSTREAM_RESOURCE_IDS: f"base.azurecr.io={SUB}/Microsoft.Storage/storageAccounts/x"},
                               f"{UPSTREAM_RESOURCE_IDS}: entry 'base.azurecr.io=.*expected an ACR resource id"),
    "upstream-id-and-next-entry-run-together": ({ACR_RESOURCE_ID: ACR_ID,
                                                 UPSTREAM_RESOURCE_IDS: f"a.azurecr.io={BASE_ID} b.azurecr.io={BASE_ID}"},
                                                f"{UPSTREAM_RESOURCE_IDS}: entry 'a.azurecr.io=.*expected an ACR"),
    "upstream-host-twice": ({ACR_RESOURCE_ID: ACR_ID,
                             UPSTREAM_RESOURCE_IDS: f"base.azurecr.io={BASE_ID},BASE.azurecr.io={MIRROR_ID}"},
                            f"{UPSTREAM_RESOURCE_IDS}: base.azurecr.io is listed twice"),
    "upstream-guarded-host-with-another-id": ({ACR_RESOURCE_ID: ACR_ID,
                                               UPSTREAM_RESOURCE_IDS: f"myacr01.azurecr.io={BASE_ID}"},
                                              f"{UPSTREAM_RESOURCE_IDS}: entry .*myacr01.azurecr.io is the guarded "
                                              f"registry, whose id is {ACR_RESOURCE_ID}"),
}


@pytest.mark.parametrize(("environ", "message"), BAD_ACR_CASES.values(), ids=BAD_ACR_CASES.keys())
def test_bad_login_server_and_upstream_resource_ids_are_refused_by_name(environ: dict[str, str], message: str) -> None:
    """A bad value raises SettingsError naming the setting and quoting the bad entry."""
    with pytest.raises(SettingsError, match=message):
        load_settings(environ)


def test_a_long_bad_entry_is_not_echoed_whole() -> None:
    """The quoted entry is cut: a 100,000-character value does not end up in a log line."""
    with pytest.raises(SettingsError) as refused:
        load_settings({ACR_RESOURCE_ID: ACR_ID, UPSTREAM_RESOURCE_IDS: "x" * 100_000})
    assert len(str(refused.value)) < 400


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


# -- numbers: every numeric setting is read strictly ---------------------------------------------------------------

# What people (and attackers) write where a number belongs; none of these is a number in a documented range, except
# "0" where 0 is allowed. Whitespace, signs, `_`, exponents, hex and other scripts' digits are refused, not read.
HOSTILE_NUMBERS = {
    "nan": "nan", "inf": "inf", "minus-inf": "-inf", "infinity": "Infinity", "huge": "9" * 30,
    "huge-exponent": "1e999", "exponent": "1e3", "negative": "-1", "hex": "0x10", "padded": "  3 ",
    "plus-sign": "+3", "underscore": "3_0", "fullwidth-digit": "\uff13", "arabic-indic-digit": "\u0663",
    "superscript-digit": "\u00b2", "word": "three", "comma-decimal": "2,5", "trailing-dot": "3.",
    "two-dots": "1.2.3", "nul": "3\x00", "newline": "3\n", "very-long": "1" * 100_000,
}


@dataclass(frozen=True, slots=True)
class NumericSetting:
    template: str  # the setting's value with {} where the number under test goes
    least: float
    most: float
    whole: bool  # a whole number is meant (else a decimal number of seconds)
    read: Callable[[Settings], float]  # where the value lands
    below: str  # a value just under the range (written like the setting's own numbers)
    above: str


NUMERIC_SETTINGS = {
    "PLATFORM_GUARD_LOOP_GUARD N": NumericSetting("{}/3600", 1, 1_000_000, True, lambda s: s.loop_limit, "0",
                                                  "1000001"),
    "PLATFORM_GUARD_LOOP_GUARD SECONDS": NumericSetting("3/{}", 1, 2_592_000, False, lambda s: s.loop_window, "0.5",
                                                        "2592001"),
    "PLATFORM_GUARD_EVENT_RETRY N": NumericSetting("{}/5", 1, 100, True, lambda s: s.event_attempts, "0", "101"),
    "PLATFORM_GUARD_EVENT_RETRY SECONDS": NumericSetting("8/{}", 0.1, 300, False, lambda s: s.event_retry_seconds,
                                                         "0.09", "300.5"),
    "PLATFORM_GUARD_AUTH_RETRY_SECONDS": NumericSetting("{}", 0, 86_400, False, lambda s: s.auth_retry_seconds, "",
                                                        "86400.1"),
    "PLATFORM_GUARD_LEASE_SECONDS": NumericSetting("{}", 1, 3600, False, lambda s: s.lease_seconds, "0.9", "3601"),
    "PLATFORM_GUARD_EVENT_DEADLINE_SECONDS": NumericSetting("{}", 1, 3600, False, lambda s: s.event_deadline_seconds,
                                                            "0.9", "3601"),
    "PLATFORM_GUARD_SWEEP_PARALLEL": NumericSetting("{}", 1, 64, True, lambda s: s.sweep_parallel, "0", "65"),
}


def _setting_cases() -> list[tuple[str, str, str]]:
    """(setting, value, case id) for every numeric setting and every hostile number."""
    cases = []
    for key, numeric in NUMERIC_SETTINGS.items():
        numbers = {**HOSTILE_NUMBERS, "below-the-range": numeric.below, "above-the-range": numeric.above}
        if numeric.whole:
            numbers["fraction-where-a-whole-number-is-meant"] = "3.5"
        cases += [(key, numeric.template.format(number), case) for case, number in numbers.items() if number]
    return cases


SETTING_CASES = _setting_cases()


def _written(number: float) -> str:
    """A range end as the message writes it: 1000000, 0.1."""
    return str(int(number)) if number == int(number) else str(number)


@pytest.mark.parametrize(("key", "value"), [case[:2] for case in SETTING_CASES],
                         ids=[f"{key}={case}" for key, _, case in SETTING_CASES])
def test_every_numeric_setting_refuses_what_is_not_a_number_in_its_range(key: str, value: str) -> None:
    """nan, infinities, huge, negative, exponent, hex, padded, signed, other scripts' digits, out of range: each is
    refused with a SettingsError naming the setting and its documented range, never read as something else."""
    name = key.split()[0]
    numeric = NUMERIC_SETTINGS[key]
    with pytest.raises(SettingsError) as refused:
        load_settings({name: value})
    message = str(refused.value)
    assert message.startswith(f"{name}: ")
    assert f"{_written(numeric.least)} to {_written(numeric.most)}" in message
    assert len(message) < 400  # a 100,000-character value is not echoed whole


IN_RANGE = {
    # key: [(number, what it reads as)]
    "PLATFORM_GUARD_LOOP_GUARD N": [("1", 1), ("1000000", 1_000_000), ("03", 3)],
    "PLATFORM_GUARD_LOOP_GUARD SECONDS": [("1", 1.0), ("2592000", 2_592_000.0), ("90.5", 90.5)],
    "PLATFORM_GUARD_EVENT_RETRY N": [("1", 1), ("100", 100)],
    "PLATFORM_GUARD_EVENT_RETRY SECONDS": [("0.1", 0.1), ("300", 300.0), ("2.5", 2.5)],
    "PLATFORM_GUARD_AUTH_RETRY_SECONDS": [("0", 0.0), ("86400", 86_400.0), ("", 900.0)],
    "PLATFORM_GUARD_LEASE_SECONDS": [("1", 1.0), ("3600", 3600.0), ("", 60.0)],
    "PLATFORM_GUARD_EVENT_DEADLINE_SECONDS": [("1", 1.0), ("3600", 3600.0), ("", 240.0)],
    "PLATFORM_GUARD_SWEEP_PARALLEL": [("1", 1), ("64", 64), ("", 8)],
}


@pytest.mark.parametrize(("key", "number", "expected"),
                         [(key, number, expected) for key, values in IN_RANGE.items() for number, expected in values],
                         ids=[f"{key}={number or 'empty'}" for key, values in IN_RANGE.items() for number, _ in values])
def test_every_numeric_setting_reads_its_whole_range(key: str, number: str, expected: float) -> None:
    """Both ends of each documented range are read as written (empty: the default)."""
    numeric = NUMERIC_SETTINGS[key]
    assert numeric.read(load_settings({key.split()[0]: numeric.template.format(number)})) == expected


def test_the_table_lists_every_numeric_setting() -> None:
    """A numeric setting added later (a count, seconds, N/SECONDS) must join the tables above."""
    numeric = {name for name in KNOWN_SETTINGS if re.search(r"_(SECONDS|PARALLEL|RETRY|LOOP_GUARD)$", name)}
    assert numeric == {key.split()[0] for key in NUMERIC_SETTINGS}
