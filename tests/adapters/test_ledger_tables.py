"""Tests for importer.adapters.ledger.tables.TableLedger against a real Azurite, and the behaviours it shares with SQLite.

The shared tables of cases (claims, outcome queries from tests/test_ledger.py; leases, the loop guard, releases,
quarantine origins here) run over both adapters through the `open_ledger` fixture. Table-only tests cover key
escaping, day partitions, oversized records, races between threads and between spawned processes (each with its own
TableLedger), an expired-lease takeover race, storage failures injected by a real proxy in front of Azurite,
and the pipeline deciding real pushes with a TableLedger. Azurite is started once for this module on free
loopback ports (testbed.azurite) and stopped at the end; each test uses tables of its own prefix.
"""

from __future__ import annotations

import random
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event, Semaphore
from pathlib import Path

import pytest
from azure.core.credentials import AzureNamedKeyCredential

from importer.adapters.ledger.sqlite import SqliteLedger
from importer.adapters.ledger.tables import (
    MAX_KEY_UNITS,
    MAX_RECORD_CHARS,
    TableLedger,
    TableLedgerError,
    record_json,
    table_key,
)
from importer.app.settings import Settings
from importer.core.events import PushEvent
from importer.core.media_types import OCI_MANIFEST
from importer.core.outcome import Outcome
from importer.core.quarantine_names import QuarantineOrigin
from importer.entry.composition import pipeline_for
from importer.ports.ledger import Ledger, LedgerUnavailable
from testbed.azurite import ACCOUNT_KEY, ACCOUNT_NAME, Azurite, AzuriteUnavailable, node_binary
from testbed.faults import FaultProxy
from testbed.images import ImageBuilder
from testbed.push import push
from testbed.registry import LocalRegistry, free_port
from tests.adapters.test_ledger import CLAIM_CASES, OUTCOME_QUERIES, RECORDED, ClaimCase
from tests.races import assert_each_won_once, race_processes

pytestmark = pytest.mark.timeout(90)

EVENT_IDS = [f"event-{number:04d}" for number in range(200)]
FORBIDDEN_IN_KEYS = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")


# -- fixtures ----------------------------------------------------------------------------------------------


def fresh_prefix() -> str:
    """A table prefix no other test uses, so each test starts from empty tables."""
    return "t" + uuid.uuid4().hex[:16]


@pytest.fixture
def table_ledger(azurite: Azurite) -> Iterator[Callable[..., TableLedger]]:
    """Open TableLedgers on one fresh prefix (`prefix=` for another); all are closed after the test."""
    prefix = fresh_prefix()
    opened: list[TableLedger] = []

    def open_ledger(**options: object) -> TableLedger:
        options = {"connection_string": azurite.connection_string, "table_prefix": prefix, **options}
        ledger = TableLedger(**options)  # type: ignore[arg-type]
        opened.append(ledger)
        return ledger

    yield open_ledger
    for ledger in opened:
        ledger.close()


@pytest.fixture(params=["sqlite", "tables"])
def open_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Ledger]]:
    """Open ledgers on one store of the adapter under test: one SQLite file, or one set of Azurite tables."""
    opened: list[Ledger] = []
    if request.param == "sqlite":

        def open_one() -> Ledger:
            return SqliteLedger(tmp_path / "ledger.db")

    else:
        connection_string = request.getfixturevalue("azurite").connection_string
        prefix = fresh_prefix()

        def open_one() -> Ledger:
            return TableLedger(connection_string=connection_string, table_prefix=prefix)

    def tracked() -> Ledger:
        ledger = open_one()
        opened.append(ledger)
        return ledger

    yield tracked
    for ledger in opened:
        ledger.close()


def _outcome(event_id: str, repository: str | None, result: str, received_at: str) -> Outcome:
    return Outcome(event_id=event_id, received_at=received_at, result=result, repository=repository)


# -- behaviours shared with SQLite -------------------------------------------------------------------------


@pytest.mark.parametrize("case", CLAIM_CASES.values(), ids=CLAIM_CASES.keys())
def test_claim_and_release(open_ledger: Callable[[], Ledger], case: ClaimCase) -> None:
    """A claim is granted once until released; both are visible to every ledger on the same store."""
    ledgers = [open_ledger(), open_ledger()]
    answers = []
    for action, which, event_id in case.steps:
        if action == "claim":
            answers.append(ledgers[which].claim(event_id))
        else:
            ledgers[which].release(event_id)
    assert tuple(answers) == case.claims


@pytest.mark.parametrize("query, expected", OUTCOME_QUERIES.values(), ids=OUTCOME_QUERIES.keys())
def test_outcomes_filter_and_order(
    open_ledger: Callable[[], Ledger], query: dict[str, object], expected: list[tuple[str, str]]
) -> None:
    """outcomes() returns the newest records first, filtered by repository and/or event id, up to `limit`."""
    ledger = open_ledger()
    for number, (event_id, repository, result) in enumerate(RECORDED):
        ledger.record(_outcome(event_id, repository, result, f"2024-05-14T10:00:0{number}.000Z"))
    found = ledger.outcomes(**query)  # type: ignore[arg-type]
    assert [(outcome.event_id, outcome.result) for outcome in found] == expected


