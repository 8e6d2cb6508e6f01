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
import json
import logging
import os
import select
import sys
from collections.abc import Sequence
from typing import TextIO

from importer import __version__
from importer.core.program import PROGRAM
from importer.entry.commands import (
    audit,
    charts,
    check,
    completion,
    copy,
    demo,
    doctor,
    hosting,
    outcomes,
    release,
)
from importer.entry.commands.common import EXIT_USAGE, CommandFailed, UsageError
from importer.entry.formats.errors import describe_error, error_document
from importer.entry.terminal import TerminalLogFormatter, sanitise

# In the order `--help` lists them.
COMMANDS = (check, copy, hosting, outcomes, release, charts, audit, doctor, demo, completion)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,  # the installed command; `python -m importer` from a checkout is the same parser
        description="Platform Guard: keep every image in a registry runnable on the platforms your clusters use.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details to stderr")
    parser.add_argument("--version", action="version", version=f"{PROGRAM} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands)
    parser.set_defaults(root_parser=parser)  # `completion` writes its script from the whole parser
    return parser


# What a shell reports for a program SIGPIPE ended (128 + 13), as `yes | head -1` ends `yes`: the reader of stdout
# went away before all was written. Not 1, which means "violations" to `check` and `audit`.
EXIT_CLOSED_PIPE = 141


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit status. When the reader of stdout goes away first (`platform-guard outcomes | head
    -1`), stop quietly with EXIT_CLOSED_PIPE, as the Python docs' "Note on SIGPIPE" advises: catch BrokenPipeError and
    point stdout at os.devnull so that the flush at exit does not fail again. SIGPIPE keeps Python's disposition
    (ignored): with the default one, a registry or sender closing a socket mid-write would kill the process."""
    try:
        try:
            return _run(argv)
        finally:
            if sys.stdout is not None:
                sys.stdout.flush()  # here, not at exit: a reader that has gone shows in this try
    except BrokenPipeError:
        if sys.stdout is None or not _reader_gone(sys.stdout):
            raise  # a socket's, not stdout's: an error like any other
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_CLOSED_PIPE


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    to_stderr = logging.StreamHandler()  # log lines quote registries and senders: sanitised for the terminal
    to_stderr.setFormatter(TerminalLogFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, handlers=[to_stderr])
    try:
        return int(args.run(args))
    except UsageError as error:
        _say_failure(args, f"error: {error}", error, None)
        return EXIT_USAGE
    except CommandFailed as failure:
        _say_failure(args, str(failure), failure.__cause__ or failure, failure.reference)
        return failure.exit_code


def _say_failure(args: argparse.Namespace, line: str, cause: BaseException, reference: str | None) -> None:
    """The failure on stderr for people and, when the command was asked for `--json`, as an error document on stdout
    (`{"error": {"kind", "message", "reference"}}`), so that a script reading stdout is never left with nothing. The
    commands with `-o/--output` (check, audit: importer.entry.formats.choice.add_output_flags) say their own failures
    in the format asked for (importer.entry.formats.emit.emit_error), --json or not: here only a usage error they
    could not say that way (`--json -o junit`), on stderr alone."""
    print(sanitise(line), file=sys.stderr)
    if getattr(args, "json", False) and not hasattr(args, "output"):
        print(json.dumps(error_document(describe_error(cause, reference=reference)), indent=2))


def _reader_gone(stream: TextIO) -> bool:
    """Whether `stream` is a pipe whose reader has closed it (poll reports an error on its end); True when that
    cannot be told (no poll on this platform, no file behind the stream), as the BrokenPipeError then most likely
    came from it."""
    try:
        poller = select.poll()
        poller.register(stream.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):
        return True
