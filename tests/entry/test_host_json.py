"""host.json's log levels: only categories the Functions host really uses, and the outcome lines let through.

What a Python function logs during an invocation reaches the host as an RpcLog, which the host writes with the
invocation's logger, category `Function.<name>.User`, whatever the Python logger's name (GrpcWorkerChannel.Log in
azure-functions-host; the worker's record.name travels in RpcLog.category but is not used for it). So a level for
`platform_guard.outcome` matches nothing; `Function.<name>.User` (or `Function.<name>`, `Function`) does. The host
picks, per category, the configured entry that is the longest case-insensitive prefix of it, else `default`
(Microsoft.Extensions.Logging's LoggerRuleSelector); `effective_level` does the same here.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

from importer.adapters.sinks.log import LogSink
from importer.core.outcome import Outcome
from importer.entry.queue_trigger import HOST_JSON

ROOT = Path(__file__).resolve().parents[2]
LEVELS = {"Trace": 0, "Debug": 1, "Information": 2, "Warning": 3, "Error": 4, "Critical": 5, "None": 6}
# Python logging level → the RpcLog level the worker sends (azure_functions_worker/dispatcher.py, on_logging).
RPC_LEVEL = {logging.DEBUG: "Debug", logging.INFO: "Information", logging.WARNING: "Warning",
             logging.ERROR: "Error", logging.CRITICAL: "Critical"}
# The functions whose invocations record outcomes, so log their JSON lines (health records none).
OUTCOME_FUNCTIONS = ("registry_queue", "registry_events", "cloudevents", "sweep")

ALL_FUNCTIONS_CHILD = """
import json, function_app
print(json.dumps(sorted(f.get_function_name() for f in function_app.app.get_functions())))
"""


def log_levels() -> dict[str, str]:
    return dict(json.loads(HOST_JSON.read_text())["logging"]["logLevel"])


def all_functions() -> list[str]:
    """Every function the app can declare: imported with the sweep's schedule set, so `sweep` is there too."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_GUARD_")}
    environment["PLATFORM_GUARD_SWEEP_SCHEDULE"] = "0 0 3 * * *"
    result = subprocess.run([sys.executable, "-c", ALL_FUNCTIONS_CHILD], cwd=ROOT, env=environment,
                            capture_output=True, text=True, timeout=60, check=True)
    return list(json.loads(result.stdout))


def effective_level(levels: dict[str, str], category: str) -> str:
    """The level the host applies to `category`: the longest configured prefix (one `*` allowed), else default."""
    best: str | None = None
    for name in levels:
        if name.lower() == "default":
            continue
        prefix, _, suffix = name.partition("*")
        if category.lower().startswith(prefix.lower()) and category.lower().endswith(suffix.lower()):
            if best is None or len(name) >= len(best):
                best = name
    return levels[best] if best is not None else levels.get("default", "Information")


def test_effective_level_follows_the_hosts_rule() -> None:
    """Longest prefix wins, case-insensitively; nothing matching: default."""
    levels = {"default": "Warning", "Function": "Error", "Function.a.User": "Information", "Host.*": "Critical"}
    assert effective_level(levels, "Function.a.User") == "Information"
    assert effective_level(levels, "function.A.user") == "Information"
    assert effective_level(levels, "Function.b.User") == "Error"
    assert effective_level(levels, "Host.Results") == "Critical"
    assert effective_level(levels, "platform_guard.outcome") == "Warning"


def test_log_levels_name_only_categories_the_host_uses() -> None:
    """Every entry is `default`, `Host`/`Host.*`, `Function`, or `Function.<name>[.User]` of one of our functions,
    with a level the host knows: no entry names a Python logger, which the host never sees as a category."""
    functions = set(all_functions())
    assert set(OUTCOME_FUNCTIONS) <= functions
    unknown = []
    for name, level in log_levels().items():
        assert level in LEVELS, f"{name}: {level!r} is not a log level"
        found = re.fullmatch(r"Function\.([A-Za-z0-9_]+)(\.User)?", name)
        if name in ("default", "Function", "Host") or name.startswith("Host."):
            continue
        if found is None or found.group(1) not in functions:
            unknown.append(name)
    assert unknown == [], f"categories the host never logs under: {unknown}"


def test_outcome_lines_pass_for_every_function_that_records_outcomes() -> None:
    """The JSON line LogSink writes for an outcome — INFO, or ERROR when it alerts — passes host.json's filter in
    every function that records outcomes, under the category the host gives it."""
    levels = log_levels()
    emitted: list[int] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            emitted.append(record.levelno)

    logger = logging.getLogger("test_host_json.outcome")
    logger.addHandler(Capture())
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    sink = LogSink(logger)
    sink.emit(Outcome(event_id="e1", received_at="2026-12-06T00:00:00Z", result="compliant", repository="a/b"))
    sink.emit(Outcome(event_id="e2", received_at="2026-12-06T00:00:00Z", result="quarantined", repository="a/b"))
    assert sorted(emitted) == [logging.INFO, logging.ERROR]
    for function in OUTCOME_FUNCTIONS:
        threshold = LEVELS[effective_level(levels, f"Function.{function}.User")]
        assert all(LEVELS[RPC_LEVEL[level]] >= threshold for level in emitted), function
