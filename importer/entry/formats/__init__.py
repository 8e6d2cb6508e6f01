"""Machine output of `check` and `audit`: the output formats (-o/--output), the report file formats (--report, chosen
by the name's extension), and the one mapping from an exception to an error kind and an exit code.

    output = output_format(args.output, args.json)                 # "table" | "json" | "junit" | "sarif"
    report = report_format("out/audit.sarif", REPORT_EXTENSIONS)   # "sarif"; UsageError names the flag otherwise
    info = describe_error(error, reference="127.0.0.1:5000/team/app:1")   # ErrorInfo(kind, message, reference, exit)

Where each lives: `errors` (the error kinds and exit codes, and the `{"error": {...}}` object), `cases` (what JUnit and
SARIF are rendered from: one Case per image or tag judged), `junit`, `sarif`, `choice` (the flags).
"""

from __future__ import annotations

from importer.entry.formats.choice import (
    CHECK_REPORTS,
    REPORT_EXTENSIONS,
    add_output_flags,
    output_format,
    report_format,
)
from importer.entry.formats.errors import ErrorInfo, describe_error

__all__ = [
    "CHECK_REPORTS",
    "ErrorInfo",
    "REPORT_EXTENSIONS",
    "add_output_flags",
    "describe_error",
    "output_format",
    "report_format",
]
