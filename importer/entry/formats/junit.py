"""JUnit XML for CI test reports (`-o junit`, `--report FILE.xml`): one test case per image or tag judged.

    text = render_junit(run)      # importer.entry.formats.cases.Run → an XML document, UTF-8, ending in a newline

The shape is the common JUnit XML that CI test publishers read (Azure Pipelines' PublishTestResults with
`testResultsFormat: JUnit`, GitHub Actions test reporters, Jenkins, GitLab):

    <testsuites name tests failures errors skipped time timestamp>
      <testsuite name tests failures errors skipped time timestamp>
        <properties><property name value/></properties>
        <testcase name="TAG" classname="REGISTRY/REPOSITORY" time="0">
          <failure message="REASON" type="missing-platform">what was found and expected</failure>   a violation
          <error message="ERROR" type="not_found">…</error>                                       unreadable
          <skipped message="REASON"/>                                                              ignored, gone

Compliant cases have no child. The run's own errors (the image or the registry could not be read at all, bad arguments)
are error test cases too, classname `platform-guard.check` or `platform-guard.audit`, so that a publisher shows the
run failed. Counts are of test cases: `tests` is all of them and
`failures`, `errors`, `skipped` those with that child. Every text from outside (reasons, errors, names) has the
characters XML 1.0 cannot hold, and those a terminal would act on, replaced by visible escapes
(importer.core.safe_text), so the document is always well formed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from importer import __version__
from importer.core.safe_text import escape_unsafe
from importer.entry.formats.cases import ERROR, FAILED, SKIPPED, Case, Run

_NONCHARACTERS = {0xFFFE: "\\ufffe", 0xFFFF: "\\uffff"}  # not XML 1.0 characters, and not among the unsafe ones


def _text(value: object) -> str:
    return escape_unsafe(str(value)).translate(_NONCHARACTERS)


def _lines(lines: list[str]) -> str:
    return "\n".join(_text(line) for line in lines)


def _testcase(parent: ET.Element, case: Case) -> None:
    element = ET.SubElement(parent, "testcase", name=_text(case.name), classname=_text(case.group), time="0")
    if case.status == FAILED:
        child = ET.SubElement(element, "failure", message=_text(case.message), type=case.problems[0])
        child.text = _lines(case.details())
    elif case.status == ERROR:
        child = ET.SubElement(element, "error", message=_text(case.message), type=_text(case.error_kind or "error"))
        child.text = _lines([f"reference: {case.reference}", f"error: {case.message}", *case.notes])
    elif case.status == SKIPPED:
        ET.SubElement(element, "skipped", message=_text(case.message))
    elif case.notes:
        ET.SubElement(element, "system-out").text = _lines(list(case.notes))


def _run_error_cases(run: Run) -> list[Case]:
    """The run's own errors as error cases: named by the reference they concern, else by the command."""
    return [Case(error.reference or run.command, ERROR, error.message, error_kind=error.kind,
                 suite=f"platform-guard.{run.command}") for error in run.errors]


def render_junit(run: Run) -> str:
    """The run as a JUnit XML document (see the module docstring)."""
    cases = [*run.cases, *_run_error_cases(run)]
    counts = {
        "tests": str(len(cases)),
        "failures": str(sum(1 for case in cases if case.status == FAILED)),
        "errors": str(sum(1 for case in cases if case.status == ERROR)),
        "skipped": str(sum(1 for case in cases if case.status == SKIPPED)),
        "time": f"{run.duration_seconds:.3f}",
    }
    stamp = {"timestamp": run.started_at} if run.started_at else {}
    root = ET.Element("testsuites", name="platform-guard", **counts, **stamp)
    suite = ET.SubElement(root, "testsuite", name=_text(run.title), **counts, **stamp)
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", name="platform-guard.version", value=__version__)
    ET.SubElement(properties, "property", name="platform-guard.command", value=run.command)
    for warning in run.warnings:
        ET.SubElement(properties, "property", name="platform-guard.warning", value=_text(warning))
    for case in cases:
        _testcase(suite, case)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
