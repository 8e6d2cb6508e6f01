"""`serve` and `work`: the local host for registry notifications and the worker processes beside it.

`serve` answers `GET /metrics` (importer.adapters.metrics.prometheus). Its counts live in a private directory it makes
for the run (PROMETHEUS_MULTIPROC_DIR, set before prometheus_client is imported and inherited by the `work` processes
it starts) and removes when it stops, so a scrape adds up every process's counts and a new run starts from zero.
`work` counts into that directory when it finds the variable set, and counts nothing otherwise.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from importer.core.words import counted
from importer.entry.commands.common import (
    EXIT_OK,
    MOST_THREADS,
    MOST_WORKERS,
    Subcommands,
    settings_for,
    whole_number,
    with_examples,
)
from importer.entry.composition import pipeline_for
from importer.entry.terminal import TerminalLogFormatter, sanitise
from importer.ports.metrics import MULTIPROCESS_ENVIRONMENT, Metrics


def command_serve(args: argparse.Namespace) -> int:
    metrics_directory = _private_metrics_directory()
    try:
        return _serve(args, metrics_directory)
    finally:
        shutil.rmtree(metrics_directory, ignore_errors=True)


def _private_metrics_directory() -> Path:
    """A new directory only this user can read, named in the environment before prometheus_client is imported, so
    this process and every `work` process started from it write their counts there (an inherited value is replaced:
    counts from another run must not add up with this one's)."""
    directory = Path(tempfile.mkdtemp(prefix="platform-guard-metrics-"))
    os.environ[MULTIPROCESS_ENVIRONMENT] = str(directory)
    return directory


def _serve(args: argparse.Namespace, metrics_directory: Path) -> int:
    from importer.adapters.metrics.prometheus import PrometheusMetrics, PrometheusScrape
    from importer.adapters.sinks.log import OUTCOME_LOGGER
    from importer.entry.composition import doorbell_for, queue_for, worker_policy_for
    from importer.entry.serve import QueuedHost

    settings = settings_for(args.policy)
    metrics = PrometheusMetrics(guarded_registries=settings.registries)
    pipeline = pipeline_for(settings, metrics=metrics)
    queue = queue_for(settings)
    scrape = PrometheusScrape(queue, multiprocess_directory=metrics_directory)
    # With worker processes, this process only answers: deciding here would slow every answer (docs/benchmarks.md).
    threads_here = 0 if args.workers else args.threads
    service = QueuedHost(pipeline, queue, webhook_token=settings.webhook_token, host=args.host,
                         port=args.port, threads=threads_here, policy=worker_policy_for(settings),
                         doorbell=doorbell_for(settings), metrics=metrics, scrape=scrape.render)
    _outcome_lines_to_stdout(OUTCOME_LOGGER)
    print(f"Platform Guard listening on {service.url}", flush=True)
    # Settings and file names are text from outside the process too.
    print(sanitise(f"  guarded registries: {', '.join(settings.registries) or 'none (set PLATFORM_GUARD_REGISTRIES)'}"))
    print(sanitise(f"  policy: {settings.policy.source}   ledger: {settings.ledger_path}   "
                   f"queue: {settings.queue_path}"))
    if args.workers:
        print(f"  workers: {counted(args.workers, 'process')} of {counted(args.threads, 'thread')}; this one only "
              "answers", flush=True)
    else:
        print(f"  workers: {counted(args.threads, 'thread')} in this process", flush=True)
    print(sanitise(f"  metrics: GET {service.url}/metrics (no token; counts in {metrics_directory}, removed on exit)"),
          flush=True)
    if not settings.webhook_token:
        print("  PLATFORM_GUARD_WEBHOOK_TOKEN is not set: every event route (registry-events, cloudevents, eventgrid) "
              "refuses every request", flush=True)
    processes = [_worker_process(args) for _ in range(args.workers)]
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        service.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        service.stop()
        scrape.close()
        _stop_processes(processes)
        pipeline.ledger.close()
    return EXIT_OK

def command_work(args: argparse.Namespace) -> int:
    from importer.adapters.sinks.log import OUTCOME_LOGGER
    from importer.app.worker import WorkerPool
    from importer.entry.composition import doorbell_for, queue_for, worker_policy_for

    settings = settings_for(args.policy)
    metrics = _worker_metrics(settings.registries)
    pipeline = pipeline_for(settings, metrics=metrics)
    queue = queue_for(settings)
    pool = WorkerPool(queue, pipeline, threads=args.threads, policy=worker_policy_for(settings),
                      doorbell=doorbell_for(settings), metrics=metrics)
    _outcome_lines_to_stdout(OUTCOME_LOGGER)
    signal.signal(signal.SIGTERM, _interrupt)
    pool.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        pool.stop()
        queue.close()
        pipeline.ledger.close()
    return EXIT_OK

def _worker_metrics(guarded_registries: tuple[str, ...]) -> Metrics | None:
    """Counts into serve's directory when serve started this process (or the operator named one), else None: nothing
    counts."""
    if os.path.isdir(os.environ.get(MULTIPROCESS_ENVIRONMENT, "")):
        from importer.adapters.metrics.prometheus import PrometheusMetrics

        return PrometheusMetrics(guarded_registries=guarded_registries)
    return None

def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM (systemd, docker stop) shuts down like Ctrl-C: work in hand is settled

def _outcome_lines_to_stdout(logger_name: str) -> None:
    outcome_log = logging.getLogger(logger_name)  # one JSON line per outcome on stdout
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(TerminalLogFormatter("%(message)s"))  # JSON lines: escaped already, so unchanged
    outcome_log.addHandler(handler)
    outcome_log.setLevel(logging.INFO)
    outcome_log.propagate = False

def _worker_process(args: argparse.Namespace) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "importer", "work", "--threads", str(args.threads)]
    if args.policy:
        command += ["--policy", args.policy]
    return subprocess.Popen(command)

