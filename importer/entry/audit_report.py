"""The audit report as people read it: Markdown or HTML for a file (`audit --report`), a few lines for a terminal.

    write_report(report, Path("audit.md"))      # or .html; ValueError for another extension
    print(format_summary(report))               # totals, then each violation and failure with its command

Every rendering has the same parts: the scope and sweep, totals by status (and by result outside a dry run), tags
per repository, the violations with reasons and suggested commands, then the failures. `report.as_dict()`
(importer.app.sweep) is the --json form. See docs/design.md, Sweep. Names, reasons and errors come from the registry:
the terminal summary sanitises each of its lines (importer.entry.terminal), the HTML escapes them.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from importer.app.sweep import STATUSES, SweepItem, SweepReport
from importer.entry.terminal import sanitise


def _problem(item: SweepItem) -> str:
    if item.error:
        return item.error
    return item.reason or ""


def _what(item: SweepItem) -> str:
    """`quarantine` in a dry run; `reimport → reimported` once done."""
    action = item.action or "none"
    return f"{action} → {item.result}" if item.result else action


def _heading(report: SweepReport) -> str:
    scope = f"{report.registry}/{report.repositories}" if report.repositories else report.registry
    return f"Platform Guard audit of {scope}"


def _summary_lines(report: SweepReport) -> list[str]:
    requests = f", {report.registry_requests} registry requests" if report.registry_requests is not None else ""
    lines = [
        f"sweep {report.sweep_id}, mode {report.mode}, policy {report.policy_source}",
        f"{report.started_at} to {report.finished_at} ({report.duration_seconds:.1f} s{requests})",
    ]
    if report.skipped_repositories:
        lines.append(f"quarantine repositories skipped: {', '.join(report.skipped_repositories)}")
    if not report.catalog_complete:
        lines.append("incomplete: the time budget ran out before the repositories were all listed")
    if report.not_reached:
        lines.append(f"incomplete: the time budget ran out with {report.not_swept} tags not swept and "
                     f"{len(report.not_reached)} repositories not reached "
                     f"({report.repositories_not_listed} not listed)")
    return lines


def render_markdown(report: SweepReport) -> str:
    """The report as Markdown: totals, per repository, violations with reasons and commands, failures."""

    def cell(text: object) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    def code(text: str | None) -> str:
        return f"`{cell(text)}`" if text else ""

    out = [f"# {_heading(report)}", ""]
    out += [f"- {line}" for line in _summary_lines(report)]
    out += ["", "## Totals", "", "| status | tags |", "|---|---:|"]
    out += [f"| {status} | {count} |" for status, count in report.totals().items()]
    out += [f"| **total** | **{len(report.items)}** |", ""]
    if report.results():
        out += ["## Results", "", "| result | tags |", "|---|---:|"]
        out += [f"| {result} | {count} |" for result, count in report.results().items()]
        out.append("")
    out += ["## By repository", "", "| repository | tags | " + " | ".join(STATUSES) + " |",
            "|---|---:|" + "---:|" * len(STATUSES)]
    for name, counts in report.by_repository().items():
        out.append(f"| {cell(name)} | {counts['tags']} | " + " | ".join(str(counts[s]) for s in STATUSES) + " |")
    out += ["", f"## Violations ({len(report.violations)})", ""]
    if report.violations:
        out += ["| reference | platforms | required | action | reason | suggested command |",
                "|---|---|---|---|---|---|"]
        for item in report.violations:
            out.append(
                f"| {code(item.reference)} | {cell(', '.join(item.platforms) or '—')} "
                f"| {cell(', '.join(item.required))} | {cell(_what(item))} | {cell(_problem(item))} "
                f"| {code(item.suggestion)} |"
            )
    else:
        out.append("None.")
    if report.failures or report.repository_errors:
        out += ["", f"## Failures ({len(report.failures) + len(report.repository_errors)})", "",
                "| reference | error | suggested command |", "|---|---|---|"]
        for name, error in report.repository_errors:
            out.append(f"| {code(f'{report.registry}/{name}')} | {cell(error)} | |")
        for item in report.failures:
            out.append(f"| {code(item.reference)} | {cell(_problem(item))} | {code(item.suggestion)} |")
    return "\n".join(out) + "\n"


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}"
    "th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}td.n{text-align:right}"
    "code{font-size:.9em}tr.violation td:first-child{border-left:4px solid #c33}"
)


def render_html(report: SweepReport) -> str:
    """The report as one self-contained HTML page with the same sections as the Markdown."""
    e = html.escape

    def table(header: Sequence[str], rows: Sequence[Sequence[str]], *, numeric_from: int = 99,
              row_class: str = "") -> str:
        head = "".join(f"<th>{e(name)}</th>" for name in header)
        body = "".join(
            f"<tr class=\"{row_class}\">" + "".join(
                f"<td class=\"n\">{value}</td>" if index >= numeric_from else f"<td>{value}</td>"
                for index, value in enumerate(row)
            ) + "</tr>"
            for row in rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def code(text: str | None) -> str:
        return f"<code>{e(text)}</code>" if text else ""

    parts = [f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{e(_heading(report))}</title>"
             f"<style>{_STYLE}</style></head><body><h1>{e(_heading(report))}</h1><ul>"]
    parts += [f"<li>{e(line)}</li>" for line in _summary_lines(report)]
    parts.append("</ul><h2>Totals</h2>")
    totals = [[e(status), str(count)] for status, count in report.totals().items()]
    totals.append(["<strong>total</strong>", f"<strong>{len(report.items)}</strong>"])
    parts.append(table(["status", "tags"], totals, numeric_from=1))
    if report.results():
        parts.append("<h2>Results</h2>")
        parts.append(table(["result", "tags"], [[e(r), str(c)] for r, c in report.results().items()], numeric_from=1))
    parts.append("<h2>By repository</h2>")
    rows = [[e(name), str(counts["tags"]), *(str(counts[s]) for s in STATUSES)]
            for name, counts in report.by_repository().items()]
    parts.append(table(["repository", "tags", *STATUSES], rows, numeric_from=1))
    parts.append(f"<h2>Violations ({len(report.violations)})</h2>")
    if report.violations:
        rows = [[code(item.reference), e(", ".join(item.platforms) or "—"), e(", ".join(item.required)),
                 e(_what(item)), e(_problem(item)), code(item.suggestion)] for item in report.violations]
        parts.append(table(["reference", "platforms", "required", "action", "reason", "suggested command"], rows,
                           row_class="violation"))
    else:
        parts.append("<p>None.</p>")
    if report.failures or report.repository_errors:
        parts.append(f"<h2>Failures ({len(report.failures) + len(report.repository_errors)})</h2>")
        rows = [[code(f"{report.registry}/{name}"), e(error), ""] for name, error in report.repository_errors]
        rows += [[code(item.reference), e(_problem(item)), code(item.suggestion)] for item in report.failures]
        parts.append(table(["reference", "error", "suggested command"], rows))
    parts.append("</body></html>\n")
    return "".join(parts)


def write_report(report: SweepReport, path: Path) -> None:
    """Write the report as Markdown (`.md`) or HTML (`.html`, `.htm`); ValueError for another extension."""
    suffix = path.suffix.lower()
    if suffix == ".md":
        text = render_markdown(report)
    elif suffix in (".html", ".htm"):
        text = render_html(report)
    else:
        raise ValueError(f"report {str(path)!r}: the name must end in .md or .html")
    path.write_text(text, encoding="utf-8")


def format_summary(report: SweepReport) -> str:
    """A few lines for a terminal: totals, then each violation and failure with its command."""
    totals = ", ".join(f"{count} {status}" for status, count in report.totals().items() if count)
    lines = [f"{_heading(report)}: {len(report.items)} tags ({totals or 'none'})"]
    lines += ["  " + line for line in _summary_lines(report)]
    if report.results():
        lines.append("  results: " + ", ".join(f"{count} {result}" for result, count in report.results().items()))
    for name, error in report.repository_errors:
        lines.append(f"  FAILED  {report.registry}/{name}: {error}")
    for item in report.violations + report.failures:
        lines.append(f"  {item.status.upper():<9} {item.reference}  [{_what(item)}] {_problem(item)}")
        if item.suggestion:
            lines.append(f"            $ {item.suggestion}")
    return "\n".join(sanitise(line) for line in lines)  # each line whole: none of its text may break it
