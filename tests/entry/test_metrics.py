"""`GET /metrics` on `serve`: the real command against a real registry, scraped like Prometheus does.

Right and wrong images are pushed; the counts a scrape shows must equal what the ledger recorded (outcomes by result,
the latency histogram, attempts, retries, dead letters, the queue's depth), a registry that is down is counted by
class, the format follows the scraper's Accept header, and every PromQL expression of the example Grafana dashboard
names metrics the scrape has. Each runs with the threads deciding in serve's process (`--workers 0`) and with two
`work` processes (their counts reach serve's /metrics through prometheus_client's multiprocess directory).
"""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families as prometheus_families

from importer.adapters.ledger.sqlite import SqliteLedger
from importer.adapters.metrics.prometheus import QUEUE_STATES, MetricNames, PrometheusMetrics, PrometheusScrape
from importer.app.settings import Settings
from importer.core.outcome import FINAL_RESULTS, Outcome
from importer.entry.composition import pipeline_for, queue_for
from importer.entry.serve import QueuedHost
from importer.ports.metrics import REGISTRY_ERROR_CLASSES, UNREACHABLE
from testbed.images import ImageBuilder, single
from testbed.push import push
from testbed.registry import LocalRegistry, free_port

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "examples" / "grafana" / "platform-guard-dashboard.json"
TOKEN = "metrics-test-token-0123456789"
# fix/** must be re-imported from an upstream that nothing listens on: retried, then failed and dead-lettered.
POLICY = """
version: 1
defaults:
  require: [linux/amd64]
rules:
  - repositories: ["fix/**"]
    require: [linux/amd64, linux/arm64]
    on_violation: reimport
    upstream: "{upstream}/mirror/{{repository}}"
"""
ATTEMPTS = 2  # PLATFORM_GUARD_EVENT_RETRY below: two tries, so one retry and one dead letter

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _wait(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.1)


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read().decode()
    except OSError:
        return 0, "", ""


def _samples(text: str, *, openmetrics: bool = False) -> Samples:
    families = openmetrics_families(text) if openmetrics else prometheus_families(text)
    return {(s.name, frozenset(s.labels.items())): s.value for family in families for s in family.samples}


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _values(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: value for (sample, labels), value in samples.items() if sample == name}


@dataclass
class Served:
    url: str
    registry: str
    ledger: SqliteLedger
    metrics_directory: Path

    def scrape(self, accept: str | None = None) -> tuple[int, str, str]:
        return _get(f"{self.url}/metrics", {"Accept": accept} if accept else {})

    def samples(self) -> Samples:
        status, _, body = self.scrape()
        assert status == 200, body
        return _samples(body)

    def finals(self) -> list[Outcome]:
        return [o for o in self.ledger.outcomes(limit=100_000) if o.final]

    def retrying(self) -> list[Outcome]:
        return [o for o in self.ledger.outcomes(limit=100_000) if o.result == "retrying"]


@pytest.fixture(scope="module", params=[
    pytest.param(0, id="threads-in-serve"),
    pytest.param(2, id="two-work-processes"),
])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """serve (the real command) over a real registry that notifies it; a compliant push, one quarantined, one whose
    re-import upstream is down; yielded once the queue is empty and the scrape's outcome total equals the ledger's."""
    workers = request.param
    root = tmp_path_factory.mktemp(f"metrics-{workers}")
    port = free_port()
    registry = LocalRegistry(root / "guarded", token=TOKEN, notify_url=f"http://127.0.0.1:{port}/api/registry-events")
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PLATFORM_GUARD_", "PROMETHEUS_"))},
        "PLATFORM_GUARD_REGISTRIES": registry.host,
        "PLATFORM_GUARD_WEBHOOK_TOKEN": TOKEN,
        "PLATFORM_GUARD_LEDGER": str(root / "ledger.db"),
        "PLATFORM_GUARD_POLICY": POLICY.format(upstream=f"127.0.0.1:{free_port()}"),
        "PLATFORM_GUARD_EVENT_RETRY": f"{ATTEMPTS}/0.2",
    }
    stdout = (root / "serve.out").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "importer", "serve", "--port", str(port), "--threads", "2", "--workers", str(workers)],
        cwd=ROOT, env=environment, stdout=stdout, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    directory: str | None = None
    try:
        _wait(lambda: _get(f"{url}/api/health")[0] == 200, "serve answering /api/health")
        [directory] = re.findall(r"counts in (\S+),", (root / "serve.out").read_text())
        with registry:
            ledger = SqliteLedger(root / "ledger.db")
            stack = Served(url, registry.host, ledger, Path(directory))
            try:
                builder = ImageBuilder(root / "layout")
                push(builder, builder.image("linux/amd64", seed="right"), registry.host, "team/right", "1")
                push(builder, single(builder, "linux/arm64", seed="wrong"), registry.host, "team/wrong", "1")
                push(builder, single(builder, "linux/arm64", seed="laptop"), registry.host, "fix/app", "1")
                for repository in ("team/right", "team/wrong", "fix/app"):
                    _wait(lambda r=repository: any(o.repository == r and o.tag == "1" for o in stack.finals()),
                          repository)
                _wait(lambda: _settled(stack), "the queue empty and the scrape's outcomes equal to the ledger's")
                yield stack
            finally:
                ledger.close()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            assert server.wait(timeout=40) == 0, server.stderr.read().decode() if server.stderr else ""
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
            stdout.close()
    # serve removes the directory its processes counted in when it stops.
    assert directory is not None and not Path(directory).exists()


