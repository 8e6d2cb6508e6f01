"""The audit report as people read it: Markdown or HTML for a file (`audit --report`), a few lines for a terminal.

    text = render_markdown(report)              # or render_html: what `audit --report FILE.md|.html` writes
    print(format_summary(report, display))      # totals, then each violation and failure with its command

The file is what on-call reads, in this order: the scope and sweep; the totals by status (and by result outside a
dry run); the failures (repositories whose tags could not be listed, tags that could not be read), each with its error
as text and a command to try again; the violations of each repository, grouped by reason and remedy with counts
("22 tags: … → re-import from docker.io/library/nginx"), each tag with the command that fixes exactly it; then the
tags per repository. In HTML each repository's violations collapse under a summary of their groups (<details>, no
script); the page is one file with inline CSS and no outside resource, and its tables wrap rather than overflow (fixed
layout, long digests and commands broken anywhere). `report.as_dict()` (importer.app.sweep) is the --json form. See
docs/design.md, Sweep.

Names, reasons and errors come from the registry: the terminal summary sanitises each of its lines
(importer.entry.terminal); the files show unsafe characters as escapes (importer.core.safe_text), and then the HTML
escapes its markup and the Markdown its syntax.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from importer.app.sweep import STATUSES, SweepItem, SweepReport, repository_command
from importer.core.words import counted
from importer.entry.terminal import (
    Display,
    fit_widths,
    paint,
    result_colour,
    sanitise,
    shorten_end,
    shorten_middle,
    shorten_reason,
    shortened_note,
    text_width,
)


def _problem(item: SweepItem) -> str:
    if item.error:
        return item.error
    return item.reason or ""


def _what(item: SweepItem) -> str:
    """`quarantine` in a dry run; `reimport → reimported` once done."""
    action = item.action or "none"
    return f"{action} → {item.result}" if item.result else action


def _heading(report: SweepReport) -> str:
    return f"Platform Guard audit of {report.scope}"  # REGISTRY, REGISTRY/GLOB or REGISTRY/REPOSITORY:TAG


def _summary_lines(report: SweepReport) -> list[str]:
    requests = "" if report.registry_requests is None else f", {counted(report.registry_requests, 'registry request')}"
    lines = [
        f"sweep {report.sweep_id}, mode {report.mode}, policy {report.policy_source}",
        f"{report.started_at} to {report.finished_at} ({report.duration_seconds:.1f} s{requests})",
    ]
    if report.skipped_repositories:
        lines.append(f"quarantine repositories skipped: {', '.join(report.skipped_repositories)}")
    if not report.catalog_complete:
        lines.append("incomplete: the time budget ran out before the repositories were all listed")
    if report.not_reached:
        lines.append(f"incomplete: the time budget ran out with {counted(report.not_swept, 'tag')} not swept and "
                     f"{counted(len(report.not_reached), 'repository')} not reached "
                     f"({report.repositories_not_listed} not listed)")
    return lines


# -- the report file (`audit --report`): Markdown and HTML, from the same parts ---------------------------------------


@dataclass(frozen=True, slots=True)
class _Group:
    """The violations of one repository that are one problem fixed one way: same reason, remedy and result."""

    problem: str
    remedy: str
    result: str | None
    items: tuple[SweepItem, ...]

    @property
    def count(self) -> str:
        return counted(len(self.items), "tag")

    @property
    def description(self) -> str:
        """`<reason> → re-import from docker.io/library/nginx` (`, done: reimported` once remediated)."""
        done = f", done: {self.result}" if self.result else ""
        return f"{self.problem} → {self.remedy}{done}"

    @property
    def title(self) -> str:
        """`22 tags: <reason> → re-import from docker.io/library/nginx`."""
        return f"{self.count}: {self.description}"


def _violation_groups(report: SweepReport) -> dict[str, list[_Group]]:
    """Repository → its violations grouped by problem, remedy and result, the largest group first; repositories in
    name order."""
    grouped: dict[str, dict[tuple[str, str, str | None], list[SweepItem]]] = {}
    for item in report.violations:
        key = (_problem(item), item.remedy or item.action or "none", item.result)
        grouped.setdefault(item.repository, {}).setdefault(key, []).append(item)
    return {
        repository: sorted((_Group(*key, tuple(items)) for key, items in groups.items()),
                           key=lambda group: (-len(group.items), group.problem, group.remedy, group.result or ""))
        for repository, groups in sorted(grouped.items())
    }


def _failure_rows(report: SweepReport) -> list[tuple[str, str, str | None]]:
    """(what could not be read, why, the command to try again): repositories whose tags could not be listed, then
    tags that could not be read or judged."""
    rows: list[tuple[str, str, str | None]] = [
        (f"{report.registry}/{name}", error, repository_command(report.registry, name, report.policy_hint))
        for name, error in report.repository_errors
    ]
    rows += [(item.reference, _problem(item), item.suggestion) for item in report.failures]
    return rows


def _headline(report: SweepReport) -> str:
    """`200 tags: 78 compliant, 62 violations (62 pending), …`, every status counted."""
    totals = report.totals()
    parts = [f"{totals['compliant']} compliant",
             f"{counted(totals['violation'], 'violation')} ({sum(item.pending for item in report.violations)} pending)",
             f"{totals['ignored']} ignored", f"{totals['failed']} failed", f"{totals['gone']} gone"]
    if report.repository_errors:
        parts.append(f"{counted(len(report.repository_errors), 'repository')} not listed")
    return f"{counted(len(report.items), 'tag')}: {', '.join(parts)}"


def _violations_heading(report: SweepReport, groups: dict[str, list[_Group]]) -> str:
    return (f"Violations ({counted(len(report.violations), 'tag')} in "
            f"{counted(len(groups), 'repository')})")


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~#!])")


def _md(text: object) -> str:
    """Outside text for Markdown: shown on one line, HTML and Markdown syntax in it escaped, so it reads as written."""
    escaped = html.escape(sanitise(text), quote=False)
    return _MARKDOWN_SPECIAL.sub(r"\\\1", escaped)


def _md_code(text: str | None) -> str:
    """A code span holding `text` as written (for a table cell: `|` escaped, as GFM tables need even in code)."""
    if not text:
        return "—"
    shown = sanitise(text)
    fence = "`" * (max((len(run) for run in re.findall("`+", shown)), default=0) + 1)
    padded = f" {shown} " if shown.startswith("`") or shown.endswith("`") else shown
    return f"{fence}{padded}{fence}".replace("|", "\\|")


def render_markdown(report: SweepReport) -> str:
    """The report as Markdown: totals, failures, violations per repository grouped by reason and remedy (each tag with
    the command that fixes it), then tags per repository."""
    groups = _violation_groups(report)
    out = [f"# {_md(_heading(report))}", ""]
    out += [f"- {_md(line)}" for line in _summary_lines(report)]
    out += ["", "## Totals", "", f"**{_md(_headline(report))}**", "", "| status | tags |", "|---|---:|"]
    out += [f"| {status} | {count} |" for status, count in report.totals().items()]
    out += [f"| **total** | **{len(report.items)}** |", ""]
    if report.results():
        out += ["| result | tags |", "|---|---:|"]
        out += [f"| {_md(result)} | {count} |" for result, count in report.results().items()]
        out.append("")
    failures = _failure_rows(report)
    if failures:
        out += [f"## Failures ({len(failures)})", "", "| what | error | command |", "|---|---|---|"]
        out += [f"| {_md_code(what)} | {_md(error)} | {_md_code(command)} |" for what, error, command in failures]
        out.append("")
    out += [f"## {_violations_heading(report, groups)}", ""]
    if not groups:
        out += ["No violations.", ""]
    for repository, repository_groups in groups.items():
        count = sum(len(group.items) for group in repository_groups)
        out += [f"### {_md(repository)} ({counted(count, 'tag')})", ""]
        for group in repository_groups:
            out += [f"**{group.count}**: {_md(group.description)}", "", "| tag | digest | platforms | command |", "|---|---|---|---|"]
            out += [f"| {_md_code(item.tag)} | {_md_code(item.digest)} | {_md(', '.join(item.platforms) or '—')} "
                    f"| {_md_code(item.suggestion)} |" for item in group.items]
            out.append("")
    out += ["## By repository", "", "| repository | tags | " + " | ".join(STATUSES) + " |",
            "|---|---:|" + "---:|" * len(STATUSES)]
    for name, counts in report.by_repository().items():
        out.append(f"| {_md(name)} | {counts['tags']} | " + " | ".join(str(counts[s]) for s in STATUSES) + " |")
    return "\n".join(out) + "\n"


# Inline, so the page renders offline and alone. Tables take the page's width and never more (fixed layout, long
# words broken anywhere): digests, references and commands wrap inside their cells at any window width.
_STYLE = (
    "*{box-sizing:border-box}"
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;padding:1rem 1.5rem;color:#1f2328;"
    "line-height:1.45;overflow-wrap:anywhere}"
    "h1{font-size:1.5rem;margin:.2rem 0 .6rem}h2{font-size:1.2rem;margin:1.6rem 0 .5rem;"
    "border-bottom:1px solid #d0d7de;padding-bottom:.2rem}"
    "ul.about{margin:.2rem 0;padding-left:1.2rem;color:#57606a}"
    ".headline{font-size:1.05rem;font-weight:600;margin:.4rem 0}"
    "table{border-collapse:collapse;width:100%;table-layout:fixed;margin:.4rem 0 1rem}"
    "table.counts{width:auto;min-width:14rem;max-width:100%}"
    "th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}"
    "th{background:#f6f8fa}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}"
    "code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85em;white-space:pre-wrap;"
    "overflow-wrap:anywhere;word-break:break-word}"
    "code.command{display:block;background:#f6f8fa;border-radius:4px;padding:.2rem .35rem}"
    "code.command span{display:inline-block;max-width:100%}"
    "table.failures td:first-child{border-left:4px solid #cf222e}"
    "details{border:1px solid #d0d7de;border-left:4px solid #bf8700;border-radius:4px;margin:.5rem 0;"
    "padding:.3rem .7rem}"
    "details[open]{padding-bottom:.6rem}summary{cursor:pointer}"
    "summary .repository{font-weight:600}summary .group{display:block;margin:.15rem 0 .15rem 1.2rem}"
    "p.group-title{font-weight:600;margin:.7rem 0 .2rem}"
    "col.tag{width:16%}col.digest{width:30%}col.platforms{width:14%}col.command{width:40%}"
    "col.what{width:32%}col.error{width:38%}col.fix{width:30%}"
    "col.repository{width:34%}"
    "@media (max-width:900px){body{padding:.6rem .8rem}col.tag{width:18%}col.digest{width:24%}"
    "col.platforms{width:16%}col.command{width:42%}}"
)


def render_html(report: SweepReport) -> str:
    """The report as one self-contained HTML page (no script, no outside resource) with the sections of the
    Markdown; each repository's violations collapse under a summary of their groups."""

    def e(text: object) -> str:
        return html.escape(sanitise(text))

    def code(text: str | None) -> str:
        return f"<code>{e(text)}</code>" if text else "—"

    def command(text: str | None) -> str:
        """A command whose lines break between its words (each word breaks only when wider than the cell)."""
        if not text:
            return "—"
        words = " ".join(f"<span>{e(word)}</span>" for word in text.split(" "))
        return f"<code class=\"command\">{words}</code>"

    def table(columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[str]], *, css: str = "",
              numeric_from: int = 99) -> str:
        cols = "".join(f"<col class=\"{name}\">" for name, _ in columns)
        head = "".join(f"<th class=\"n\">{e(label)}</th>" if index >= numeric_from else f"<th>{e(label)}</th>"
                       for index, (_, label) in enumerate(columns))
        body = "".join(
            "<tr>" + "".join(f"<td class=\"n\">{value}</td>" if index >= numeric_from else f"<td>{value}</td>"
                             for index, value in enumerate(row)) + "</tr>"
            for row in rows
        )
        attribute = f" class=\"{css}\"" if css else ""
        return f"<table{attribute}><colgroup>{cols}</colgroup><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    groups = _violation_groups(report)
    title = e(_heading(report))
    parts = [("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
              "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
              f"<title>{title}</title><style>{_STYLE}</style></head><body><h1>{title}</h1><ul class=\"about\">")]
    parts += [f"<li>{e(line)}</li>" for line in _summary_lines(report)]
    parts.append(f"</ul><section id=\"totals\"><h2>Totals</h2><p class=\"headline\">{e(_headline(report))}</p>")
    totals = [[e(status), str(count)] for status, count in report.totals().items()]
    totals.append(["<strong>total</strong>", f"<strong>{len(report.items)}</strong>"])
    parts.append(table([("status", "status"), ("count", "tags")], totals, css="counts", numeric_from=1))
    if report.results():
        rows = [[e(result), str(count)] for result, count in report.results().items()]
        parts.append(table([("result", "result"), ("count", "tags")], rows, css="counts", numeric_from=1))
    parts.append("</section>")
    failures = _failure_rows(report)
    if failures:
        parts.append(f"<section id=\"failures\"><h2>Failures ({len(failures)})</h2>")
        rows = [[code(what), e(error), command(fix)] for what, error, fix in failures]
        parts.append(table([("what", "could not be read"), ("error", "error"), ("fix", "command")], rows,
                           css="failures"))
        parts.append("</section>")
    parts.append(f"<section id=\"violations\"><h2>{e(_violations_heading(report, groups))}</h2>")
    if not groups:
        parts.append("<p>No violations.</p>")
    for repository, repository_groups in groups.items():
        count = sum(len(group.items) for group in repository_groups)
        opened = " open" if len(groups) == 1 else ""
        summary = "".join(f"<span class=\"group\">{e(group.title)}</span>" for group in repository_groups)
        parts.append(f"<details{opened}><summary><span class=\"repository\">{e(repository)}</span> — "
                     f"{e(counted(count, 'tag'))}{summary}</summary>")
        for group in repository_groups:
            rows = [[code(item.tag), code(item.digest), e(", ".join(item.platforms) or "—"),
                     command(item.suggestion)] for item in group.items]
            parts.append(f"<p class=\"group-title\">{e(group.count)}: {e(group.description)}</p>")
            parts.append(table([("tag", "tag"), ("digest", "digest"), ("platforms", "platforms"),
                                ("command", "command")], rows, css="tags"))
        parts.append("</details>")
    parts.append("</section><section id=\"repositories\"><h2>By repository</h2>")
    rows = [[e(name), str(counts["tags"]), *(str(counts[s]) for s in STATUSES)]
            for name, counts in report.by_repository().items()]
    parts.append(table([("repository", "repository"), ("count", "tags"), *((s, s) for s in STATUSES)], rows,
                       numeric_from=1))
    parts.append("</section></body></html>\n")
    return "".join(parts)