def _stop_processes(processes: list[subprocess.Popen[bytes]], *, timeout: float = 30.0) -> None:
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def register(commands: Subcommands) -> None:
    serve = commands.add_parser(
        "serve",
        **with_examples(
            "# listen on every interface, two worker processes of 8 threads; Prometheus scrapes :7071/metrics",
            "platform-guard serve --host 0.0.0.0 --workers 2 --threads 8",
            "platform-guard serve --workers 0 --port 8080 --policy policy.yaml   # one process: threads decide here",
        ),
        help="run the local host for registry notifications",
        description="Serve the Functions routes locally: POST /runtime/webhooks/eventgrid?functionName=NAME, "
        "POST /api/registry-events, OPTIONS/POST /api/cloudevents, GET /api/health, and GET /metrics "
        "(Prometheus text, or OpenMetrics when asked; no token).",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=whole_number(0, 65535), default=7071,
                       help="port, 0 to 65535; 0: any free port (default 7071, like the Functions host)")
    serve.add_argument("--policy", metavar="FILE", help="policy YAML (default: settings, else the embedded default)")
    serve.add_argument("--threads", type=whole_number(1, MOST_THREADS), default=4, metavar="N",
                       help=f"worker threads per worker process, 1 to {MOST_THREADS} (default 4)")
    serve.add_argument("--workers", type=whole_number(0, MOST_WORKERS), default=1, metavar="N",
                       help=f"worker processes (`work`) to start, 0 to {MOST_WORKERS}; this one then only answers. "
                            "0: the threads decide in this process (default 1)")
    serve.set_defaults(run=command_serve)

    work = commands.add_parser(
        "work",
        **with_examples(
            "# one more worker process beside a running serve (same settings: the same queue and ledger)",
            "platform-guard work --threads 8",
            "platform-guard work --threads 2 --policy policy.yaml",
        ),
        help="decide queued events (a worker process beside serve)",
        description="Take events from the queue that `serve` fills and decide them, until interrupted.",
    )
    work.add_argument("--threads", type=whole_number(1, MOST_THREADS), default=4, metavar="N",
                      help=f"worker threads, 1 to {MOST_THREADS} (default 4)")
    work.add_argument("--policy", metavar="FILE", help="policy YAML (default: settings, else the embedded default)")
    work.set_defaults(run=command_work)
