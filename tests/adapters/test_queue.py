"""Contract tests for the EventQueue port (importer.ports.queue), run over every adapter, and each adapter's own tests.

The shared cases are scenarios in a small step language run by `run` against the `queue_under_test` fixture, which
gives a fresh queue per adapter (`sqlite`: a file and a fake clock; `storage-queue`: a fresh queue, poison queue
and key-lease table on one Azurite, started once for the module on free loopback ports). Two adapter instances share
each store, so every scenario also shows that workers on separate instances see one queue.

    put a1                       put a message of key "a" (…/team/a:1.0) whose body is "a1"
    take w1 → a1                 worker w1 takes, and gets a1 (`→ a1 #2`: on its 2nd attempt; `→ none`: nothing)
    take w1 for 1 → a1           …with a 1-second lease (LEASE otherwise)
    complete w1 a1 → true        what w1 holds of a1 is completed (dead, retry w1 a1 after 2, renew w1 a1 for 3)
    wait 1.2                     time passes: the fake clock moves (sqlite), or the test sleeps (storage-queue)
    skip                         a message passed over for a busy key is visible again (storage-queue: 1 s)

Storage Queue visibility is the service's real time in whole seconds, so the storage-queue runs sleep where a case
waits; the waits are kept to about a second.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import pairwise
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event, Semaphore
from pathlib import Path

import pytest

from importer.adapters.queue.sqlite import SqliteQueue
from importer.adapters.queue.storage import HOST_GAVE_UP, MAX_MESSAGE_CHARS, StorageQueue, StorageQueueError
from importer.core.retry import RetryPolicy
from importer.ports.queue import EventQueue, Message, QueueDepth, QueueUnavailable
from testbed.azurite import ACCOUNT_KEY, Azurite
from testbed.registry import free_port
from tests.races import assert_each_won_once, race_processes

pytestmark = pytest.mark.timeout(120)

LEASE = 30.0  # seconds: long enough that no lease runs out unless a case waits for it
SKIP_SECONDS = 1  # the storage adapter's skip_seconds in these tests


# -- fixtures ----------------------------------------------------------------------------------------------


@dataclass
class QueueUnderTest:
    """Two adapter instances on one fresh store, and the clock the scenario runs on."""

    queues: list[EventQueue]
    now: Callable[[], float]
    wait: Callable[[float], None]
    skip_wait: float  # how long a message passed over for a busy key stays invisible
    exact_depth: bool  # whether depth tells ready, delayed and leased apart

    @property
    def queue(self) -> EventQueue:
        return self.queues[0]

    def queue_of(self, worker: str) -> EventQueue:
        """w1, w3, … work on the first instance; w2, w4, … on the second."""
        return self.queues[(int(worker.lstrip("w")) + 1) % 2]


@dataclass
class FakeClock:
    at: float = 1_000.0

    def now(self) -> float:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += seconds


def fresh_names() -> dict[str, str]:
    """A queue and a key-lease table no other test uses."""
    suffix = uuid.uuid4().hex[:16]
    return {"queue_name": f"q-{suffix}", "lease_table": f"k{suffix}"}


@pytest.fixture
def storage_queue(azurite: Azurite) -> Iterator[Callable[..., StorageQueue]]:
    """Open StorageQueues on one fresh queue (options override the defaults); all are closed after the test."""
    names = fresh_names()
    opened: list[StorageQueue] = []

    def open_queue(**options: object) -> StorageQueue:
        options = {"connection_string": azurite.connection_string, "skip_seconds": SKIP_SECONDS, **names, **options}
        queue = StorageQueue(**options)  # type: ignore[arg-type]
        opened.append(queue)
        return queue

    yield open_queue
    for queue in opened:
        queue.close()


@pytest.fixture(params=["sqlite", "storage-queue"])
def queue_under_test(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[QueueUnderTest]:
    """A fresh queue of each adapter, opened twice."""
    if request.param == "sqlite":
        clock = FakeClock()
        queues: list[EventQueue] = [SqliteQueue(tmp_path / "queue.db") for _ in range(2)]
        yield QueueUnderTest(queues, clock.now, clock.advance, skip_wait=0.0, exact_depth=True)
        for queue in queues:
            queue.close()
    else:
        open_queue = request.getfixturevalue("storage_queue")
        yield QueueUnderTest([open_queue(), open_queue()], time.time, time.sleep, SKIP_SECONDS + 0.1, False)


# -- the step language -------------------------------------------------------------------------------------


def key_of(label: str) -> str:
    """The key of message `a1` is tag `a`'s."""
    return f"127.0.0.1:5000/team/{label[0]}:1.0"


