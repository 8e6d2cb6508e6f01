"""The audit report files (importer/entry/audit_report.py) with text from outside in every place a registry can put it:
reasons, errors, repository names, tags. The HTML escapes its markup, the Markdown its syntax, and both show unsafe
characters (controls, bidi overrides) as visible escapes. The report is built from values, as a sweep makes them;
tests/entry/test_audit_report_browser.py renders one from a real sweep.
"""

from __future__ import annotations

import pytest

from importer.app.sweep import SweepItem, SweepReport
from importer.entry.audit_report import render_html, render_markdown

HOST = "r.example"


def hostile_report(text: str) -> SweepReport:
    """A report whose reason, remedy, error and repository error hold `text` (commands are made of checked names:
    test_markdown_code_spans_hold_any_command)."""
    violation = SweepItem(HOST, "team/app", "1", "violation", digest="sha256:" + "a" * 64, action="quarantine",
                          reason=f"reason {text}", platforms=("linux/arm64",), required=("linux/amd64",),
                          remedy=f"remedy {text}", suggestion=f"platform-guard audit {HOST}/team/app:1 --remediate")
    failed = SweepItem(HOST, "team/app", "2", "failed", error=f"error {text}",
                       suggestion=f"platform-guard check {HOST}/team/app:2")
    return SweepReport(sweep_id="s-1", registry=HOST, mode="dry-run", repositories=None, started_at="t0",
                       finished_at="t1", duration_seconds=0.1, items=(violation, failed),
                       repository_errors=(("team/other", f"listing {text}"),), policy_source="policy.yaml")


MARKUP = "<script>alert(1)</script><img src=x onerror=alert(2)>"
SYNTAX = "**bold** [link](https://evil.example) | cell ~~gone~~ _it_ `code`"
CONTROLS = "\x1b[2J\r\nforged line"
BIDI = "safe\u202etxt.exe"

HOSTILE = [
    pytest.param(MARKUP, "markdown", "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;",
                 ("<script", "<img"), id="markup-in-markdown"),
    pytest.param(MARKUP, "html", "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;",
                 ("<script", "<img"), id="markup-in-html"),
    pytest.param(SYNTAX, "markdown", r"\*\*bold\*\* \[link\](https://evil.example) \| cell \~\~gone\~\~ \_it\_ \`code\`",
                 ("**bold", "[link](", "example) | cell", "~~gone", "_it_", "`code`"), id="syntax-in-markdown"),
    pytest.param(SYNTAX, "html", "**bold** [link](https://evil.example) | cell ~~gone~~ _it_ `code`",
                 ("<a ", "<strong>bold", "<em>"), id="syntax-in-html"),
    pytest.param(CONTROLS, "markdown", r"\\x1b\[2J\\r\\nforged line", ("\x1b", "\r", "\nforged"),
                 id="controls-in-markdown"),
    pytest.param(CONTROLS, "html", r"\x1b[2J\r\nforged line", ("\x1b", "\r", "\nforged"), id="controls-in-html"),
    pytest.param(BIDI, "markdown", r"safe\\u202etxt.exe", ("\u202e",), id="bidi-in-markdown"),
    pytest.param(BIDI, "html", r"safe\u202etxt.exe", ("\u202e",), id="bidi-in-html"),
]


@pytest.mark.parametrize(("text", "form", "shown", "never"), HOSTILE)
def test_outside_text_reads_as_written_and_does_nothing(text: str, form: str, shown: str,
                                                        never: tuple[str, ...]) -> None:
    """Outside text shows as written (escaped for the format) wherever it is, in the reason, the remedy, the error and
    the repository error, and never as markup, syntax or a control character."""
    rendered = (render_markdown if form == "markdown" else render_html)(hostile_report(text))
    for where in ("reason", "remedy", "error", "listing"):
        assert f"{where} {shown}" in rendered, (where, rendered)
    for raw in never:
        assert raw not in rendered, raw


@pytest.mark.parametrize(
    ("command", "cell"),
    [
        pytest.param("platform-guard check r.example/team/app:1", "`platform-guard check r.example/team/app:1`",
                     id="plain"),
        pytest.param("echo `id` | sh", "``echo `id` \\| sh``", id="backticks-and-a-pipe"),
        pytest.param("`start", "`` `start ``", id="starts-with-a-backtick"),
    ],
)
def test_markdown_code_spans_hold_any_command(command: str, cell: str) -> None:
    """A command is one code span whatever it holds: a longer fence than any backtick run in it, `|` escaped for the
    table."""
    item = SweepItem(HOST, "team/app", "1", "failed", error="boom", suggestion=command)
    report = SweepReport(sweep_id="s-1", registry=HOST, mode="dry-run", repositories=None, started_at="t0",
                         finished_at="t1", duration_seconds=0.1, items=(item,), policy_source="p")
    assert f"| {cell} |" in render_markdown(report)


def test_a_report_without_violations_or_failures_says_so_without_empty_sections() -> None:
    """No failures section when nothing failed; `No violations.` rather than an empty table or a None."""
    item = SweepItem(HOST, "team/app", "1", "compliant")
    report = SweepReport(sweep_id="s-1", registry=HOST, mode="dry-run", repositories="team/app", started_at="t0",
                         finished_at="t1", duration_seconds=0.1, items=(item,), policy_source="p", tag="1")
    markdown, page = render_markdown(report), render_html(report)
    assert markdown.startswith(f"# Platform Guard audit of {HOST}/team/app:1\n")
    assert "<h1>Platform Guard audit of r.example/team/app:1</h1>" in page
    for text in (markdown, page):
        assert "Failures" not in text and "No violations." in text and "None" not in text
