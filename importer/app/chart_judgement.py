"""One image of a Helm chart judged against the policy: the steps a chart push (importer/app/chart_guard.py) and
`check` on a chart (importer/app/chart_check.py) share, written once so that the two cannot drift.

    judgement = judge_chart_image(policy, registry, info, image)     # info: the chart, image: one of info.images
    judgement.case          # ChartImageCase.COMPLIANT, .SHORT, .MISSING, …
    judgement.reason        # "not in guarded.example.com/dockerhub/library/nginx", the verdict's reason, …

The steps (docs/design.md, Charts), each ending in one case:

1. Where it lives: `guarded_repository_for`, with `registry.host` as the guarded registry. No rule maps it:
   `UNGUARDED`, and its registry is never contacted.
2. A repository the policy ignores, or a quarantine repository: `IGNORED`.
3. What it must offer: `required_platforms` (the rule's `require`, the chart's annotation, the image's Artifact Hub
   platforms). A required platform the rule forbids: `FORBIDDEN` (`clashes`), no image can satisfy the policy.
4. A HEAD on the manifest (by digest when the chart pins one, else by tag): none there, `MISSING`.
5. There: inspected and decided against those requirements: `COMPLIANT`, `NOT_AN_IMAGE` (decided `ignored`: a
   chart, a signature…, nothing a node could run) or `SHORT` (short of a platform, or offering a forbidden one).

A registry or content error in steps 4 and 5 is `UNREADABLE`, with the error (a chart push raises it again, `check`
reports it); any other error propagates. Nothing is written: what is done about the case is the caller's.

The wording of what a chart push does about an image (re-import or alert, a pinned digest, no upstream,
`on_violation: alert`) lives here too, for the chart push's own reasons and for `check`'s forecast of them.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from importer.app.inspection import inspect_manifest
from importer.core.charts import ChartImage, ChartInfo
from importer.core.decide import COMPLIANT, IGNORED, Facts, Verdict, decide
from importer.core.manifests import ManifestError
from importer.core.platforms import Platform, matches_pattern
from importer.core.platforms import parse as parse_platform
from importer.core.policy import Policy, Rule
from importer.core.policy.upstream import guarded_repository_for
from importer.core.reference import reference_of
from importer.core.words import counted
from importer.ports.registry import Registry, RegistryError

__all__ = [
    "PINNED_DIGEST_FORECAST",
    "ChartImageCase",
    "ChartImageJudgement",
    "alert_only_reason",
    "chart_notes",
    "chart_push_action",
    "chart_push_forecast",
    "judge_chart_image",
    "no_upstream_reason",
    "pinned_digest_reason",
    "required_platforms",
]


class ChartImageCase(enum.Enum):
    """Which step ended the judgement of a chart's image (see the module docstring)."""

    UNGUARDED = "unguarded"
    IGNORED = "ignored"
    FORBIDDEN = "forbidden"
    UNREADABLE = "unreadable"
    MISSING = "missing"
    COMPLIANT = "compliant"
    NOT_AN_IMAGE = "not-an-image"
    SHORT = "short"


@dataclass(frozen=True, slots=True)
class ChartImageJudgement:
    """What the policy and the guarded registry say about one image of a chart; the fields a step did not reach are
    empty (`rule`, `repository` and `wanted` are set from `IGNORED` on, `facts` and `verdict` once inspected)."""

    case: ChartImageCase
    image: ChartImage
    host: str  # the guarded registry
    rule: Rule | None = None
    repository: str | None = None
    wanted: Rule | None = None  # the rule with `require` replaced by every required platform
    required: tuple[str, ...] = ()
    clashes: tuple[tuple[str, str], ...] = ()  # (required platform, the forbid pattern it matches)
    facts: Facts | None = None
    verdict: Verdict | None = None
    error: RegistryError | ManifestError | None = None

    @property
    def reference(self) -> str | None:
        """The image in the guarded registry (`host/repository:tag@digest`), or None when no rule maps it."""
        if self.repository is None:
            return None
        return reference_of(self.host, self.repository, self.image.tag, self.image.digest)

    @property
    def pinned(self) -> bool:
        """True when the chart pins the image by digest: that digest or nothing."""
        return self.image.digest is not None

    @property
    def forbidden_required(self) -> tuple[str, ...]:
        """The required platforms the rule forbids, each once."""
        return tuple(dict.fromkeys(platform for platform, _ in self.clashes))

    @property
    def reason(self) -> str:
        """What was found, as the start of a reason (a chart push and `check` each say what follows)."""
        image = self.image
        match self.case:
            case ChartImageCase.UNGUARDED:
                return (f"{image.reference} is not in {self.host} and no policy rule's upstream maps it to a "
                        f"repository there: not checked")
            case ChartImageCase.IGNORED:
                assert self.rule is not None
                why = "is ignored by the policy" if self.rule.ignore else "is a quarantine repository"
                return f"{self.repository} {why}"
            case ChartImageCase.FORBIDDEN:
                described = ", ".join(f"{platform} (forbidden by {pattern!r})" for platform, pattern in self.clashes)
                return f"the chart requires {described}"
            case ChartImageCase.UNREADABLE:
                return str(self.error)
            case ChartImageCase.MISSING:
                return f"not in {self.host}/{self.repository}"
        assert self.verdict is not None
        return self.verdict.reason


