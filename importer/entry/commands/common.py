"""What every command shares: the exit codes, the usage error, settings and clients for a command, numeric flags."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from importer.app.policy_file import load_policy
from importer.app.settings import Settings, SettingsError, load_settings
from importer.core.numbers import NumberError, parse_whole_number
from importer.core.policy import Policy, PolicyError
from importer.entry.composition import registry_directory_for
from importer.ports.ledger import LedgerUnavailable
from importer.ports.registry import Registry

if TYPE_CHECKING:
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    Subcommands = argparse._SubParsersAction

EXIT_OK = 0
EXIT_VIOLATION = 1
EXIT_USAGE = 2
EXIT_REGISTRY = 3

# Documented ranges of the numeric flags (read strictly by importer.core.numbers: ASCII digits, no sign).
MOST_THREADS = 64  # --threads, --parallel
MOST_WORKERS = 32  # serve --workers
MOST_OUTCOMES = 100_000  # outcomes --limit
MOST_PAGE_SIZE = 10_000  # audit --page-size


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help, except that text with line breaks of its own (the examples of `with_examples`) is kept as
    written instead of being re-wrapped into one paragraph."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def with_examples(*examples: str) -> dict[str, object]:
    """Keyword arguments for `add_parser` that end the command's --help with `examples`, one command line each
    (a line starting with `#` is a comment on the next one)."""
    lines = "\n".join(f"  {example}" for example in examples)
    return {"epilog": f"examples:\n{lines}\n", "formatter_class": HelpFormatter}


class UsageError(Exception):
    """Bad arguments, settings or policy: exit 2 with the message."""


class CommandFailed(Exception):
    """A command's failure, said once by the CLI (importer/entry/cli.py): its message, the whole `line`, on stderr
    and, when the command was asked for `--json`, an error document on stdout whose kind comes from the exception this
    one is raised from (`raise CommandFailed(...) from error`). `exit_code` is the command's documented one."""

    def __init__(self, line: str, *, exit_code: int, reference: str | None = None) -> None:
        super().__init__(line)
        self.exit_code = exit_code
        self.reference = reference


def settings_for(policy_path: str | None) -> Settings:
    """The settings from the environment, with the policy file named on the command line when there is one."""
    try:
        policy: Policy | None = load_policy(policy_path) if policy_path else None
        return load_settings(policy=policy)
    except (PolicyError, SettingsError) as error:
        raise UsageError(str(error)) from None


def client_for(settings: Settings, host: str) -> Registry:
    """A registry client for a host the user named, with its credentials and plain-HTTP permission from settings."""
    return registry_directory_for(settings).client(host)


def add_wide_flag(parser: argparse.ArgumentParser) -> None:
    """--wide on `parser`, for a command that prints a table fitted to the terminal."""
    parser.add_argument("--wide", action="store_true",
                        help="print every value whole, never shortened to the terminal's width (the default when "
                             "stdout is not a terminal)")


def whole_number(least: int, most: int) -> Callable[[str], int]:
    """An argparse type: a whole number from `least` to `most`; anything else is a usage error naming the flag."""

    def parse(text: str) -> int:
        try:
            return parse_whole_number(text, least=least, most=most)
        except NumberError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def ledger_errors() -> tuple[type[Exception], ...]:
    """What a ledger raises when its storage fails: LedgerUnavailable (may pass) and, once the Table ledger is in use
    (its module loaded), TableLedgerError (a refusal that will not pass, e.g. a missing role): reported, exit 3."""
    tables = sys.modules.get("importer.adapters.ledger.tables")
    return (LedgerUnavailable,) if tables is None else (LedgerUnavailable, tables.TableLedgerError)
