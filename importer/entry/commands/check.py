"""`check REF`: the verdict for one image reference, or for every image of a Helm chart, as text (table), the verdict
JSON of the contract, JUnit XML or SARIF (-o/--output; --json is -o json), and optionally in a report file.

A chart (a manifest whose config is the Helm config media type, pushed by `helm push`; or a packaged .tgz on this
machine) is checked image by image, read-only, as a chart push would judge them (importer.app.chart_check). Its JSON is
the chart's own verdict object, its verdict the worst of its images', extended with `chart`, `images` (a verdict
object per image, with `chart_image`, `source` and `error`) and `unresolved`. `oci://` before REF is taken off, as
Helm does.

Exit codes: 0 compliant or ignored, 1 violation (of the image, or of any image of the chart), 2 usage or policy
error, 3 registry or network error (the image, or any image of the chart, could not be read).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from importer.app.inspection import evaluate
from importer.core.decide import VIOLATION, verdict_fields
from importer.core.manifests import ManifestError
from importer.core.media_types import HELM_CONFIG
from importer.core.outcome import VERDICT_FIELDS, Outcome
from importer.core.program import PROGRAM
from importer.core.reference import ReferenceError, parse_reference, reference_of
from importer.core.words import counted
from importer.entry.chart_file import is_chart_file
from importer.entry.commands.common import (
    EXIT_OK,
    EXIT_REGISTRY,
    EXIT_VIOLATION,
    Subcommands,
    UsageError,
    client_for,
    settings_for,
    with_examples,
)
from importer.entry.formats import (
    CHECK_REPORTS,
    ErrorInfo,
    add_output_flags,
    describe_error,
    output_format,
    report_format,
)
from importer.entry.formats.cases import Case, Run, case_from_verdict
from importer.entry.formats.errors import chart_errors
from importer.entry.oci_reference import strip_oci_scheme
from importer.entry.terminal import Column, sanitise, table
from importer.ports.registry import Registry, RegistryError

if TYPE_CHECKING:
    from importer.app.chart_check import ChartImageResult
    from importer.app.settings import Settings
    from importer.core.charts import ChartInfo

@dataclass
class _Checked:
    """What a check found: the verdict object, and for a chart its images."""

    record: dict[str, Any]
    images: list[tuple[dict[str, Any], ErrorInfo | None]] = field(default_factory=list)
    chart: bool = False

    @property
    def exit_code(self) -> int:
        if any(error is not None for _, error in self.images):
            return EXIT_REGISTRY
        return EXIT_VIOLATION if self.record["verdict"] == VIOLATION else EXIT_OK

    def cases(self) -> tuple[Case, ...]:
        if not self.chart:
            return (case_from_verdict(self.record),)
        return tuple(case_from_verdict(image, error) for image, error in self.images)


def _print_verdict(record: dict[str, Any]) -> None:
    # Every value came from the registry (the config's os and architecture too): each line is sanitised whole.
    print(sanitise(f"{record['reference']}  {record['verdict']}"
                   + (f" → {record['action']}" if record["action"] not in (None, "none") else "")))
    rows = [
        ("digest", record["digest"]),
        ("kind", f"{record['kind']} ({record['media_type']})" if record["kind"] else None),
        ("platforms", ", ".join(record["platforms"]) or "—"),
        ("required", ", ".join(record["required"]) or "—"),
        ("missing", ", ".join(record["missing"])),
        ("forbidden", ", ".join(record["forbidden"])),
        ("inconsistent", "; ".join(record["inconsistent"])),
        ("reason", record["reason"]),
    ]
    for name, value in rows:
        if value:
            print(sanitise(f"  {name:<12} {value}"))


def _print_chart_images(checked: _Checked) -> None:
    """The chart's images as a table: verdict, the image as the chart names it, where it was checked, why."""
    rows = []
    for image, error in checked.images:
        verdict = f"error ({error.kind})" if error else f"{image['verdict']}" + (
            f" → {image['action']}" if image["action"] not in (None, "none") else "")
        rows.append((verdict, image["chart_image"], image["reference"] or "—", image["reason"] or ""))
    for line in table(_CHART_IMAGE_COLUMNS, rows):
        print("  " + line)


_CHART_IMAGE_COLUMNS = (Column("VERDICT"), Column("IMAGE"), Column("CHECKED AS"), Column("REASON"))


def _verdict_object(reference: Any, facts: Any, verdict: Any) -> dict[str, Any]:
    fields = {"digest": reference.digest, **verdict_fields(facts, verdict)}
    return Outcome(
        event_id="",
        received_at="",
        result="ignored",  # unused: `check` prints only the verdict fields
        repository=reference.repository,
        tag=reference.tag,
        reference=reference_of(reference.registry, reference.repository, reference.tag, fields["digest"]),  # type: ignore[arg-type]
        **fields,  # type: ignore[arg-type]
    ).verdict_dict()


