"""The event-path benchmark: how long an index push event takes from reaching the local host to its recorded
outcome, against plain GETs of the same manifests, and how many events per second a running `serve` records.

    .venv/bin/python -m bench.event_path                          # 1,000 events, 5 runs, both scenarios, a table
    .venv/bin/python -m bench.event_path --events 200 --runs 3 --scenario new-builds --json

Setup, once: a real distribution registry (`testbed.registry.LocalRegistry`) receives N distinct
buildx-like indexes per scenario, each of an amd64 and an arm64 image with their BuildKit attestations
(4 children, 8 blobs; built by `testbed.images`), tagged `event-0000`…, pushed with our own
`OciRegistry` over keep-alive connections (1.6 times faster than the testbed's urllib pusher in a trial; skopeo
would take minutes), then read once so that the registry and the page cache are warm for every run. The scenarios:
- new-builds: every index has its own images and attestations, as after a fresh build. The pipeline reads the
  index, the deciding child manifest and its config: 3 registry requests per event.
- re-tags: every index is distinct (an annotation differs) but they share 10 sets of children, as when the same
  images are tagged again or promoted. After the first event of a set, child and config come from the client's
  digest cache: about 1 request per event, so the overhead over the floor is the pipeline's own code.

Each run, for each scenario (the figures printed are the median of the runs):
- Latency: a fresh pipeline (cold manifest cache, new SQLite ledger, default policy: require linux/amd64)
  behind `LocalHost` on 127.0.0.1; one distribution notification envelope per event is posted over one
  keep-alive connection, one at a time. Latency is measured inside the server, from the moment
  `GuardApi.dispatch` gets the request (headers and body read) to the moment `SqliteLedger.record` has
  committed the outcome: all our code on the event path (auth, parse, claim, inspect, decide, record). It is
  split into the time spent in the client's manifest and blob reads (client and registry) and everything else.
- Floor: before each event, one plain GET of that event's index manifest by digest with the pipeline's own
  client (`OciRegistry.http.get`, same pool, same headers): what fetching the manifest alone costs.
- Throughput: `python -m importer serve` in its own process with the SQLite ledger on; N envelopes with
  unique event ids posted from a few concurrent keep-alive connections; events/s = events decided (202 answers, then
  every outcome in the ledger) / wall time until the last outcome,
  and the CPU time the registry, `serve` and the senders used per event. Afterwards every event must have
  exactly one `compliant` outcome in the ledger, or the benchmark fails.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import itertools
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import TracebackType

from bench.common import cpu_seconds, machine
from importer.adapters.ledger.sqlite import SqliteLedger
from importer.adapters.registry.oci import ACCEPT_MANIFESTS, OciRegistry
from importer.app.pipeline import Pipeline
from importer.app.registries import RegistryDirectory
from importer.app.settings import Settings
from importer.core.manifests import MAX_CONFIG_BYTES
from importer.core.outcome import Outcome
from importer.entry.http_api import REGISTRY_EVENTS_PATH, ApiResponse, GuardApi
from importer.entry.serve import LocalHost
from importer.ports.registry import FetchedManifest
from testbed.images import Descriptor, ImageBuilder
from testbed.registry import LocalRegistry, free_port

PLATFORMS = ("linux/amd64", "linux/arm64")
REVISION_ANNOTATION = "org.opencontainers.image.revision"
WEBHOOK_TOKEN = "bench-webhook-token-0123456789"
NOTIFICATION_CONTENT_TYPE = "application/vnd.docker.distribution.events.v1+json"
PUSH_THREADS = 4
TARGET_OVERHEAD_MS = 2.0
TARGET_EVENTS_PER_SECOND = 300.0
SERVE_START_SECONDS = 20.0


class BenchmarkError(RuntimeError):
    """The benchmark could not measure what it claims: a push, an answer or a ledger check went wrong."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """A kind of push traffic: which repository, and how many sets of children the indexes share."""

    name: str
    repository: str
    description: str
    child_sets: int | None  # None: every index has children of its own


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario("new-builds", "bench/new-builds", "every index has its own images and attestations", None),
        Scenario("re-tags", "bench/re-tags", "distinct indexes sharing 10 sets of images and attestations", 10),
    )
}


@dataclass(frozen=True, slots=True)
class PushedIndex:
    """One index in the registry, with what a distribution notification of its push carries."""

    repository: str
    tag: str
    digest: str
    media_type: str
    size: int
    children: tuple[Descriptor, ...]


@dataclass(frozen=True, slots=True)
class RunFigures:
    """What one run of one scenario measured; times in milliseconds."""

    floor_p50_ms: float
    floor_p99_ms: float
    event_p50_ms: float
    event_p99_ms: float
    registry_reads_p50_ms: float
    own_code_p50_ms: float
    round_trip_p50_ms: float
    requests_per_event: float
    events_per_second: float
    registry_cpu_ms_per_event: float
    serve_cpu_ms_per_event: float
    sender_cpu_ms_per_event: float
    load_average: float

    @property
    def overhead_p50_ms(self) -> float:
        return self.event_p50_ms - self.floor_p50_ms

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "overhead_p50_ms": self.overhead_p50_ms}


# -- statistics ------------------------------------------------------------------------------------------


def percentile(samples: Sequence[float], percent: float) -> float:
    """Nearest-rank percentile: the smallest sample with at least `percent` % of the samples at or below it."""
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0 < percent <= 100:
        raise ValueError(f"percentile {percent} is not in (0, 100]")
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


def median_of_runs(runs: Sequence[RunFigures]) -> RunFigures:
    """Each figure's median over the runs (so the result need not be one of the runs)."""
    return RunFigures(**{field.name: statistics.median(getattr(run, field.name) for run in runs)
                         for field in fields(RunFigures)})