@dataclass
class Run:
    """What a scenario did: the ids of the messages put, and what each worker holds of each."""

    ids: dict[str, str] = field(default_factory=dict)
    held: dict[tuple[str, str], Message] = field(default_factory=dict)


def run(subject: QueueUnderTest, steps: Sequence[str], done: Run | None = None) -> Run:
    """Run scenario steps (see the module docstring), asserting what each one expects."""
    done = done or Run()
    for number, step in enumerate(steps, start=1):
        action, _, expected = step.partition(" → ")
        verb, *words = action.split()
        where = f"step {number} {step!r}"
        now = subject.now()
        if verb == "put":
            done.ids[words[0]] = subject.queue.put(key_of(words[0]), words[0], now=now)
        elif verb == "take":
            lease = float(words[2]) if words[1:2] == ["for"] else LEASE
            message = subject.queue_of(words[0]).take(words[0], lease_seconds=lease, now=now)
            label, _, attempts = expected.partition(" #")
            if label == "none":
                assert message is None, f"{where}: took {message.body if message else None}"
                continue
            assert message is not None and message.body == label, f"{where}: took {message.body if message else None}"
            assert message.key == key_of(label) and message.message_id == done.ids[label], where
            assert message.attempts == int(attempts or message.attempts), f"{where}: attempt {message.attempts}"
            done.held[(words[0], label)] = message
        elif verb in ("complete", "dead", "retry", "renew"):
            worker, label = words[:2]
            queue, message = subject.queue_of(worker), done.held[(worker, label)]
            if verb == "complete":
                answer = queue.complete(message)
            elif verb == "dead":
                answer = queue.dead_letter(message, error=f"gave up on {label}", now=now)
            elif verb == "retry":
                answer = queue.retry_later(message, delay=float(words[3]), error=f"{label} failed", now=now)
            else:
                renewed = queue.renew(message, lease_seconds=float(words[3]), now=now)
                answer = renewed is not None
                done.held[(worker, label)] = renewed or message
            assert answer is (expected == "true"), f"{where}: answered {answer}"
        elif verb == "wait":
            subject.wait(float(words[0]))
        elif verb == "skip":
            subject.wait(subject.skip_wait)
        else:
            raise AssertionError(f"{where}: unknown step")
    return done


# -- shared cases ----------------------------------------------------------------------------------------------

