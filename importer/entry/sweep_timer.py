"""The sweep timer (function_app.py's `sweep` function): every guarded registry swept as the settings say.

    if settings.sweep_schedule is not None:            # PLATFORM_GUARD_SWEEP_SCHEDULE holds a schedule
        run_scheduled_sweep(runtime.current(), past_due=timer.past_due)

PLATFORM_GUARD_SWEEP_REMEDIATE=true remediates like the event path (mode `remediate`); otherwise the sweep runs in
mode `record` through `record_only(pipeline)`: violations are recorded as `alerted`, nothing is changed. A run has one
budget, TIMER_BUDGET_SECONDS from its start, for all its registries, listing included: past it nothing new starts and
what is under way finishes. What it did not reach is logged, kept in the ledger and swept first by the next run, which
also starts after the registry where this one ran out of time (importer/app/sweep/resume.py). One summary line per
registry, one for the run. See docs/design.md, Sweep.

Cheap to import (function_app.py does at cold start): the sweep package is loaded on the first run.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING

from importer.app.pipeline import Pipeline
from importer.core.words import counted

if TYPE_CHECKING:
    from importer.app.sweep import RegistrySweep, SweepReport
    from importer.entry.runtime import Runtime

log = logging.getLogger("platform_guard.sweep")

# The Functions host stops an invocation at host.json's functionTimeout (300 s). A run starts nothing new after
# TIMER_BUDGET_SECONDS, counted once from its start for all its registries, listing included. Then at most `parallel`
# tags are still in flight (no remediation starts late either) and the resume points are written, within
# TIMER_MARGIN_SECONDS: a tag takes seconds, and a registry request that keeps failing gives up after 4 attempts of at
# most 10 s each. The 30 s left under functionTimeout are the host's: cold start, settings, before the run starts.
TIMER_BUDGET_SECONDS = 210.0
TIMER_MARGIN_SECONDS = 60.0


def record_only(pipeline: Pipeline) -> Pipeline:
    """A pipeline sharing `pipeline`'s policy, ledger, clients and sinks whose remediation is paused everywhere:
    violations are recorded as `alerted` and nothing is changed (the timer without remediation)."""
    return pipeline.with_remediation_paused()


def run_scheduled_sweep(runtime: Runtime, *, past_due: bool = False,
                        budget_seconds: float = TIMER_BUDGET_SECONDS) -> list[SweepReport]:
    """Sweep every guarded registry as the settings say (the timer trigger) within one budget of `budget_seconds`
    from now; SweepError after all of them if any registry could not be swept (or its resume point not kept), so the
    invocation shows as failed."""
    from importer.app.sweep import RECORD, REMEDIATE, SweepError, SweepOptions, deadline_after, sweep_registries

    deadline = deadline_after(budget_seconds)  # the one deadline of this run: every registry, listing included
    started = time.monotonic()
    settings = runtime.settings
    mode = REMEDIATE if settings.sweep_remediate else RECORD
    pipeline = runtime.pipeline if mode == REMEDIATE else record_only(runtime.pipeline)
    options = SweepOptions(mode=mode, parallel=settings.sweep_parallel)
    if past_due:
        log.warning("sweep timer is past due: running now")
    runs = sweep_registries(settings.registries, pipeline=pipeline, options=options, deadline=deadline)
    for run in runs:
        _log_registry(run)
    _log_run(runs, time.monotonic() - started, budget_seconds)
    problems = [run.error for run in runs if run.error]
    if problems:
        raise SweepError("; ".join(problems))
    return [run.report for run in runs if run.report is not None]


def _log_registry(run: RegistrySweep) -> None:
    """One line per registry: the report's totals, and what it did not reach."""
    report = run.report
    if report is None:
        log.error("sweep %s of %s failed: %s", run.sweep_id, run.host, run.error)
        return
    summary = {key: value for key, value in report.as_dict().items()
               if key not in ("violations", "failures", "by_repository", "not_reached")}
    summary["not_reached"] = len(report.not_reached)
    level = logging.WARNING if report.pending or not report.complete else logging.INFO
    log.log(level, "sweep finished: %s", json.dumps(summary, separators=(",", ":")))
    if report.out_of_time:
        log.warning("sweep %s of %s ran out of time: %s", run.sweep_id, run.host, _left_over(report))


def _left_over(report: SweepReport) -> str:
    """What a sweep that ran out of time did not reach, and where the next one starts."""
    parts = [] if report.catalog_complete else ["the repositories were not all listed"]
    if report.not_reached:
        shown = ", ".join(report.not_reached[:5]) + (" …" if len(report.not_reached) > 5 else "")
        parts.append(f"{counted(len(report.not_reached), 'repository')} not reached ({report.repositories_not_listed} "
                     f"not listed, {counted(report.not_swept, 'tag')} listed but not judged); the next run starts with "
                     f"{shown}")
    return "; ".join(parts)


def _log_run(runs: list[RegistrySweep], seconds: float, budget_seconds: float) -> None:
    """One line for the run: its time against the budget, and what it left for the next run, in counts."""
    from importer.app.sweep import next_registry_order

    reports = [run.report for run in runs if run.report is not None]
    summary = {
        "registries": len(runs),
        "seconds": round(seconds, 3),
        "budget_seconds": budget_seconds,
        "registries_not_listed": [run.host for run in runs if run.late],
        "registries_out_of_time": [report.registry for report in reports if report.out_of_time],
        "repositories_not_reached": sum(len(report.not_reached) for report in reports),
        "repositories_not_listed": sum(report.repositories_not_listed for report in reports),
        "tags_not_judged": sum(report.not_swept for report in reports),
        "next_order": next_registry_order(runs),
    }
    level = logging.WARNING if summary["registries_out_of_time"] else logging.INFO
    log.log(level, "sweep run finished: %s", json.dumps(summary, separators=(",", ":")))


__all__ = ["TIMER_BUDGET_SECONDS", "TIMER_MARGIN_SECONDS", "record_only", "run_scheduled_sweep"]
