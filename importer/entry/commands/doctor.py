"""`doctor`: the post-deploy smoke check of every permission the app needs."""

from __future__ import annotations

import argparse

from importer.entry.commands.common import (
    Subcommands,
    whole_number,
    with_examples,
)


def command_doctor(args: argparse.Namespace) -> int:
    from importer.entry.doctor import run_doctor

    return run_doctor(as_json=args.json, timeout=float(args.timeout))


def register(commands: Subcommands) -> None:
    doctor = commands.add_parser(
        "doctor",
        **with_examples(
            "platform-guard doctor                 # a table of checks and the commands that grant what is missing",
            "platform-guard doctor --json --timeout 10",
        ),
        help="check every permission the app needs, with its own settings and identity (post-deploy smoke check)",
        description="With the settings in the environment (as the Functions app has them) and the app's identity, "
        "check each guarded registry (reachable, catalog, read, push, delete or lock), server-side import, the "
        "upstreams, the ledger, the queue, the Event Grid topic and the alert webhook, changing nothing; print what "
        "is missing and the command that grants it. Exit codes: 0 all ok, 1 something missing, 2 usage or settings "
        "error, 3 unreachable or undecided.",
    )
    doctor.add_argument("--json", action="store_true", help="print the checks as one JSON object")
    doctor.add_argument("--timeout", type=whole_number(1, 600), default=30, metavar="SECONDS",
                        help="the longest any one check may take, 1 to 600 (default 30)")
    doctor.set_defaults(run=command_doctor)
