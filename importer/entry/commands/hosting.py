"""`serve` and `work`: the local host for registry notifications and the worker processes beside it."""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import sys
import time

from importer.entry.commands.common import (
    EXIT_OK,
    MOST_THREADS,
    MOST_WORKERS,
    Subcommands,
    settings_for,
    whole_number,
)
from importer.entry.composition import pipeline_for
from importer.entry.terminal import TerminalLogFormatter, sanitise


def command_serve(args: argparse.Namespace) -> int:
    from importer.adapters.sinks.log import OUTCOME_LOGGER
    from importer.entry.composition import doorbell_for, queue_for, worker_policy_for
    from importer.entry.serve import QueuedHost

    settings = settings_for(args.policy)
    pipeline = pipeline_for(settings)
    # With worker processes, this process only answers: deciding here would slow every answer (docs/benchmarks.md).
    threads_here = 0 if args.workers else args.threads
    service = QueuedHost(pipeline, queue_for(settings), webhook_token=settings.webhook_token, host=args.host,
                         port=args.port, threads=threads_here, policy=worker_policy_for(settings),
                         doorbell=doorbell_for(settings))
    _outcome_lines_to_stdout(OUTCOME_LOGGER)
    print(f"Platform Guard listening on {service.url}", flush=True)
    # Settings and file names are text from outside the process too.
    print(sanitise(f"  guarded registries: {', '.join(settings.registries) or 'none (set PLATFORM_GUARD_REGISTRIES)'}"))
    print(sanitise(f"  policy: {settings.policy.source}   ledger: {settings.ledger_path}   "
                   f"queue: {settings.queue_path}"))
    if args.workers:
        print(f"  workers: {args.workers} process(es) of {args.threads} thread(s); this one only answers", flush=True)
    else:
        print(f"  workers: {args.threads} thread(s) in this process", flush=True)
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
        _stop_processes(processes)
        pipeline.ledger.close()
    return EXIT_OK

def command_work(args: argparse.Namespace) -> int:
    from importer.adapters.sinks.log import OUTCOME_LOGGER
    from importer.app.worker import WorkerPool
    from importer.entry.composition import doorbell_for, queue_for, worker_policy_for

    settings = settings_for(args.policy)
    pipeline = pipeline_for(settings)
    queue = queue_for(settings)
    pool = WorkerPool(queue, pipeline, threads=args.threads, policy=worker_policy_for(settings),
                      doorbell=doorbell_for(settings))
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
        help="run the local host for registry notifications",
        description="Serve the Functions routes locally: POST /runtime/webhooks/eventgrid?functionName=NAME, "
        "POST /api/registry-events, OPTIONS/POST /api/cloudevents, GET /api/health.",
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
        help="decide queued events (a worker process beside serve)",
        description="Take events from the queue that `serve` fills and decide them, until interrupted.",
    )
    work.add_argument("--threads", type=whole_number(1, MOST_THREADS), default=4, metavar="N",
                      help=f"worker threads, 1 to {MOST_THREADS} (default 4)")
    work.add_argument("--policy", metavar="FILE", help="policy YAML (default: settings, else the embedded default)")
    work.set_defaults(run=command_work)
