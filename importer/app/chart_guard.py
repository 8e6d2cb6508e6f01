"""The chart manager: every image a pushed Helm chart references must be in the guarded registry, runnable on the
platforms it needs. What is missing is imported from the policy's upstream, and each chart gets a report.

    manager = ChartManager(policy, registries, ledger, remediator, record=pipeline_record)
    summary = manager.handle(base)   # base: the chart push's outcome so far (registry, repository, digest, event_id)
    summary.reason                   # "chart shop 1.0.0: 3 images: 2 compliant, 1 imported; 0 failed"

The pipeline hands a tagged chart push here (ACR `ChartPushed`, or an OCI manifest whose config is the Helm config
media type). `handle` reads the chart by digest (importer/core/charts: in memory, hostile archives refused: the push
ends `failed` and nothing is written) and takes its images in order (sorted by reference, numbered from 1). Steps 1
and 2, and whether the image is there and compliant, are `importer.app.chart_judgement.judge_chart_image`, the
judgement `check` on a chart reports too; the manager acts on it:

1. Where the image lives: `importer.core.policy.guarded_repository_for` maps its upstream name onto a guarded
   repository (`docker.io/library/nginx` → `dockerhub/library/nginx` with `upstream: "docker.io/{path}"`); an
   image already on the guarded registry is itself. An image no rule maps is `alerted` (alert `unguarded`):
   Platform Guard never connects to a registry that only a chart names.
2. What it must offer: the rule's `require`, plus the platforms the chart declares (`platform-guard.io/platforms`)
   and those the `artifacthub.io/images` annotation lists for the image (`required_platforms`).
3. What is done: there and compliant → `compliant`, nothing written. There but short of a platform → re-imported
   from the rule's upstream with the remediation safety rules (preserved first, compare-and-swap, loop guard;
   never quarantined: the image may be right for its own repository) → `reimported`. Missing → imported
   (`Remediator.import_missing`) → `reimported`. An image pinned by digest is that digest or nothing. No
   upstream, no compliant variant upstream, nowhere at all → `failed` (which alerts). `on_violation: alert`, a
   paused repository or an image released on purpose → `alerted` (alert `violation`), nothing written. A
   repository the policy ignores → `ignored`.

Every image gets one outcome record with event id `<chart event id>/image/<n>`, claimed in the ledger like an
event, so that a delivery retried after a transient error does not handle an image twice; its reason names the
chart and says when the image was found only by heuristics (in values, not declared). The chart push's own
outcome is the summary (`summarize`): `failed` when an image could not be made compliant, else `alerted`,
`reimported` or `compliant`. Transient registry errors propagate, so that the delivery is retried.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from importer.app.chart_judgement import (
    ChartImageCase,
    ChartImageJudgement,
    alert_only_reason,
    chart_notes,
    judge_chart_image,
    no_upstream_reason,
    pinned_digest_reason,
    required_platforms,
)
from importer.app.chart_reading import read_chart_from_registry
from importer.app.inspection import inspect_manifest
from importer.app.registries import RegistryDirectory
from importer.app.remediation import Remediator, Remedy, Target
from importer.core.charts import ChartError, ChartImage, ChartInfo
from importer.core.decide import COMPLIANT, IGNORED, decide, verdict_fields
from importer.core.manifests import ManifestError
from importer.core.outcome import Outcome
from importer.core.policy import Policy, Rule
from importer.core.words import counted
from importer.ports.ledger import Ledger
from importer.ports.registry import CopyError, Registry, RegistryError

__all__ = ["ChartManager", "ChartSummary", "image_event_id", "required_platforms", "summarize"]

_PROBLEM_RESULTS = ("failed", "alerted")
_OTHER_RESULTS = ("alerted", "ignored", "superseded", "duplicate")  # counted after compliant, imported, failed
_SHOWN_SOURCES = 3


def image_event_id(chart_event_id: str, number: int) -> str:
    """The event id of the outcome of a chart's `number`-th image (from 1): `<chart event id>/image/<n>`."""
    return f"{chart_event_id}/image/{number}"


@dataclass(frozen=True, slots=True)
class ChartSummary:
    """What the chart push's own outcome says about its images."""

    result: str  # failed | alerted | reimported | compliant
    reason: str
    error: str | None = None
    alert: str | None = None


def summarize(info: ChartInfo, images: Sequence[tuple[ChartImage, Outcome]]) -> ChartSummary:
    """The summary of a chart's per-image outcomes: "chart shop 1.0.0: 3 images: 2 compliant, 1 imported; 0 failed"."""
    counts = Counter(outcome.result for _, outcome in images)
    total = len(images)
    reason = (
        f"chart {info.name} {info.version}: {counted(total, 'image')}: {counts['compliant']} compliant, "
        f"{counts['reimported']} imported; {counts['failed']} failed"
    )
    others = [f"{counts[result]} {result}" for result in _OTHER_RESULTS if counts[result]]
    if others:
        reason += ", " + ", ".join(others)
    problems = [f"{image.reference} ({outcome.result})"
                for image, outcome in images if outcome.result in _PROBLEM_RESULTS]
    if problems:
        reason += "; not made compliant: " + ", ".join(problems)
    reason += chart_notes(info, heuristic=sum(1 for image, _ in images if image.heuristic))
    if counts["failed"]:
        error = f"{counts['failed']} of {total} images could not be made compliant"
        return ChartSummary("failed", reason, error=error)
    if counts["alerted"]:
        return ChartSummary("alerted", reason, alert="chart")
    if counts["reimported"]:
        return ChartSummary("reimported", reason)
    return ChartSummary("compliant", reason)