# -- setup: images in the registry ---------------------------------------------------------------------


def _children(builder: ImageBuilder, seed: str) -> list[Descriptor]:
    """An image per platform, then an attestation for each, in the order buildx lists them."""
    images = [builder.image(platform_name, seed=seed) for platform_name in PLATFORMS]
    return [*images, *(builder.attestation(image) for image in images)]


def _push_child(client: OciRegistry, builder: ImageBuilder, repository: str, child: Descriptor) -> None:
    document = builder.document(child)
    for blob in (document["config"], *document["layers"]):
        content = builder.blob(blob["digest"])
        client.upload_blob(repository, blob["digest"], [content], size=len(content))
    client.put_manifest(repository, child.digest, builder.blob(child.digest), child.media_type)


def _push_index(client: OciRegistry, builder: ImageBuilder, item: PushedIndex) -> None:
    stored = client.put_manifest(item.repository, item.tag, builder.blob(item.digest), item.media_type)
    if stored != item.digest:
        raise BenchmarkError(f"{item.repository}:{item.tag} was stored as {stored}, not as the built {item.digest}")


def push_scenario(registry: LocalRegistry, builder: ImageBuilder, scenario: Scenario, count: int) -> list[PushedIndex]:
    """Build `count` distinct indexes for `scenario` and push each under its own tag, children first."""
    children_by_set: dict[int, list[Descriptor]] = {}
    pushed: list[PushedIndex] = []
    for number in range(count):
        set_number = number if scenario.child_sets is None else number % scenario.child_sets
        if set_number not in children_by_set:
            children_by_set[set_number] = _children(builder, seed=f"{scenario.name}-{set_number}")
        children = children_by_set[set_number]
        index = builder.index(children, annotations={REVISION_ANNOTATION: f"{scenario.name}-{number}"})
        pushed.append(PushedIndex(
            scenario.repository, f"event-{number:04d}", index.digest, index.media_type, index.size, tuple(children)
        ))
    unique_children = list({child.digest: child for item in pushed for child in item.children}.values())
    with OciRegistry(registry.host) as client, ThreadPoolExecutor(PUSH_THREADS) as pool:
        list(pool.map(lambda child: _push_child(client, builder, scenario.repository, child), unique_children))
        list(pool.map(lambda item: _push_index(client, builder, item), pushed))
    return pushed


def warm_registry(registry: LocalRegistry, pushed: Sequence[PushedIndex]) -> None:
    """Read every index, child manifest and config once, so no run pays for a cold registry or page cache."""
    with OciRegistry(registry.host) as client:

        def read(item: PushedIndex) -> None:
            client.get_manifest(item.repository, item.digest)
            for child in item.children:
                manifest = json.loads(client.get_manifest(item.repository, child.digest).raw)
                client.get_blob(item.repository, manifest["config"]["digest"], max_bytes=MAX_CONFIG_BYTES)

        with ThreadPoolExecutor(PUSH_THREADS) as pool:
            list(pool.map(read, pushed))


