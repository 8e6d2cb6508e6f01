"""Printing and writing machine output: one rendering per format, the report file, and errors as documents too.

    print(machine_text("junit", run=run, document=verdict))      # json prints `document`; junit and sarif the run
    write_report_text(Path("out.sarif"), text)                   # UsageError when the file cannot be written
    emit_error(info, run=Run("check", title), output="json", report=None)   # stderr line + {"error": …} on stdout

With machine output, an error is a document of the same format: `{"error": {kind, message, reference}}` for json,
an error test case for junit, an error-level tool notification for sarif. The human `error: …` line still goes to
stderr, sanitised.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from importer.entry.commands.common import UsageError
from importer.entry.formats.cases import Run
from importer.entry.formats.choice import MACHINE_OUTPUTS
from importer.entry.formats.errors import ErrorInfo, error_document
from importer.entry.formats.junit import render_junit
from importer.entry.formats.sarif import sarif_document
from importer.entry.terminal import sanitise


def machine_text(kind: str, *, run: Run, document: Any) -> str:
    """The output in a machine format: `document` as JSON for json, the run as JUnit XML or SARIF."""
    if kind == "json":
        return json.dumps(document, indent=2)
    if kind == "junit":
        return render_junit(run).removesuffix("\n")
    if kind == "sarif":
        return json.dumps(sarif_document(run), indent=2)
    raise ValueError(f"not a machine output format: {kind!r}")


def write_report_text(path: Path, text: str) -> None:
    """Write a report file; a path that cannot be written is a usage error naming --report."""
    try:
        path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    except OSError as error:
        raise UsageError(f"--report {str(path)!r}: cannot write it ({error.strerror or error})") from None


def emit_error(info: ErrorInfo, *, run: Run, output: str, report: tuple[Path, str] | None,
               line: str | None = None) -> int:
    """Say `info` on stderr (`line`, default `error: REFERENCE: MESSAGE`), as a document on stdout (machine output)
    and in the report file (machine formats); returns its exit code. The one place `check` and `audit` say a failure,
    usage errors included: the CLI's main says no more of it."""
    if line is None:
        line = f"error: {info.reference}: {info.message}" if info.reference else f"error: {info.message}"
    print(sanitise(line), file=sys.stderr)
    failed = dataclasses.replace(run, errors=(*run.errors, info))
    if report is not None and report[1] in MACHINE_OUTPUTS:
        try:
            write_report_text(report[0], machine_text(report[1], run=failed, document=error_document(info)))
        except UsageError as error:  # the error at hand is what to report; this one is said on the way
            print(sanitise(f"error: {error}"), file=sys.stderr)
    if output in MACHINE_OUTPUTS:
        print(machine_text(output, run=failed, document=error_document(info)))
    return info.exit_code
