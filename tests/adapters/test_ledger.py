"""Tests for importer.adapters.ledger.sqlite.SqliteLedger: exclusive claims, release, outcome records, and duplicate deliveries.

Claims race for real: threads sharing one ledger, threads with a ledger each, and separate processes
(multiprocessing, spawn) on one SQLite file. Duplicate deliveries go through a running local host in front
of a real registry (testbed.stack.GuardedRegistry), both sequentially and from many threads at once.
"""

from __future__ import annotations

import json
import random
import threading
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event, Semaphore
from pathlib import Path

import pytest

from importer.adapters.ledger.sqlite import SqliteLedger
from importer.core.outcome import Outcome
from testbed.images import ImageBuilder
from testbed.push import push
from testbed.stack import WEBHOOK_TOKEN, GuardedRegistry
from tests.races import assert_each_won_once, race_processes

pytestmark = pytest.mark.timeout(60)

EVENT_IDS = [f"event-{number:04d}" for number in range(400)]


# -- claims ------------------------------------------------------------------------------------------------


def _claim_all(ledger: SqliteLedger, order_seed: int, start: threading.Barrier) -> list[str]:
    """Claim every id of EVENT_IDS in a seeded order once all threads are ready; return the ids won."""
    order = list(EVENT_IDS)
    random.Random(order_seed).shuffle(order)
    start.wait()
    return [event_id for event_id in order if ledger.claim(event_id)]


@pytest.mark.parametrize("ledger_per_thread", [False, True], ids=["one-shared-ledger", "a-ledger-per-thread"])
def test_claims_are_exclusive_across_threads(tmp_path: Path, ledger_per_thread: bool) -> None:
    """Eight threads claiming the same 400 event ids win each id exactly once between them."""
    threads = 8
    path = tmp_path / "ledger.db"
    shared = SqliteLedger(path)
    ledgers = [SqliteLedger(path) if ledger_per_thread else shared for _ in range(threads)]
    start = threading.Barrier(threads)
    try:
        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(lambda number: _claim_all(ledgers[number], number, start), range(threads)))
    finally:
        for ledger in {shared, *ledgers}:
            ledger.close()
    assert_each_won_once(results, EVENT_IDS)


def _claim_in_process(
    path: str, order: list[str], ready: Semaphore, start: Event, results: "Queue[list[str]]"
) -> None:
    """Worker for the process race: open the ledger, wait for the start signal, claim, report the ids won."""
    ledger = SqliteLedger(path)
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
        pytest.param(("same", "same", "reversed"), id="three-processes"),
    ],
)
def test_claims_are_exclusive_across_processes(tmp_path: Path, orders: tuple[str, ...]) -> None:
    """Processes racing on the same event ids in one SQLite file win each id exactly once between them."""
    path = str(tmp_path / "ledger.db")
    SqliteLedger(path).close()  # create the schema before the race, as the deployed app does at start-up
    won = race_processes(_claim_in_process, [(path, EVENT_IDS if order == "same" else EVENT_IDS[::-1]) for order in orders], timeout=30)
    assert_each_won_once(won, EVENT_IDS)


@dataclass(frozen=True, slots=True)
class ClaimCase:
    steps: tuple[tuple[str, int, str], ...]  # (claim | release, which ledger of two on one file, event id)
    claims: tuple[bool, ...]  # what each claim step returns, in order


CLAIM_CASES = {
    "second-claim-is-refused": ClaimCase((("claim", 0, "a"), ("claim", 0, "a")), (True, False)),
    "release-makes-it-claimable-again": ClaimCase(
        (("claim", 0, "a"), ("release", 0, "a"), ("claim", 0, "a"), ("claim", 0, "a")), (True, True, False)
    ),
    "release-of-an-unclaimed-id-is-harmless": ClaimCase((("release", 0, "a"), ("claim", 0, "a")), (True,)),
    "release-touches-only-its-own-id": ClaimCase(
        (("claim", 0, "a"), ("claim", 0, "b"), ("release", 0, "a"), ("claim", 0, "b"), ("claim", 0, "a")),
        (True, True, False, True),
    ),
    "claims-are-seen-by-another-ledger-on-the-file": ClaimCase(
        (("claim", 0, "a"), ("claim", 1, "a")), (True, False)
    ),
    "release-is-seen-by-another-ledger-on-the-file": ClaimCase(
        (("claim", 0, "a"), ("release", 1, "a"), ("claim", 1, "a"), ("claim", 0, "a")), (True, True, False)
    ),
}


