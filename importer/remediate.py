"""Remediation: fix a violating tag from a known upstream, or quarantine it — and never lose an image.

    remedy = Remediator(policy, registries, ledger).remediate(target, facts, verdict, rule)
    remedy.result   # reimported | quarantined | superseded | duplicate | alerted | failed

The guarantees, in the order the steps run:
1. One worker at a time: a leased claim in the ledger on registry/repository:tag@digest.
2. Loop guard: at most `loop_limit` remediations (changes made) of one tag per `loop_window` seconds; then stop
   and alert.
3. Preserve first: the offending image is copied (mounted, no bytes move) into the quarantine repository under
   `<tag>.sha256-<hex>` and the copy is verified before anything else happens (`preserved_as`).
4. Compare-and-swap: right before a tag is re-pointed or removed, it is resolved again; if it no longer points at
   the offending digest, nothing is changed and the result is `superseded`.
5. Re-import writes every blob and child by digest first and the tag last, then inspects the result again.
6. Quarantine (`mode: move`) deletes the offending manifest from the guarded repository only after the preserved copy
   is verified, and not when another tag's index still uses it (that would break a good image).
Registry problems that may pass propagate (the event is delivered again); the claim is given back either way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from importer.decide import COMPLIANT, Facts, Verdict, decide
from importer.inspect import inspect_manifest
from importer.manifests import INDEX_MEDIA_TYPES, Index, ManifestError, parse_manifest
from importer.policy import Policy, Rule
from importer.reference import ReferenceError, parse_reference
from importer.registry import Registry, RegistryError
from importer.registry.copy import CopyError, copy_image
from importer.registry.directory import RegistryDirectory
from importer.ledger import Ledger

MAX_TAG_LENGTH = 128
CLAIM_LEASE_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class Target:
    """The tag being remediated and the digest it pointed at when the verdict was made."""

    host: str
    repository: str
    tag: str
    digest: str

    @property
    def scope(self) -> str:
        return f"{self.host}/{self.repository}:{self.tag}"

    @property
    def key(self) -> str:
        return f"{self.scope}@{self.digest}"


@dataclass(frozen=True, slots=True)
class Remedy:
    """What remediation did; the pipeline turns it into the outcome."""

    result: str
    reason: str
    new_digest: str | None = None
    preserved_as: str | None = None
    source: str | None = None
    error: str | None = None
    alert: str | None = None  # "loopguard" when the loop guard stopped it
    affected_tags: tuple[str, ...] = ()


class NoCompliantSource(Exception):
    """The upstream has no variant that satisfies the rule (or cannot be read): fall back to quarantine."""


def quarantine_tag(tag: str, digest: str) -> str:
    """`<tag>.sha256-<hex>`: keeps the original tag and digest readable within 128 characters.

    A very long tag is cut to fit; a sha512 digest keeps its first 64 hex digits (the ledger has the rest).
    """
    algorithm, _, encoded = digest.partition(":")
    suffix = f".{algorithm}-{encoded[:64]}"
    return tag[: MAX_TAG_LENGTH - len(suffix)] + suffix


def parse_quarantine_tag(tag: str) -> tuple[str, str] | None:
    """(original tag, digest or its first 64 hex digits) from a quarantine tag, or None when `tag` is not one."""
    stem, dot, suffix = tag.rpartition(".")
    algorithm, dash, encoded = suffix.partition("-")
    if not dot or not dash or algorithm not in ("sha256", "sha512"):
        return None
    return stem, f"{algorithm}:{encoded}"


class Remediator:
    """Carries out `on_violation: reimport | quarantine` against the registries."""

    def __init__(
        self,
        policy: Policy,
        registries: RegistryDirectory,
        ledger: Ledger,
        *,
        loop_limit: int = 3,
        loop_window: float = 3600.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.policy = policy
        self.registries = registries
        self.ledger = ledger
        self.loop_limit = loop_limit
        self.loop_window = loop_window
        self._now = now

    def remediate(self, target: Target, facts: Facts, verdict: Verdict, rule: Rule) -> Remedy:
        """Fix or quarantine `target` as the rule says; the verdict must be a violation."""
        if not self.ledger.claim_remediation(target.key, lease_seconds=CLAIM_LEASE_SECONDS, now=self._now()):
            return Remedy("duplicate", f"another worker is remediating {target.key}")
        try:
            recent = self.ledger.count_remediations(target.scope, since=self._now() - self.loop_window)
            if recent >= self.loop_limit:
                return Remedy(
                    "alerted",
                    f"loop guard: {recent} remediations of {target.scope} in the last {self.loop_window:.0f} s "
                    f"(limit {self.loop_limit}); left as it is — {verdict.reason}",
                    alert="loopguard",
                )
            registry = self.registries.client(target.host)
            if verdict.action == "reimport":
                try:
                    remedy = self._reimport(registry, target, facts, rule)
                except NoCompliantSource as why:
                    remedy = self._quarantine(registry, target, prefix=f"re-import not possible: {why}; ")
            else:
                remedy = self._quarantine(registry, target, prefix="")
            if remedy.result in ("reimported", "quarantined"):
                # Only changes count: an attempt that failed and is retried must not trip the guard.
                self.ledger.note_remediation(target.scope, now=self._now())
            return remedy
        finally:
            self.ledger.finish_remediation(target.key)

    # -- steps ---------------------------------------------------------------------------------------

    def _preserve(self, registry: Registry, target: Target) -> str:
        """Copy the offending image into the quarantine repository and verify it; returns its reference."""
        repository = self.policy.quarantine.repository_for(target.repository)
        tag = quarantine_tag(target.tag, target.digest)
        copy_image(registry, target.repository, target.digest, registry, repository, tag)
        kept = registry.head_manifest(repository, tag)
        if kept is None or kept.digest != target.digest:
            raise RegistryError(f"{target.host}/{repository}:{tag}: preserved copy does not match {target.digest}")
        return f"{target.host}/{repository}:{tag}"

    @staticmethod
    def _still_points_at_offender(registry: Registry, target: Target) -> bool:
        current = registry.head_manifest(target.repository, target.tag)
        return current is not None and current.digest == target.digest

    def _superseded(self, target: Target, preserved: str) -> Remedy:
        return Remedy(
            "superseded",
            f"{target.scope} no longer points at {target.digest}: a newer push wins, nothing changed",
            preserved_as=preserved,
        )

    def _upstream(self, target: Target, rule: Rule) -> tuple[Registry, str, Facts, Verdict]:
        template = rule.upstream_for(target.repository)
        if template is None:
            raise NoCompliantSource("the rule has no upstream")
        try:
            upstream = parse_reference(f"{template}:{target.tag}")
        except ReferenceError as error:
            raise NoCompliantSource(f"upstream {template!r}: {error}") from None
        registry = self.registries.client(upstream.registry)
        try:
            facts = inspect_manifest(registry, upstream.repository, target.tag, rule)
        except (RegistryError, ManifestError) as error:
            if isinstance(error, RegistryError) and error.transient:
                raise
            raise NoCompliantSource(f"{upstream} cannot be read: {error}") from None
        # Forbidden platforms can be filtered out of an index; what is missing or inconsistent cannot be added.
        verdict = decide(facts, Rule(require=rule.require, match=rule.match))
        if verdict.verdict != COMPLIANT or (facts.kind == "image" and any(decide(facts, rule).forbidden)):
            raise NoCompliantSource(f"{upstream} has no compliant variant ({verdict.reason})")
        return registry, upstream.repository, facts, verdict

    def _reimport(self, registry: Registry, target: Target, facts: Facts, rule: Rule) -> Remedy:
        upstream, upstream_repository, upstream_facts, _ = self._upstream(target, rule)
        preserved = self._preserve(registry, target)
        flatten = rule.flatten and len(rule.require) == 1
        try:
            copied = copy_image(
                upstream,
                upstream_repository,
                upstream_facts.digest,
                registry,
                target.repository,
                None,  # everything by digest first; the tag is re-pointed below, after the compare-and-swap
                platforms=rule.require if flatten else (),
                strict=rule.strict,
                exclude=rule.forbid,
                flatten=flatten,
            )
        except CopyError as error:
            raise NoCompliantSource(str(error)) from None
        source = f"{upstream.host}/{upstream_repository}:{target.tag}@{upstream_facts.digest}"
        if not self._still_points_at_offender(registry, target):
            return self._superseded(target, preserved)
        written = registry.get_manifest(target.repository, copied.digest)
        registry.put_manifest(target.repository, target.tag, written.raw, written.media_type)
        check = decide(inspect_manifest(registry, target.repository, copied.digest, rule), rule)
        if check.verdict != COMPLIANT:
            return Remedy(
                "failed",
                f"re-imported {source} but the result is still a violation: {check.reason}",
                new_digest=copied.digest,
                preserved_as=preserved,
                source=source,
                error="re-imported image is not compliant",
            )
        how = "flattened to " + ", ".join(str(p) for p in rule.require) if flatten else (
            "without " + ", ".join(rule.forbid) if rule.forbid and copied.digest != upstream_facts.digest else "as is"
        )
        return Remedy(
            "reimported",
            f"re-imported {source} ({how}); now offers {', '.join(check.platforms)}",
            new_digest=copied.digest,
            preserved_as=preserved,
            source=source,
        )

    def _quarantine(self, registry: Registry, target: Target, *, prefix: str) -> Remedy:
        if self.policy.quarantine.mode != "move":
            return Remedy(
                "failed",
                prefix + f"quarantine mode {self.policy.quarantine.mode!r} needs Azure Container Registry",
                error="unsupported quarantine mode for this registry",
            )
        preserved = self._preserve(registry, target)
        if not self._still_points_at_offender(registry, target):
            return self._superseded(target, preserved)
        tags, users = self._tags_using(registry, target)
        if users:
            return Remedy(
                "alerted",
                prefix + f"kept in {preserved}, but not removed: {', '.join(users)} still use {target.digest}",
                preserved_as=preserved,
            )
        registry.delete_manifest(target.repository, target.digest)
        return Remedy(
            "quarantined",
            prefix + f"moved to {preserved}; removed tag(s) {', '.join(tags)} from {target.repository}",
            preserved_as=preserved,
            affected_tags=tuple(tags),
        )

    @staticmethod
    def _tags_using(registry: Registry, target: Target) -> tuple[list[str], list[str]]:
        """(tags pointing at the offending digest, tags whose index lists it as a child) in the guarded repository."""
        pointing: list[str] = []
        users: list[str] = []
        for tag in registry.list_tags(target.repository):
            head = registry.head_manifest(target.repository, tag)
            if head is None:
                continue
            if head.digest == target.digest:
                pointing.append(tag)
            elif head.media_type in INDEX_MEDIA_TYPES:
                fetched = registry.get_manifest(target.repository, head.digest)
                index = parse_manifest(fetched.raw, fetched.media_type)
                if isinstance(index, Index) and any(child.digest == target.digest for child in index.manifests):
                    users.append(f"{target.repository}:{tag}")
        return pointing, users


class ReleaseError(Exception):
    """A release that cannot be done as asked; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Released:
    """Where a quarantined image went back to."""

    source: str
    destination: str
    digest: str