def _chart_object(base: dict[str, Any], info: ChartInfo, results: tuple[ChartImageResult, ...]) -> _Checked:
    """The chart's verdict object, extended with its images (see the module docstring)."""
    from importer.app.chart_check import worst_verdict
    from importer.app.chart_judgement import chart_notes

    images: list[tuple[dict[str, Any], ErrorInfo | None]] = []
    for result in results:
        error = describe_error(result.error, reference=result.record.reference) if result.error else None
        image = result.record.verdict_dict()
        image.update(chart_image=result.image.reference, source=result.image.source,
                     error=error.as_dict() if error else None)
        images.append((image, error))
    verdicts = [image["verdict"] for image, _ in images]
    unreadable = sum(1 for _, error in images if error)
    counts = ", ".join(counted(verdicts.count(name), name) if name == VIOLATION else f"{verdicts.count(name)} {name}"
                       for name in ("compliant", VIOLATION, "ignored"))
    reason = f"chart {info.name} {info.version}: {counted(len(images), 'image')}: {counts}, {unreadable} unreadable"
    reason += chart_notes(info)
    verdict = worst_verdict(verdicts)
    actions = {image["action"] for image, _ in images if image["verdict"] == VIOLATION}
    record = {
        **base,
        "required": list(info.platforms),
        "verdict": verdict,
        "action": ("reimport" if "reimport" in actions else "alert") if verdict == VIOLATION else "none",
        "reason": reason,
        "chart": {"name": info.name, "version": info.version, "app_version": info.app_version},
        "images": [image for image, _ in images],
        "unresolved": list(info.unresolved),
    }
    return _Checked(record, images, chart=True)


def _check_chart_file(settings: Settings, path: str) -> _Checked:
    """A packaged chart on this machine: its images are looked up in the one guarded registry."""
    from importer.app.chart_check import check_chart_images
    from importer.entry.chart_file import read_chart_file

    if len(settings.registries) != 1:
        raise UsageError(f"check {path!r}: a chart file's images are checked in the guarded registry, so "
                         f"PLATFORM_GUARD_REGISTRIES must name exactly one (it names {len(settings.registries)})")
    info = read_chart_file(path)
    registry = client_for(settings, settings.registries[0])
    try:
        results = check_chart_images(settings.policy, registry, info)
    finally:
        registry.close()
    base: dict[str, Any] = {name: None for name in VERDICT_FIELDS}
    base.update(reference=path, kind="artifact", platforms=[], missing=[], forbidden=[], inconsistent=[])
    return _chart_object(base, info, results)


def _check_reference(settings: Settings, target: str) -> _Checked:
    reference = parse_reference(target)
    registry: Registry = client_for(settings, reference.registry)
    try:
        facts, verdict = evaluate(
            settings.policy, registry, reference.repository, reference.digest or reference.tag or "latest",
            tag=reference.tag,
        )
        record = _verdict_object(reference, facts, verdict)
        if facts is None or facts.artifact_type != HELM_CONFIG:
            return _Checked(record)
        from importer.app.chart_check import check_chart_images
        from importer.app.chart_reading import read_chart_from_registry

        info = read_chart_from_registry(registry, reference.repository, facts.digest)
        return _chart_object(record, info, check_chart_images(settings.policy, registry, info))
    finally:
        registry.close()


def command_check(args: argparse.Namespace) -> int:
    """The check, its output in the format asked for; with machine output, errors (usage errors too) are documents."""
    from importer.entry.formats.emit import emit_error, machine_text, write_report_text

    started = time.perf_counter()
    started_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    output = output_format(args.output, args.json)
    target = strip_oci_scheme(args.ref)
    run = Run("check", f"{PROGRAM} check {target}", started_at=started_at)
    report: tuple[Path, str] | None = None
    try:
        if args.report:
            report = (Path(args.report), report_format(args.report, CHECK_REPORTS))
        settings = settings_for(args.policy)
        if is_chart_file(target):
            checked = _check_chart_file(settings, target)
        else:
            checked = _check_reference(settings, target)
        judged = Run("check", run.title, cases=checked.cases(), started_at=started_at,
                     duration_seconds=time.perf_counter() - started)
        if report is not None:
            write_report_text(report[0], machine_text(report[1], run=judged, document=checked.record))
    except (UsageError, ReferenceError) as error:
        return emit_error(describe_error(error, reference=target), run=run, output=output, report=None,
                          line=f"error: {error}")
    except (RegistryError, ManifestError, *chart_errors()) as error:
        return emit_error(describe_error(error, reference=target), run=run, output=output, report=report)
    if output == "table":
        _print_verdict(checked.record)
        if checked.chart:
            _print_chart_images(checked)
        for image, error in checked.images:
            if error is not None:
                print(sanitise(f"error: {image['chart_image']}: {error.message}"), file=sys.stderr)
    else:
        print(machine_text(output, run=judged, document=checked.record))
    return checked.exit_code


def register(commands: Subcommands) -> None:
    check = commands.add_parser(
        "check",
        help="verdict for one image reference (or every image of a Helm chart)",
        description="Inspect REF and compare the platforms it offers with the policy. A Helm chart (pushed with "
        "helm push, or a packaged .tgz) has each image it references checked, read-only, as a chart push would. "
        "Exit codes: 0 compliant or ignored, 1 violation, 2 usage or policy error, 3 registry or network error.",
        **with_examples(
            "platform-guard check myregistry.azurecr.io/team/api:2.4.1 --policy policy.yaml",
            "platform-guard check myregistry.azurecr.io/team/api:2.4.1 -o junit --report platforms.sarif > platforms.xml",
            "platform-guard check oci://myregistry.azurecr.io/charts/shop:1.0.0 -o json",
        ),
    )
    check.add_argument("ref", metavar="REF", help="image or chart reference, e.g. 127.0.0.1:5000/team/app:1.0, "
                       "…@sha256:…, oci://127.0.0.1:5000/charts/shop:1.0.0, or a chart .tgz")
    check.add_argument("--policy", metavar="FILE", help="policy YAML (default: settings, else the embedded default)")
    add_output_flags(check, what="the verdict", reports=CHECK_REPORTS)
    check.set_defaults(run=command_check)