def _settled(stack: Served) -> bool:
    samples = stack.samples()
    waiting = sum(_value(samples, MetricNames.QUEUE_MESSAGES, state=state) for state in ("ready", "delayed", "leased"))
    total = sum(_values(samples, MetricNames.OUTCOMES).values())
    return waiting == 0 and total == len(stack.finals())


def test_outcomes_by_result_equal_the_ledger(served: Served) -> None:
    samples = served.samples()
    recorded = collections.Counter(o.result for o in served.finals())
    assert {"compliant", "quarantined", "failed"} <= set(recorded), recorded  # the pushes did what the test needs
    scraped = {dict(labels)["result"]: value for labels, value in _values(samples, MetricNames.OUTCOMES).items()}
    assert scraped == {result: float(recorded[result]) for result in FINAL_RESULTS}


def test_latency_histogram_counts_each_final_outcome_once(served: Served) -> None:
    samples = served.samples()
    recorded = collections.Counter(o.result for o in served.finals())
    for result in FINAL_RESULTS:
        count = _value(samples, f"{MetricNames.LATENCY}_count", result=result)
        assert count == recorded[result], result
        assert _value(samples, f"{MetricNames.LATENCY}_bucket", result=result, le="+Inf") == count
        buckets = sorted((float(dict(labels)["le"]), value)
                         for labels, value in _values(samples, f"{MetricNames.LATENCY}_bucket").items()
                         if dict(labels)["result"] == result)
        assert [value for _, value in buckets] == sorted(value for _, value in buckets), result  # cumulative
    # The failed push waited out a retry (0.2 s at least): its latency runs from receipt, not from its last try.
    assert _value(samples, f"{MetricNames.LATENCY}_sum", result="failed") >= 0.2
    assert _value(samples, f"{MetricNames.LATENCY}_bucket", result="failed", le="0.1") == 0


def test_attempts_retries_dead_letters_and_queue_depth_equal_the_ledger_and_queue(served: Served) -> None:
    samples = served.samples()
    finals = served.finals()
    assert _value(samples, f"{MetricNames.ATTEMPTS}_count") == len(finals)
    assert _value(samples, f"{MetricNames.ATTEMPTS}_sum") == sum(o.attempt or 1 for o in finals)
    assert [o.attempt for o in finals if o.result == "failed"] == [ATTEMPTS]
    assert _value(samples, MetricNames.RETRIES) == len(served.retrying()) == ATTEMPTS - 1
    assert _value(samples, MetricNames.DEAD_LETTERS) == 1
    assert {dict(labels)["state"]: value for labels, value in _values(samples, MetricNames.QUEUE_MESSAGES).items()} \
        == {"ready": 0, "delayed": 0, "leased": 0, "dead": 1}
    assert _value(samples, MetricNames.QUEUE_UP) == 1


def test_registry_requests_and_errors_by_class_with_bounded_labels(served: Served) -> None:
    samples = served.samples()
    requests = _values(samples, MetricNames.REGISTRY_REQUESTS)
    errors = _values(samples, MetricNames.REGISTRY_ERRORS)
    assert sum(v for labels, v in requests.items() if dict(labels)["registry"] == served.registry) > 0
    # Every try of the re-import reached for the upstream nothing listens on: not a guarded registry, so `other`.
    unreachable = sum(v for labels, v in errors.items() if dict(labels)["class"] == UNREACHABLE
                      and dict(labels)["registry"] == "other")
    assert unreachable >= ATTEMPTS
    assert {dict(labels)["registry"] for labels in [*requests, *errors]} <= {served.registry, "other"}
    assert {dict(labels)["class"] for labels in errors} <= set(REGISTRY_ERROR_CLASSES)
    assert sum(errors.values()) <= sum(requests.values())


