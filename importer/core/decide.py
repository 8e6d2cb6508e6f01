"""The decision: facts about a pushed manifest + the policy rule for its repository → a verdict.

Pure: no I/O, no clock. `importer.app.inspection` gathers the facts; this module says what they mean.

    plan = children_to_verify(offers, rule)   # which index children must be checked against their config
    verdict = decide(facts, rule)             # compliant | violation | ignored, with missing/forbidden/inconsistent

A required platform is satisfied by an offered platform that its nodes can run (`match: compatible`,
containerd's fallbacks) or that equals it (`match: strict`). Forbidden patterns are checked against every
offered platform. An index child whose config disagrees with its index entry is `inconsistent`: it counts
as a violation and offers nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from importer.core.artifacts import Artifact
from importer.core.platforms import Platform, best_candidate, matches_pattern, satisfies
from importer.core.policy import Rule
from importer.core.words import agreeing, counted

COMPLIANT = "compliant"
VIOLATION = "violation"
IGNORED = "ignored"


@dataclass(frozen=True, slots=True)
class Offer:
    """One runnable platform a manifest offers: the platform and the image manifest that provides it."""

    platform: Platform
    digest: str
    media_type: str


@dataclass(frozen=True, slots=True)
class Inconsistency:
    """An index entry whose platform disagrees with the config of the image it points at."""

    digest: str
    entry: Platform
    config: Platform

    def __str__(self) -> str:
        return f"{self.digest}: index entry says {self.entry}, image config says {self.config}"


@dataclass(frozen=True, slots=True)
class Facts:
    """What inspection found in the registry for one manifest."""

    repository: str
    digest: str
    media_type: str
    # "index" | "image" (judged) | "signature" | "attestation" | "sbom" | "referrers" | "artifact" (never judged:
    # importer.core.artifacts.ARTIFACT_KINDS)
    kind: str
    offers: tuple[Offer, ...] = ()
    inconsistent: tuple[Inconsistency, ...] = ()
    no_platform: tuple[str, ...] = ()  # digests of index children with no platform at all
    not_platforms: Mapping[str, int] = field(default_factory=dict)  # e.g. {"attestation": 2}
    artifact_type: str | None = None  # for the kinds never judged: the artifact, layer or config media type
    artifact: Artifact | None = None  # for the kinds never judged: what it is and what it refers to


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision, with everything needed to explain it."""

    verdict: str
    action: str
    platforms: tuple[str, ...]
    required: tuple[str, ...]
    missing: tuple[str, ...]
    forbidden: tuple[str, ...]
    inconsistent: tuple[str, ...]
    reason: str
    no_platform: tuple[str, ...] = ()
    chosen: Mapping[str, str] = field(default_factory=dict)  # required platform → digest of the child that satisfies it


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def children_to_verify(offers: Sequence[Offer], rule: Rule) -> tuple[Offer, ...]:
    """The offers whose configs decide compliance: those satisfying a required platform or matching a forbid pattern."""
    deciding = []
    for offer in offers:
        if any(satisfies(required, offer.platform, strict=rule.strict) for required in rule.require) or any(
            matches_pattern(pattern, offer.platform) for pattern in rule.forbid
        ):
            deciding.append(offer)
    return tuple(deciding)


def ignored(rule: Rule, reason: str) -> Verdict:
    """A verdict that leaves the manifest alone without looking at it."""
    return Verdict(
        verdict=IGNORED,
        action="none",
        platforms=(),
        required=tuple(str(p) for p in rule.require),
        missing=(),
        forbidden=(),
        inconsistent=(),
        reason=reason,
    )


# The index entries not counted as platforms, by kind (importer.core.manifests.ChildKind), as nouns to count.
_SKIPPED_NOUNS = {"unknown-platform": ("entry of unknown platform", "entries of unknown platform")}


def _describe_skipped(facts: Facts) -> str:
    parts = [counted(count, *_SKIPPED_NOUNS.get(kind, (kind, None)))
             for kind, count in sorted(facts.not_platforms.items()) if count]
    if facts.no_platform:
        parts.append(f"{counted(len(facts.no_platform), 'child', 'children')} with no platform")
    return f" (not counted as platforms: {', '.join(parts)})" if parts else ""


def decide(facts: Facts, rule: Rule) -> Verdict:
    """Compare what the manifest offers with what the rule requires and forbids."""
    if rule.ignore:
        return ignored(rule, "repository is ignored by the policy")
    if facts.artifact is not None:
        return ignored(rule, facts.artifact.reason)
    if facts.kind == "artifact":
        return ignored(rule, f"not a runnable image: artifact of type {facts.artifact_type or 'unknown'}")

    platforms = [offer.platform for offer in facts.offers]
    chosen: dict[str, str] = {}
    missing: list[str] = []
    for required in rule.require:
        best = best_candidate(required, platforms, strict=rule.strict)
        if best is None:
            missing.append(str(required))
        else:
            chosen[str(required)] = facts.offers[best].digest
    forbidden = _unique(str(p) for p in platforms if any(matches_pattern(pattern, p) for pattern in rule.forbid))
    inconsistent = tuple(str(item) for item in facts.inconsistent)
    offered = _unique(str(p) for p in platforms)
    required_names = tuple(str(p) for p in rule.require)

    problems: list[str] = []
    if missing:
        how = "exactly" if rule.strict else "runnable on"
        problems.append(f"nothing offered is {how} {', '.join(missing)}")
    if forbidden:
        problems.append(f"offers forbidden {', '.join(forbidden)}")
    if inconsistent:
        disagree = agreeing(len(inconsistent), "disagrees", "disagree")
        problems.append(f"{counted(len(inconsistent), 'index entry')} {disagree} with the image config")
    offers_text = ", ".join(offered) if offered else "no runnable platform"
    skipped = _describe_skipped(facts)
    if problems:
        reason = f"offers {offers_text}{skipped}; " + "; ".join(problems)
        return Verdict(
            verdict=VIOLATION,
            action=rule.on_violation,
            platforms=offered,
            required=required_names,
            missing=tuple(missing),
            forbidden=forbidden,
            inconsistent=inconsistent,
            reason=reason,
            no_platform=facts.no_platform,
            chosen=chosen,
        )
    return Verdict(
        verdict=COMPLIANT,
        action="none",
        platforms=offered,
        required=required_names,
        missing=(),
        forbidden=(),
        inconsistent=(),
        reason=f"offers {offers_text}{skipped}; satisfies {', '.join(required_names) or 'no requirement'}",
        no_platform=facts.no_platform,
        chosen=chosen,
    )


def verdict_fields(facts: Facts | None, verdict: Verdict) -> dict[str, object]:
    """The outcome fields a verdict fills in."""
    fields: dict[str, object] = {
        "platforms": verdict.platforms,
        "required": verdict.required,
        "missing": verdict.missing,
        "forbidden": verdict.forbidden,
        "inconsistent": verdict.inconsistent,
        "verdict": verdict.verdict,
        "action": verdict.action,
        "reason": verdict.reason,
        "no_platform": verdict.no_platform,
    }
    if facts is not None:
        fields.update(digest=facts.digest, media_type=facts.media_type, kind=facts.kind)
    return fields
