"""The queued-intake benchmark: how fast the local host answers a registry notification now that it only queues it,
how long a push then takes to its recorded outcome, how many events per second `serve` and its workers decide, and
whether one tag whose upstream is down holds up the others.

    .venv/bin/python -m bench.intake                                  # 1,000 events, 3 runs, every measure, a table
    .venv/bin/python -m bench.intake --events 200 --runs 2            # a quick look
    .venv/bin/python -m bench.intake --scenario latency --scenario head-of-line --json

Setup, once: one distribution registry (`testbed.registry.LocalRegistry`) on 127.0.0.1 receives N buildx-like
indexes with children of their own (event_path's `new-builds`: an amd64 and an arm64 image and their attestations;
the pipeline reads the index, the deciding child and its config, 3 requests per event), read once so every run sees
a warm registry. Besides them, for the head-of-line measure: `fix/app:1`, an arm64-only image, which the policy's
`fix/**` rule (require amd64 and arm64, `on_violation: reimport`) re-imports from its upstream, and that upstream,
`mirror/fix/app:1` (a compliant two-platform index) in the same registry, reached through a `FaultProxy` (the rule's
upstream host). A second `FaultProxy` in front of the registry hangs it for the intake measure. Everything binds
127.0.0.1; every wait has a deadline.

Each run (every figure printed is the median of the runs; the order of the two halves of a measure alternates
from run to run):
- intake: `python -m importer serve` (its default: `QueuedHost` answering only, one `work` process of 4 threads;
  SQLite queue and ledger)
  gets N distribution envelopes, one event each, posted one after the other over one keep-alive connection; the
  figure is the HTTP answer time the sender sees (request written to answer read), p50 and p99. Twice: with the
  registry healthy (serve guards it directly; its workers decide the events meanwhile, competing for the CPU), and
  with the registry hung (serve guards the registry's FaultProxy, which holds every request for HANG_SECONDS before
  forwarding it, as does the upstream's proxy). Every answer must be 202 with exactly the posted event queued;
  afterwards the proxies are healed and every event must end in exactly one `compliant` outcome.
- latency (push to outcome): in this process, `QueuedHost` (4 worker threads) over a fresh SQLite queue and ledger
  and a fresh pipeline; one event at a time: first the floor, a plain GET of the event's index manifest by digest
  with the pipeline's own client (`OciRegistry.http.get`, same pool and headers, as event_path), then the envelope is
  posted and the next event waits until its outcome is recorded. The time is taken inside the process, from
  `GuardApi.dispatch` receiving the request to `SqliteLedger.record` having committed the outcome, and split into
  intake (dispatch to the queue's INSERT committed), queue wait (to a worker's take committed), and deciding (take to
  record), of which registry reads (client and registry). The figure is event p50 minus floor p50, per run.
- throughput: `python -m importer serve` with `--workers 0` (4 threads in serve), `--workers 1` and `--workers 2` (4
  threads in each `python -m importer work` process sharing the SQLite queue and ledger; serve only answers); N envelopes from several keep-alive
  connections at once; events/s = N / the time from the first post to the moment the ledger (polled every
  POLL_SECONDS) holds all N outcomes. CPU time per event of the registry, serve, the work process and the senders.
- head-of-line: in this process as for latency, with the `fix/**` event posted first and then the N others paced at
  `--rate` events/s over one keep-alive connection (arrivals as pushes make them, not a burst; the default, 75/s, is
  well under what the host decides per second here, so the figure is not a queue built by overload). Twice: with
  the upstream healthy (the fix event is re-imported once) and with it down (its FaultProxy answers 503 to
  everything: each try of the fix event spends about a second in the HTTP client's own retries, holding a worker
  thread, and the event comes back after the EVENT_RETRY delay, `--retry`, serve's default 8/5 unless told
  otherwise). The figure is the p99 of the other events' push to outcome, down / healthy, per run.

The run fails (exit 1, `BenchmarkError`) if any answer is not 202 with the event queued, or any event does not end
in exactly one final outcome of the expected kind (compliant; the fix event reimported, or still retrying when
down), or the queue is not empty afterwards: no figure is printed for work that did not happen.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import math
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from bench.common import cpu_seconds, machine
from bench.event_path import (
    SCENARIOS,
    TARGET_EVENTS_PER_SECOND,
    TARGET_OVERHEAD_MS,
    WEBHOOK_TOKEN,
    BenchmarkError,
    PushedIndex,
    _children,
    _post,
    _push_child,
    _ReadTimedRegistry,
    _RecordTimedLedger,
    _Stopwatch,
    check_ledger,
    notification_envelope,
    percentile,
    push_scenario,
    warm_registry,
)
from importer.adapters.queue.sqlite import SqliteQueue
from importer.adapters.registry.oci import ACCEPT_MANIFESTS, OciRegistry
from importer.app.pipeline import Pipeline
from importer.app.registries import RegistryDirectory
from importer.app.settings import Settings, SettingsError, load_settings
from importer.app.worker import WorkerPolicy
from importer.core.policy import Policy, parse_policy
from importer.entry.composition import worker_policy_for
from importer.entry.http_api import ApiResponse
from importer.entry.serve import QueuedHost
from importer.ports.queue import Message
from testbed.faults import FaultProxy
from testbed.images import ImageBuilder
from testbed.registry import LocalRegistry, free_port

MEASURES = ("intake", "latency", "throughput", "head-of-line")
TARGET_INTAKE_P99_MS = 5.0
TARGET_HOL_RATIO = 1.10
HANG_SECONDS = 1.0  # how long the hung registry's proxy holds each request (longer than any answer measured)
POLL_SECONDS = 0.01  # how often the ledger is looked at while waiting for outcomes
WORKER_THREADS = 4  # serve's default
SERVE_START_SECONDS = 20.0
SERVE_STOP_SECONDS = 45.0
OUTCOME_SECONDS = 10.0  # latency: the longest one event may take to its outcome
STUCK_REPOSITORY = "fix/app"
STUCK_TAG = "1"
MIRROR_REPOSITORY = "mirror/fix/app"
POLICY_TEMPLATE = """
version: 1
defaults:
  require: [linux/amd64]
