"""The cold-start benchmark: a fresh Python process importing `function_app` and handling its first event.

    .venv/bin/python -m bench.cold_start [--runs 7] [--json]

Each run starts new processes (nothing warm: no imported module, no connection, no ledger):
- floor: `python -c "import azure.functions"`, what any Python Functions app pays;
- guard: `python -c` that imports `function_app`, builds a queue message holding an ACR `ImagePushed` Event Grid
  event (as Event Grid puts it in the event queue) for a compliant image already pushed to a local registry, calls the
  queue trigger, and checks that a `compliant` outcome was recorded in a fresh SQLite ledger (the first event builds
  settings, ledger, registry client and pays for TCP).
Wall time of each process, median of the runs, and the ratio guard / floor computed per run, then the median of
those ratios (target ≤ 2.0). `--compare-with DIR` also runs the guard from another checkout (an older commit, e.g. a
`git worktree`) in the same runs, so two versions are compared on the same machine state. Then
`python -X importtime -c "import function_app"` once, to name the modules that dominate the import.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from testbed.images import ImageBuilder, multi
from testbed.push import push
from testbed.registry import LocalRegistry

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 2.0

FIRST_EVENT = """
import datetime, json, sys
from azure.functions.queue import QueueMessage
import function_app
event = {
    "id": "cold-start", "topic": sys.argv[1], "subject": "team/app:1", "eventType": "Microsoft.ContainerRegistry.ImagePushed",
    "eventTime": "2026-11-26T00:00:00Z", "dataVersion": "1.0",
    "data": {"id": "cold-start", "timestamp": "2026-11-26T00:00:00Z", "action": "push",
             "target": {"mediaType": sys.argv[3], "size": 1, "digest": sys.argv[2], "length": 1,
                        "repository": "team/app", "tag": "1"},
             "request": {"id": "r", "host": sys.argv[1], "method": "PUT", "useragent": "bench"}}}
function_app.registry_queue(QueueMessage(id="m", body=json.dumps(event).encode(), dequeue_count=1,
                                         insertion_time=datetime.datetime.now(datetime.timezone.utc)))
[outcome] = function_app.runtime.current().pipeline.ledger.outcomes(event_id="cold-start")
assert outcome.result == "compliant", outcome
"""


def _timed(command: list[str], environment: dict[str, str], cwd: Path = ROOT) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=environment, check=True, capture_output=True)
    return time.perf_counter() - started


def _dominant_imports(environment: dict[str, str], top: int = 10) -> list[tuple[str, float]]:
    """The top-level imports of `function_app` and the biggest packages below it, by cumulative milliseconds."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", "import function_app"], cwd=ROOT,
                            env=environment, capture_output=True, text=True, check=True)
    rows: list[tuple[str, float]] = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|")
        if "." not in name.strip():  # packages, not their submodules
            rows.append((name.strip(), int(cumulative) / 1000))
    return sorted(rows, key=lambda row: -row[1])[:top]


def run(runs: int, compare_with: Path | None = None) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="platform-guard-cold-") as folder, \
            LocalRegistry(Path(folder) / "registry") as registry:
        builder = ImageBuilder(Path(folder) / "layout")
        image = multi(builder, ["linux/amd64", "linux/arm64"], attestations=True)
        digest = push(builder, image, registry.host, "team/app", "1")
        base = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_GUARD_")}
        floors: list[float] = []
        guards: list[float] = []
        others: list[float] = []
        first_event = [sys.executable, "-c", FIRST_EVENT, registry.host, digest, image.media_type]
        for run_number in range(runs):
            environment = {**base, "PLATFORM_GUARD_REGISTRIES": registry.host,
                           "PLATFORM_GUARD_LEDGER": str(Path(folder) / f"ledger-{run_number}.db")}
            floors.append(_timed([sys.executable, "-c", "import azure.functions"], environment))
            guards.append(_timed(first_event, environment))
            if compare_with is not None:
                environment["PLATFORM_GUARD_LEDGER"] = str(Path(folder) / f"other-{run_number}.db")
                others.append(_timed(first_event, environment, cwd=compare_with))
        imports = _dominant_imports({**base, "PLATFORM_GUARD_REGISTRIES": registry.host})
    ratio = statistics.median(guard / floor for guard, floor in zip(guards, floors, strict=True))
    report: dict[str, object] = {
        "runs": runs,
        "floor_s": statistics.median(floors),
        "guard_s": statistics.median(guards),
        "ratio": ratio,
        "target_ratio": TARGET_RATIO,
        "met": ratio <= TARGET_RATIO,
        "floor_runs_s": floors,
        "guard_runs_s": guards,
        "dominant_imports_ms": imports,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.platform()},
    }
    if compare_with is not None:
        report["compared_with"] = str(compare_with)
        report["other_runs_s"] = others
        report["other_ratio"] = statistics.median(other / floor for other, floor in zip(others, floors, strict=True))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cold_start", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="processes of each kind (median reported)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--compare-with", type=Path, metavar="DIR", help="another checkout to time in the same runs")
    args = parser.parse_args(argv)
    report = run(args.runs, args.compare_with)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"import azure.functions (floor)           {report['floor_s'] * 1000:7.0f} ms  (median of {args.runs})")
    print(f"import function_app + first event         {report['guard_s'] * 1000:7.0f} ms")
    print(f"ratio (median of per-run ratios)          {report['ratio']:7.2f}   target ≤ {TARGET_RATIO}: "
          f"{'met' if report['met'] else 'NOT met'}")
    if args.compare_with is not None:
        print(f"ratio of {args.compare_with} (same runs)  {report['other_ratio']:7.2f}")
    print("modules that dominate `import function_app` (cumulative ms):")
    for name, ms in report["dominant_imports_ms"]:  # type: ignore[union-attr]
        print(f"  {name:<40} {ms:7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