FULL_OUTCOME = Outcome(
    event_id="9a7b3c1d", received_at="2024-05-14T11:20:05.123Z", result="alerted",
    registry="127.0.0.1:5000", reference="127.0.0.1:5000/team/api:2.0@sha256:" + "a" * 64,
    repository="team/api", tag="2.0", digest="sha256:" + "a" * 64,
    media_type="application/vnd.oci.image.index.v1+json", kind="index",
    platforms=("linux/arm64",), required=("linux/amd64",), missing=("linux/amd64",), forbidden=(),
    inconsistent=("linux/arm/v7",), verdict="violation", action="alert", reason="missing linux/amd64 — ünïcode",
    actor="release-bot", user_agent="buildkit/v0.12", new_digest=None, preserved_as=None, source=None,
    duration_ms=12.5, error=None, schema="eventgrid", no_platform=("sha256:" + "b" * 64,),
    affected_tags=("2.0", "latest"), alert="violation",
)  # fmt: skip


def test_records_round_trip_through_another_ledger(open_ledger: Callable[[], Ledger]) -> None:
    """Every field of an outcome reads back unchanged, also from another ledger opened on the same store."""
    first = open_ledger()
    first.record(FULL_OUTCOME)
    first.close()
    assert open_ledger().outcomes(event_id="9a7b3c1d") == [FULL_OUTCOME]


@dataclass(frozen=True, slots=True)
class LeaseCase:
    steps: tuple[tuple[str, int, str, float], ...]  # (claim | finish, which ledger of two, key, now); 10 s leases
    claims: tuple[bool, ...]  # what each claim step returns, in order


KEY = "127.0.0.1:5000/team/api:1.0@sha256:" + "c" * 64
OTHER_KEY = "127.0.0.1:5000/team/api:1.1@sha256:" + "c" * 64
LEASE_CASES = {
    "held-lease-is-refused": LeaseCase((("claim", 0, KEY, 0), ("claim", 0, KEY, 5)), (True, False)),
    "lease-is-held-until-its-last-instant": LeaseCase((("claim", 0, KEY, 0), ("claim", 1, KEY, 9.999)), (True, False)),
    "expired-lease-is-taken-over": LeaseCase((("claim", 0, KEY, 0), ("claim", 1, KEY, 10)), (True, True)),
    "takeover-starts-a-new-lease": LeaseCase(
        (("claim", 0, KEY, 0), ("claim", 1, KEY, 15), ("claim", 0, KEY, 24), ("claim", 0, KEY, 25)),
        (True, True, False, True),
    ),
    "finish-frees-the-key": LeaseCase(
        (("claim", 0, KEY, 0), ("finish", 0, KEY, 0), ("claim", 1, KEY, 1)), (True, True)
    ),
    "finish-of-an-unclaimed-key-is-harmless": LeaseCase((("finish", 0, KEY, 0), ("claim", 0, KEY, 0)), (True,)),
    "keys-are-independent": LeaseCase(
        (("claim", 0, KEY, 0), ("claim", 0, OTHER_KEY, 0), ("finish", 0, KEY, 0), ("claim", 1, OTHER_KEY, 1)),
        (True, True, False),
    ),
}


@pytest.mark.parametrize("case", LEASE_CASES.values(), ids=LEASE_CASES.keys())
def test_remediation_leases(open_ledger: Callable[[], Ledger], case: LeaseCase) -> None:
    """A remediation claim is refused while its lease runs, taken over once `now` reaches expiry, freed by finish."""
    ledgers = [open_ledger(), open_ledger()]
    answers = []
    for action, which, key, now in case.steps:
        if action == "claim":
            answers.append(ledgers[which].claim_remediation(key, lease_seconds=10, now=now))
        else:
            ledgers[which].finish_remediation(key)
    assert tuple(answers) == case.claims


OWNED_CASES = {  # (claim | finish, which ledger of two, owner, now); 10 s leases on KEY
    "the-owner-takes-its-own-claim-over-before-expiry": (
        (("claim", 0, "event-1", 0), ("claim", 1, "event-1", 5)), (True, True)),
    "another-owner-waits-for-expiry": (
        (("claim", 0, "event-1", 0), ("claim", 1, "event-2", 5), ("claim", 1, "event-2", 10)), (True, False, True)),
    "a-lost-owner-never-removes-its-successors-claim": (
        (("claim", 0, "event-1", 0), ("claim", 1, "event-2", 10), ("finish", 0, "event-1", 11),
         ("claim", 0, "event-3", 12)), (True, True, False)),
    "the-owner-finishing-frees-the-key": (
        (("claim", 0, "event-1", 0), ("finish", 1, "event-1", 1), ("claim", 0, "event-2", 2)), (True, True)),
}


