"""The output flags of `check` and `audit`: -o/--output FORMAT, --json (its alias) and --report FILE.

    add_output_flags(parser, report_help="…")
    output = output_format(args.output, args.json)                   # table unless asked otherwise
    report = report_format(args.report, REPORT_EXTENSIONS)           # by the file name's extension

`--json` is `-o json`, kept for the scripts written before -o existed; `--json -o junit` is a usage error. A report
file's format follows its name: `.md` Markdown, `.html`/`.htm` HTML, `.json` the JSON output, `.xml` JUnit XML,
`.sarif` (or `.sarif.json`) SARIF 2.1.0. An extension the command does not write is a usage error naming the flag
and the extensions it takes.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from importer.entry.commands.common import UsageError

OUTPUTS: tuple[str, ...] = ("table", "json", "junit", "sarif")
MACHINE_OUTPUTS = frozenset({"json", "junit", "sarif"})

# Extension (lower case) → report format.
REPORT_EXTENSIONS: Mapping[str, str] = {
    ".md": "markdown",
    ".html": "html",
    ".htm": "html",
    ".json": "json",
    ".xml": "junit",
    ".sarif": "sarif",
}
CHECK_REPORTS: Mapping[str, str] = {
    extension: kind for extension, kind in REPORT_EXTENSIONS.items() if kind in MACHINE_OUTPUTS
}


def add_output_flags(parser: argparse.ArgumentParser, *, what: str, reports: Mapping[str, str]) -> None:
    """-o/--output, --json and --report on `parser`; `what` names what is printed ("the verdict", "the report")."""
    parser.add_argument(
        "-o", "--output", choices=OUTPUTS, metavar="FORMAT",
        help=f"print {what} as {', '.join(OUTPUTS)} (default table: text for people; junit: JUnit XML for CI test "
             "reports; sarif: SARIF 2.1.0 for code-scanning dashboards)",
    )
    parser.add_argument("--json", action="store_true", help="the same as -o json")
    parser.add_argument(
        "--report", metavar="FILE",
        help=f"also write {what} to FILE, in the format its name says: {_extensions(reports)}",
    )


def output_format(output: str | None, json_flag: bool) -> str:
    """The format to print: -o's, `json` for --json, else `table`; UsageError when the two disagree."""
    if json_flag and output not in (None, "json"):
        raise UsageError(f"--json is the same as -o json: give one of them, not --json with -o {output}")
    if json_flag:
        return "json"
    return output or "table"


def report_format(path: str, reports: Mapping[str, str]) -> str:
    """The format of the report file `path`, from its extension; UsageError naming --report and what it takes."""
    name = path.lower()
    if name.endswith(".sarif.json") and "sarif" in reports.values():
        return "sarif"
    for extension, kind in reports.items():
        if name.endswith(extension) and len(name) > len(extension) and not name.endswith("/" + extension):
            return kind
    raise UsageError(f"--report {path!r}: the file name must end in {_extensions(reports)}")


def _extensions(reports: Mapping[str, str]) -> str:
    described = {"markdown": "Markdown", "html": "HTML", "json": "JSON", "junit": "JUnit XML", "sarif": "SARIF"}
    return ", ".join(f"{extension} ({described[kind]})" for extension, kind in reports.items())