@pytest.mark.parametrize(("accept", "content_type", "openmetrics"), [
    pytest.param(None, "text/plain; version=0.0.4", False, id="no-accept-header"),
    pytest.param("text/plain", "text/plain; version=0.0.4", False, id="text-plain"),
    pytest.param("application/openmetrics-text", "application/openmetrics-text", True, id="openmetrics"),
    pytest.param("application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                 "application/openmetrics-text; version=1.0.0", True, id="prometheus-scraper-accept"),
])
def test_the_format_follows_the_accept_header(served: Served, accept: str | None, content_type: str,
                                              openmetrics: bool) -> None:
    status, served_type, body = served.scrape(accept)
    assert status == 200 and served_type.startswith(content_type), served_type
    assert body.endswith("# EOF\n") == openmetrics
    samples = _samples(body, openmetrics=openmetrics)
    assert sum(_values(samples, MetricNames.OUTCOMES).values()) == len(served.finals())


@pytest.mark.parametrize(("method", "headers", "status"), [
    pytest.param("GET", {}, 200, id="get-without-token"),
    pytest.param("GET", {"Authorization": "Bearer wrong-token-0123456789abcdef"}, 200, id="get-with-a-wrong-token"),
    pytest.param("POST", {"Authorization": f"Bearer {TOKEN}"}, 405, id="post-refused"),
    pytest.param("DELETE", {}, 405, id="delete-refused"),
])
def test_the_metrics_route_is_open_and_read_only(served: Served, method: str, headers: dict[str, str],
                                                 status: int) -> None:
    request = urllib.request.Request(f"{served.url}/metrics", method=method, headers=headers, data=None)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            answered, allow = response.status, response.headers.get("Allow")
    except urllib.error.HTTPError as error:
        answered, allow = error.code, error.headers.get("Allow")
    assert answered == status
    assert (allow == "GET") == (status == 405)


def _expressions(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from _expressions(value)
    elif isinstance(node, list):
        for item in node:
            yield from _expressions(item)


def test_the_dashboard_queries_exactly_the_exported_metrics(served: Served) -> None:
    """Every metric a panel queries is in the scrape, and every exported metric has a panel."""
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = list(_expressions(dashboard["panels"]))
    assert expressions
    referenced = {name for expr in expressions for name in re.findall(r"\bplatform_guard_[a-z0-9_]+", expr)}
    assert all(re.search(r"\bplatform_guard_", expr) for expr in expressions)
    scraped = {name for name, _ in served.samples()}
    assert referenced - scraped == set()
    exported = {getattr(MetricNames, name) for name in vars(MetricNames) if name.isupper()}
    assert {name for name in exported if not any(ref.startswith(name) for ref in referenced)} == set()


@pytest.mark.parametrize(("with_scrape", "status"), [
    pytest.param(True, 200, id="local-host-with-metrics"),
    pytest.param(False, 404, id="without-metrics-like-the-functions-app"),
])
def test_the_route_exists_only_where_a_scrape_is_given(tmp_path: Path, with_scrape: bool, status: int) -> None:
    """In one process (a QueuedHost in a program), the metrics come from the process's own registry."""
    settings = Settings(registries=("127.0.0.1:5000",), ledger_path=tmp_path / "ledger.db", webhook_token=TOKEN)
    metrics = PrometheusMetrics(guarded_registries=settings.registries)
    pipeline = pipeline_for(settings, metrics=metrics)
    queue = queue_for(settings)
    scrape = PrometheusScrape(queue, local=metrics.registry)
    with QueuedHost(pipeline, queue, webhook_token=TOKEN, port=0, threads=1, metrics=metrics,
                    scrape=scrape.render if with_scrape else None) as service:
        answered, _, body = _get(f"{service.url}/metrics")
    scrape.close()
    pipeline.ledger.close()
    assert answered == status
    if with_scrape:
        samples = _samples(body)
        assert set(QUEUE_STATES) == {dict(labels)["state"] for labels in _values(samples, MetricNames.QUEUE_MESSAGES)}
        assert _value(samples, MetricNames.OUTCOMES, result="compliant") == 0