@pytest.mark.parametrize("case", OWNED_CASES.values(), ids=OWNED_CASES.keys())
def test_remediation_leases_with_owners(
    open_ledger: Callable[[], Ledger], case: tuple[tuple[tuple[str, int, str, float], ...], tuple[bool, ...]]
) -> None:
    """An owner (the event being decided) resumes its own claim at once; others wait for expiry; finishing with an
    owner removes only that owner's claim."""
    steps, expected = case
    ledgers = [open_ledger(), open_ledger()]
    answers = []
    for action, which, owner, now in steps:
        if action == "claim":
            answers.append(ledgers[which].claim_remediation(KEY, lease_seconds=10, now=now, owner=owner))
        else:
            ledgers[which].finish_remediation(KEY, owner=owner)
    assert tuple(answers) == expected


SCOPE = "127.0.0.1:5000/team/api:1.0"
NOTED = [(SCOPE, 100.0), (SCOPE, 200.0), (SCOPE, 350.5), ("127.0.0.1:5000/team/api:1.1", 300.0)]
COUNTS = {  # (scope, since) → remediations noted at or after `since`
    "all-of-a-scope": ((SCOPE, 0.0), 3),
    "since-is-inclusive": ((SCOPE, 200.0), 2),
    "fractional-times": ((SCOPE, 350.5), 1),
    "after-the-last": ((SCOPE, 350.6), 0),
    "another-tag-counts-apart": (("127.0.0.1:5000/team/api:1.1", 0.0), 1),
    "a-prefix-of-a-scope-is-another-scope": (("127.0.0.1:5000/team/api", 0.0), 0),
    "never-remediated": (("127.0.0.1:5000/other/app:1", 0.0), 0),
}


@pytest.mark.parametrize("query, expected", COUNTS.values(), ids=COUNTS.keys())
def test_loop_guard_counts(open_ledger: Callable[[], Ledger], query: tuple[str, float], expected: int) -> None:
    """count_remediations counts the remediations of exactly one scope noted at or after `since`."""
    ledger = open_ledger()
    for scope, at in NOTED:
        ledger.note_remediation(scope, now=at)
    scope, since = query
    assert open_ledger().count_remediations(scope, since=since) == expected


RELEASED = [("127.0.0.1:5000/team/api", "sha256:" + "1" * 64), ("127.0.0.1:5000/team/api", "sha256:" + "1" * 64)]
RELEASE_CHECKS = {
    "released-digest": (("127.0.0.1:5000/team/api", "sha256:" + "1" * 64), True),
    "other-digest": (("127.0.0.1:5000/team/api", "sha256:" + "2" * 64), False),
    "parent-repository": (("127.0.0.1:5000/team", "sha256:" + "1" * 64), False),
    "child-repository": (("127.0.0.1:5000/team/api/v2", "sha256:" + "1" * 64), False),
    "other-registry": (("127.0.0.1:5001/team/api", "sha256:" + "1" * 64), False),
}


@pytest.mark.parametrize("query, expected", RELEASE_CHECKS.values(), ids=RELEASE_CHECKS.keys())
def test_releases(open_ledger: Callable[[], Ledger], query: tuple[str, str], expected: bool) -> None:
    """is_released is true only for the exact repository and digest marked (marking twice is harmless)."""
    ledger = open_ledger()
    for repository, digest in RELEASED:
        ledger.mark_released(repository, digest, now=1.0)
    assert open_ledger().is_released(*query) is expected


LONG_QUARANTINE = "quarantine/" + "team/" + "part-0/" * 32 + "end--8b74dd34cf7bfa7f"  # a shortened name
LONG_KEPT = "v" * 38 + "--a71bdb64c1cbac8f.sha256-" + "1" * 64  # 128 characters
QUARANTINES = [  # (registry, quarantine repository, quarantine tag, original repository, original tag, digest)
    ("127.0.0.1:5000", "quarantine/team/api", "1.0.sha256-" + "1" * 64, "team/api", "1.0", "sha256:" + "1" * 64),
    ("127.0.0.1:5000", LONG_QUARANTINE, LONG_KEPT, "team/" + "part-0/" * 40 + "end", "v" * 100, "sha256:" + "1" * 64),
    ("127.0.0.1:5000", LONG_QUARANTINE, LONG_KEPT, "team/" + "part-0/" * 40 + "end", "v" * 101, "sha256:" + "1" * 64),
]
QUARANTINE_LOOKUPS = {
    "recorded": (("127.0.0.1:5000", "quarantine/team/api", "1.0.sha256-" + "1" * 64), ("team/api", "1.0")),
    "recorded-again-replaces": (("127.0.0.1:5000", LONG_QUARANTINE, LONG_KEPT),
                                ("team/" + "part-0/" * 40 + "end", "v" * 101)),
    "other-registry": (("127.0.0.1:5001", "quarantine/team/api", "1.0.sha256-" + "1" * 64), None),
    "other-tag": (("127.0.0.1:5000", "quarantine/team/api", "1.1.sha256-" + "1" * 64), None),
    "parent-repository": (("127.0.0.1:5000", "quarantine/team", "1.0.sha256-" + "1" * 64), None),
}


