"""Sweeping several registries within one budget, run after run, each run picking up where the last one stopped.

    deadline = deadline_after(210.0)                      # once per run: listing, tags, every registry
    runs = sweep_registries(settings.registries, pipeline=pipeline, options=options, deadline=deadline)
    [(run.host, run.report.not_reached) for run in runs if run.report]   # where each registry's next sweep starts

Per registry the ledger keeps the repositories its last sweep did not reach (`SweepReport.not_reached`, at most
RESUME_LIMIT of them): the next sweep starts with them and then continues in name order after the last of them
(listing.resume_order), so a registry too large for one run is covered over several. Under REGISTRY_ORDER the ledger
keeps the order of the registries for the next run: it starts after the registry where this run's time ran out, so
one registry cannot take every run's budget from the others. A registry swept whole saves an empty resume point.
See docs/design.md, Sweep.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from importer.app.pipeline import Pipeline
from importer.app.sweep.budget import passed
from importer.app.sweep.model import SweepError, SweepOptions, SweepReport
from importer.app.sweep.scan import Sweep
from importer.ports.ledger import Ledger

log = logging.getLogger("platform_guard.sweep")

RESUME_LIMIT = 100  # repositories kept per registry: enough to go on from, and small (26 KB at 255 characters each)
REGISTRY_ORDER = "*"  # the ledger name under which the order of the registries is kept (no registry host is `*`)


@dataclass(frozen=True, slots=True)
class RegistrySweep:
    """One registry's part of a run: its report, or why it could not be swept."""

    host: str
    sweep_id: str
    report: SweepReport | None = None
    error: str | None = None  # the sweep could not run, or its resume point could not be kept
    late: bool = False  # the deadline had passed before its turn: nothing of it was listed


def registry_order(configured: Sequence[str], saved: Sequence[str]) -> list[str]:
    """The configured registries, those of `saved` first and in its order, the others after in configured order."""
    first = [host for host in dict.fromkeys(saved) if host in configured]
    return first + [host for host in configured if host not in first]


def next_registry_order(runs: Sequence[RegistrySweep]) -> list[str]:
    """Where the next run starts: at the first registry this run gave no time to, else right after the one where the
    time ran out; [] (the configured order) when every registry was swept whole."""
    hosts = [run.host for run in runs]
    for index, run in enumerate(runs):
        if run.late:
            return hosts[index:] + hosts[:index]
        if run.report is not None and run.report.out_of_time:
            return hosts[index + 1 :] + hosts[: index + 1]
    return []


def sweep_registries(
    hosts: Sequence[str],
    *,
    pipeline: Pipeline,
    options: SweepOptions,
    deadline: float | None,
    wall_clock: Callable[[], float] = time.time,
) -> list[RegistrySweep]:
    """Sweep every registry of `hosts` until `deadline`, in the saved order, each from its saved resume point; keep
    the new resume points and order in the pipeline's ledger. Never raises for one registry: see each run's error."""
    ledger = pipeline.ledger
    runs: list[RegistrySweep] = []
    for host in registry_order(hosts, _saved(ledger, REGISTRY_ORDER)):
        late = passed(deadline)
        sweep = Sweep(host, policy=pipeline.policy, registries=pipeline.registries, pipeline=pipeline,
                      options=options)
        try:
            report = sweep.run(deadline=deadline, resume=_saved(ledger, host))
        except SweepError as error:
            runs.append(RegistrySweep(host, sweep.sweep_id, error=str(error), late=late))
            continue
        kept = _keep(ledger, host, list(report.not_reached[:RESUME_LIMIT]), wall_clock())
        runs.append(RegistrySweep(host, sweep.sweep_id, report, kept, late))
    _keep(ledger, REGISTRY_ORDER, next_registry_order(runs), wall_clock())
    return runs


def _saved(ledger: Ledger, name: str) -> list[str]:
    """What the ledger keeps under `name`; nothing when it cannot be read (the run then starts from the beginning)."""
    try:
        return ledger.sweep_resume(name)
    except Exception as error:  # a ledger outage must not stop the sweep itself
        log.warning("sweep resume point %r could not be read, starting from the beginning: %s", name, error,
                    exc_info=True)
        return []


def _keep(ledger: Ledger, name: str, names: list[str], now: float) -> str | None:
    """Save `names` under `name`; why not, when that failed."""
    try:
        ledger.save_sweep_resume(name, names, now=now)
    except Exception as error:  # reported with the run (it fails the invocation), the other registries go on
        log.exception("sweep resume point %r could not be saved", name)
        return f"resume point of {name} not saved: {error}"
    return None
