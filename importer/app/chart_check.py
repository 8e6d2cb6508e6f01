"""A Helm chart's images checked read-only, for `check` on a chart: the chart guard's judgement, without its writes.

    results = check_chart_images(policy, registry, info)     # info: read_chart_from_registry / read_chart_file
    for result in results:
        result.image.reference, result.record.verdict, result.record.action, result.error

Each image (in the chart's order: sorted by reference) is judged as `importer.app.chart_guard.ChartManager` judges
it on a chart push (docs/design.md, Charts), with the same steps, but nothing is imported, re-imported, claimed or
recorded, and `action` says what the chart push would do:

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

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from importer.app.chart_guard import required_platforms
from importer.app.inspection import inspect_manifest
from importer.core.charts import ChartImage, ChartInfo
from importer.core.decide import COMPLIANT, IGNORED, VIOLATION, decide, verdict_fields
from importer.core.manifests import ManifestError
from importer.core.outcome import Outcome
from importer.core.platforms import matches_pattern
from importer.core.policy import Policy, Rule
from importer.core.policy.upstream import guarded_repository_for
from importer.core.reference import reference_of
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
    host = registry.host
    start = Outcome(event_id="", received_at="", result="ignored", reference=image.reference, registry=host,
                    source=image.reference)
    mapping = guarded_repository_for(policy, image.reference, guarded_host=host)
    if mapping is None:
        return ChartImageResult(image, start.replace(
            verdict=VIOLATION, action="alert",
            reason=f"{image.reference} is not in {host} and no policy rule's upstream maps it to a repository there: "
                   f"not checked",
        ))
    rule, repository = mapping
    record = start.replace(repository=repository, tag=image.tag, digest=image.digest,
                           reference=reference_of(host, repository, image.tag, image.digest))
    if rule.ignore or policy.quarantine.holds(repository):
        why = "is ignored by the policy" if rule.ignore else "is a quarantine repository"
        return ChartImageResult(image, record.replace(verdict=IGNORED, action="none", reason=f"{repository} {why}"))
    required = required_platforms(rule, info.platforms, image.platforms)
    wanted = dataclasses.replace(rule, require=required)
    record = record.replace(required=tuple(map(str, required)))
    clashes = [(str(platform), pattern) for platform in required for pattern in rule.forbid
               if matches_pattern(pattern, platform)]
    if clashes:
        described = ", ".join(f"{platform} (forbidden by {pattern!r})" for platform, pattern in clashes)
        return ChartImageResult(image, record.replace(
            verdict=VIOLATION, action="alert", forbidden=tuple(dict.fromkeys(p for p, _ in clashes)),
            reason=f"the chart requires {described}: no image can satisfy the policy"))
    try:
        head = registry.head_manifest(repository, image.digest or image.tag or "")
        if head is None:
            return ChartImageResult(image, record.replace(
                verdict=VIOLATION, action=_import_action(rule, pinned=False), missing=record.required,
                reason=f"not in {host}/{repository}" + _remedy(rule, repository, pinned=False)))
        facts = inspect_manifest(registry, repository, head.digest, wanted)
    except (RegistryError, ManifestError) as error:
        return ChartImageResult(image, record.replace(verdict=None, action="none", reason=str(error)), error)
    verdict = decide(facts, wanted)
    record = record.replace(**verdict_fields(facts, verdict))  # type: ignore[arg-type]
    if verdict.verdict == COMPLIANT:
        return ChartImageResult(image, record)
    if verdict.verdict == IGNORED:  # a chart, a signature…: nothing a node could run
        return ChartImageResult(image, record.replace(verdict=VIOLATION, action="alert",
                                                      reason=f"{verdict.reason}: a chart must reference images"))
    pinned = image.digest is not None
    return ChartImageResult(image, record.replace(action=_import_action(rule, pinned=pinned),
                                                  reason=verdict.reason + _remedy(rule, repository, pinned=pinned)))


def _import_action(rule: Rule, *, pinned: bool) -> str:
    """What a chart push does about the image: re-import it when it can, else alert (never quarantine)."""
    return "reimport" if rule.upstream and not pinned and rule.on_violation != "alert" else "alert"


def _remedy(rule: Rule, repository: str, *, pinned: bool) -> str:
    """What a chart push would do about it, as the end of the reason."""
    if pinned:
        return "; pinned by digest, so a chart push cannot replace it: the chart must pin a digest that complies"
    if rule.upstream is None:
        return f"; {rule.key_path} has no upstream to import it from"
    if rule.on_violation == "alert":
        return f"; {rule.key_path} says on_violation: alert"
    return f"; a chart push imports it from {rule.upstream_for(repository)}"


def worst_verdict(verdicts: Sequence[str | None]) -> str:
    """The chart's verdict from its images': violation over compliant over ignored; no image judged is compliant."""
    known = [verdict for verdict in verdicts if verdict]
    if VIOLATION in known:
        return VIOLATION
    if COMPLIANT in known or not known:
        return COMPLIANT
    return IGNORED