@pytest.mark.parametrize("query, expected", QUARANTINE_LOOKUPS.values(), ids=QUARANTINE_LOOKUPS.keys())
def test_quarantine_origins(
    open_ledger: Callable[[], Ledger], query: tuple[str, str, str], expected: tuple[str, str] | None
) -> None:
    """quarantine_origin gives the original repository, tag and digest recorded for exactly that quarantine name
    (shortened names and slashes included), the last record winning; nothing for any other name."""
    ledger = open_ledger()
    for registry, repository, tag, original_repository, original_tag, digest in QUARANTINES:
        ledger.record_quarantine(registry, repository, tag, original_repository, original_tag, digest, now=1.0)
    found = open_ledger().quarantine_origin(*query)
    assert found == (QuarantineOrigin(*expected, "sha256:" + "1" * 64) if expected else None)


LONGEST = ["/".join(["a" * 63] * 4)[:-3] + f"{number:03d}" for number in range(100)]  # 100 names of 255 characters
RESUME_CASES = {  # (saves (registry, repositories) in order, registry read) → repositories read back
    "nothing-saved-reads-empty": (((), "127.0.0.1:5000"), []),
    "saved-order-is-kept": (((("127.0.0.1:5000", ["team/b", "team/a", "mirror/x"]),), "127.0.0.1:5000"),
                            ["team/b", "team/a", "mirror/x"]),
    "a-save-replaces-the-last": (((("127.0.0.1:5000", ["team/a", "team/b"]), ("127.0.0.1:5000", ["team/c"])),
                                  "127.0.0.1:5000"), ["team/c"]),
    "an-empty-save-starts-over": (((("127.0.0.1:5000", ["team/a"]), ("127.0.0.1:5000", [])), "127.0.0.1:5000"), []),
    "registries-keep-their-own": (((("127.0.0.1:5000", ["team/a"]), ("127.0.0.1:5001", ["team/b"])),
                                   "127.0.0.1:5001"), ["team/b"]),
    "registry-order-under-star": (((("*", ["myreg.azurecr.io", "127.0.0.1:5000"]),), "*"),
                                  ["myreg.azurecr.io", "127.0.0.1:5000"]),
    "the-longest-point-a-sweep-keeps": (((("127.0.0.1:5000", LONGEST),), "127.0.0.1:5000"), LONGEST),
}  # fmt: skip


@pytest.mark.parametrize("case, expected", RESUME_CASES.values(), ids=RESUME_CASES.keys())
def test_sweep_resume_points(open_ledger: Callable[[], Ledger], case: tuple[tuple[tuple[str, list[str]], ...], str],
                             expected: list[str]) -> None:
    """A sweep resume point reads back, from another ledger on the same store, as last saved for that registry."""
    saves, registry = case
    ledger = open_ledger()
    for number, (saved_for, repositories) in enumerate(saves):
        ledger.save_sweep_resume(saved_for, repositories, now=float(number))
    assert open_ledger().sweep_resume(registry) == expected


# -- keys ----------------------------------------------------------------------------------------------------

TABLE_KEYS = {
    "plain": ("event-0001", "event-0001"),
    "repository-slash": ("team/api", "team!2Fapi"),
    "backslash-hash-question": ("a\\b#c?d", "a!5Cb!23c!3Fd"),
    "quote-percent-and-the-escape-itself": ("it's 100%!", "it!27s 100!25!21"),
    "control-characters": ("a\x00b\x1fc\x7fd\x9fe", "a!00b!1Fc!7Fd!9Fe"),
    "other-unicode-is-kept": ("équipe/ñ", "équipe!2Fñ"),
    "empty": ("", ""),
}


@pytest.mark.parametrize("text, expected", TABLE_KEYS.values(), ids=TABLE_KEYS.keys())
def test_table_key_escapes(text: str, expected: str) -> None:
    """table_key escapes / \\ # ? ' % ! and control characters as "!" + two hex digits and keeps the rest."""
    assert table_key(text) == expected


TRICKY = ["a/b", "a!2Fb", "a!b", "a%2Fb", "a\\b", "team/api", "team!api", "x" * 2000, "x" * 1999 + "y", "/" * 300]