def format_summary(report: SweepReport, display: Display = Display()) -> str:
    """A few lines for a terminal: totals, then each violation and failure with its command. With the display's width
    (the terminal's: importer.entry.terminal.display_for) every line fits it, a problem giving way before its reference
    (digests first, see importer.entry.terminal) and a note saying so; without one (the default) every value is whole,
    as a pipe and `--wide` want. With its colour, each status is coloured."""
    summary = _Summary(display)
    totals = ", ".join(counted(count, status) if status == "violation" else f"{count} {status}"
                       for status, count in report.totals().items() if count)
    summary.line("", f"{_heading(report)}: {counted(len(report.items), 'tag')} ({totals or 'none'})")
    for line in _summary_lines(report):
        summary.line("  ", line, shorten_reason)
    if report.results():
        summary.line("  ", "results: " + ", ".join(f"{count} {result}" for result, count in report.results().items()))
    for name, error in report.repository_errors:
        summary.line(f"  {summary.status('FAILED', 'failed')}  ", f"{report.registry}/{name}: {error}", shorten_reason)
    for item in report.violations + report.failures:
        summary.item(f"  {summary.status(f'{item.status.upper():<9}', item.status)} ", item.reference,
                     f"[{_what(item)}] {_problem(item)}")
        if item.suggestion:
            summary.line("            $ ", item.suggestion, shorten_middle)
    return summary.text()