@pytest.mark.parametrize("case", CLAIM_CASES.values(), ids=CLAIM_CASES.keys())
def test_claim_and_release(tmp_path: Path, case: ClaimCase) -> None:
    """A claim is granted once until released; both are visible to every ledger on the same file."""
    ledgers = [SqliteLedger(tmp_path / "ledger.db"), SqliteLedger(tmp_path / "ledger.db")]
    try:
        answers = []
        for action, which, event_id in case.steps:
            if action == "claim":
                answers.append(ledgers[which].claim(event_id))
            else:
                ledgers[which].release(event_id)
    finally:
        for ledger in ledgers:
            ledger.close()
    assert tuple(answers) == case.claims


# -- outcome records ---------------------------------------------------------------------------------------

RECORDED = [  # (event id, repository, result), oldest first
    ("e1", "team/api", "compliant"),
    ("e2", "team/web", "alerted"),
    ("e3", "team/api", "duplicate"),
    ("e1", "team/api", "duplicate"),
    ("e4", None, "rejected"),
    ("e5", "team/web", "ignored"),
]


def _outcome(event_id: str, repository: str | None, result: str, number: int) -> Outcome:
    return Outcome(
        event_id=event_id, received_at=f"2024-05-14T10:00:0{number}.000Z", result=result, repository=repository
    )


OUTCOME_QUERIES: dict[str, tuple[dict[str, object], list[tuple[str, str]]]] = {
    "all-newest-first": ({}, [("e5", "ignored"), ("e4", "rejected"), ("e1", "duplicate"), ("e3", "duplicate"),
                              ("e2", "alerted"), ("e1", "compliant")]),
    "limit-keeps-the-newest": ({"limit": 2}, [("e5", "ignored"), ("e4", "rejected")]),
    "one-repository": ({"repository": "team/api"}, [("e1", "duplicate"), ("e3", "duplicate"), ("e1", "compliant")]),
    "one-event": ({"event_id": "e1"}, [("e1", "duplicate"), ("e1", "compliant")]),
    "repository-and-event": ({"repository": "team/web", "event_id": "e2"}, [("e2", "alerted")]),
    "repository-and-event-that-disagree": ({"repository": "team/web", "event_id": "e1"}, []),
    "repository-and-limit": ({"repository": "team/api", "limit": 1}, [("e1", "duplicate")]),
    "unknown-repository": ({"repository": "nobody/here"}, []),
}


@pytest.mark.parametrize("query, expected", OUTCOME_QUERIES.values(), ids=OUTCOME_QUERIES.keys())
def test_outcomes_filter_and_order(
    tmp_path: Path, query: dict[str, object], expected: list[tuple[str, str]]
) -> None:
    """outcomes() returns the newest records first, filtered by repository and/or event id, up to `limit`."""
    ledger = SqliteLedger(tmp_path / "ledger.db")
    try:
        for number, (event_id, repository, result) in enumerate(RECORDED):
            ledger.record(_outcome(event_id, repository, result, number))
        found = ledger.outcomes(**query)  # type: ignore[arg-type]
    finally:
        ledger.close()
    assert [(outcome.event_id, outcome.result) for outcome in found] == expected


def test_records_round_trip_and_survive_reopening(tmp_path: Path) -> None:
    """Every field of an outcome reads back unchanged, also from a new ledger opened on the same file."""
    outcome = Outcome(
        event_id="9a7b3c1d", received_at="2024-05-14T11:20:05.123Z", result="alerted",
        registry="127.0.0.1:5000", reference="127.0.0.1:5000/team/api:2.0@sha256:" + "a" * 64,
        repository="team/api", tag="2.0", digest="sha256:" + "a" * 64,
        media_type="application/vnd.oci.image.index.v1+json", kind="index",
        platforms=("linux/arm64",), required=("linux/amd64",), missing=("linux/amd64",), forbidden=(),
        inconsistent=("linux/arm/v7",), verdict="violation", action="alert", reason="missing linux/amd64",
        actor="release-bot", user_agent="buildkit/v0.12", new_digest=None, preserved_as=None, source=None,
        duration_ms=12.5, error=None, schema="eventgrid", no_platform=("sha256:" + "b" * 64,),
    )
    first = SqliteLedger(tmp_path / "ledger.db")
    first.record(outcome)
    first.close()
    reopened = SqliteLedger(tmp_path / "ledger.db")
    try:
        assert reopened.outcomes(event_id="9a7b3c1d") == [outcome]
    finally:
        reopened.close()