# -- events ----------------------------------------------------------------------------------------------


def notification_envelope(item: PushedIndex, registry_host: str, event_id: str) -> bytes:
    """A distribution notification envelope for the push of `item`, shaped like distribution 2.8 sends it."""
    event = {
        "id": event_id,
        "timestamp": "2026-01-01T00:00:00.000000000Z",
        "action": "push",
        "target": {
            "mediaType": item.media_type,
            "size": item.size,
            "digest": item.digest,
            "length": item.size,
            "repository": item.repository,
            "url": f"/v2/{item.repository}/manifests/{item.digest}",
            "tag": item.tag,
            "references": [
                {"mediaType": child.media_type, "size": child.size, "digest": child.digest} for child in item.children
            ],
        },
        "request": {
            "id": str(uuid.uuid4()),
            "addr": "127.0.0.1:40000",
            "host": registry_host,
            "method": "PUT",
            "useragent": "platform-guard-bench",
        },
        "actor": {},
        "source": {"addr": "bench:5000", "instanceID": "platform-guard-bench"},
    }
    return json.dumps({"events": [event]}).encode()


def _post(connection: http.client.HTTPConnection, body: bytes) -> tuple[int, bytes]:
    headers = {"Content-Type": NOTIFICATION_CONTENT_TYPE, "Authorization": f"Bearer {WEBHOOK_TOKEN}"}
    connection.request("POST", REGISTRY_EVENTS_PATH, body=body, headers=headers)
    response = connection.getresponse()
    return response.status, response.read()


def _settings(registry: LocalRegistry, ledger_path: Path) -> Settings:
    return Settings(registries=(registry.host,), ledger_path=ledger_path, webhook_token=WEBHOOK_TOKEN)


# -- latency and floor ---------------------------------------------------------------------------------


class _Stopwatch:
    """Per server thread, when the request arrived and how long registry reads took since; per event, both totals."""

    def __init__(self) -> None:
        self._current = threading.local()
        self.latencies: dict[str, float] = {}
        self.registry_reads: dict[str, float] = {}

    def arrived(self) -> None:
        self._current.arrived_at = time.perf_counter()
        self._current.reading = 0.0

    def read_registry(self, seconds: float) -> None:
        self._current.reading += seconds

    def recorded(self, event_id: str) -> None:
        self.latencies[event_id] = time.perf_counter() - self._current.arrived_at
        self.registry_reads[event_id] = self._current.reading