class _Summary:
    """The lines of format_summary: each made of our own prefix (it may hold colour) and text from outside, that text
    sanitised whole (none of it may break the line) and then fitted to what the display's width leaves."""

    # A violation's reference and problem: the reference takes its short digest, then the problem gives way first.
    _ITEM_STEPS = ((0, 44), (1, 40), (1, 30), (0, 36), (1, 20), (0, 24), (1, 12))
    _COLOUR_CODE = re.compile(r"\x1b\[[0-9;]*m")  # ours, in a prefix: they take no column

    def __init__(self, display: Display) -> None:
        self.display = display
        self.lines: list[str] = []
        self.shortened = False

    def status(self, shown: str, status: str) -> str:
        return paint(shown, result_colour(status)) if self.display.colour else shown

    def line(self, prefix: str, text: str, shorten: Callable[[str, int], str] = shorten_end) -> None:
        text = sanitise(text)
        room = self._room(prefix)
        shown = text if room is None else shorten(text, room)
        self.shortened = self.shortened or shown != text
        self._append(prefix, shown)

    def item(self, prefix: str, reference: str, problem: str) -> None:
        cells = [sanitise(reference), sanitise(problem)]
        room = self._room(prefix)
        if room is not None:
            widths = fit_widths([text_width(cell) for cell in cells], self._ITEM_STEPS, room - 2)
            shown = [shorten_middle(cells[0], widths[0]), shorten_reason(cells[1], widths[1])]
            self.shortened = self.shortened or shown != cells
            cells = shown
        self._append(prefix, f"{cells[0]}  {cells[1]}")

    def text(self) -> str:
        if self.shortened:
            self.lines.append(shortened_note(self.display))
        return "\n".join(self.lines)

    def _room(self, prefix: str) -> int | None:
        """The columns left for the text after `prefix`; None: no width to fit."""
        if self.display.width is None:
            return None
        return max(1, self.display.width - text_width(self._COLOUR_CODE.sub("", prefix)))

    def _append(self, prefix: str, text: str) -> None:
        plain = self._COLOUR_CODE.sub("", prefix) + text
        if self.display.width is not None and text_width(plain) > self.display.width:  # narrower than the prefix
            self.lines.append(shorten_end(plain, self.display.width))
            self.shortened = True
        else:
            self.lines.append(prefix + text)