SCENARIOS: dict[str, list[str]] = {
    # put, take, complete
    "empty-queue-gives-nothing": ["take w1 → none"],
    "put-then-take": ["put a1", "take w1 → a1 #1"],
    "complete-removes-it": ["put a1", "take w1 → a1", "complete w1 a1 → true", "take w2 → none"],
    "a-taken-message-is-hidden-from-other-workers": ["put a1", "take w1 → a1", "take w2 → none"],
    "complete-twice-is-refused": ["put a1", "take w1 → a1", "complete w1 a1 → true", "complete w1 a1 → false"],
    "keys-are-taken-in-put-order": ["put a1", "put b1", "put c1", "take w1 → a1", "take w2 → b1", "take w1 → c1"],
    # one key: in order, one at a time; other keys proceed
    "one-key-in-put-order": [
        "put a1", "put a2", "put a3", "take w1 → a1", "complete w1 a1 → true", "take w2 → a2",
        "complete w2 a2 → true", "take w1 → a3",
    ],
    "never-two-of-one-key-leased-at-once": [
        "put a1", "put a2", "take w1 → a1", "take w2 → none", "take w3 → none", "complete w1 a1 → true", "skip",
        "take w2 → a2",
    ],
    "a-leased-key-is-passed-over-while-others-proceed": [
        "put a1", "put a2", "put b1", "put b2", "take w1 → a1", "take w2 → b1", "take w3 → none",
        "complete w2 b1 → true", "skip", "take w3 → b2", "complete w1 a1 → true", "skip", "take w2 → a2",
    ],
    "a-delayed-message-keeps-its-key": [
        "put a1", "put a2", "take w1 → a1", "retry w1 a1 after 1 → true", "take w2 → none", "wait 1.2",
        "take w2 → a1 #2", "complete w2 a1 → true", "skip", "take w1 → a2",
    ],
    "a-dead-letter-frees-its-key": ["put a1", "put a2", "take w1 → a1", "dead w1 a1 → true", "take w2 → a2"],
    # leases
    "a-lease-holds-until-it-runs-out": ["put a1", "take w1 for 2 → a1", "wait 1", "take w2 → none"],
    "a-lease-that-ran-out-is-taken-over": ["put a1", "take w1 for 1 → a1 #1", "wait 1.2", "take w2 → a1 #2"],
    "the-new-owner-holds-the-key": [
        "put a1", "put a2", "take w1 for 1 → a1", "wait 1.2", "take w2 → a1 #2", "take w3 → none",
    ],
    "a-renewed-lease-outlasts-its-first-expiry": [
        "put a1", "take w1 for 1 → a1", "wait 0.5", "renew w1 a1 for 3 → true", "wait 1", "take w2 → none",
    ],
    "renewing-a-lease-that-ran-out-is-refused": [
        "put a1", "take w1 for 1 → a1", "wait 1.2", "renew w1 a1 for 3 → false",
    ],
    # retries
    "retry-later-hides-it-for-the-delay": [
        "put a1", "take w1 → a1", "retry w1 a1 after 1 → true", "take w2 → none", "wait 0.5", "take w2 → none",
        "wait 0.7", "take w2 → a1 #2",
    ],
    "retry-without-delay-is-ready-at-once": [
        "put a1", "take w1 → a1", "retry w1 a1 after 0 → true", "take w2 → a1 #2",
    ],
}  # fmt: skip


