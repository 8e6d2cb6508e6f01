"""`outcomes` and `redrive`: what the ledger recorded, the events given up on, and putting those back."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time

from importer.app.settings import Settings
from importer.core.numbers import shown
from importer.core.program import PROGRAM
from importer.core.words import counted
from importer.entry.commands.common import (
    EXIT_OK,
    EXIT_REGISTRY,
    MOST_OUTCOMES,
    CommandFailed,
    Subcommands,
    UsageError,
    add_wide_flag,
    ledger_errors,
    settings_for,
    whole_number,
    with_examples,
)
from importer.entry.composition import existing_ledger_for
from importer.entry.terminal import display_for, format_dead_letters, format_outcomes, sanitise

_MESSAGE_ID = re.compile(r"[0-9A-Za-z-]{1,64}")  # a SQLite queue's number, a Storage queue's GUID


def _message_id(text: str) -> str:
    """An argparse type: a dead letter's id as `outcomes --failed` lists it."""
    if _MESSAGE_ID.fullmatch(text) is None:
        raise argparse.ArgumentTypeError(
            f"expected a message id as `outcomes --failed` lists it (digits, or letters, digits and '-'), "
            f"got {shown(text)}"
        )
    return text

def command_outcomes(args: argparse.Namespace) -> int:
    settings = settings_for(None)
    if args.failed:
        return _dead_letters(settings, args)
    ledger = existing_ledger_for(settings)  # the ledger the settings select: Table Storage in Azure, else SQLite
    if ledger is None:
        print(sanitise(f"no ledger at {settings.ledger_path} yet (set PLATFORM_GUARD_LEDGER, or "
                       f"PLATFORM_GUARD_TABLES_ENDPOINT for the Table ledger?)"), file=sys.stderr)
        return EXIT_OK
    try:
        fetched = ledger.outcomes(limit=args.limit if args.all else args.limit * 4, repository=args.repository)
    except ledger_errors() as error:
        raise CommandFailed(f"error: reading outcomes: {error}", exit_code=EXIT_REGISTRY) from error
    finally:
        ledger.close()
    outcomes = (fetched if args.all else [outcome for outcome in fetched if outcome.final])[: args.limit]
    if args.json:
        for outcome in outcomes:
            print(json.dumps(outcome.as_dict()))
    else:
        print(format_outcomes(outcomes, display_for(sys.stdout, wide=args.wide)))
    return EXIT_OK

def _dead_letters(settings: Settings, args: argparse.Namespace) -> int:
    from importer.entry.composition import queue_for

    if not settings.uses_storage_queue and not settings.queue_path.exists():
        print(sanitise(f"no queue at {settings.queue_path} yet: nothing was given up on"), file=sys.stderr)
        return EXIT_OK
    queue = queue_for(settings)
    try:
        dead = queue.dead_letters(limit=args.limit)
    finally:
        queue.close()
    if args.json:
        for letter in dead:
            print(json.dumps({"message_id": letter.message_id, "key": letter.key, "attempts": letter.attempts,
                              "dead_at": letter.dead_at, "error": letter.error, "body": letter.body}))
    else:
        print(format_dead_letters(dead, display_for(sys.stdout, wide=args.wide)))
        if dead:
            print(f"\nre-drive: {PROGRAM} redrive --all   (or: redrive MESSAGE_ID …)")
    return EXIT_OK

def command_redrive(args: argparse.Namespace) -> int:
    from importer.entry.composition import doorbell_for, queue_for

    if not args.all and not args.message_ids:
        raise UsageError("name the dead letters to re-drive (MESSAGE_ID …) or give --all")
    settings = settings_for(None)
    queue = queue_for(settings)
    try:
        moved = queue.redrive(None if args.all else args.message_ids, now=time.time())
    finally:
        queue.close()
    doorbell = doorbell_for(settings)
    if doorbell is not None:
        if moved:
            doorbell.ring()
        doorbell.close()
    where = f"Storage queue {settings.queue_name}" if settings.uses_storage_queue else f"queue {settings.queue_path}"
    print(sanitise(f"{counted(moved, 'event')} back in the {where}; the workers decide them again"))
    return EXIT_OK


def register(commands: Subcommands) -> None:
    outcomes = commands.add_parser(
        "outcomes",
        help="show recorded outcomes",
        description="Show the newest outcomes in the ledger.",
        **with_examples(
            "platform-guard outcomes --limit 20                # a table of the newest final outcomes",
            "platform-guard outcomes --repository team/app --json | jq -r .result",
            "platform-guard outcomes --failed                  # dead letters, with the command that re-drives them",
        ),
    )
    outcomes.add_argument("--json", action="store_true", help="one JSON record per line, newest first")
    outcomes.add_argument("--limit", type=whole_number(1, MOST_OUTCOMES), default=50, metavar="N",
                          help=f"how many, 1 to {MOST_OUTCOMES} (default 50)")
    outcomes.add_argument("--repository", help="only this repository")
    outcomes.add_argument("--all", action="store_true", help="also the attempts (`retrying`) before each final outcome")
    add_wide_flag(outcomes)
    outcomes.add_argument("--failed", action="store_true",
                          help="the events the workers gave up on (dead letters), with the command that re-drives them")
    outcomes.set_defaults(run=command_outcomes)

    redrive = commands.add_parser(
        "redrive",
        help="put dead-lettered events back in the queue",
        description="Put events the workers gave up on (see `outcomes --failed`) back in the queue, attempts reset.",
        **with_examples(
            "platform-guard redrive --all",
            "platform-guard redrive 12 15                      # the message ids `outcomes --failed` lists",
        ),
    )
    redrive.add_argument("message_ids", nargs="*", type=_message_id, metavar="MESSAGE_ID",
                         help="dead letters to re-drive")
    redrive.add_argument("--all", action="store_true", help="every dead letter")
    redrive.set_defaults(run=command_redrive)