def test_table_keys_are_distinct_valid_and_bounded() -> None:
    """Distinct texts give distinct keys, none with a character Table Storage refuses, none over the size bound."""
    keys = [table_key(text) for text in TRICKY]
    assert len(set(keys)) == len(TRICKY)
    assert not [key for key in keys if FORBIDDEN_IN_KEYS.search(key)]
    assert max(len(key.encode("utf-16-le")) // 2 for key in keys) <= MAX_KEY_UNITS


AWKWARD_IDS = {
    "slashes": "registry.example/team/api:1.0",
    "reserved-characters": "a\\b#c?d'e%f!g",
    "control-characters": "tab\there\nnewline\x7f",
    "unicode": "événement-😀",
    "very-long": "e" * 3000,
    "very-long-differing-at-the-end": "e" * 2999 + "f",
}


@pytest.mark.parametrize("event_id", AWKWARD_IDS.values(), ids=AWKWARD_IDS.keys())
def test_awkward_ids_claim_record_and_release(table_ledger: Callable[..., TableLedger], event_id: str) -> None:
    """Ids with reserved characters, control characters or thousands of characters claim, record and release."""
    ledger = table_ledger()
    assert (ledger.claim(event_id), ledger.claim(event_id)) == (True, False)
    ledger.release(event_id)
    assert ledger.claim(event_id) is True
    outcome = _outcome(event_id, event_id[:200], "ignored", "2024-05-14T10:00:00.000Z")
    ledger.record(outcome)
    assert ledger.outcomes(event_id=event_id) == [outcome]
    assert ledger.outcomes(repository=event_id[:200]) == [outcome]


def test_long_ids_sharing_their_first_thousands_of_characters_are_distinct(
    table_ledger: Callable[..., TableLedger],
) -> None:
    """Ids too long for a key, identical but for their last character, are separate claims and releases."""
    ledger = table_ledger()
    first, second = AWKWARD_IDS["very-long"], AWKWARD_IDS["very-long-differing-at-the-end"]
    assert (ledger.claim(first), ledger.claim(second)) == (True, True)
    ledger.release(first)
    assert (ledger.claim(second), ledger.claim(first)) == (False, True)


REPOSITORIES = ["team/api", "team", "team/api/v2", "team!2Fapi", "team-api"]


@pytest.mark.parametrize("repository", REPOSITORIES, ids=REPOSITORIES)
def test_repositories_with_slashes_keep_their_own_outcomes(
    table_ledger: Callable[..., TableLedger], repository: str
) -> None:
    """outcomes(repository=…) returns that repository's outcomes only, however its name nests or escapes."""
    ledger = table_ledger()
    for number, name in enumerate(REPOSITORIES):
        ledger.record(_outcome(f"e-{name}", name, "compliant", f"2024-05-14T10:00:0{number}.000Z"))
    assert [outcome.repository for outcome in ledger.outcomes(repository=repository)] == [repository]


# -- outcome partitions --------------------------------------------------------------------------------------

ACROSS_DAYS = [  # (event id, received_at), recorded in this order
    ("late-on-13th", "2024-05-13T23:59:59.999Z"),
    ("on-14th-a", "2024-05-14T00:00:00.000Z"),
    ("on-15th", "2024-05-15T08:00:00+02:00"),  # 06:00 UTC
    ("on-14th-b", "2024-05-14T12:00:00Z"),
    ("early-15th-recorded-last", "2024-05-15T00:30:00.000Z"),
]
DAY_QUERIES: dict[str, tuple[Callable[[TableLedger], list[Outcome]], list[str]]] = {
    "all-days-newest-first": (
        lambda ledger: ledger.outcomes(),
        ["on-15th", "early-15th-recorded-last", "on-14th-b", "on-14th-a", "late-on-13th"],
    ),
    "limit-across-a-day-boundary": (
        lambda ledger: ledger.outcomes(limit=3), ["on-15th", "early-15th-recorded-last", "on-14th-b"]
    ),
    "no-limit": (
        lambda ledger: ledger.outcomes(limit=-1),
        ["on-15th", "early-15th-recorded-last", "on-14th-b", "on-14th-a", "late-on-13th"],
    ),
    "limit-zero": (lambda ledger: ledger.outcomes(limit=0), []),
    "one-day-by-utc-date": (lambda ledger: ledger.outcomes_on(date(2024, 5, 14)), ["on-14th-b", "on-14th-a"]),
    "one-day-with-limit": (lambda ledger: ledger.outcomes_on(date(2024, 5, 15), limit=1), ["on-15th"]),
    "a-day-without-outcomes": (lambda ledger: ledger.outcomes_on(date(2024, 5, 16)), []),
}  # fmt: skip


@pytest.mark.parametrize("query, expected", DAY_QUERIES.values(), ids=DAY_QUERIES.keys())
def test_outcomes_by_day(
    table_ledger: Callable[..., TableLedger], query: Callable[[TableLedger], list[Outcome]], expected: list[str]
) -> None:
    """Outcomes are kept per UTC day of receipt and read newest first, across days, with `limit`."""
    writer = table_ledger()
    for event_id, received_at in ACROSS_DAYS:
        writer.record(_outcome(event_id, "team/api", "compliant", received_at))
    assert [outcome.event_id for outcome in query(table_ledger())] == expected


def test_same_received_time_reads_in_recording_order(table_ledger: Callable[..., TableLedger]) -> None:
    """Outcomes received in the same millisecond read back newest-recorded first, as in SQLite."""
    ledger = table_ledger()
    for number in range(5):
        ledger.record(_outcome(f"e{number}", "team/api", "compliant", "2024-05-14T10:00:00.000Z"))
    assert [outcome.event_id for outcome in ledger.outcomes(repository="team/api")] == ["e4", "e3", "e2", "e1", "e0"]


LONG = "x" * 100_000
OVERSIZED = {
    "long-reason-is-cut": (FULL_OUTCOME.replace(reason=LONG), {"reason"}),
    "long-error-and-reason-are-both-cut": (
        FULL_OUTCOME.replace(reason=LONG, error="€" * 50_000),
        {"reason", "error"},
    ),
    "short-reason-is-kept-when-the-error-alone-is-too-long": (
        FULL_OUTCOME.replace(reason="short", error=LONG),
        {"error"},
    ),
    "thousands-of-platforms-spill-into-more-properties": (
        FULL_OUTCOME.replace(no_platform=tuple(f"sha256:{n:064x}" for n in range(1500))),
        set(),
    ),
}


@pytest.mark.parametrize("outcome, cut", OVERSIZED.values(), ids=OVERSIZED.keys())
def test_oversized_records(table_ledger: Callable[..., TableLedger], outcome: Outcome, cut: set[str]) -> None:
    """A record over one property's 64 KiB has reason/error cut with a marker; anything else is kept whole."""
    ledger = table_ledger()
    ledger.record(outcome)
    [stored] = ledger.outcomes(event_id=outcome.event_id)
    for name in ("reason", "error"):
        text = getattr(stored, name)
        if name in cut:
            assert text.endswith("characters cut by the ledger]") and len(text) < len(getattr(outcome, name))
        else:
            assert text == getattr(outcome, name)
    untouched = {"reason": None, "error": None}
    assert stored.replace(**untouched) == outcome.replace(**untouched)
    assert (len(record_json(outcome)) <= MAX_RECORD_CHARS) == bool(cut)


# -- races ---------------------------------------------------------------------------------------------------


def _claim_all(ledger: TableLedger, order_seed: int, start: threading.Barrier) -> list[str]:
    order = list(EVENT_IDS)
    random.Random(order_seed).shuffle(order)
    start.wait()
    return [event_id for event_id in order if ledger.claim(event_id)]


@pytest.mark.parametrize("ledger_per_thread", [False, True], ids=["one-shared-ledger", "a-ledger-per-thread"])
def test_claims_are_exclusive_across_threads(table_ledger: Callable[..., TableLedger], ledger_per_thread: bool) -> None:
    """Four threads claiming the same 200 event ids win each id exactly once between them."""
    threads = 4
    shared = table_ledger()
    ledgers = [table_ledger() if ledger_per_thread else shared for _ in range(threads)]
    start = threading.Barrier(threads)
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(lambda number: _claim_all(ledgers[number], number, start), range(threads)))
    assert_each_won_once(results, EVENT_IDS)


