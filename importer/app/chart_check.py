"""A Helm chart's images checked read-only, for `check` on a chart: the chart guard's judgement, without its writes.

    results = check_chart_images(policy, registry, info)     # info: read_chart_from_registry / read_chart_file
    for result in results:
        result.image.reference, result.record.verdict, result.record.action, result.error

Each image (in the chart's order: sorted by reference) is judged by `importer.app.chart_judgement.judge_chart_image`,
the judgement `importer.app.chart_guard.ChartManager` acts on for a chart push (docs/design.md, Charts), but nothing
is imported, re-imported, claimed or recorded, and `action` says what the chart push would do:

1. Where it lives (`guarded_repository_for`, with `registry.host` as the guarded registry). No rule maps it: a
   violation, action `alert`, not checked, its registry never contacted (as the chart guard's `unguarded`).
2. A repository the policy ignores, or a quarantine repository: `ignored`.
3. What it must offer (`required_platforms`: the rule, the chart's annotation, the image's Artifact Hub platforms);
   a required platform the rule forbids: a violation, action `alert`.
4. Missing from the registry: a violation, every required platform missing; action `reimport` when the rule has an
   upstream (and does not say `on_violation: alert`), else `alert`.
5. There: inspected and decided against those requirements. Short of a platform: a violation, action `reimport`
   when it could be (an upstream, no pinned digest, not `on_violation: alert`), else `alert`; never `quarantine`.
   Not a runnable image: a violation.

A registry or content error reading one image is that image's `error` (its record has no verdict); the other images
are still checked. The record's verdict fields are those of `check --json` (`Outcome.verdict_dict()`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from importer.app.chart_judgement import ChartImageCase, chart_push_action, chart_push_forecast, judge_chart_image
from importer.core.charts import ChartImage, ChartInfo
from importer.core.decide import COMPLIANT, IGNORED, VIOLATION, verdict_fields
from importer.core.manifests import ManifestError
from importer.core.outcome import Outcome
from importer.core.policy import Policy
from importer.ports.registry import Registry, RegistryError

__all__ = ["ChartImageResult", "check_chart_images", "worst_verdict"]


@dataclass(frozen=True, slots=True)
class ChartImageResult:
    """One image of a chart: where it lives and its verdict (`record`), or why it could not be judged (`error`)."""

    image: ChartImage
    record: Outcome
    error: RegistryError | ManifestError | None = None


def check_chart_images(policy: Policy, registry: Registry, info: ChartInfo) -> tuple[ChartImageResult, ...]:
    """Judge every image of `info` against `policy` in `registry`, reading only (see the module docstring)."""
    return tuple(_check(policy, registry, info, image) for image in info.images)


def _check(policy: Policy, registry: Registry, info: ChartInfo, image: ChartImage) -> ChartImageResult:
    """The read-only verdict record of one image, from the judgement a chart push acts on."""
    judgement = judge_chart_image(policy, registry, info, image)
    case, reason = judgement.case, judgement.reason
    record = Outcome(event_id="", received_at="", result="ignored", reference=image.reference, registry=judgement.host,
                     source=image.reference)
    if case is ChartImageCase.UNGUARDED:
        return ChartImageResult(image, record.replace(verdict=VIOLATION, action="alert", reason=reason))
    assert judgement.rule is not None and judgement.repository is not None and judgement.reference is not None
    rule, repository = judgement.rule, judgement.repository
    record = record.replace(repository=repository, tag=image.tag, digest=image.digest, reference=judgement.reference)
    if case is ChartImageCase.IGNORED:
        return ChartImageResult(image, record.replace(verdict=IGNORED, action="none", reason=reason))
    record = record.replace(required=judgement.required)
    match case:
        case ChartImageCase.FORBIDDEN:
            return ChartImageResult(image, record.replace(
                verdict=VIOLATION, action="alert", forbidden=judgement.forbidden_required,
                reason=f"{reason}: no image can satisfy the policy"))
        case ChartImageCase.UNREADABLE:
            return ChartImageResult(image, record.replace(verdict=None, action="none", reason=reason), judgement.error)
        case ChartImageCase.MISSING:
            return ChartImageResult(image, record.replace(
                verdict=VIOLATION, action=chart_push_action(rule, pinned=False), missing=record.required,
                reason=reason + chart_push_forecast(rule, repository, pinned=False)))
    assert judgement.verdict is not None
    record = record.replace(**verdict_fields(judgement.facts, judgement.verdict))  # type: ignore[arg-type]
    if case is ChartImageCase.COMPLIANT:
        return ChartImageResult(image, record)
    if case is ChartImageCase.NOT_AN_IMAGE:  # a chart, a signature…: nothing a node could run
        return ChartImageResult(image, record.replace(verdict=VIOLATION, action="alert",
                                                      reason=f"{reason}: a chart must reference images"))
    pinned = judgement.pinned
    return ChartImageResult(image, record.replace(action=chart_push_action(rule, pinned=pinned),
                                                  reason=reason + chart_push_forecast(rule, repository, pinned=pinned)))


def worst_verdict(verdicts: Sequence[str | None]) -> str:
    """The chart's verdict from its images': violation over compliant over ignored; no image judged is compliant."""
    known = [verdict for verdict in verdicts if verdict]
    if VIOLATION in known:
        return VIOLATION
    if COMPLIANT in known or not known:
        return COMPLIANT
    return IGNORED