# -- duplicate deliveries through the local host -----------------------------------------------------------


def _distribution_body(event_id: str, host: str, repository: str, tag: str, digest: str, size: int) -> bytes:
    target = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": size, "digest": digest,
              "length": size, "repository": repository, "url": f"http://{host}/v2/{repository}/manifests/{digest}",
              "tag": tag}
    request = {"id": str(uuid.uuid4()), "addr": "127.0.0.1:40000", "host": host, "method": "PUT",
               "useragent": "skopeo/1.9.3"}
    event = {"id": event_id, "timestamp": "2024-05-14T16:52:01.343Z", "action": "push", "target": target,
             "request": request, "actor": {}, "source": {"addr": "registry:5000", "instanceID": "test"}}
    return json.dumps({"events": [event]}).encode()


def _eventgrid_body(event_id: str, host: str, repository: str, tag: str, digest: str, size: int) -> bytes:
    data = {"id": str(uuid.uuid4()), "timestamp": "2024-05-14T16:52:01.343Z", "action": "push",
            "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": size, "digest": digest,
                       "length": size, "repository": repository, "tag": tag},
            "request": {"id": str(uuid.uuid4()), "host": host, "method": "PUT", "useragent": "docker/24.0.7"}}
    event = {"id": event_id, "topic": host, "subject": f"{repository}:{tag}",
             "eventType": "Microsoft.ContainerRegistry.ImagePushed", "eventTime": "2024-05-14T16:52:01.343Z",
             "data": data, "dataVersion": "1.0", "metadataVersion": "1"}
    return json.dumps([event]).encode()


ROUTES: dict[str, tuple[str, dict[str, str], Callable[..., bytes]]] = {
    "registry-events": (
        "/api/registry-events",
        {"Authorization": f"Bearer {WEBHOOK_TOKEN}", "Content-Type": "application/json"},
        _distribution_body,
    ),
    "eventgrid": (
        "/runtime/webhooks/eventgrid?functionName=registry_event",
        {"aeg-event-type": "Notification", "Content-Type": "application/json",
         "Authorization": f"Bearer {WEBHOOK_TOKEN}"},
        _eventgrid_body,
    ),
}


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.parametrize("route", ROUTES, ids=ROUTES.keys())
@pytest.mark.parametrize(
    "deliveries, concurrent", [(2, False), (8, True)], ids=["twice-in-a-row", "eight-at-once"]
)
def test_redelivered_event_is_decided_once(
    guarded: Callable[..., GuardedRegistry], builder: ImageBuilder, route: str, deliveries: int, concurrent: bool
) -> None:
    """The same event delivered several times, in a row or at once, is decided once; the rest are `duplicate`."""
    stack = guarded()
    image = builder.image("linux/amd64", seed=route)
    digest = push(builder, image, stack.registry.host, "team/app", "1.0")
    path, headers, make_body = ROUTES[route]
    event_id = f"delivered-{deliveries}-times-{uuid.uuid4()}"
    body = make_body(event_id, stack.registry.host, "team/app", "1.0", digest, image.size)

    if concurrent:
        start = threading.Barrier(deliveries)

        def deliver(_: int) -> tuple[int, dict[str, object]]:
            start.wait()
            return _post(stack.host.url + path, body, headers)

        with ThreadPoolExecutor(deliveries) as pool:
            answers = list(pool.map(deliver, range(deliveries)))
    else:
        answers = [_post(stack.host.url + path, body, headers) for _ in range(deliveries)]

    assert [status for status, _ in answers] == [202] * deliveries  # each delivery queued; workers decide
    assert all(answer["queued"] == [event_id] for _, answer in answers)
    stack.wait_until(lambda outcomes: len([o for o in outcomes if o.event_id == event_id]) >= deliveries)
    recorded = stack.ledger.outcomes(event_id=event_id)
    assert Counter(outcome.result for outcome in recorded) == {"compliant": 1, "duplicate": deliveries - 1}
    decided = next(outcome for outcome in recorded if outcome.result == "compliant")
    assert (decided.digest, decided.platforms) == (digest, ("linux/amd64",))
    if not concurrent:
        assert [outcome.result for outcome in recorded] == ["duplicate", "compliant"]  # newest first
