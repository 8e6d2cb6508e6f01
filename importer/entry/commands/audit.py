"""`audit [REGISTRY[/GLOB]]`: every tag of a registry against the policy, a dry run unless --remediate."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from importer.entry.commands.common import (
    EXIT_OK,
    EXIT_REGISTRY,
    EXIT_VIOLATION,
    MOST_PAGE_SIZE,
    MOST_THREADS,
    Subcommands,
    UsageError,
    settings_for,
    whole_number,
)
from importer.entry.composition import existing_ledger_for, pipeline_for, registry_directory_for
from importer.entry.terminal import sanitise


def command_audit(args: argparse.Namespace) -> int:
    from pathlib import Path

    from importer.adapters.sinks.log import OUTCOME_LOGGER
    from importer.app.sweep import DRY_RUN, REMEDIATE, Sweep, SweepError, SweepOptions, parse_scope
    from importer.entry.audit_report import format_summary, write_report
    from importer.entry.progress import TagProgressBar

    settings = settings_for(args.policy)
    if args.scope:
        try:
            host, glob = parse_scope(args.scope)
        except ValueError as error:
            raise UsageError(str(error)) from None
    elif len(settings.registries) == 1:
        host, glob = settings.registries[0], None
    else:
        raise UsageError(f"name the registry to audit as REGISTRY[/REPOSITORY_GLOB] (PLATFORM_GUARD_REGISTRIES has "
                         f"{len(settings.registries)})")
    report_path = Path(args.report) if args.report else None
    if report_path is not None and report_path.suffix.lower() not in (".md", ".html", ".htm"):
        raise UsageError(f"--report {args.report!r}: the name must end in .md or .html")
    try:
        options = SweepOptions(mode=REMEDIATE if args.remediate else DRY_RUN, repositories=glob,
                               parallel=args.parallel, page_size=args.page_size, policy_hint=args.policy)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.remediate and host not in settings.registries:
        raise UsageError(f"--remediate changes {host}: only guarded registries are remediated "
                         f"(add it to PLATFORM_GUARD_REGISTRIES)")
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
        print(sanitise(f"error: {error}"), file=sys.stderr)
        return EXIT_REGISTRY
    finally:
        bar.finish()
        outcome_log.setLevel(level)
        sweep.registry.close()
        if ledger is not None:
            ledger.close()
    if report_path is not None:
        write_report(report, report_path)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(format_summary(report))
        if report_path is not None:
            print(sanitise(f"report written to {report_path}"))
    if report.failures or not report.complete:
        return EXIT_REGISTRY
    return EXIT_VIOLATION if report.pending else EXIT_OK


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
    )
    audit.add_argument("scope", nargs="?", metavar="REGISTRY[/REPO_GLOB]",
                       help="e.g. 127.0.0.1:5000 or myreg.azurecr.io/team/** (default: the one guarded registry)")
    audit.add_argument("--policy", metavar="FILE", help="policy YAML (default: settings, else the embedded default)")
    audit.add_argument("--remediate", action="store_true", help="re-import or quarantine violations, as events do")
    audit.add_argument("--json", action="store_true", help="print the report as one JSON object")
    audit.add_argument("--report", metavar="FILE", help="write the report to FILE.md (Markdown) or FILE.html")
    audit.add_argument("--parallel", type=whole_number(1, MOST_THREADS), default=8, metavar="N",
                       help=f"tags read at once, 1 to {MOST_THREADS} (default 8)")
    audit.add_argument("--page-size", type=whole_number(1, MOST_PAGE_SIZE), metavar="N",
                       help=f"ask the registry for N names per page, 1 to {MOST_PAGE_SIZE}")
    audit.set_defaults(run=command_audit)