def _claim_in_process(
    connection_string: str, prefix: str, order: list[str], ready: Semaphore, start: Event, results: "Queue[list[str]]"
) -> None:
    """Worker for the process race: open a TableLedger, wait for the start signal, claim, report the ids won."""
    ledger = TableLedger(connection_string=connection_string, table_prefix=prefix)
    ready.release()
    start.wait()
    won = [event_id for event_id in order if ledger.claim(event_id)]
    ledger.close()
    results.put(won)


@pytest.mark.parametrize(
    "orders",
    [
        pytest.param(("same", "same"), id="same-order"),
        pytest.param(("same", "reversed"), id="opposite-orders"),
        pytest.param(("same", "reversed", "shuffled"), id="three-processes"),
    ],
)
def test_claims_are_exclusive_across_processes(azurite: Azurite, orders: tuple[str, ...]) -> None:
    """Spawned processes, each with its own TableLedger, racing on the same ids win each id exactly once."""
    prefix = fresh_prefix()  # the tables do not exist yet: the workers race to create them too
    shuffled = random.Random(7).sample(EVENT_IDS, len(EVENT_IDS))
    sequences = {"same": EVENT_IDS, "reversed": EVENT_IDS[::-1], "shuffled": shuffled}
    won = race_processes(_claim_in_process, [(azurite.connection_string, prefix, sequences[order]) for order in orders], timeout=60)
    assert_each_won_once(won, EVENT_IDS)