@pytest.mark.parametrize("steps", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_scenario(queue_under_test: QueueUnderTest, steps: list[str]) -> None:
    """Each step answers as the port says: order and exclusion per key, leases, retries."""
    run(queue_under_test, steps)


LOST_LEASE_CALLS = {
    "complete": "complete w1 a1 → false",
    "retry-later": "retry w1 a1 after 0 → false",
    "dead-letter": "dead w1 a1 → false",
    "renew": "renew w1 a1 for 30 → false",
}


@pytest.mark.parametrize("call", LOST_LEASE_CALLS.values(), ids=LOST_LEASE_CALLS.keys())
def test_a_worker_that_lost_its_lease_changes_nothing(queue_under_test: QueueUnderTest, call: str) -> None:
    """After a takeover the old owner's call is refused, and the new owner still holds the message and its key."""
    subject = queue_under_test
    run(subject, [
        "put a1", "put a2", "take w1 for 1 → a1", "wait 1.2", "take w2 → a1 #2", call, "take w3 → none",
        "renew w2 a1 for 30 → true", "complete w2 a1 → true",
    ])  # fmt: skip
    assert subject.queue.dead_letters() == []
    depth = subject.queue.depth(now=subject.now())
    assert (depth.ready + depth.delayed + depth.leased, depth.dead) == (1, 0)  # a2 alone is left


def test_a_taken_message_carries_its_fields(queue_under_test: QueueUnderTest) -> None:
    """take returns the key, body, enqueue time, first attempt, owner and lease expiry it was given."""
    subject = queue_under_test
    put_at = subject.now()
    message_id = subject.queue.put("registry/team/app:1.0", '{"event": "ü"}', now=put_at)
    subject.wait(0.2)
    taken_at = subject.now()
    message = subject.queue.take("worker-1", lease_seconds=LEASE, now=taken_at)
    assert message is not None
    assert (message.message_id, message.key, message.body) == (message_id, "registry/team/app:1.0", '{"event": "ü"}')
    assert (message.attempts, message.enqueued_at, message.first_attempt_at) == (1, put_at, taken_at)
    assert (message.owner, message.lease_until, message.last_error) == ("worker-1", taken_at + LEASE, None)


def test_attempts_count_up_and_the_first_attempt_is_kept(queue_under_test: QueueUnderTest) -> None:
    """A takeover and a retry each count an attempt; first_attempt_at stays the first take's; the error is kept."""
    subject = queue_under_test
    subject.queue.put("k", "b", now=subject.now())
    first_at = subject.now()
    first = subject.queue.take("w1", lease_seconds=1, now=first_at)
    subject.wait(1.2)
    second = subject.queues[1].take("w2", lease_seconds=LEASE, now=subject.now())
    assert first is not None and second is not None
    assert (second.attempts, second.first_attempt_at, second.owner) == (2, first_at, "w2")
    assert subject.queues[1].retry_later(second, delay=0, error="HTTP 503 from the registry", now=subject.now())
    third = subject.queue.take("w1", lease_seconds=LEASE, now=subject.now())
    assert third is not None
    assert (third.attempts, third.first_attempt_at, third.last_error) == (3, first_at, "HTTP 503 from the registry")


# -- dead letters and re-drive -------------------------------------------------------------------------------------


def dead_letter_all(subject: QueueUnderTest, labels: Sequence[str]) -> Run:
    """Put each message, then take and dead-letter each, one second of `now` apart, in order."""
    done = run(subject, [f"put {label}" for label in labels])
    base = subject.now()
    for offset, label in enumerate(labels):
        message = subject.queue.take("w1", lease_seconds=LEASE, now=base + offset)
        assert message is not None and message.body == label
        assert subject.queue.dead_letter(message, error=f"gave up on {label}", now=base + offset + 0.5)
    return done


def test_dead_letters_newest_first(queue_under_test: QueueUnderTest) -> None:
    """dead_letters lists what was given up on, newest first, with its id, error and attempts; `limit` cuts it."""
    subject = queue_under_test
    done = dead_letter_all(subject, ["a1", "b1", "c1"])
    dead = subject.queues[1].dead_letters()
    assert [(letter.body, letter.key, letter.attempts, letter.error) for letter in dead] == [
        (label, key_of(label), 1, f"gave up on {label}") for label in ("c1", "b1", "a1")
    ]
    assert [letter.message_id for letter in dead] == [done.ids[label] for label in ("c1", "b1", "a1")]
    assert dead[0].dead_at - dead[2].dead_at == pytest.approx(2.0)
    assert [letter.body for letter in subject.queue.dead_letters(limit=2)] == ["c1", "b1"]
    assert subject.queue.take("w2", lease_seconds=LEASE, now=subject.now()) is None


REDRIVES = {  # which dead letters (of a1, b1, c1) to re-drive → those moved, those still dead (newest first)
    "all": (None, ["a1", "b1", "c1"], []),
    "one-by-id": (["b1"], ["b1"], ["c1", "a1"]),
    "two-by-id": (["a1", "c1"], ["a1", "c1"], ["b1"]),
    "an-unknown-id-moves-nothing": (["no-such-id"], [], ["c1", "b1", "a1"]),
    "an-empty-list-moves-nothing": ([], [], ["c1", "b1", "a1"]),
}


@pytest.mark.parametrize(("chosen", "moved", "still_dead"), REDRIVES.values(), ids=REDRIVES.keys())
def test_redrive(
    queue_under_test: QueueUnderTest, chosen: list[str] | None, moved: list[str], still_dead: list[str]
) -> None:
    """redrive puts dead letters (all, or by id) back with their attempts reset and their enqueue time kept."""
    subject = queue_under_test
    enqueued_at = subject.now()
    done = dead_letter_all(subject, ["a1", "b1", "c1"])
    ids = None if chosen is None else [done.ids.get(label, label) for label in chosen]
    assert subject.queues[1].redrive(ids, now=subject.now()) == len(moved)
    assert [letter.body for letter in subject.queue.dead_letters()] == still_dead
    taken = [subject.queue.take(f"w{number}", lease_seconds=LEASE, now=subject.now()) for number in range(4)]
    again = [message for message in taken if message is not None]
    assert sorted(message.body for message in again) == moved
    assert {message.attempts for message in again} <= {1}
    assert all(message.enqueued_at == pytest.approx(enqueued_at, abs=1.0) for message in again)


# -- depth ---------------------------------------------------------------------------------------------------------

DEPTHS = {  # steps → (ready, delayed, leased, dead)
    "empty": ([], (0, 0, 0, 0)),
    "waiting-messages-are-ready": (["put a1", "put b1"], (2, 0, 0, 0)),
    "a-taken-message-is-leased": (["put a1", "put b1", "take w1 → a1"], (1, 0, 1, 0)),
    "a-message-given-back-is-delayed": (["put a1", "take w1 → a1", "retry w1 a1 after 60 → true"], (0, 1, 0, 0)),
    "a-lease-that-ran-out-is-ready-again": (["put a1", "take w1 for 1 → a1", "wait 1.2"], (1, 0, 0, 0)),
    "a-completed-message-is-gone": (["put a1", "take w1 → a1", "complete w1 a1 → true"], (0, 0, 0, 0)),
    "a-dead-letter-counts-apart": (["put a1", "put b1", "take w1 → a1", "dead w1 a1 → true"], (1, 0, 0, 1)),
}


@pytest.mark.parametrize(("steps", "expected"), DEPTHS.values(), ids=DEPTHS.keys())
def test_depth(queue_under_test: QueueUnderTest, steps: list[str], expected: tuple[int, int, int, int]) -> None:
    """depth counts ready, delayed, leased and dead messages (Storage Queues: only waiting in all, and dead)."""
    subject = queue_under_test
    run(subject, steps)
    depth = subject.queue.depth(now=subject.now())
    if subject.exact_depth:
        assert depth == QueueDepth(*expected)
    else:
        ready, delayed, leased, dead = expected
        assert (depth.ready + depth.delayed + depth.leased, depth.dead) == (ready + delayed + leased, dead)


# -- SQLite: processes racing on one file --------------------------------------------------------------------------

RACE_KEYS = 12
RACE_MESSAGES = 120  # ten per key


def _work_in_process(
    path: str, ready: Semaphore, start: Event, results: Queue[list[tuple[str, str, int, int]]]
) -> None:
    """Worker for the process race: take and complete until the queue is empty; report (id, key, taken, done) in
    monotonic nanoseconds, `done` read before complete() so that it precedes the key's next take."""
    queue = SqliteQueue(path)
    ready.release()
    start.wait()
    worked: list[tuple[str, str, int, int]] = []
    while True:
        message = queue.take(f"pid-{id(queue)}", lease_seconds=600, now=time.time())
        if message is None:
            depth = queue.depth(now=time.time())
            if depth.ready + depth.leased + depth.delayed == 0:
                break
            time.sleep(0.001)  # what is left is another worker's key
            continue
        taken = time.monotonic_ns()
        worked.append((message.message_id, message.key, taken, time.monotonic_ns()))
        assert queue.complete(message)
    queue.close()
    results.put(worked)


@pytest.mark.parametrize("processes", [2, 4], ids=["two-processes", "four-processes"])
def test_sqlite_processes_take_each_message_once(tmp_path: Path, processes: int) -> None:
    """Processes taking from one queue file get each message exactly once, one key at a time and in order."""
    path = str(tmp_path / "queue.db")
    queue = SqliteQueue(path)
    ids = [
        queue.put(f"registry/team/app:{number % RACE_KEYS}", str(number), now=1.0) for number in range(RACE_MESSAGES)
    ]
    queue.close()
    worked = race_processes(_work_in_process, [(path,)] * processes, timeout=60)
    assert_each_won_once([[message_id for message_id, *_ in found] for found in worked], ids)
    by_key: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for message_id, key, taken, finished in (entry for found in worked for entry in found):
        by_key[key].append((taken, finished, int(message_id)))
    for key, spans in by_key.items():
        spans.sort()
        assert [message_id for *_, message_id in spans] == sorted(message_id for *_, message_id in spans), key
        assert all(earlier[1] < later[0] for earlier, later in pairwise(spans)), f"{key}: overlapping leases"


# -- Storage Queues only -----------------------------------------------------------------------------------------


def raw_messages(azurite: Azurite, queue_name: str) -> list[dict[str, object]]:
    """The envelopes on a queue, peeked with a plain client and decoded as the Functions trigger decodes them."""
    from azure.storage.queue import QueueClient

    with QueueClient.from_connection_string(azurite.connection_string, queue_name) as client:
        return [json.loads(base64.b64decode(message.content)) for message in client.peek_messages(max_messages=32)]


def test_storage_envelope_is_base64_json(azurite: Azurite, storage_queue: Callable[..., StorageQueue]) -> None:
    """A message is a base64-encoded JSON envelope; a dead letter goes to <name>-poison with its id and error."""
    queue = storage_queue()
    message_id = queue.put("registry/team/app:1.0", '{"id": "e1"}', now=100.0)
    assert raw_messages(azurite, queue.queue_name) == [
        {"v": 1, "key": "registry/team/app:1.0", "body": '{"id": "e1"}', "enqueued_at": 100.0, "attempts": 0,
         "first_attempt_at": None, "last_error": None},
    ]  # fmt: skip
    message = queue.take("w1", lease_seconds=LEASE, now=time.time())
    assert message is not None and message.receipt
    assert queue.dead_letter(message, error="gave up", now=200.0)
    assert queue.poison_name == f"{queue.queue_name}-poison"
    [dead] = raw_messages(azurite, queue.poison_name)
    assert (dead["id"], dead["attempts"], dead["dead_at"], dead["error"]) == (message_id, 1, 200.0, "gave up")
    assert raw_messages(azurite, queue.queue_name) == []


def test_storage_refuses_an_event_too_large_for_a_message(storage_queue: Callable[..., StorageQueue]) -> None:
    """An event that would not fit in a 64 KiB message (with room for retries) is refused, and nothing is queued."""
    queue = storage_queue()
    with pytest.raises(ValueError, match="characters encoded is over"):
        queue.put("k", "x" * (MAX_MESSAGE_CHARS * 3 // 4), now=1.0)
    queue.put("k", "x" * 30_000, now=1.0)
    assert queue.depth(now=1.0).ready == 1


def test_storage_dead_letters_what_is_not_an_envelope(
    azurite: Azurite, storage_queue: Callable[..., StorageQueue]
) -> None:
    """A foreign message on the queue is moved to the dead letters (no key, its text as body) and take moves on."""
    from azure.storage.queue import QueueClient

    queue = storage_queue()
    queue.put("k", "mine", now=1.0)
    with QueueClient.from_connection_string(azurite.connection_string, queue.queue_name) as client:
        client.send_message("not base64 JSON")
    taken = [queue.take("w1", lease_seconds=LEASE, now=time.time()) for _ in range(2)]
    assert [message.body for message in taken if message is not None] == ["mine"]
    [dead] = queue.dead_letters()
    assert (dead.key, dead.body) == ("", "not base64 JSON")


def test_storage_leaves_poison_messages_that_are_not_its_own(
    azurite: Azurite, storage_queue: Callable[..., StorageQueue]
) -> None:
    """A poison message written by something else (neither an envelope nor an Event Grid event) is neither listed nor
    re-driven, and stays."""
    from azure.storage.queue import QueueClient

    queue = storage_queue()
    run_on = QueueUnderTest([queue], time.time, time.sleep, 0.0, False)
    run(run_on, ["put a1", "take w1 → a1", "dead w1 a1 → true"])
    with QueueClient.from_connection_string(azurite.connection_string, queue.poison_name) as client:
        client.send_message(base64.b64encode(b"host-written").decode())
    assert [letter.body for letter in queue.dead_letters()] == ["a1"]
    assert queue.redrive(now=time.time()) == 1
    assert queue.dead_letters() == [] and queue.depth(now=time.time()).dead == 1


def test_storage_lists_and_redrives_what_the_functions_host_poisoned(
    azurite: Azurite, storage_queue: Callable[..., StorageQueue]
) -> None:
    """Messages the Functions host moved to the poison queue after maxDequeueCount tries — an envelope of ours (a
    route's event) and an Event Grid event (base64, or plain text it could not decode) — are dead letters: listed with
    the host's error and put back as they were, so the queue trigger reads them as before."""
    from azure.storage.queue import QueueClient

    queue = storage_queue()
    queue.put("tag:registry/team/app:1.0", '{"event": "routed"}', now=10.0)
    event = {"id": "eg-1", "subject": "team/web:2.0", "eventType": "Microsoft.ContainerRegistry.ImagePushed"}
    moved = {"envelope": "", "base64": base64.b64encode(json.dumps(event).encode()).decode(),
             "plain": json.dumps({**event, "id": "eg-2"})}
    with QueueClient.from_connection_string(azurite.connection_string, queue.queue_name) as client, \
            QueueClient.from_connection_string(azurite.connection_string, queue.poison_name) as poison:
        received = client.receive_message()  # as the host does at the last dequeue: copy, then delete
        moved["envelope"] = received.content
        for content in moved.values():
            poison.send_message(content)
        client.delete_message(received)

    letters = sorted(queue.dead_letters(), key=lambda letter: letter.key)
    assert [(letter.key, letter.error) for letter in letters] == [
        ("eventgrid:team/web:2.0", HOST_GAVE_UP), ("eventgrid:team/web:2.0", HOST_GAVE_UP),
        ("tag:registry/team/app:1.0", HOST_GAVE_UP)]
    assert letters[2].body == '{"event": "routed"}' and {json.loads(letters[0].body)["id"],
                                                          json.loads(letters[1].body)["id"]} == {"eg-1", "eg-2"}
    assert all(letter.dead_at > 0 for letter in letters)

    assert queue.redrive([letters[2].message_id], now=20.0) == 1
    assert queue.redrive(now=20.0) == 2 and queue.dead_letters() == []
    with QueueClient.from_connection_string(azurite.connection_string, queue.queue_name) as client:
        assert sorted(message.content for message in client.peek_messages(max_messages=32)) == sorted(moved.values())


def test_storage_workers_on_threads_hold_a_key_one_at_a_time(storage_queue: Callable[..., StorageQueue]) -> None:
    """Threads, each with its own StorageQueue, take every message once and never two of one key at once."""
    ids = {storage_queue().put(f"registry/team/app:{number % 3}", str(number), now=time.time()): number
           for number in range(9)}  # fmt: skip
    spans: list[tuple[str, str, float, float]] = []
    lock = threading.Lock()

    def work(worker: int) -> None:
        queue = storage_queue()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            message = queue.take(f"w{worker}", lease_seconds=LEASE, now=time.time())
            if message is None:
                depth = queue.depth(now=time.time())
                if depth.ready == 0:
                    return
                time.sleep(0.05)
                continue
            taken = time.monotonic()
            time.sleep(0.05)
            with lock:
                spans.append((message.message_id, message.key, taken, time.monotonic()))
            assert queue.complete(message)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))
    assert_each_won_once([[message_id for message_id, *_ in spans]], list(ids))
    by_key: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for _, key, taken, finished in spans:
        by_key[key].append((taken, finished))
    for key, intervals in by_key.items():
        intervals.sort()
        assert all(earlier[1] < later[0] for earlier, later in pairwise(intervals)), key


SAS_SIGNATURE = "c2VjcmV0LXNpZ25hdHVyZQ%3D%3D"
FAILURES = {
    "unreachable-service-may-pass": (lambda azurite: _connection(azurite, port=free_port()), QueueUnavailable),
    "a-sas-signature-is-not-shown": (
        lambda azurite: f"QueueEndpoint=http://127.0.0.1:{free_port()}/devstoreaccount1;TableEndpoint="
        f"{azurite.table_endpoint};SharedAccessSignature=sv=2020-08-04&ss=qt&srt=sco&sp=rwdlacu&sig={SAS_SIGNATURE}",
        QueueUnavailable,
    ),
    "wrong-key-will-not-pass": (
        lambda azurite: _connection(azurite).replace(ACCOUNT_KEY, base64.b64encode(b"w" * 64).decode()),
        StorageQueueError,
    ),
}


def _connection(azurite: Azurite, *, port: int | None = None) -> str:
    """Azurite's connection string, its Queue service moved to `port` when given."""
    if port is None:
        return azurite.connection_string
    return azurite.connection_string.replace(azurite.queue_endpoint, f"http://127.0.0.1:{port}/devstoreaccount1")


@pytest.mark.parametrize(("connection", "error"), FAILURES.values(), ids=FAILURES.keys())
def test_storage_failures(azurite: Azurite, connection: Callable[[Azurite], str], error: type[Exception]) -> None:
    """Failures that may pass raise QueueUnavailable, the others StorageQueueError; neither shows the account key."""
    queue = StorageQueue(
        connection_string=connection(azurite), retry=RetryPolicy(attempts=1, base_delay=0), timeout_seconds=2,
        **fresh_names(),
    )  # fmt: skip
    with pytest.raises(error) as raised:
        queue.put("k", "b", now=1.0)
    shown = str(raised.value)
    assert ACCOUNT_KEY not in shown and "AccountKey" not in shown and SAS_SIGNATURE not in shown
    queue.close()


CONSTRUCTOR_ERRORS = {
    "neither-connection-nor-url": ({}, "exactly one of"),
    "url-without-credential": ({"account_url": "https://a.queue.core.windows.net"}, "needs a credential"),
    "table-endpoint-unknown": (
        {"account_url": "http://127.0.0.1:1/devstoreaccount1", "credential": object()},
        "give table_endpoint",
    ),
    "upper-case-queue-name": ({"connection_string": "x", "queue_name": "Events"}, "queue name"),
    "double-hyphen": ({"connection_string": "x", "queue_name": "a--b"}, "queue name"),
    "no-room-for-poison": ({"connection_string": "x", "queue_name": "q" * 57}, "queue name"),
    "bad-table-name": ({"connection_string": "x", "lease_table": "9keys"}, "lease table"),
    "skip-under-a-second": ({"connection_string": "x", "skip_seconds": 0}, "at least 1"),
}


@pytest.mark.parametrize(("arguments", "message"), CONSTRUCTOR_ERRORS.values(), ids=CONSTRUCTOR_ERRORS.keys())
def test_storage_constructor_refuses_bad_arguments(arguments: dict[str, object], message: str) -> None:
    """Bad names and missing credentials are refused before any connection."""
    with pytest.raises(ValueError, match=message):
        StorageQueue(**arguments)  # type: ignore[arg-type]


def test_storage_table_endpoint_follows_the_account_url() -> None:
    """With an account URL the key-lease table is the same account's Table service."""
    queue = StorageQueue(account_url="https://acct.queue.core.windows.net/", credential=object())
    assert queue._table_endpoint == "https://acct.table.core.windows.net"