def release(
    registry: Registry,
    policy: Policy,
    ledger: Ledger,
    *,
    host: str,
    quarantine_repository: str,
    quarantine_reference: str,
    to: tuple[str, str] | None = None,
    force: bool = False,
    now: Callable[[], float] = time.time,
) -> Released:
    """Put a quarantined image back on purpose: same digest, mounted, and remembered so it is not remediated again.

    The destination defaults to the repository and tag the image was quarantined from (read from the quarantine
    repository name and tag); `to` = (repository, tag) overrides it. A destination tag that now points at another
    image (a newer push) is not overwritten unless `force`.
    """
    fetched = registry.get_manifest(quarantine_repository, quarantine_reference)
    if to is None:
        original_repository = policy.quarantine.original_of(quarantine_repository)
        parsed = parse_quarantine_tag(quarantine_reference)
        if original_repository is None or parsed is None:
            raise ReleaseError(
                f"{host}/{quarantine_repository}:{quarantine_reference} is not named like a quarantined image "
                f"({policy.quarantine.repository} and <tag>.sha256-<hex>): say where it goes with --to REPO:TAG"
            )
        to = (original_repository, parsed[0])
        if not fetched.digest.startswith(parsed[1]):
            raise ReleaseError(f"quarantine tag names {parsed[1]} but holds {fetched.digest}: refusing to guess")
    repository, tag = to
    current = registry.head_manifest(repository, tag)
    if current is not None and current.digest != fetched.digest and not force:
        raise ReleaseError(
            f"{host}/{repository}:{tag} now points at {current.digest} (a newer push); use --force to overwrite it"
        )
    copy_image(registry, quarantine_repository, fetched.digest, registry, repository, None)
    # Remember the release before the tag lands: the push event it causes must find it.
    ledger.mark_released(f"{host}/{repository}", fetched.digest, now=now())
    registry.put_manifest(repository, tag, fetched.raw, fetched.media_type)
    landed = registry.head_manifest(repository, tag)
    if landed is None or landed.digest != fetched.digest:
        raise RegistryError(f"{host}/{repository}:{tag}: released image does not match {fetched.digest}")
    return Released(
        source=f"{host}/{quarantine_repository}:{quarantine_reference}",
        destination=f"{host}/{repository}:{tag}",
        digest=fetched.digest,
    )
