"""`audit [REGISTRY[/GLOB] | REGISTRY/REPOSITORY:TAG]`: every tag of a registry (or one tag) against the policy, a dry
run unless --remediate.

--remediate changes a registry only when it is guarded (PLATFORM_GUARD_REGISTRIES) or named on the command line: the
scope is the consent, so the per-tag commands a report prints (`platform-guard audit REG/REPO:TAG --remediate`) run
as printed, and a registry nobody named is never changed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

from importer.app.settings import Settings
from importer.core.program import PROGRAM
from importer.core.words import counted
from importer.entry.commands.common import (
    EXIT_OK,
    EXIT_REGISTRY,
    EXIT_VIOLATION,
    MOST_PAGE_SIZE,
    MOST_THREADS,
    Subcommands,
    UsageError,
    add_wide_flag,
    settings_for,
    whole_number,
    with_examples,
)
from importer.entry.composition import existing_ledger_for, pipeline_for, registry_directory_for
from importer.entry.formats import REPORT_EXTENSIONS, add_output_flags, describe_error, output_format, report_format
from importer.entry.terminal import sanitise

if TYPE_CHECKING:
    from pathlib import Path

    from importer.app.sweep import SweepReport
    from importer.entry.formats.cases import Run

def command_audit(args: argparse.Namespace) -> int:
    """The sweep, with its output in the format asked for; with machine output, errors (usage errors too) are
    documents."""
    from pathlib import Path

    from importer.entry.formats.cases import Run
    from importer.entry.formats.emit import emit_error

    output = output_format(args.output, args.json)
    run = Run("audit", f"{PROGRAM} audit {args.scope or ''}".strip())
    try:
        report = (Path(args.report), report_format(args.report, REPORT_EXTENSIONS)) if args.report else None
        return _audit(args, output, run, report)
    except UsageError as error:
        return emit_error(describe_error(error, reference=args.scope), run=run, output=output, report=None,
                          line=f"error: {error}")


def _audit(args: argparse.Namespace, output: str, run: Run, report_file: tuple[Path, str] | None) -> int:
    from importer.adapters.sinks.log import OUTCOME_LOGGER
    from importer.app.sweep import DRY_RUN, REMEDIATE, Sweep, SweepError, SweepOptions, parse_scope
    from importer.entry.audit_report import format_summary
    from importer.entry.formats.emit import emit_error, machine_text
    from importer.entry.progress import TagProgressBar
    from importer.entry.terminal import display_for

    settings = settings_for(args.policy)
    if args.scope:
        try:
            host, glob, tag = parse_scope(args.scope)
        except ValueError as error:
            raise UsageError(str(error)) from None
    elif len(settings.registries) == 1:
        host, glob, tag = settings.registries[0], None, None
    else:
        raise UsageError(f"name the registry to audit as REGISTRY[/REPOSITORY_GLOB] (PLATFORM_GUARD_REGISTRIES has "
                         f"{len(settings.registries)})")
    try:
        options = SweepOptions(mode=REMEDIATE if args.remediate else DRY_RUN, repositories=glob, tag=tag,
                               parallel=args.parallel, page_size=args.page_size, policy_hint=args.policy)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.remediate and host not in settings.registries:  # only a scope names one: without, the host is guarded
        settings = _guarding(settings, host)
        print(sanitise(f"note: remediating {host}, named on the command line (PLATFORM_GUARD_REGISTRIES does not "
                       f"list it)"), file=sys.stderr)
    pipeline = pipeline_for(settings) if args.remediate else None
    ledger = pipeline.ledger if pipeline is not None else existing_ledger_for(settings)  # releases it reads
    outcome_log = logging.getLogger(OUTCOME_LOGGER)
    level = outcome_log.level
    outcome_log.setLevel(logging.CRITICAL)  # one line per tag would drown the terminal: the report lists them
    registries = pipeline.registries if pipeline is not None else registry_directory_for(settings)
    sweep = Sweep(host, policy=settings.policy, registries=registries, pipeline=pipeline, ledger=ledger,
                  paused_repositories=settings.paused_repositories, options=options)
    bar = TagProgressBar(f"auditing {args.scope or host}")
    try:
        report = sweep.run(progress=bar)
    except SweepError as error:
        return emit_error(describe_error(error, reference=args.scope or host), run=run, output=output,
                          report=report_file, line=f"error: {error}")
    finally:
        bar.finish()
        outcome_log.setLevel(level)
        sweep.registry.close()
        if ledger is not None:
            ledger.close()
    run = _run_of(report, run.title)
    if report_file is not None:
        _write_report(report, run, *report_file)
    if output == "table":
        print(format_summary(report, display_for(sys.stdout, wide=args.wide)))
        if report_file is not None:
            print(sanitise(f"report written to {report_file[0]}"))
    else:
        print(machine_text(output, run=run, document=report.as_dict()))
    if report.failures or not report.complete:
        return EXIT_REGISTRY
    return EXIT_VIOLATION if report.pending else EXIT_OK


def _run_of(report: SweepReport, title: str) -> Run:
    """The sweep as JUnit and SARIF see it: a case per tag swept, and per repository whose tags could not be listed;
    a sweep that ran out of time says so."""
    from importer.entry.formats.cases import ERROR, Case, Run, case_from_sweep_item

    cases = [case_from_sweep_item(item) for item in report.items]
    cases += [Case(f"{report.registry}/{name}", ERROR, f"its tags could not be listed: {error}",
                   error_kind="unreadable") for name, error in report.repository_errors]
    warnings: list[str] = []
    if not report.catalog_complete:
        warnings.append("incomplete: the time budget ran out before the repositories were all listed")
    if report.not_swept or report.not_reached:
        warnings.append(f"incomplete: {counted(report.not_swept, 'tag')} not swept, "
                        f"{counted(len(report.not_reached), 'repository')} not reached")
    return Run("audit", title, cases=tuple(cases), warnings=tuple(warnings), started_at=report.started_at,
               duration_seconds=report.duration_seconds,
               properties={"mode": report.mode, "totals": report.totals(), "pending": len(report.pending)})


def _write_report(report: SweepReport, run: Run, path: Path, kind: str) -> None:
    """The report file, in the format its name says (`kind`, from importer.entry.formats.choice.report_format):
    Markdown and HTML by importer.entry.audit_report, the machine formats as -o prints them."""
    from importer.entry.audit_report import render_html, render_markdown
    from importer.entry.formats.emit import machine_text, write_report_text

    if kind == "markdown":
        text = render_markdown(report)
    elif kind == "html":
        text = render_html(report)
    else:
        text = machine_text(kind, run=run, document=report.as_dict())
    write_report_text(path, text)


def _guarding(settings: Settings, host: str) -> Settings:
    """The settings read again as if PLATFORM_GUARD_REGISTRIES listed `host` too: the pipeline then treats it as
    guarded (its events are judged, not rejected) and the credentials settings for it are read."""
    import os

    from importer.app.settings import PREFIX, SettingsError, load_settings

    environ = {**os.environ, PREFIX + "REGISTRIES": ",".join((*settings.registries, host))}
    try:
        return load_settings(environ, policy=settings.policy)
    except SettingsError as error:
        raise UsageError(str(error)) from None


def register(commands: Subcommands) -> None:
    audit = commands.add_parser(
        "audit",
        help="check every tag of a registry against the policy (and fix them with --remediate)",
        description="Sweep a registry: list every repository (/v2/_catalog, or ACR's listing API) and every tag, "
        "following pagination, and judge each tag as the event path does. Quarantine repositories are skipped. "
        "A dry run by default: nothing is changed or recorded, and each violation comes with what the event path "
        "would do and a command that fixes it. --remediate hands each tag to the pipeline as a push event: "
        "re-imports and quarantines happen, with every safety rule, and outcomes are recorded (trigger: sweep). "
        "Exit codes: 0 nothing left to do, 1 violations left, 2 usage or policy error, 3 tags or repositories "
        "that could not be read.",
        **with_examples(
            "platform-guard audit myregistry.azurecr.io --policy policy.yaml --report audit.html",
            "platform-guard audit 'myregistry.azurecr.io/team/**' -o junit > audit.xml",
            "platform-guard audit myregistry.azurecr.io/team/api:2.4.1 --remediate",
        ),
    )
    audit.add_argument("scope", nargs="?", metavar="REGISTRY[/REPO_GLOB|/REPO:TAG]",
                       help="e.g. 127.0.0.1:5000, myreg.azurecr.io/team/** or myreg.azurecr.io/team/app:1.0 (that tag "
                       "only; default: the one guarded registry)")
    audit.add_argument("--policy", metavar="FILE", help="policy YAML (default: settings, else the embedded default)")
    audit.add_argument("--remediate", action="store_true",
                       help="re-import or quarantine violations, as events do, in the guarded registry or the one "
                       "named here")
    add_output_flags(audit, what="the report", reports=REPORT_EXTENSIONS)
    add_wide_flag(audit)
    audit.add_argument("--parallel", type=whole_number(1, MOST_THREADS), default=8, metavar="N",
                       help=f"tags read at once, 1 to {MOST_THREADS} (default 8)")
    audit.add_argument("--page-size", type=whole_number(1, MOST_PAGE_SIZE), metavar="N",
                       help=f"ask the registry for N names per page, 1 to {MOST_PAGE_SIZE}")
    audit.set_defaults(run=command_audit)