@pytest.mark.parametrize("threads", [2, 8], ids=["two-threads", "eight-threads"])
@pytest.mark.parametrize("ledger_per_thread", [False, True], ids=["one-shared-ledger", "a-ledger-per-thread"])
def test_expired_lease_takeover_has_one_winner(
    table_ledger: Callable[..., TableLedger], threads: int, ledger_per_thread: bool
) -> None:
    """Threads racing to take over the same expired lease: exactly one wins, round after round."""
    shared = table_ledger()
    ledgers = [table_ledger() if ledger_per_thread else shared for _ in range(threads)]
    rounds = 6
    winners: list[int] = []
    for round_number in range(rounds):
        key = f"127.0.0.1:5000/team/api:{round_number}@sha256:" + "d" * 64
        assert shared.claim_remediation(key, lease_seconds=1, now=0)  # expires at 1
        start = threading.Barrier(threads)

        def take_over(number: int) -> bool:
            start.wait()
            return ledgers[number].claim_remediation(key, lease_seconds=60, now=100)

        with ThreadPoolExecutor(threads) as pool:
            answers = list(pool.map(take_over, range(threads)))
        winners.append(answers.count(True))
        assert shared.claim_remediation(key, lease_seconds=60, now=150) is False  # the winner's lease holds
    assert winners == [1] * rounds


def test_takeover_whose_answer_was_lost_is_still_won(
    azurite: Azurite, table_ledger: Callable[..., TableLedger]
) -> None:
    """A takeover that landed but whose answer timed out is recognised as ours when the SDK's retry meets a 412."""
    writer = table_ledger()
    assert writer.claim_remediation(KEY, lease_seconds=1, now=0)
    # The first two PUTs (the takeover and its immediate retry) are held 0.8 s before reaching Azurite, longer
    # than the 0.5 s read timeout; the third, sent after the backoff, arrives once the first has landed.
    with FaultProxy(azurite.table_host, match=r"^PUT ", script=["slow", "slow"], slow_seconds=0.8) as proxy:
        behind_proxy = table_ledger(connection_string=azurite.connection_string_via(proxy.host), timeout_seconds=0.5)
        assert behind_proxy.claim_remediation(KEY, lease_seconds=60, now=100) is True
        received = proxy.stats.requests
    assert received == 7  # create table, insert (409), read, the PUT three times (the last 412), read again
    assert writer.claim_remediation(KEY, lease_seconds=60, now=150) is False


# -- construction and failures -------------------------------------------------------------------------------

AZURITE_DEFAULT = "UseDevelopmentStorage=true"  # never contacted: these arguments are refused first
BAD_ARGUMENTS = {
    "neither-connection-nor-endpoint": ({}, "exactly one of connection_string and endpoint"),
    "both": (
        {"connection_string": AZURITE_DEFAULT, "endpoint": "https://a.table.core.windows.net",
         "credential": AzureNamedKeyCredential("a", ACCOUNT_KEY)},
        "exactly one of connection_string and endpoint",
    ),
    "endpoint-without-credential": ({"endpoint": "https://a.table.core.windows.net"}, "needs a credential"),
    "prefix-with-a-dash": ({"connection_string": AZURITE_DEFAULT, "table_prefix": "platform-guard"}, "table prefix"),
    "prefix-starting-with-a-digit": ({"connection_string": AZURITE_DEFAULT, "table_prefix": "1guard"}, "table prefix"),
    "prefix-too-long": ({"connection_string": AZURITE_DEFAULT, "table_prefix": "p" * 51}, "table prefix"),
}  # fmt: skip


@pytest.mark.parametrize("arguments, message", BAD_ARGUMENTS.values(), ids=BAD_ARGUMENTS.keys())
def test_constructor_refuses_bad_arguments(arguments: dict[str, object], message: str) -> None:
    """The constructor names what is wrong with its arguments before any request is sent."""
    with pytest.raises(ValueError, match=message):
        TableLedger(**arguments)  # type: ignore[arg-type]


def test_endpoint_and_named_key_credential(azurite: Azurite, table_ledger: Callable[..., TableLedger]) -> None:
    """An endpoint with a credential reaches the same tables as the connection string does."""
    by_endpoint = table_ledger(
        connection_string=None,
        endpoint=azurite.table_endpoint,
        credential=AzureNamedKeyCredential(ACCOUNT_NAME, ACCOUNT_KEY),
    )
    assert by_endpoint.claim("shared-event") is True
    assert table_ledger().claim("shared-event") is False


def test_tables_are_created_once_per_process(azurite: Azurite) -> None:
    """Two ledgers of one process on the same tables send one create-table request per table between them."""
    with FaultProxy(azurite.table_host) as proxy:
        connection_string = azurite.connection_string_via(proxy.host)
        prefix = fresh_prefix()
        for _ in range(2):
            ledger = TableLedger(connection_string=connection_string, table_prefix=prefix)
            ledger.claim("e")
            ledger.record(_outcome("e", "team/api", "compliant", "2024-05-14T10:00:00Z"))
            ledger.outcomes()
            ledger.close()
        creates = [request for request in proxy.history() if request.path.endswith("/Tables")]
    assert len(creates) == 2  # claims and outcomes


@dataclass(frozen=True, slots=True)
class FailureCase:
    faults: tuple[str, ...] | None  # injected on every entity insert into the claims table; None: no proxy
    account_key: str | None  # None: the right key
    port_closed: bool
    error: type[Exception]
    message: str


