"""Sweep: judge (and reconcile) every tag of a whole registry against the policy — the audit, and the safety net
for registry events that were missed (Event Grid gave up, images predate the deployment, the policy changed).

    sweep = Sweep("127.0.0.1:5000", policy=policy, registries=directory)                 # a dry run
    sweep = Sweep(host, policy=pipeline.policy, registries=pipeline.registries, pipeline=pipeline,
                  options=SweepOptions(mode=REMEDIATE, repositories="team/**", parallel=8))
    report = sweep.run()                  # SweepReport: totals by status and repository, the violations
    host, glob, tag = parse_scope("127.0.0.1:5000/team/app:1.0")    # `audit` of one tag: only team/app:1.0 is swept

Modes (`SweepOptions.mode`): `dry-run` (the default, `platform-guard audit`) reads only and says what the event
path would do; `remediate` (`audit --remediate`, the timer with PLATFORM_GUARD_SWEEP_REMEDIATE=true) hands each tag to
the pipeline as a synthetic push event; `record` (the timer otherwise) does the same through a pipeline whose
remediation is paused everywhere, so violations are recorded as `alerted` and nothing changes.

A timer run sweeps every guarded registry within one deadline (`sweep_registries`, importer/app/sweep/resume.py):
what it does not reach is kept in the ledger and swept first by the next run.

Rendering a report and the timer live in the entry layer (importer/entry/audit_report.py,
importer/entry/sweep_timer.py). See docs/design.md, Sweep.
"""

from importer.app.sweep.budget import deadline_after
from importer.app.sweep.handoff import sweep_event_id
from importer.app.sweep.listing import resume_order
from importer.app.sweep.model import (
    DRY_RUN,
    MODES,
    RECORD,
    REMEDIATE,
    STATUSES,
    SweepError,
    SweepItem,
    SweepOptions,
    SweepReport,
    SweepScope,
    parse_scope,
)
from importer.app.sweep.resume import (
    REGISTRY_ORDER,
    RESUME_LIMIT,
    RegistrySweep,
    next_registry_order,
    registry_order,
    sweep_registries,
)
from importer.app.sweep.scan import Sweep, SweepProgress, new_sweep_id
from importer.app.sweep.suggestions import remedy, repository_command, suggested_command

__all__ = [
    "DRY_RUN",
    "MODES",
    "RECORD",
    "REGISTRY_ORDER",
    "REMEDIATE",
    "RESUME_LIMIT",
    "STATUSES",
    "RegistrySweep",
    "Sweep",
    "SweepError",
    "SweepItem",
    "SweepOptions",
    "SweepProgress",
    "SweepReport",
    "SweepScope",
    "deadline_after",
    "new_sweep_id",
    "next_registry_order",
    "parse_scope",
    "registry_order",
    "remedy",
    "repository_command",
    "resume_order",
    "suggested_command",
    "sweep_event_id",
    "sweep_registries",
]