class ChartManager:
    """Checks, and imports where needed, the images of pushed Helm charts (see the module docstring)."""

    def __init__(
        self,
        policy: Policy,
        registries: RegistryDirectory,
        ledger: Ledger,
        remediator: Remediator,
        *,
        record: Callable[[Outcome, float], Outcome],
        paused: Callable[[str], bool] = lambda repository: False,
    ) -> None:
        """`record(outcome, started)` records one per-image outcome (the pipeline's ledger, log and sinks)."""
        self.policy = policy
        self.registries = registries
        self.ledger = ledger
        self.remediator = remediator
        self._record = record
        self._paused = paused

    def handle(self, base: Outcome) -> Outcome:
        """Check every image of the chart at `base.registry/base.repository@base.digest`; returns the summary.

        The per-image outcomes are recorded on the way; the summary is returned for the caller to record.
        """
        if base.registry is None or base.repository is None or base.digest is None:
            raise ValueError(f"chart push {base.event_id}: registry, repository and digest are needed")
        if self.policy.rule_for(base.repository).ignore:
            return base.replace(result="ignored", verdict=IGNORED, action="none",
                                reason="repository is ignored by the policy")
        registry = self.registries.client(base.registry)
        try:
            info = read_chart_from_registry(registry, base.repository, base.digest)
        except ChartError as error:
            return base.replace(result="failed", verdict=None, action="none",
                                reason=f"the chart cannot be read, so its images were not checked: {error}",
                                error=str(error))
        images = [(image, self._image(base, registry, info, image, number))
                  for number, image in enumerate(info.images, 1)]
        summary = summarize(info, images)
        imported = any(outcome.result == "reimported" for _, outcome in images)
        return base.replace(
            result=summary.result,
            verdict=COMPLIANT if summary.result in ("compliant", "reimported") else "violation",
            action="reimport" if imported else "none",
            required=info.platforms,
            platforms=(),
            missing=(),
            forbidden=(),
            inconsistent=(),
            no_platform=(),
            reason=summary.reason,
            error=summary.error,
            alert=summary.alert,
        )

    # -- one image ---------------------------------------------------------------------------------

    def _image(self, base: Outcome, registry: Registry, info: ChartInfo, image: ChartImage, number: int) -> Outcome:
        """Check one image under its own claimed event id and record the outcome (an earlier record is reused)."""
        started = time.perf_counter()
        event_id = image_event_id(base.event_id, number)
        if not self.ledger.claim(event_id):
            earlier = self.ledger.outcomes(event_id=event_id, limit=1)
            if earlier:  # handled by an earlier delivery of this chart push that did not finish
                return earlier[0]
        context = _context(base, image, number, len(info.images))
        start = Outcome(event_id=event_id, received_at=base.received_at, result="failed", registry=base.registry,
                        reference=image.reference, actor=base.actor, user_agent=base.user_agent, schema=base.schema,
                        source=image.reference)
        try:
            outcome = self._check(start, registry, info, image, context)
        except RegistryError as error:
            if error.transient:
                self._release(event_id)
                raise
            outcome = start.replace(result="failed", reason=f"{error} ({context})", error=str(error))
        except (ManifestError, CopyError) as error:
            outcome = start.replace(result="failed", reason=f"{error} ({context})", error=str(error))
        except BaseException:
            self._release(event_id)
            raise
        return self._record(outcome, started)

    def _release(self, event_id: str) -> None:
        with contextlib.suppress(Exception):  # the pipeline deals with the ledger being away
            self.ledger.release(event_id)

    def _check(self, start: Outcome, registry: Registry, info: ChartInfo, image: ChartImage, context: str) -> Outcome:
        """Act on the image's judgement (importer/app/chart_judgement.py): import or re-import it where needed."""
        judgement = judge_chart_image(self.policy, registry, info, image)
        case, in_context = judgement.case, f"{judgement.reason} ({context})"
        if case is ChartImageCase.UNGUARDED:
            return start.replace(result="alerted", alert="unguarded", action="alert", reason=in_context)
        if judgement.error is not None:  # unreadable: handled by `_image` as if it had been raised here
            raise judgement.error
        outcome = start.replace(repository=judgement.repository, tag=image.tag, digest=image.digest,
                                reference=judgement.reference)
        match case:
            case ChartImageCase.IGNORED:
                return outcome.replace(result="ignored", verdict=IGNORED, action="none", reason=in_context)
            case ChartImageCase.FORBIDDEN:
                return outcome.replace(result="failed", required=judgement.required, reason=in_context,
                                       error="required platform is forbidden by the policy")
            case ChartImageCase.MISSING:
                return self._missing(outcome, registry, judgement, context)
        assert judgement.verdict is not None
        outcome = outcome.replace(**verdict_fields(judgement.facts, judgement.verdict))
        if case is ChartImageCase.COMPLIANT:
            return outcome.replace(result="compliant", reason=in_context)
        if case is ChartImageCase.NOT_AN_IMAGE:
            return outcome.replace(result="failed", reason=in_context, error=judgement.verdict.reason)
        return self._fix(outcome, registry, judgement, context)

    def _missing(self, outcome: Outcome, registry: Registry, judgement: ChartImageJudgement, context: str) -> Outcome:
        """The image is not in the guarded registry: import it from the rule's upstream."""
        rule, repository, wanted, image = judgement.rule, judgement.repository, judgement.wanted, judgement.image
        assert rule is not None and repository is not None and wanted is not None
        outcome = outcome.replace(required=judgement.required)
        absent = judgement.reason
        if rule.upstream is None:
            return outcome.replace(result="failed", error="no upstream to import from",
                                   reason=f"{absent} and {no_upstream_reason(rule)} ({context})")
        stop = self._why_not_import(repository, rule)
        if stop is not None:
            return outcome.replace(result="alerted", alert="violation", action="alert",
                                   reason=f"{absent}; {stop}, so it was not imported ({context})")
        remedy = self.remediator.import_missing(registry.host, repository, image.tag, image.digest, wanted)
        return self._remedied(outcome, remedy, registry, repository, wanted, context)

    def _fix(self, outcome: Outcome, registry: Registry, judgement: ChartImageJudgement, context: str) -> Outcome:
        """The image is there but short of a platform (or offers a forbidden one): re-import it, never quarantine."""
        rule, repository, wanted, image = judgement.rule, judgement.repository, judgement.wanted, judgement.image
        facts, verdict = judgement.facts, judgement.verdict
        assert rule is not None and repository is not None and wanted is not None
        assert facts is not None and verdict is not None
        if judgement.pinned:
            return outcome.replace(
                result="failed", error="pinned digest does not satisfy the requirements",
                reason=f"{verdict.reason}; {pinned_digest_reason(verdict.required)} ({context})",
            )
        stop = self._why_not_import(repository, rule)
        if stop is None and self.ledger.is_released(f"{registry.host}/{repository}", facts.digest):
            stop = "it was released on purpose"
        if stop is not None:
            return outcome.replace(result="alerted", alert="violation", action="alert",
                                   reason=f"{verdict.reason}; {stop}, so it was left as it is ({context})")
        if rule.upstream is None:
            return outcome.replace(result="failed", error="no upstream to import from",
                                   reason=f"{verdict.reason}; {no_upstream_reason(rule)} ({context})")
        fixing = dataclasses.replace(wanted, on_violation="reimport")
        assert image.tag is not None  # no digest, so parse_reference gave it a tag
        remedy = self.remediator.remediate(Target(registry.host, repository, image.tag, facts.digest), facts,
                                           decide(facts, fixing), fixing, quarantine_fallback=False)
        return self._remedied(outcome, remedy, registry, repository, wanted, context)

    def _remedied(self, outcome: Outcome, remedy: Remedy, registry: Registry, repository: str, wanted: Rule,
                  context: str) -> Outcome:
        """The per-image outcome after an import: the verdict fields describe what is there now."""
        if remedy.result == "reimported" and remedy.new_digest is not None:
            facts = inspect_manifest(registry, repository, remedy.new_digest, wanted)
            outcome = outcome.replace(**{**verdict_fields(facts, decide(facts, wanted)),
                                         "digest": outcome.digest or remedy.new_digest})
        return outcome.replace(
            result=remedy.result,
            reason=f"{remedy.reason} ({context})",
            new_digest=remedy.new_digest,
            preserved_as=remedy.preserved_as,
            source=remedy.source or outcome.source,
            error=remedy.error,
            alert=remedy.alert,
            affected_tags=remedy.affected_tags,
        )

    def _why_not_import(self, repository: str, rule: Rule) -> str | None:
        """Why the policy says not to write to `repository` now, or None."""
        if rule.on_violation == "alert":
            return alert_only_reason(rule)
        if self._paused(repository):
            return f"remediation is paused for {repository}"
        return None


def _context(base: Outcome, image: ChartImage, number: int, total: int) -> str:
    """Which chart the image belongs to and how it was found, for the per-image reason."""
    where = ", ".join(image.sources[:_SHOWN_SOURCES]) + (", …" if len(image.sources) > _SHOWN_SOURCES else "")
    how = f"found only by heuristics in values at {where}" if image.heuristic else f"declared at {where}"
    return f"image {number} of {total} of chart {base.reference}, {how}"