def chart_notes(info: ChartInfo, *, heuristic: int = 0) -> str:
    """What a chart's reason says after its counts, for a chart push and `check` alike: the platforms the chart
    requires, how many images were found only by heuristics (a chart push counts them), and how many image-like
    values were not resolved; each note starts with "; ", and nothing to say is ""."""
    notes = ""
    if info.platforms:
        notes += f"; the chart requires {', '.join(info.platforms)}"
    if heuristic:
        notes += f"; {heuristic} found only by heuristics in values"
    if info.unresolved:
        notes += f"; {counted(len(info.unresolved), 'image-like value')} not resolved (templates are not rendered)"
    return notes


def required_platforms(
    rule: Rule, chart_platforms: Sequence[str], image_platforms: Sequence[str]
) -> tuple[Platform, ...]:
    """The rule's `require`, then the platforms the chart declares, then those listed for the image; each once."""
    platforms = list(rule.require)
    for text in (*chart_platforms, *image_platforms):
        platform = parse_platform(text)
        if platform not in platforms:
            platforms.append(platform)
    return tuple(platforms)


def judge_chart_image(policy: Policy, registry: Registry, info: ChartInfo, image: ChartImage) -> ChartImageJudgement:
    """Judge `image` of the chart `info` against `policy` in the guarded `registry`, reading only."""
    judged = ChartImageJudgement(ChartImageCase.UNGUARDED, image, registry.host)
    mapping = guarded_repository_for(policy, image.reference, guarded_host=registry.host)
    if mapping is None:
        return judged
    rule, repository = mapping
    judged = dataclasses.replace(judged, rule=rule, repository=repository)
    if rule.ignore or policy.quarantine.holds(repository):
        return dataclasses.replace(judged, case=ChartImageCase.IGNORED)
    required = required_platforms(rule, info.platforms, image.platforms)
    clashes = tuple((str(platform), pattern) for platform in required for pattern in rule.forbid
                    if matches_pattern(pattern, platform))
    judged = dataclasses.replace(judged, wanted=dataclasses.replace(rule, require=required),
                                 required=tuple(map(str, required)), clashes=clashes)
    if clashes:
        return dataclasses.replace(judged, case=ChartImageCase.FORBIDDEN)
    assert judged.wanted is not None
    try:
        head = registry.head_manifest(repository, image.digest or image.tag or "")
        if head is None:
            return dataclasses.replace(judged, case=ChartImageCase.MISSING)
        facts = inspect_manifest(registry, repository, head.digest, judged.wanted)
    except (RegistryError, ManifestError) as error:
        return dataclasses.replace(judged, case=ChartImageCase.UNREADABLE, error=error)
    verdict = decide(facts, judged.wanted)
    judged = dataclasses.replace(judged, facts=facts, verdict=verdict)
    if verdict.verdict == COMPLIANT:
        return dataclasses.replace(judged, case=ChartImageCase.COMPLIANT)
    if verdict.verdict == IGNORED:
        return dataclasses.replace(judged, case=ChartImageCase.NOT_AN_IMAGE)
    return dataclasses.replace(judged, case=ChartImageCase.SHORT)


# -- what a chart push does about an image --------------------------------------------------------------------


def alert_only_reason(rule: Rule) -> str:
    """Why a chart push only alerts: the rule says so."""
    return f"{rule.key_path} says on_violation: alert"


def no_upstream_reason(rule: Rule) -> str:
    """Why a chart push cannot import the image."""
    return f"{rule.key_path} has no upstream to import it from"


def pinned_digest_reason(required: Sequence[str]) -> str:
    """Why a chart push leaves an image pinned by digest as it is, in the push's own outcome."""
    return f"pinned by digest, so it cannot be replaced: the chart must pin a digest that offers {', '.join(required)}"


# Why a chart push would leave an image pinned by digest as it is, as `check` says it.
PINNED_DIGEST_FORECAST = ("pinned by digest, so a chart push cannot replace it: "
                          "the chart must pin a digest that complies")


def chart_push_action(rule: Rule, *, pinned: bool) -> str:
    """What a chart push does about a missing or short image: re-import it when it can, else alert (never
    quarantine: the image may be right for its own repository)."""
    return "reimport" if rule.upstream and not pinned and rule.on_violation != "alert" else "alert"


def chart_push_forecast(rule: Rule, repository: str, *, pinned: bool) -> str:
    """What a chart push would do about a missing or short image, as the end of `check`'s reason."""
    if pinned:
        return "; " + PINNED_DIGEST_FORECAST
    if rule.upstream is None:
        return "; " + no_upstream_reason(rule)
    if rule.on_violation == "alert":
        return "; " + alert_only_reason(rule)
    return f"; a chart push imports it from {rule.upstream_for(repository)}"
