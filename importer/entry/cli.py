"""The command line: `platform-guard COMMAND …` (or `python -m importer COMMAND …`); each command has --help.

    check REF --policy FILE [--json]   verdict for one image; exit 0 compliant/ignored, 1 violation,
                                       2 usage or policy error, 3 registry or network error
    copy SRC DST [--platform P …]      copy an image, a whole index or some of its platforms (exit 0 ok,
                                       2 usage or platform not offered, 3 registry or network error)
    serve [--host H] [--port P]        the local host (Functions routes) for registry notifications
    outcomes [--json] [--limit N]      the newest recorded outcomes
    release QUARANTINED_REF [--to R:T] put a quarantined image back on purpose
    chart-images REF_OR_TGZ [--json]   the images a Helm chart references
    audit [REGISTRY[/GLOB]] [--remediate]  every tag of a registry against the policy; a dry run unless
                                       --remediate; --report FILE.md|.html (exit 0 nothing to do,
                                       1 violations left, 2 usage error, 3 tags or repositories unreadable)
    doctor [--json]                    the post-deploy smoke check: every permission the app needs, with its own
                                       settings and identity (exit 0 ok, 1 missing, 2 settings, 3 unreachable)
    demo                               a local registry, the local host, right and wrong pushes, a table of outcomes

Each command lives in importer/entry/commands/<module>.py: its `register` adds its parser, its `command_*` runs it.
Settings come from the environment (see importer/app/settings.py and the README); `check` against a loopback
registry needs none.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from importer import __version__
from importer.entry.commands import audit, charts, check, copy, demo, doctor, hosting, outcomes, release
from importer.entry.commands.common import EXIT_USAGE, UsageError
from importer.entry.terminal import TerminalLogFormatter, sanitise

# In the order `--help` lists them.
COMMANDS = (check, copy, hosting, outcomes, release, charts, audit, doctor, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="platform-guard",  # the installed command; `python -m importer` from a checkout is the same parser
        description="Platform Guard: keep every image in a registry runnable on the platforms your clusters use.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details to stderr")
    parser.add_argument("--version", action="version", version=f"platform-guard {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    to_stderr = logging.StreamHandler()  # log lines quote registries and senders: sanitised for the terminal
    to_stderr.setFormatter(TerminalLogFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, handlers=[to_stderr])
    try:
        return int(args.run(args))
    except UsageError as error:
        print(sanitise(f"error: {error}"), file=sys.stderr)
        return EXIT_USAGE