WRONG_KEY = "QmFkS2V5QmFkS2V5QmFkS2V5QmFkS2V5QmFkS2V5QmFkS2V5QmFkS2V5QmFkS2V5"
FAILURES = {
    "503-after-retries-is-unavailable": FailureCase(("503",), None, False, LedgerUnavailable, r"claim 'e-1'.*HTTP 503"),
    "429-after-retries-is-unavailable": FailureCase(("429",), None, False, LedgerUnavailable, r"claim 'e-1'.*HTTP 429"),
    "connection-reset-is-unavailable": FailureCase(("reset",), None, False, LedgerUnavailable, r"claim 'e-1'"),
    "nothing-listening-is-unavailable": FailureCase(None, None, True, LedgerUnavailable, r"create table"),
    "wrong-account-key-is-permanent": FailureCase(None, WRONG_KEY, False, TableLedgerError, r"HTTP 403"),
}


@pytest.mark.parametrize("case", FAILURES.values(), ids=FAILURES.keys())
def test_storage_failures(azurite: Azurite, case: FailureCase) -> None:
    """Failures that may pass raise LedgerUnavailable (transient), others TableLedgerError; both name the operation."""
    prefix = fresh_prefix()
    TableLedger(connection_string=azurite.connection_string, table_prefix=prefix).claim("warm-up")  # tables exist
    connection_string = azurite.connection_string
    if case.account_key:
        connection_string = connection_string.replace(ACCOUNT_KEY, case.account_key)
    if case.port_closed:
        connection_string = azurite.connection_string_via(f"127.0.0.1:{free_port()}")
    claims_insert = rf"^POST /{ACCOUNT_NAME}/{prefix}claims$"
    faults = case.faults or ("503",)
    with FaultProxy(azurite.table_host, rate=1.0, faults=faults, match=claims_insert, retry_after=0) as proxy:
        if case.faults:
            connection_string = azurite.connection_string_via(proxy.host)
        ledger = TableLedger(connection_string=connection_string, table_prefix=prefix, retries=1, timeout_seconds=2)
        with pytest.raises(case.error, match=case.message) as raised:
            ledger.claim("e-1")
        assert getattr(raised.value, "transient", False) is (case.error is LedgerUnavailable)
        if case.faults:
            proxy.configure(rate=0.0)
            assert ledger.claim("e-1") is True  # the failed claim never landed; the next delivery takes it
        ledger.close()


# -- the pipeline on a TableLedger ---------------------------------------------------------------------------

PIPELINE_CASES = {
    "compliant-push": ("linux/amd64", "compliant"),
    "wrong-platform-is-quarantined": ("linux/arm64", "quarantined"),
}


@pytest.mark.parametrize("platform, result", PIPELINE_CASES.values(), ids=PIPELINE_CASES.keys())
def test_pipeline_records_in_table_storage(
    table_ledger: Callable[..., TableLedger],
    registry: LocalRegistry,
    builder: ImageBuilder,
    tmp_path: Path,
    platform: str,
    result: str,
) -> None:
    """A push decided by the pipeline on a TableLedger is recorded there once; its redelivery is a duplicate."""
    ledger = table_ledger()
    settings = Settings(registries=(registry.host,), ledger_path=tmp_path / "unused.db")
    pipeline = pipeline_for(settings, ledger=ledger)
    image = builder.image(platform, seed="tables")
    digest = push(builder, image, registry.host, "team/app", "1.0")
    event = PushEvent(
        event_id=f"push-{uuid.uuid4()}", schema="distribution", action="push", origin=registry.host,
        repository="team/app", tag="1.0", digest=digest, media_type=OCI_MANIFEST, size=image.size,
        artifact="image", actor="ci", user_agent="test", occurred_at=None,
    )  # fmt: skip
    decided = pipeline.handle(event)
    again = pipeline.handle(event)
    assert decided is not None and decided.result == result, decided
    assert again is not None and again.result == "duplicate"
    assert (decided.digest, decided.platforms) == (digest, (platform,))
    assert table_ledger().outcomes(event_id=event.event_id) == [again, decided]
    assert table_ledger().outcomes(repository="team/app") == [again, decided]
    counted = table_ledger().count_remediations(f"{registry.host}/team/app:1.0", since=0)
    assert counted == (1 if result == "quarantined" else 0)
    assert not (tmp_path / "unused.db").exists()


def test_azurite_without_its_package_says_to_run_npm_ci(tmp_path: Path) -> None:
    """Starting Azurite whose launcher is missing raises AzuriteUnavailable naming the path and `npm ci`."""
    missing = tmp_path / "node_modules" / ".bin" / "azurite"
    expected = "node is not installed" if node_binary() is None else f"{re.escape(str(missing))} is missing.*npm ci"
    with pytest.raises(AzuriteUnavailable, match=expected):
        Azurite(tmp_path / "data", script=missing).start()
