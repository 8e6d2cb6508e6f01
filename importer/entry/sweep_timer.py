"""The sweep timer (function_app.py's `sweep` function): every guarded registry swept as the settings say.

    if sweep_timer_configured(os.environ):            # PLATFORM_GUARD_SWEEP_SCHEDULE holds a schedule
        run_scheduled_sweep(runtime.current(), past_due=timer.past_due)

PLATFORM_GUARD_SWEEP_REMEDIATE=true remediates like the event path (mode `remediate`); otherwise the sweep runs in
mode `record` through `record_only(pipeline)`: violations are recorded as `alerted`, nothing is changed. Each sweep
stops starting tags after TIMER_BUDGET_SECONDS and logs one summary line. See docs/design.md, Sweep.

Cheap to import (function_app.py does at cold start): the sweep package is loaded on the first run.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from importer.app.pipeline import Pipeline
from importer.app.settings import sweep_timer_configured

if TYPE_CHECKING:
    from importer.app.sweep import SweepReport
    from importer.entry.runtime import Runtime

log = logging.getLogger("platform_guard.sweep")

# The Functions host stops an invocation at host.json's functionTimeout (5 minutes): stop starting tags before.
TIMER_BUDGET_SECONDS = 240.0


def record_only(pipeline: Pipeline) -> Pipeline:
    """A pipeline sharing `pipeline`'s policy, ledger, clients and sinks whose remediation is paused everywhere:
    violations are recorded as `alerted` and nothing is changed (the timer without remediation)."""
    return Pipeline(policy=pipeline.policy, ledger=pipeline.ledger, registries=pipeline.registries,
                    sinks=pipeline.sinks, paused_repositories=("**",))


def run_scheduled_sweep(runtime: Runtime, *, past_due: bool = False) -> list[SweepReport]:
    """Sweep every guarded registry as the settings say (the timer trigger); SweepError after all of them if any
    registry could not be swept, so the invocation shows as failed."""
    from importer.app.sweep import RECORD, REMEDIATE, Sweep, SweepError, SweepOptions  # only a sweep pays for it

    settings = runtime.settings
    mode = REMEDIATE if settings.sweep_remediate else RECORD
    pipeline = runtime.pipeline if mode == REMEDIATE else record_only(runtime.pipeline)
    options = SweepOptions(mode=mode, parallel=settings.sweep_parallel, budget_seconds=TIMER_BUDGET_SECONDS)
    if past_due:
        log.warning("sweep timer is past due: running now")
    reports: list[SweepReport] = []
    problems: list[str] = []
    for host in settings.registries:
        sweep = Sweep(host, policy=pipeline.policy, registries=pipeline.registries, pipeline=pipeline,
                      options=options)
        try:
            report = sweep.run()
        except SweepError as error:
            log.error("sweep %s of %s failed: %s", sweep.sweep_id, host, error)
            problems.append(str(error))
            continue
        summary = {key: value for key, value in report.as_dict().items() if key not in ("violations", "failures",
                                                                                          "by_repository")}
        level = logging.WARNING if report.pending or not report.complete else logging.INFO
        log.log(level, "sweep finished: %s", json.dumps(summary, separators=(",", ":")))
        reports.append(report)
    if problems:
        raise SweepError("; ".join(problems))
    return reports


__all__ = ["TIMER_BUDGET_SECONDS", "record_only", "run_scheduled_sweep", "sweep_timer_configured"]