class _ArrivalTimedApi(GuardApi):
    """GuardApi that notes when a request reaches it."""

    def __init__(self, pipeline: Pipeline, *, webhook_token: str, stopwatch: _Stopwatch) -> None:
        super().__init__(pipeline, webhook_token=webhook_token)
        self._stopwatch = stopwatch

    def dispatch(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> ApiResponse:
        self._stopwatch.arrived()
        return super().dispatch(method, path, query, headers, body)


class _ReadTimedRegistry(OciRegistry):
    """OciRegistry that adds the time each manifest or blob read takes (client and registry) to the stopwatch."""

    def __init__(self, host: str, *, stopwatch: _Stopwatch) -> None:
        super().__init__(host)
        self._stopwatch = stopwatch

    def get_manifest(self, repository: str, reference: str) -> FetchedManifest:
        started = time.perf_counter()
        try:
            return super().get_manifest(repository, reference)
        finally:
            self._stopwatch.read_registry(time.perf_counter() - started)

    def get_blob(self, repository: str, digest: str, *, max_bytes: int) -> bytes:
        started = time.perf_counter()
        try:
            return super().get_blob(repository, digest, max_bytes=max_bytes)
        finally:
            self._stopwatch.read_registry(time.perf_counter() - started)


class _RecordTimedLedger(SqliteLedger):
    """SqliteLedger that notes when an outcome's INSERT has returned (autocommit: it is committed then)."""

    def __init__(self, path: Path, stopwatch: _Stopwatch) -> None:
        super().__init__(path)
        self._stopwatch = stopwatch

    def record(self, outcome: Outcome) -> None:
        super().record(outcome)
        self._stopwatch.recorded(outcome.event_id)


@dataclass(frozen=True, slots=True)
class LatencySamples:
    """One latency run: per event, in milliseconds, and the registry requests the pipeline made per event."""

    floor_ms: list[float]
    event_ms: list[float]
    registry_reads_ms: list[float]
    round_trip_ms: list[float]
    requests_per_event: float


def measure_latency(registry: LocalRegistry, pushed: Sequence[PushedIndex], ledger_path: Path) -> LatencySamples:
    """Floor GET and event, alternately, one at a time, for every pushed index.

    The pipeline is `pipeline_for` but for the timing wrappers around its ledger and registry client.
    """
    stopwatch = _Stopwatch()
    settings = _settings(registry, ledger_path)
    ledger = _RecordTimedLedger(ledger_path, stopwatch)
    pipeline = Pipeline(
        policy=settings.policy,
        ledger=ledger,
        registries=RegistryDirectory(settings, factory=lambda host: _ReadTimedRegistry(host, stopwatch=stopwatch)),
    )
    api = _ArrivalTimedApi(pipeline, webhook_token=WEBHOOK_TOKEN, stopwatch=stopwatch)
    client = pipeline.registries.client(registry.host)
    assert isinstance(client, OciRegistry)
    floor: list[float] = []
    round_trips: list[float] = []
    event_ids: list[str] = []
    event_requests = 0
    try:
        with LocalHost(api, port=0) as host:
            connection = http.client.HTTPConnection("127.0.0.1", host.port, timeout=30)
            for item in pushed:
                url = f"{client.base_url}/v2/{item.repository}/manifests/{item.digest}"
                started = time.perf_counter()
                status, _, body = client.http.get(url, {"Accept": ACCEPT_MANIFESTS})
                floor.append((time.perf_counter() - started) * 1000)
                if status != 200 or "sha256:" + hashlib.sha256(body).hexdigest() != item.digest:
                    raise BenchmarkError(f"plain GET {url} answered {status} or other bytes than {item.digest}")

                event_id = f"latency-{item.repository}-{item.tag}-{uuid.uuid4()}"
                envelope = notification_envelope(item, registry.host, event_id)
                requests_before = client.requests_made
                started = time.perf_counter()
                status, answer = _post(connection, envelope)
                round_trips.append((time.perf_counter() - started) * 1000)
                event_requests += client.requests_made - requests_before
                if status != 200 or b'"compliant"' not in answer:
                    raise BenchmarkError(f"event {event_id} answered {status}: {answer[:300]!r}")
                event_ids.append(event_id)
            connection.close()
    finally:
        client.close()
        ledger.close()
    missing = [event_id for event_id in event_ids if event_id not in stopwatch.latencies]
    if missing:
        raise BenchmarkError(f"{len(missing)} events have no recorded outcome, e.g. {missing[0]}")
    return LatencySamples(
        floor_ms=floor,
        event_ms=[stopwatch.latencies[event_id] * 1000 for event_id in event_ids],
        registry_reads_ms=[stopwatch.registry_reads[event_id] * 1000 for event_id in event_ids],
        round_trip_ms=round_trips,
        requests_per_event=event_requests / len(pushed),
    )


# -- throughput through serve ----------------------------------------------------------------------------




class ServeProcess:
    """`python -m importer serve` in its own process, guarding `registry`, with its SQLite ledger at `ledger_path`."""

    def __init__(self, registry: LocalRegistry, ledger_path: Path, log_path: Path) -> None:
        self.port = free_port()
        self.ledger_path = ledger_path
        self.log_path = log_path
        source_root = str(Path(__file__).resolve().parents[1])
        self._environment = {
            **{name: value for name, value in os.environ.items() if not name.startswith("PLATFORM_GUARD_")},
            "PLATFORM_GUARD_REGISTRIES": registry.host,
            "PLATFORM_GUARD_LEDGER": str(ledger_path),
            "PLATFORM_GUARD_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
            "PYTHONPATH": os.pathsep.join(filter(None, [source_root, os.environ.get("PYTHONPATH")])),
        }
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise BenchmarkError("serve is not running")
        return self._process.pid

    def start(self) -> "ServeProcess":
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "importer", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self._environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + SERVE_START_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BenchmarkError(f"serve exited early: {self.log_path.read_text()[-2000:]}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                connection.request("GET", "/api/health")
                healthy = connection.getresponse().status == 200
                connection.close()
                if healthy:
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BenchmarkError(f"serve on port {self.port} did not answer within {SERVE_START_SECONDS} s")

    def stop(self) -> None:
        """Interrupt it as Ctrl-C would (it closes the ledger), and kill it only if that does not work."""
        if self._process is None:
            return
        self._process.send_signal(signal.SIGINT)
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def __enter__(self) -> "ServeProcess":
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@dataclass(frozen=True, slots=True)
class ThroughputFigures:
    """One throughput run: events per second and CPU milliseconds per event of each process involved."""

    events_per_second: float
    registry_cpu_ms_per_event: float
    serve_cpu_ms_per_event: float
    sender_cpu_ms_per_event: float


def _send_all(port: int, envelopes: Sequence[bytes], connections: int) -> tuple[int, list[str], float]:
    """Post every envelope over `connections` keep-alive connections; (202 answers, other answers, seconds)."""
    next_envelope = itertools.count()
    lock = threading.Lock()
    answered_ok = 0
    failures: list[str] = []
    start = threading.Barrier(connections + 1)

    def sender() -> None:
        nonlocal answered_ok
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        start.wait()
        while (position := next(next_envelope)) < len(envelopes):
            status, answer = _post(connection, envelopes[position])
            with lock:
                if status == 202:  # queued: serve's workers decide it
                    answered_ok += 1
                else:
                    failures.append(f"envelope {position}: {status} {answer[:200]!r}")
        connection.close()

    threads = [threading.Thread(target=sender, name=f"bench-sender-{number}") for number in range(connections)]
    for thread in threads:
        thread.start()
    start.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return answered_ok, failures, time.perf_counter() - started


def _wait_for_outcomes(ledger_path: Path, count: int, *, deadline: float) -> None:
    """Until the ledger holds `count` outcomes (serve's workers decide queued events after the answer)."""
    while time.monotonic() < deadline:
        with sqlite3.connect(ledger_path) as database:
            (recorded,) = database.execute("SELECT COUNT(*) FROM outcomes").fetchone()
        if recorded >= count:
            return
        time.sleep(0.01)
    raise BenchmarkError(f"ledger {ledger_path}: fewer than {count} outcomes before the deadline")


def check_ledger(ledger_path: Path, event_ids: Sequence[str]) -> None:
    """Every event has exactly one outcome, compliant, and the ledger holds nothing else."""
    with sqlite3.connect(ledger_path) as database:
        rows = database.execute("SELECT event_id, result FROM outcomes").fetchall()
    counts = Counter(event_id for event_id, _ in rows)
    expected = set(event_ids)
    missing = sorted(expected - counts.keys())
    repeated = sorted(event_id for event_id, count in counts.items() if count != 1)
    strangers = sorted(counts.keys() - expected)
    not_compliant = [f"{event_id}: {result}" for event_id, result in rows if result != "compliant"]
    if missing or repeated or strangers or not_compliant:
        raise BenchmarkError(
            f"ledger {ledger_path}: {len(missing)} events without an outcome, {len(repeated)} with more than one, "
            f"{len(strangers)} outcomes of unknown events, {len(not_compliant)} not compliant "
            f"(e.g. {(missing + repeated + strangers + not_compliant)[:3]})"
        )


def measure_throughput(
    registry: LocalRegistry, pushed: Sequence[PushedIndex], workdir: Path, connections: int
) -> ThroughputFigures:
    """Events per second through a running `serve` with the SQLite ledger on; checks the ledger afterwards."""
    event_ids = [f"throughput-{item.repository}-{item.tag}-{uuid.uuid4()}" for item in pushed]
    envelopes = [notification_envelope(item, registry.host, event_id) for item, event_id in zip(pushed, event_ids)]
    ledger_path = workdir / "serve.db"
    registry_process = registry.pid
    with ServeProcess(registry, ledger_path, workdir / "serve.log") as serve:
        before = (cpu_seconds(registry_process), cpu_seconds(serve.pid), time.process_time())
        started = time.perf_counter()
        answered_ok, failures, _ = _send_all(serve.port, envelopes, connections)
        _wait_for_outcomes(ledger_path, len(event_ids), deadline=time.monotonic() + 120)
        seconds = time.perf_counter() - started  # until the last outcome is recorded, not the last answer
        after = (cpu_seconds(registry_process), cpu_seconds(serve.pid), time.process_time())
    if failures:
        raise BenchmarkError(f"{len(failures)} of {len(envelopes)} events were not answered 202: {failures[:3]}")
    check_ledger(ledger_path, event_ids)
    registry_cpu, serve_cpu, sender_cpu = ((end - begin) * 1000 / len(pushed) for begin, end in zip(before, after))
    return ThroughputFigures(answered_ok / seconds, registry_cpu, serve_cpu, sender_cpu)


# -- the whole benchmark ---------------------------------------------------------------------------------


def run_once(
    registry: LocalRegistry, pushed: Sequence[PushedIndex], workdir: Path, connections: int
) -> RunFigures:
    """Latency and floor, then throughput, for one scenario, in `workdir` (which must not exist yet)."""
    workdir.mkdir(parents=True)
    load_average = os.getloadavg()[0]
    latency = measure_latency(registry, pushed, workdir / "latency.db")
    throughput = measure_throughput(registry, pushed, workdir, connections)
    return RunFigures(
        floor_p50_ms=percentile(latency.floor_ms, 50),
        floor_p99_ms=percentile(latency.floor_ms, 99),
        event_p50_ms=percentile(latency.event_ms, 50),
        event_p99_ms=percentile(latency.event_ms, 99),
        registry_reads_p50_ms=percentile(latency.registry_reads_ms, 50),
        own_code_p50_ms=percentile([event - reads for event, reads in zip(latency.event_ms, latency.registry_reads_ms)],
                                   50),
        round_trip_p50_ms=percentile(latency.round_trip_ms, 50),
        requests_per_event=latency.requests_per_event,
        events_per_second=throughput.events_per_second,
        registry_cpu_ms_per_event=throughput.registry_cpu_ms_per_event,
        serve_cpu_ms_per_event=throughput.serve_cpu_ms_per_event,
        sender_cpu_ms_per_event=throughput.sender_cpu_ms_per_event,
        load_average=load_average,
    )



def _scenario_report(scenario: Scenario, runs: Sequence[RunFigures]) -> dict[str, object]:
    median = median_of_runs(runs)
    return {
        "repository": scenario.repository,
        "description": scenario.description,
        "per_run": [run.as_dict() for run in runs],
        "median": median.as_dict(),
        "targets": {
            "overhead_p50_ms": {"target": TARGET_OVERHEAD_MS, "met": median.overhead_p50_ms <= TARGET_OVERHEAD_MS},
            "events_per_second": {
                "target": TARGET_EVENTS_PER_SECOND, "met": median.events_per_second >= TARGET_EVENTS_PER_SECOND,
            },
        },
    }


def run_benchmark(
    *, events: int, runs: int, connections: int, scenarios: Sequence[Scenario], progress: Callable[[str], None]
) -> dict[str, object]:
    """Set up once, measure `runs` times, and return every figure plus the medians and the verdicts."""
    workdir = Path(tempfile.mkdtemp(prefix="platform-guard-bench-"))
    figures: dict[str, list[RunFigures]] = {scenario.name: [] for scenario in scenarios}
    try:
        with LocalRegistry(workdir / "registry") as registry:
            builder = ImageBuilder(workdir / "layout")
            pushed: dict[str, list[PushedIndex]] = {}
            for scenario in scenarios:
                started = time.monotonic()
                pushed[scenario.name] = push_scenario(registry, builder, scenario, events)
                warm_registry(registry, pushed[scenario.name])
                progress(f"{scenario.name}: pushed and read {events} indexes in {time.monotonic() - started:.0f} s")
            for run in range(1, runs + 1):
                for scenario in scenarios:
                    result = run_once(registry, pushed[scenario.name], workdir / f"run-{run}-{scenario.name}",
                                      connections)
                    figures[scenario.name].append(result)
                    progress(f"run {run}/{runs} {scenario.name}: {_run_line(result)}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "benchmark": "event_path",
        "date": time.strftime("%Y-%m-%d"),
        "command": " ".join(["python", "-m", "bench.event_path", *sys.argv[1:]]),
        "machine": machine(),
        "events": events,
        "runs": runs,
        "connections": connections,
        "scenarios": {scenario.name: _scenario_report(scenario, figures[scenario.name]) for scenario in scenarios},
    }


def _run_line(run: RunFigures) -> str:
    return (
        f"floor p50 {run.floor_p50_ms:.2f} ms, event p50 {run.event_p50_ms:.2f} ms (p99 {run.event_p99_ms:.2f}), "
        f"overhead {run.overhead_p50_ms:.2f} ms, {run.requests_per_event:.2f} req/event, "
        f"{run.events_per_second:.0f} events/s, load {run.load_average:.1f}"
    )


def format_report(report: Mapping[str, object]) -> str:
    """The report as tables: per scenario the medians of runs, the targets and the runs; then the machine."""
    scenarios = report["scenarios"]
    assert isinstance(scenarios, dict)
    lines = [f"event path: {report['events']} compliant index push events per scenario, "
             f"median of {report['runs']} runs"]
    for name, scenario in scenarios.items():
        median = scenario["median"]
        met = {key: "met" if verdict["met"] else "MISSED" for key, verdict in scenario["targets"].items()}
        lines += [
            "",
            f"{name}: {scenario['description']} ({scenario['repository']})",
            f"  {'':44}{'p50 ms':>9}{'p99 ms':>9}",
            _row("plain GET of the index manifest (floor)", median["floor_p50_ms"], median["floor_p99_ms"]),
            _row("event: arrival to outcome committed", median["event_p50_ms"], median["event_p99_ms"]),
            _row("  in registry reads (client and registry)", median["registry_reads_p50_ms"]),
            _row("  in everything else", median["own_code_p50_ms"]),
            _row("event: HTTP round trip seen by the sender", median["round_trip_p50_ms"]),
            f"  p50 overhead over the floor  {median['overhead_p50_ms']:6.2f} ms "
            f"({median['event_p50_ms'] / median['floor_p50_ms']:.1f}x the floor)   "
            f"target <= {TARGET_OVERHEAD_MS:g} ms: {met['overhead_p50_ms']}",
            f"  registry requests per event  {median['requests_per_event']:6.2f}",
            f"  throughput through serve     {median['events_per_second']:6.0f} events/s "
            f"({report['connections']} connections)   target >= {TARGET_EVENTS_PER_SECOND:g}: "
            f"{met['events_per_second']}",
            f"  CPU per event meanwhile      registry {median['registry_cpu_ms_per_event']:.2f} ms, "
            f"serve {median['serve_cpu_ms_per_event']:.2f} ms, senders {median['sender_cpu_ms_per_event']:.2f} ms",
            "  runs:",
        ]
        lines += [f"    {number}. {_run_line(_figures(run))}" for number, run in enumerate(scenario["per_run"], 1)]
    machine_figures = report["machine"]
    assert isinstance(machine_figures, dict)
    lines += ["", "machine: " + ", ".join(f"{key} {value}" for key, value in machine_figures.items())]
    return "\n".join(lines)


def _row(label: str, *milliseconds: float) -> str:
    return f"  {label:44}" + "".join(f"{value:9.2f}" for value in milliseconds)


def _figures(values: Mapping[str, float]) -> RunFigures:
    return RunFigures(**{field.name: values[field.name] for field in fields(RunFigures)})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.event_path", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1000, help="distinct index push events per run (default 1000)")
    parser.add_argument("--runs", type=int, default=5, help="runs; the median of runs is reported (default 5)")
    parser.add_argument("--connections", type=int, default=4, help="concurrent senders for throughput (default 4)")
    parser.add_argument("--scenario", choices=[*SCENARIOS, "both"], default="both", help="which traffic (default both)")
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON")
    args = parser.parse_args(argv)
    if args.events < 1 or args.runs < 1 or args.connections < 1:
        parser.error("--events, --runs and --connections must be at least 1")
    chosen = list(SCENARIOS.values()) if args.scenario == "both" else [SCENARIOS[args.scenario]]
    try:
        report = run_benchmark(
            events=args.events,
            runs=args.runs,
            connections=args.connections,
            scenarios=chosen,
            progress=lambda message: print(message, file=sys.stderr, flush=True),
        )
    except BenchmarkError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