rules:
  - repositories: ["fix/**"]
    require: [linux/amd64, linux/arm64]
    on_violation: reimport
    upstream: "{upstream}/mirror/{{repository}}"
"""
THROUGHPUT_WORKERS = (0, 1, 2)  # serve --workers N: 0 decides in serve itself; N >= 1 in N work processes
DEFAULT_RETRY = "8/5"  # PLATFORM_GUARD_EVENT_RETRY's default: what serve's workers do with a failing event
SOURCE_ROOT = Path(__file__).resolve().parents[1]


# -- the rig: what every run shares ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rig:
    """The registry with the pushed indexes, the stuck tag, and the two fault proxies."""

    registry: LocalRegistry
    registry_proxy: FaultProxy  # in front of the registry: hangs it for the intake measure
    upstream_proxy: FaultProxy  # the fix/** rule's upstream host (the same registry behind it)
    pushed: list[PushedIndex]
    stuck: PushedIndex
    stuck_manifest: bytes
    policy_yaml: str

    @property
    def policy(self) -> Policy:
        return parse_policy(self.policy_yaml, source="bench-intake.yaml")

    def hang(self, hung: bool) -> None:
        """Every request to the registry and to the upstream waits HANG_SECONDS (or none does)."""
        for proxy in (self.registry_proxy, self.upstream_proxy):
            proxy.configure(rate=1.0 if hung else 0.0, faults=("slow",))

    def upstream_down(self, down: bool) -> None:
        """Every request to the upstream is answered 503 (or none is)."""
        self.upstream_proxy.configure(rate=1.0 if down else 0.0, faults=("503",))

    def reset_stuck_tag(self) -> None:
        """Point fix/app:1 at the arm64-only image again (a healthy head-of-line phase re-imported over it)."""
        with OciRegistry(self.registry.host) as client:
            client.put_manifest(STUCK_REPOSITORY, STUCK_TAG, self.stuck_manifest, self.stuck.media_type)


def push_stuck_tag(registry: LocalRegistry, builder: ImageBuilder) -> tuple[PushedIndex, bytes]:
    """fix/app:1, arm64 only (a violation of the fix/** rule), and its upstream mirror/fix/app:1, compliant."""
    with OciRegistry(registry.host) as client:
        image = builder.image("linux/arm64", seed="bench-intake-stuck")
        _push_child(client, builder, STUCK_REPOSITORY, image)
        manifest = builder.blob(image.digest)
        client.put_manifest(STUCK_REPOSITORY, STUCK_TAG, manifest, image.media_type)
        children = _children(builder, seed="bench-intake-mirror")
        for child in children:
            _push_child(client, builder, MIRROR_REPOSITORY, child)
        index = builder.index(children)
        client.put_manifest(MIRROR_REPOSITORY, STUCK_TAG, builder.blob(index.digest), index.media_type)
    return PushedIndex(STUCK_REPOSITORY, STUCK_TAG, image.digest, image.media_type, image.size, ()), manifest


# -- checks ----------------------------------------------------------------------------------------------


def _count_outcomes(ledger_path: Path) -> int:
    with sqlite3.connect(ledger_path, timeout=30) as database:
        return int(database.execute("SELECT COUNT(*) FROM outcomes").fetchone()[0])


def _wait_for_outcomes(ledger_path: Path, count: int, *, timeout: float) -> float:
    """Poll the ledger until it holds `count` outcomes; the perf_counter time it first did."""
    deadline = time.monotonic() + timeout
    while True:
        if _count_outcomes(ledger_path) >= count:
            return time.perf_counter()
        if time.monotonic() > deadline:
            raise BenchmarkError(f"ledger {ledger_path}: {_count_outcomes(ledger_path)} of {count} outcomes "
                                 f"after {timeout:.0f} s")
        time.sleep(POLL_SECONDS)


def check_queue_empty(queue_path: Path) -> None:
    """Nothing left in the queue, nothing dead-lettered: every queued event was settled."""
    with sqlite3.connect(queue_path, timeout=30) as database:
        messages = database.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        dead = database.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0]
    if messages or dead:
        raise BenchmarkError(f"queue {queue_path}: {messages} messages left, {dead} dead letters")


def _queued(status: int, answer: bytes, event_id: str) -> None:
    """The intake's answer must be 202 with exactly this event queued (and nothing decided at once)."""
    try:
        document = json.loads(answer) if status == 202 else None
    except ValueError:
        document = None
    if not isinstance(document, dict) or document.get("queued") != [event_id] or document.get("outcomes") != []:
        raise BenchmarkError(f"event {event_id} answered {status}: {answer[:300]!r}")


def _post_queued(connection: http.client.HTTPConnection, envelope: bytes, event_id: str) -> float:
    """Post one envelope and check the answer; the answer time in milliseconds (request written to body read)."""
    started = time.perf_counter()
    status, answer = _post(connection, envelope)
    elapsed = (time.perf_counter() - started) * 1000
    _queued(status, answer, event_id)
    return elapsed


def _event_ids(label: str, count: int) -> list[str]:
    unique = uuid.uuid4().hex[:8]
    return [f"{label}-{unique}-{number:04d}" for number in range(count)]


# -- serve in its own process ------------------------------------------------------------------------------


def _children_of(pid: int) -> list[int]:
    """Processes whose parent is `pid`, from /proc."""
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            after_name = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(after_name[1]) == pid:
            found.append(int(entry))
    return found


def _threads_of(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


class QueuedServe:
    """`python -m importer serve --threads N --workers M` guarding `guarded_host`, in a session of its own."""

    def __init__(self, *, guarded_host: str, ledger_path: Path, log_path: Path, policy_yaml: str,
                 workers: int = 1, threads: int = WORKER_THREADS) -> None:
        self.port = free_port()
        self.ledger_path = ledger_path
        self.queue_path = ledger_path.with_suffix(".queue.db")
        self.log_path = log_path
        self.workers = workers
        self.threads = threads
        self._environment = {
            **{name: value for name, value in os.environ.items() if not name.startswith("PLATFORM_GUARD_")},
            "PLATFORM_GUARD_REGISTRIES": guarded_host,
            "PLATFORM_GUARD_LEDGER": str(ledger_path),
            "PLATFORM_GUARD_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
            "PLATFORM_GUARD_POLICY": policy_yaml,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(SOURCE_ROOT), os.environ.get("PYTHONPATH")])),
        }
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise BenchmarkError("serve is not running")
        return self._process.pid

    def worker_pids(self) -> list[int]:
        return _children_of(self.pid)

    def start(self) -> Self:
        command = [sys.executable, "-m", "importer", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                   "--threads", str(self.threads), "--workers", str(self.workers)]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(command, env=self._environment, cwd=SOURCE_ROOT, stdout=log,
                                             stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + SERVE_START_SECONDS
        try:
            while not self._healthy():
                if self._process.poll() is not None:
                    raise BenchmarkError(f"serve exited early: {self.log_path.read_text()[-2000:]}")
                if time.monotonic() > deadline:
                    raise BenchmarkError(f"serve on port {self.port} did not answer within {SERVE_START_SECONDS} s")
                time.sleep(0.05)
            # A work process is ready once its pool's threads run (main, one per worker thread, the doorbell's).
            while not self._workers_ready():
                if time.monotonic() > deadline:
                    raise BenchmarkError(f"serve's {self.workers} work process(es) did not start their threads "
                                         f"within {SERVE_START_SECONDS} s")
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise
        return self

    def _healthy(self) -> bool:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
            connection.request("GET", "/api/health")
            healthy = connection.getresponse().status == 200
            connection.close()
            return healthy
        except OSError:
            return False

    def _workers_ready(self) -> bool:
        children = self.worker_pids()
        return len(children) == self.workers and all(_threads_of(pid) >= 2 + self.threads for pid in children)

    def stop(self) -> None:
        """Interrupt it as Ctrl-C would (it settles work in hand and stops its work processes); kill only if stuck."""
        if self._process is None:
            return
        process, self._process = self._process, None
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=SERVE_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            pass
        try:  # serve and the work processes it started share this session's process group
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# -- 1. intake answer time ---------------------------------------------------------------------------------


def measure_intake(rig: Rig, workdir: Path, *, hung: bool) -> dict[str, float]:
    """Answer times of N sequential posts to serve, with the registry healthy or hung; then every outcome."""
    mode = "hung" if hung else "healthy"
    guarded = rig.registry_proxy.host if hung else rig.registry.host
    event_ids = _event_ids(f"intake-{mode}", len(rig.pushed))
    envelopes = [notification_envelope(item, guarded, event_id) for item, event_id in zip(rig.pushed, event_ids)]
    ledger_path = workdir / f"intake-{mode}.db"
    answers: list[float] = []
    with QueuedServe(guarded_host=guarded, ledger_path=ledger_path, log_path=workdir / f"intake-{mode}.log",
                     policy_yaml=rig.policy_yaml) as serve:
        held_before = rig.registry_proxy.stats.requests  # each request is counted when it arrives (and held then)
        if hung:
            rig.hang(True)
        try:
            connection = http.client.HTTPConnection("127.0.0.1", serve.port, timeout=30)
            for envelope, event_id in zip(envelopes, event_ids):
                answers.append(_post_queued(connection, envelope, event_id))
            connection.close()
            decided_while_posting = _count_outcomes(ledger_path)
            held = rig.registry_proxy.stats.requests - held_before
        finally:
            if hung:
                rig.hang(False)
        _wait_for_outcomes(ledger_path, len(event_ids), timeout=HANG_SECONDS + 30 + len(event_ids) * 0.05)
    check_ledger(ledger_path, event_ids)
    check_queue_empty(serve.queue_path)
    if hung and held == 0:
        raise BenchmarkError("the registry's proxy held no request while the registry was to hang")
    return {
        f"{mode}_p50_ms": percentile(answers, 50),
        f"{mode}_p99_ms": percentile(answers, 99),
        f"{mode}_max_ms": max(answers),
        f"{mode}_decided_while_posting": float(decided_while_posting),
        **({"hung_requests_held": float(held)} if hung else {}),
    }


# -- in-process queued host with timestamps ----------------------------------------------------------------


class _QueuedStopwatch(_Stopwatch):
    """Timestamps of each event across threads: arrival and queue INSERT on the handler thread; take, registry reads
    and record on the worker thread (event_path's stopwatch keeps one thread's)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived_at: dict[str, float] = {}
        self.queued_at: dict[str, float] = {}
        self.taken_at: dict[str, float] = {}
        self.recorded_at: dict[str, float] = {}
        self.records: Counter[str] = Counter()
        self._changed = threading.Condition()

    def answered(self, arrived: float, response: ApiResponse) -> None:
        """Called on the handler thread once dispatch has answered: the queued events arrived at `arrived`."""
        if response.status != 202:
            return
        queued_at = getattr(self._current, "queued_at", math.nan)
        with self._changed:
            for event_id in json.loads(response.body).get("queued", []):
                self.arrived_at[event_id] = arrived
                self.queued_at[event_id] = queued_at

    def queued(self) -> None:
        self._current.queued_at = time.perf_counter()

    def taken(self) -> None:
        self._current.taken_at = time.perf_counter()
        self._current.reading = 0.0

    def read_registry(self, seconds: float) -> None:
        self._current.reading = getattr(self._current, "reading", 0.0) + seconds

    def recorded(self, event_id: str) -> None:
        now = time.perf_counter()
        with self._changed:
            self.records[event_id] += 1
            if event_id not in self.recorded_at:  # the first record: the outcome, or the first attempt's
                self.recorded_at[event_id] = now
                self.taken_at[event_id] = getattr(self._current, "taken_at", math.nan)
                self.registry_reads[event_id] = getattr(self._current, "reading", 0.0)
            self._current.reading = 0.0
            self._changed.notify_all()

    def wait_recorded(self, event_ids: Sequence[str], *, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: all(event_id in self.recorded_at for event_id in event_ids),
                                          timeout=timeout)

    def push_to_outcome_ms(self, event_id: str) -> float:
        return (self.recorded_at[event_id] - self.arrived_at[event_id]) * 1000


class _TimedQueue(SqliteQueue):
    """SqliteQueue that notes when a put has committed and when a take has (on the calling thread)."""

    def __init__(self, path: Path, stopwatch: _QueuedStopwatch) -> None:
        super().__init__(path)
        self._stopwatch = stopwatch
        self.takes: Counter[str] = Counter()  # by ordering key: how often each tag's head was taken

    def put(self, key: str, body: str, *, now: float) -> str:
        message_id = super().put(key, body, now=now)
        self._stopwatch.queued()
        return message_id

    def take(self, owner: str, *, lease_seconds: float, now: float) -> Message | None:
        message = super().take(owner, lease_seconds=lease_seconds, now=now)
        if message is not None:
            self._stopwatch.taken()
            self.takes[message.key] += 1
        return message


@dataclass
class _InProcess:
    service: QueuedHost
    pipeline: Pipeline
    ledger: _RecordTimedLedger
    queue: _TimedQueue
    stopwatch: _QueuedStopwatch
    ledger_path: Path

    @property
    def port(self) -> int:
        return self.service.host.port


def _queued_host(rig: Rig, ledger_path: Path, policy: WorkerPolicy) -> _InProcess:
    """QueuedHost as `serve` builds it (pipeline_for without sinks, as event_path), with timestamps on the way:
    GuardApi.dispatch wrapped on the instance, the queue's put/take and the ledger's record timed."""
    stopwatch = _QueuedStopwatch()
    settings = Settings(registries=(rig.registry.host,), ledger_path=ledger_path, webhook_token=WEBHOOK_TOKEN,
                        policy=rig.policy)
    ledger = _RecordTimedLedger(ledger_path, stopwatch)
    pipeline = Pipeline(
        policy=settings.policy,
        ledger=ledger,
        registries=RegistryDirectory(settings, factory=lambda host: _ReadTimedRegistry(host, stopwatch=stopwatch)),
    )
    queue = _TimedQueue(settings.queue_path, stopwatch)
    service = QueuedHost(pipeline, queue, webhook_token=WEBHOOK_TOKEN, port=0, threads=WORKER_THREADS, policy=policy)
    dispatch = service.api.dispatch

    def timed_dispatch(method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str],
                       body: bytes) -> ApiResponse:
        arrived = time.perf_counter()
        response = dispatch(method, path, query, headers, body)
        stopwatch.answered(arrived, response)
        return response

    service.api.dispatch = timed_dispatch  # type: ignore[method-assign]
    return _InProcess(service, pipeline, ledger, queue, stopwatch, ledger_path)


# -- 2. push to outcome against the floor ------------------------------------------------------------------


def measure_latency(rig: Rig, workdir: Path) -> dict[str, float]:
    """Floor GET, then one event to its recorded outcome, alternately, for every pushed index."""
    ledger_path = workdir / "latency.db"
    in_process = _queued_host(rig, ledger_path, worker_policy(DEFAULT_RETRY))
    stopwatch = in_process.stopwatch
    client = in_process.pipeline.registries.client(rig.registry.host)
    assert isinstance(client, OciRegistry)
    event_ids = _event_ids("latency", len(rig.pushed))
    floor: list[float] = []
    reads_floor: list[float] = []
    round_trips: list[float] = []
    event_requests = 0
    try:
        with in_process.service:
            connection = http.client.HTTPConnection("127.0.0.1", in_process.port, timeout=30)
            for item, event_id in zip(rig.pushed, event_ids):
                url = f"{client.base_url}/v2/{item.repository}/manifests/{item.digest}"
                started = time.perf_counter()
                status, _, body = client.http.get(url, {"Accept": ACCEPT_MANIFESTS})
                floor.append((time.perf_counter() - started) * 1000)
                if status != 200 or "sha256:" + hashlib.sha256(body).hexdigest() != item.digest:
                    raise BenchmarkError(f"plain GET {url} answered {status} or other bytes than {item.digest}")
                reads_floor.append(floor[-1] + _child_and_config_reads_ms(client, item))
                requests_before = client.requests_made
                round_trips.append(_post_queued(connection, notification_envelope(item, rig.registry.host, event_id),
                                                event_id))
                if not stopwatch.wait_recorded([event_id], timeout=OUTCOME_SECONDS):
                    raise BenchmarkError(f"event {event_id} had no outcome {OUTCOME_SECONDS:.0f} s after it was queued")
                event_requests += client.requests_made - requests_before
            connection.close()
    finally:
        client.close()
        in_process.ledger.close()
    check_ledger(ledger_path, event_ids)
    check_queue_empty(ledger_path.with_suffix(".queue.db"))
    events = [stopwatch.push_to_outcome_ms(event_id) for event_id in event_ids]
    intake = [(stopwatch.queued_at[e] - stopwatch.arrived_at[e]) * 1000 for e in event_ids]
    waited = [(stopwatch.taken_at[e] - stopwatch.queued_at[e]) * 1000 for e in event_ids]
    deciding = [(stopwatch.recorded_at[e] - stopwatch.taken_at[e]) * 1000 for e in event_ids]
    reads = [stopwatch.registry_reads[e] * 1000 for e in event_ids]
    if any(math.isnan(value) for value in intake + waited):
        raise BenchmarkError("an event's queue put or take was not seen")
    floor_p50, event_p50 = percentile(floor, 50), percentile(events, 50)
    return {
        "floor_p50_ms": floor_p50,
        "floor_p99_ms": percentile(floor, 99),
        "reads_floor_p50_ms": percentile(reads_floor, 50),
        "overhead_over_reads_p50_ms": event_p50 - percentile(reads_floor, 50),
        "event_p50_ms": event_p50,
        "event_p99_ms": percentile(events, 99),
        "overhead_p50_ms": event_p50 - floor_p50,
        "intake_p50_ms": percentile(intake, 50),
        "queue_wait_p50_ms": percentile(waited, 50),
        "deciding_p50_ms": percentile(deciding, 50),
        "registry_reads_p50_ms": percentile(reads, 50),
        "deciding_not_reads_p50_ms": percentile([d - r for d, r in zip(deciding, reads)], 50),
        "round_trip_p50_ms": percentile(round_trips, 50),
        "requests_per_event": event_requests / len(event_ids),
    }


def _child_and_config_reads_ms(client: OciRegistry, item: PushedIndex) -> float:
    """The two reads the decision needs beyond the index, raw and one after the other (the amd64 child the policy
    requires, then its config): with the index GET, the floor of the work itself."""
    child = next(c for c in item.children if (c.platform or {}).get("architecture") == "amd64")
    started = time.perf_counter()
    status, _, body = client.http.get(f"{client.base_url}/v2/{item.repository}/manifests/{child.digest}",
                                      {"Accept": child.media_type})
    config = json.loads(body)["config"]["digest"] if status == 200 else None
    status, _, _ = client.http.get(f"{client.base_url}/v2/{item.repository}/blobs/{config}", {})
    if config is None or status != 200:
        raise BenchmarkError(f"raw reads of {item.repository}@{child.digest} and its config failed ({status})")
    return (time.perf_counter() - started) * 1000


# -- 3. throughput through serve ---------------------------------------------------------------------------


def _send_concurrently(port: int, envelopes: Sequence[bytes], event_ids: Sequence[str], connections: int,
                       failures: list[str]) -> list[threading.Thread]:
    """Start `connections` keep-alive senders sharing the envelopes; failures are appended to `failures`."""
    positions = iter(range(len(envelopes)))
    lock = threading.Lock()

    def sender() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            while True:
                with lock:
                    position = next(positions, None)
                if position is None:
                    return
                try:
                    _post_queued(connection, envelopes[position], event_ids[position])
                except (BenchmarkError, OSError, http.client.HTTPException) as error:
                    with lock:
                        failures.append(f"envelope {position}: {error}")
                    return
        finally:
            connection.close()

    threads = [threading.Thread(target=sender, name=f"bench-sender-{number}") for number in range(connections)]
    for thread in threads:
        thread.start()
    return threads


def measure_throughput(rig: Rig, workdir: Path, *, workers: int, connections: int) -> dict[str, float]:
    """Events/s through serve with `workers` extra work processes, counted by outcomes in the ledger."""
    event_ids = _event_ids(f"throughput-w{workers}", len(rig.pushed))
    envelopes = [notification_envelope(item, rig.registry.host, e) for item, e in zip(rig.pushed, event_ids)]
    ledger_path = workdir / f"throughput-w{workers}.db"
    failures: list[str] = []
    with QueuedServe(guarded_host=rig.registry.host, ledger_path=ledger_path, policy_yaml=rig.policy_yaml,
                     log_path=workdir / f"throughput-w{workers}.log", workers=workers) as serve:
        work_pids = serve.worker_pids()
        processes = [rig.registry.pid, serve.pid, *work_pids]
        before = [cpu_seconds(pid) for pid in processes] + [time.process_time()]
        started = time.perf_counter()
        senders = _send_concurrently(serve.port, envelopes, event_ids, connections, failures)
        try:
            finished = _wait_for_outcomes(ledger_path, len(event_ids), timeout=30 + len(event_ids) * 0.05)
            after = [cpu_seconds(pid) for pid in processes] + [time.process_time()]
        finally:
            for thread in senders:
                thread.join(timeout=60)
    if failures:
        raise BenchmarkError(f"{len(failures)} posts failed: {failures[:3]}")
    check_ledger(ledger_path, event_ids)
    check_queue_empty(serve.queue_path)
    seconds = finished - started
    cpu_ms = [(end - begin) * 1000 / len(event_ids) for begin, end in zip(before, after)]
    figures = {
        f"w{workers}_events_per_second": len(event_ids) / seconds,
        f"w{workers}_registry_cpu_ms_per_event": cpu_ms[0],
        f"w{workers}_serve_cpu_ms_per_event": cpu_ms[1],
        f"w{workers}_sender_cpu_ms_per_event": cpu_ms[-1],
    }
    if workers:
        figures[f"w{workers}_work_cpu_ms_per_event"] = sum(cpu_ms[2:-1])
    return figures


# -- 4. head-of-line: one tag's upstream down --------------------------------------------------------------


def worker_policy(retry: str) -> WorkerPolicy:
    """The workers' policy as serve builds it, with PLATFORM_GUARD_EVENT_RETRY set to `retry` (N/SECONDS)."""
    return worker_policy_for(load_settings({"PLATFORM_GUARD_EVENT_RETRY": retry}))


def measure_head_of_line(rig: Rig, workdir: Path, *, down: bool, rate: float, retry: str) -> dict[str, float]:
    """The stuck tag's event, then the others paced at `rate`/s; push to outcome of the others."""
    mode = "down" if down else "healthy"
    ledger_path = workdir / f"hol-{mode}.db"
    rig.reset_stuck_tag()
    in_process = _queued_host(rig, ledger_path, worker_policy(retry))
    stopwatch = in_process.stopwatch
    stuck_id = f"hol-{mode}-stuck-{uuid.uuid4().hex[:8]}"
    event_ids = _event_ids(f"hol-{mode}", len(rig.pushed))
    envelopes = [notification_envelope(item, rig.registry.host, e) for item, e in zip(rig.pushed, event_ids)]
    rig.upstream_down(down)
    try:
        with in_process.service:
            connection = http.client.HTTPConnection("127.0.0.1", in_process.port, timeout=30)
            _post_queued(connection, notification_envelope(rig.stuck, rig.registry.host, stuck_id), stuck_id)
            started = time.perf_counter()
            for number, (envelope, event_id) in enumerate(zip(envelopes, event_ids)):
                delay = started + number / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                _post_queued(connection, envelope, event_id)
            offered = len(event_ids) / max(time.perf_counter() - started, 1e-9)
            connection.close()
            waiting_for = event_ids if down else [*event_ids, stuck_id]
            if not stopwatch.wait_recorded(waiting_for, timeout=30 + len(event_ids) * 0.05):
                missing = [event_id for event_id in waiting_for if event_id not in stopwatch.recorded_at]
                raise BenchmarkError(f"{len(missing)} events had no outcome in time, e.g. {missing[:3]}")
            stuck_key = f"tag:{rig.registry.host}/{STUCK_REPOSITORY}:{STUCK_TAG}"
            stuck_attempts = in_process.queue.takes[stuck_key]  # tries begun while the others were decided
    finally:
        rig.upstream_down(False)
        in_process.ledger.close()
    check_ledger_with_stuck(ledger_path, event_ids, stuck_id, down=down)
    if down and stopwatch.records[stuck_id] < 1:
        raise BenchmarkError(f"the fix/** tag's event recorded no failed attempt while its upstream was down (tried "
                             f"{stuck_attempts} times): there was no head-of-line situation to measure")
    latencies = [stopwatch.push_to_outcome_ms(event_id) for event_id in event_ids]
    waited = [(stopwatch.taken_at[e] - stopwatch.queued_at[e]) * 1000 for e in event_ids]
    return {
        f"{mode}_p50_ms": percentile(latencies, 50),
        f"{mode}_p99_ms": percentile(latencies, 99),
        f"{mode}_queue_wait_p99_ms": percentile(waited, 99),
        f"{mode}_offered_per_second": offered,
        **({"down_stuck_attempts": float(stuck_attempts)} if down else {}),
    }


def check_ledger_with_stuck(ledger_path: Path, event_ids: Sequence[str], stuck_id: str, *, down: bool) -> None:
    """The others: one `compliant` outcome each. The stuck one: `retrying` attempts only while its upstream is
    down; exactly one final outcome, `reimported`, when it is healthy. Nothing else in the ledger."""
    with sqlite3.connect(ledger_path) as database:
        rows = database.execute("SELECT event_id, result FROM outcomes").fetchall()
    others = [(event_id, result) for event_id, result in rows if event_id != stuck_id]
    stuck = [result for event_id, result in rows if event_id == stuck_id]
    counts = Counter(event_id for event_id, _ in others)
    problems = [f"{event_id}: {count} outcomes" for event_id, count in counts.items() if count != 1]
    problems += [f"{event_id}: no outcome" for event_id in set(event_ids) - counts.keys()]
    problems += [f"{event_id}: unknown event" for event_id in counts.keys() - set(event_ids)]
    problems += [f"{event_id}: {result}" for event_id, result in others if result != "compliant"]
    finals = [result for result in stuck if result != "retrying"]
    if down and finals:
        problems.append(f"the stuck event ended while its upstream was down: {stuck}")
    if not down and finals != ["reimported"]:
        problems.append(f"the stuck event's outcomes with a healthy upstream: {stuck} (expected one reimported)")
    if problems:
        raise BenchmarkError(f"ledger {ledger_path}: {len(problems)} problems, e.g. {problems[:3]}")


# -- the whole benchmark -----------------------------------------------------------------------------------


def run_once(rig: Rig, workdir: Path, run: int, measures: Sequence[str], *, connections: int, rate: float,
             retry: str, progress: Callable[[str], None]) -> dict[str, object]:
    """Every chosen measure once; the two halves of each in an order that alternates from run to run."""
    workdir.mkdir(parents=True)
    swap = run % 2 == 0
    figures: dict[str, object] = {"run": run, "load_average": os.getloadavg()[0]}
    if "intake" in measures:
        intake: dict[str, float] = {}
        for hung in (True, False) if swap else (False, True):
            intake.update(measure_intake(rig, workdir, hung=hung))
        figures["intake"] = intake
        progress(f"run {run} intake: {_intake_line(intake)}")
    if "latency" in measures:
        figures["latency"] = latency = measure_latency(rig, workdir)
        progress(f"run {run} latency: {_latency_line(latency)}")
    if "throughput" in measures:
        throughput: dict[str, float] = {}
        for workers in tuple(reversed(THROUGHPUT_WORKERS)) if swap else THROUGHPUT_WORKERS:
            throughput.update(measure_throughput(rig, workdir, workers=workers, connections=connections))
        throughput["scaling"] = throughput["w2_events_per_second"] / throughput["w1_events_per_second"]
        figures["throughput"] = throughput
        progress(f"run {run} throughput: {_throughput_line(throughput)}")
    if "head-of-line" in measures:
        hol: dict[str, float] = {}
        for down in (True, False) if swap else (False, True):
            hol.update(measure_head_of_line(rig, workdir, down=down, rate=rate, retry=retry))
        hol["p99_ratio"] = hol["down_p99_ms"] / hol["healthy_p99_ms"]
        figures["head_of_line"] = hol
        progress(f"run {run} head-of-line: {_hol_line(hol)}")
    return figures


def _medians(runs: Sequence[Mapping[str, object]], key: str) -> dict[str, float]:
    per_run = [run[key] for run in runs if key in run]
    if not per_run:
        return {}
    assert all(isinstance(figures, dict) for figures in per_run)
    names = per_run[0].keys()  # type: ignore[union-attr]
    return {name: statistics.median(figures[name] for figures in per_run) for name in names}  # type: ignore[index]


def _targets(median: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, object]]:
    targets: dict[str, dict[str, object]] = {}
    if intake := median.get("intake"):
        for mode in ("healthy", "hung"):
            value = intake[f"{mode}_p99_ms"]
            targets[f"intake_{mode}_p99_ms"] = {"value": value, "target": f"<= {TARGET_INTAKE_P99_MS:g}",
                                                "met": value <= TARGET_INTAKE_P99_MS}
    if latency := median.get("latency"):
        value = latency["overhead_p50_ms"]
        targets["push_to_outcome_overhead_p50_ms"] = {"value": value, "target": f"<= {TARGET_OVERHEAD_MS:g}",
                                                      "met": value <= TARGET_OVERHEAD_MS}
    if throughput := median.get("throughput"):
        for workers in THROUGHPUT_WORKERS:
            value = throughput[f"w{workers}_events_per_second"]
            targets[f"events_per_second_workers_{workers}"] = {
                "value": value, "target": f">= {TARGET_EVENTS_PER_SECOND:g}", "met": value >= TARGET_EVENTS_PER_SECOND,
            }
    if hol := median.get("head_of_line"):
        value = hol["p99_ratio"]
        targets["head_of_line_p99_ratio"] = {"value": value, "target": f"<= {TARGET_HOL_RATIO:g}",
                                             "met": value <= TARGET_HOL_RATIO}
    return targets


def run_benchmark(*, events: int, runs: int, measures: Sequence[str], connections: int, rate: float,
                  retry: str = DEFAULT_RETRY, progress: Callable[[str], None]) -> dict[str, object]:
    """Set up once, measure `runs` times, and return every figure plus the medians and the verdicts."""
    workdir = Path(tempfile.mkdtemp(prefix="platform-guard-bench-intake-"))
    per_run: list[dict[str, object]] = []
    try:
        with LocalRegistry(workdir / "registry") as registry, \
                FaultProxy(registry.host, slow_seconds=HANG_SECONDS) as registry_proxy, \
                FaultProxy(registry.host, slow_seconds=HANG_SECONDS) as upstream_proxy:
            started = time.monotonic()
            builder = ImageBuilder(workdir / "layout")
            pushed = push_scenario(registry, builder, SCENARIOS["new-builds"], events)
            warm_registry(registry, pushed)
            stuck, stuck_manifest = push_stuck_tag(registry, builder)
            progress(f"pushed and read {events} indexes in {time.monotonic() - started:.0f} s")
            rig = Rig(registry, registry_proxy, upstream_proxy, pushed, stuck, stuck_manifest,
                      POLICY_TEMPLATE.format(upstream=upstream_proxy.host))
            for run in range(1, runs + 1):
                started = time.monotonic()
                per_run.append(run_once(rig, workdir / f"run-{run}", run, measures, connections=connections,
                                        rate=rate, retry=retry, progress=progress))
                progress(f"run {run}/{runs} done in {time.monotonic() - started:.0f} s "
                         f"(load at its start {per_run[-1]['load_average']:.1f})")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    median = {key: _medians(per_run, key) for key in ("intake", "latency", "throughput", "head_of_line")}
    median = {key: value for key, value in median.items() if value}
    return {
        "benchmark": "intake",
        "date": time.strftime("%Y-%m-%d"),
        "command": " ".join(["python", "-m", "bench.intake", *sys.argv[1:]]),
        "machine": machine(),
        "events": events,
        "runs": runs,
        "measures": list(measures),
        "connections": connections,
        "rate": rate,
        "retry": retry,
        "hang_seconds": HANG_SECONDS,
        "worker_threads": WORKER_THREADS,
        "per_run": per_run,
        "median": median,
        "targets": _targets(median),
    }


# -- the report --------------------------------------------------------------------------------------------


def _intake_line(f: Mapping[str, float]) -> str:
    return (f"answer p50/p99 healthy {f['healthy_p50_ms']:.2f}/{f['healthy_p99_ms']:.2f} ms, "
            f"registry hung {f['hung_p50_ms']:.2f}/{f['hung_p99_ms']:.2f} ms "
            f"({f['hung_requests_held']:.0f} registry requests held, {f['hung_decided_while_posting']:.0f} "
            f"decided while posting)")


def _latency_line(f: Mapping[str, float]) -> str:
    return (f"floor p50 {f['floor_p50_ms']:.2f} ms, event p50 {f['event_p50_ms']:.2f} ms "
            f"(p99 {f['event_p99_ms']:.2f}), overhead {f['overhead_p50_ms']:.2f} ms "
            f"(over the three raw reads, p50 {f['reads_floor_p50_ms']:.2f}: {f['overhead_over_reads_p50_ms']:.2f} ms) "
            f"[intake {f['intake_p50_ms']:.2f}, queue wait {f['queue_wait_p50_ms']:.2f}, deciding "
            f"{f['deciding_p50_ms']:.2f} of which reads {f['registry_reads_p50_ms']:.2f}]")


def _throughput_line(f: Mapping[str, float]) -> str:
    return (f"{f['w0_events_per_second']:.0f} events/s with --workers 0, {f['w1_events_per_second']:.0f} with "
            f"--workers 1, {f['w2_events_per_second']:.0f} with --workers 2 ({f['scaling']:.2f}x)")


def _hol_line(f: Mapping[str, float]) -> str:
    return (f"others' p99 {f['healthy_p99_ms']:.2f} ms healthy, {f['down_p99_ms']:.2f} ms upstream down "
            f"(ratio {f['p99_ratio']:.2f}; p50 {f['healthy_p50_ms']:.2f} / {f['down_p50_ms']:.2f} ms; "
            f"stuck tag tried {f['down_stuck_attempts']:.0f} times)")


def format_report(report: Mapping[str, object]) -> str:
    """The medians of the runs with the targets, then each run's line, then the machine."""
    median = report["median"]
    targets = report["targets"]
    per_run = report["per_run"]
    assert isinstance(median, dict) and isinstance(targets, dict) and isinstance(per_run, list)

    def verdict(name: str) -> str:
        target = targets[name]
        return f"target {target['target']}: {'met' if target['met'] else 'MISSED'}"

    lines = [f"queued intake: {report['events']} events per phase, median of {report['runs']} runs"]
    if intake := median.get("intake"):
        lines += [
            "",
            "intake: HTTP answer time of POST /api/registry-events to serve (sequential, keep-alive)",
            f"  {'':34}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}",
            f"  {'registry healthy':34}{intake['healthy_p50_ms']:9.2f}{intake['healthy_p99_ms']:9.2f}"
            f"{intake['healthy_max_ms']:9.2f}   {verdict('intake_healthy_p99_ms')}",
            f"  {'registry and upstream hung':34}{intake['hung_p50_ms']:9.2f}{intake['hung_p99_ms']:9.2f}"
            f"{intake['hung_max_ms']:9.2f}   {verdict('intake_hung_p99_ms')}",
            f"  while hung: {intake['hung_requests_held']:.0f} registry requests held {report['hang_seconds']:g} s "
            f"each, {intake['hung_decided_while_posting']:.0f} events decided while posting "
            f"(healthy: {intake['healthy_decided_while_posting']:.0f})",
        ]
    if latency := median.get("latency"):
        lines += [
            "",
            "push to outcome, new builds (dispatch to outcome committed, one event at a time)",
            f"  plain GET of the index manifest (floor)  p50 {latency['floor_p50_ms']:.2f} ms, "
            f"p99 {latency['floor_p99_ms']:.2f} ms",
            f"  push to outcome                          p50 {latency['event_p50_ms']:.2f} ms, "
            f"p99 {latency['event_p99_ms']:.2f} ms",
            f"    intake (to queue INSERT committed)     p50 {latency['intake_p50_ms']:.2f} ms",
            f"    queue wait (to a worker's take)        p50 {latency['queue_wait_p50_ms']:.2f} ms",
            f"    deciding (take to record)              p50 {latency['deciding_p50_ms']:.2f} ms, of it registry "
            f"reads {latency['registry_reads_p50_ms']:.2f} ms, the rest {latency['deciding_not_reads_p50_ms']:.2f} ms",
            f"  sender's answer time p50 {latency['round_trip_p50_ms']:.2f} ms; "
            f"{latency['requests_per_event']:.2f} registry requests per event",
            f"  p50 overhead over the floor (median of per-run differences) {latency['overhead_p50_ms']:.2f} ms   "
            f"{verdict('push_to_outcome_overhead_p50_ms')}",
            f"  the three reads the decision needs, raw (index, amd64 child, its config) p50 "
            f"{latency['reads_floor_p50_ms']:.2f} ms; p50 overhead over them {latency['overhead_over_reads_p50_ms']:.2f} ms",
        ]
    if throughput := median.get("throughput"):
        lines += [
            "",
            f"throughput through serve, SQLite queue ({report['connections']} sending connections, "
            "counted by outcomes in the ledger)",
            f"  --workers 0 ({WORKER_THREADS} threads in serve)       "
            f"{throughput['w0_events_per_second']:6.0f} events/s   "
            f"{verdict('events_per_second_workers_0')}",
            f"  --workers 1 (serve answers, 1 work)     {throughput['w1_events_per_second']:6.0f} events/s   "
            f"{verdict('events_per_second_workers_1')}",
            f"  --workers 2 (serve answers, 2 work)     {throughput['w2_events_per_second']:6.0f} events/s   "
            f"{verdict('events_per_second_workers_2')}",
            f"  scaling 1 -> 2 worker processes         {throughput['scaling']:6.2f}x",
            f"  CPU ms per event, --workers 0: registry {throughput['w0_registry_cpu_ms_per_event']:.2f}, "
            f"serve {throughput['w0_serve_cpu_ms_per_event']:.2f}, "
            f"senders {throughput['w0_sender_cpu_ms_per_event']:.2f}",
            *(f"  CPU ms per event, --workers {n}: registry {throughput[f'w{n}_registry_cpu_ms_per_event']:.2f}, "
              f"serve {throughput[f'w{n}_serve_cpu_ms_per_event']:.2f}, "
              f"work {throughput[f'w{n}_work_cpu_ms_per_event']:.2f}, "
              f"senders {throughput[f'w{n}_sender_cpu_ms_per_event']:.2f}" for n in (1, 2)),
        ]
    if hol := median.get("head_of_line"):
        lines += [
            "",
            f"head-of-line: other tags' push to outcome, paced at {report['rate']:g} events/s after one fix/** event "
            f"(retried as EVENT_RETRY {report['retry']})",
            f"  {'':34}{'p50 ms':>9}{'p99 ms':>9}{'wait p99':>9}",
            f"  {'upstream healthy':34}{hol['healthy_p50_ms']:9.2f}{hol['healthy_p99_ms']:9.2f}"
            f"{hol['healthy_queue_wait_p99_ms']:9.2f}",
            f"  {'upstream down (503), tag retrying':34}{hol['down_p50_ms']:9.2f}{hol['down_p99_ms']:9.2f}"
            f"{hol['down_queue_wait_p99_ms']:9.2f}",
            f"  p99 down / healthy (median of per-run ratios) {hol['p99_ratio']:.2f}   "
            f"{verdict('head_of_line_p99_ratio')}; the stuck tag was tried {hol['down_stuck_attempts']:.0f} times",
        ]
    lines += ["", "runs:"]
    for run in per_run:
        lines.append(f"  {run['run']}. load {run['load_average']:.1f}")
        for key, line in (("intake", _intake_line), ("latency", _latency_line), ("throughput", _throughput_line),
                          ("head_of_line", _hol_line)):
            if key in run:
                lines.append(f"     {key}: {line(run[key])}")
    machine_figures = report["machine"]
    assert isinstance(machine_figures, dict)
    lines += ["", "machine: " + ", ".join(f"{key} {value}" for key, value in machine_figures.items())]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.intake", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1000, help="events per phase (default 1000)")
    parser.add_argument("--runs", type=int, default=3, help="runs; the median of runs is reported (default 3)")
    parser.add_argument("--scenario", action="append", choices=[*MEASURES, "all"],
                        help="what to measure (repeatable; default all)")
    parser.add_argument("--connections", type=int, default=4, help="concurrent senders for throughput (default 4)")
    parser.add_argument("--rate", type=float, default=75.0,
                        help="events/s offered in the head-of-line phases (default 75)")
    parser.add_argument("--retry", default=DEFAULT_RETRY, metavar="N/SECONDS",
                        help="PLATFORM_GUARD_EVENT_RETRY for the head-of-line phases' workers (default 8/5, serve's)")
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON")
    args = parser.parse_args(argv)
    if args.events < 1 or args.runs < 1 or args.connections < 1 or not args.rate > 0:
        parser.error("--events, --runs and --connections must be at least 1, --rate above 0")
    try:
        worker_policy(args.retry)
    except SettingsError as error:
        parser.error(f"--retry: {error}")
    chosen = list(MEASURES) if not args.scenario or "all" in args.scenario else \
        [measure for measure in MEASURES if measure in args.scenario]
    try:
        report = run_benchmark(
            events=args.events, runs=args.runs, measures=chosen, connections=args.connections, rate=args.rate,
            retry=args.retry, progress=lambda message: print(message, file=sys.stderr, flush=True),
        )
    except BenchmarkError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
