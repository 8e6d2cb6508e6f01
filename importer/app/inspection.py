"""Inspection: read a pushed manifest from a registry and gather the facts the decision needs.

    facts = inspect_manifest(registry, "team/app", "sha256:…", rule)

Reads the manifest (by digest when the event gave one), walks nested indexes up to MAX_INDEX_DEPTH,
classifies every child, and checks the children that decide compliance against their config blobs
(`importer.core.decide.children_to_verify`): an entry that disagrees with its config is recorded as
inconsistent and offers nothing. Every manifest and blob read is verified against its digest by the
registry client; configs are capped at 1 MiB. Content problems raise ManifestError (a permanent
failure); registry problems raise the client's RegistryError.

The walk is linear in the distinct content, whatever the graph's shape: each distinct index is read, parsed and
walked once (memoised by digest, with the height of its subtree, so a shared index still counts its deepest path
against MAX_INDEX_DEPTH), equal offers are kept once, each distinct deciding child and its config are read once,
and every descriptor visited counts against one budget (importer.core.manifests.WalkBudget, MAX_WALK_DESCRIPTORS).
An index listing another N times, four levels deep, is N^4 paths but 6 reads.
"""

from __future__ import annotations

from collections import Counter

from importer.core.decide import Facts, Inconsistency, Offer, Verdict, children_to_verify, decide, ignored
from importer.core.manifests import (
    MAX_CONFIG_BYTES,
    MAX_INDEX_DEPTH,
    ChildKind,
    ImageManifest,
    Index,
    ManifestError,
    WalkBudget,
    classify_child,
    parse_manifest,
    platform_from_config,
)
from importer.core.platforms import Platform
from importer.core.policy import Policy, Rule
from importer.ports.registry import Registry

__all__ = ["MAX_INDEX_DEPTH", "evaluate", "inspect_manifest"]


def _same_platform(entry: Platform, config: Platform) -> bool:
    if (entry.os, entry.architecture, entry.variant) != (config.os, config.architecture, config.variant):
        return False
    return not (entry.os_version and config.os_version and entry.os_version != config.os_version)


def _config_platform(registry: Registry, repository: str, manifest: ImageManifest) -> Platform:
    if manifest.config.size > MAX_CONFIG_BYTES:
        raise ManifestError(
            f"config {manifest.config.digest}: {manifest.config.size} bytes is over the {MAX_CONFIG_BYTES} byte limit"
        )
    raw = registry.get_blob(repository, manifest.config.digest, max_bytes=MAX_CONFIG_BYTES)
    try:
        return platform_from_config(raw)
    except ManifestError as error:
        raise ManifestError(f"{manifest.config.digest}: {error}") from None


class _IndexWalk:
    """One walk over the graph below a pushed index: what it offers, what it holds that is not a platform."""

    def __init__(self, registry: Registry, repository: str, root: str) -> None:
        self.registry = registry
        self.repository = repository
        self.budget = WalkBudget(root)
        self.heights: dict[str, int] = {}  # nested index digest → levels of indexes from it down, itself counted
        self.offers: dict[Offer, None] = {}  # insertion-ordered set: the first time each offer was met
        self.no_platform: dict[str, None] = {}
        self.skipped: Counter[str] = Counter()

    def walk(self, index: Index, digest: str, depth: int) -> int:
        """Walk `index` (digest `digest`, at nesting `depth`: the top is 1); returns its height."""
        self.budget.visit(len(index.manifests), digest)
        height = 1
        for child in index.manifests:
            kind = classify_child(child)
            if kind is ChildKind.IMAGE:
                assert child.platform is not None
                self.offers.setdefault(Offer(child.platform, child.digest, child.media_type))
            elif kind is ChildKind.INDEX:
                below = self.heights.get(child.digest)
                if below is None:
                    self.budget.check_depth(depth + 1, child.digest)
                    below = self.heights[child.digest] = self.walk(self._nested(child.digest, child.media_type),
                                                                   child.digest, depth + 1)
                self.budget.check_depth(depth + below, child.digest)  # its deepest path, from here
                height = max(height, below + 1)
            elif kind is ChildKind.NO_PLATFORM:
                self.no_platform.setdefault(child.digest)
            else:
                self.skipped[kind.value] += 1
        return height

    def _nested(self, digest: str, media_type: str) -> Index:
        fetched = self.registry.get_manifest(self.repository, digest)
        nested = parse_manifest(fetched.raw, fetched.media_type)
        if not isinstance(nested, Index):
            raise ManifestError(f"{digest}: index entry says {media_type} but the content is a manifest")
        return nested

    def verify(self, rule: Rule) -> tuple[list[Offer], list[Inconsistency], int]:
        """Check deciding offers against their configs, each distinct child once; returns (offers kept,
        inconsistencies, children that are artifacts)."""
        configs: dict[str, Platform | None] = {}  # child digest → its config's platform; None: not an image
        rejected: set[str] = set()
        inconsistent: list[Inconsistency] = []
        artifacts = 0
        for offer in children_to_verify(tuple(self.offers), rule):
            if offer.digest not in configs:
                self.budget.visit(1, offer.digest)  # the child's config
                fetched = self.registry.get_manifest(self.repository, offer.digest)
                child = parse_manifest(fetched.raw, fetched.media_type)
                if not isinstance(child, ImageManifest):
                    raise ManifestError(
                        f"{offer.digest}: index entry says {offer.media_type} but the content is an index"
                    )
                configs[offer.digest] = (
                    _config_platform(self.registry, self.repository, child) if child.is_image else None
                )
                if configs[offer.digest] is None:
                    artifacts += 1
            config = configs[offer.digest]
            if config is None:
                rejected.add(offer.digest)
            elif not _same_platform(offer.platform, config):
                inconsistent.append(Inconsistency(offer.digest, offer.platform, config))
                rejected.add(offer.digest)
        return [offer for offer in self.offers if offer.digest not in rejected], inconsistent, artifacts


def inspect_manifest(registry: Registry, repository: str, reference: str, rule: Rule) -> Facts:
    """Read `repository@reference` (a digest or a tag) and return what it offers."""
    fetched = registry.get_manifest(repository, reference)
    manifest = parse_manifest(fetched.raw, fetched.media_type)
    if isinstance(manifest, ImageManifest):
        if not manifest.is_image:
            return Facts(
                repository=repository,
                digest=fetched.digest,
                media_type=fetched.media_type,
                kind="artifact",
                artifact_type=manifest.artifact_type or manifest.config.media_type,
            )
        platform = _config_platform(registry, repository, manifest)
        return Facts(
            repository=repository,
            digest=fetched.digest,
            media_type=fetched.media_type,
            kind="image",
            offers=(Offer(platform, fetched.digest, fetched.media_type),),
        )

    if manifest.artifact_type is not None:
        return Facts(
            repository=repository,
            digest=fetched.digest,
            media_type=fetched.media_type,
            kind="artifact",
            artifact_type=manifest.artifact_type,
        )
    walk = _IndexWalk(registry, repository, fetched.digest)
    walk.walk(manifest, fetched.digest, 1)
    kept, inconsistent, artifacts = walk.verify(rule)
    if artifacts:
        walk.skipped["artifact"] += artifacts
    return Facts(
        repository=repository,
        digest=fetched.digest,
        media_type=fetched.media_type,
        kind="index",
        offers=tuple(kept),
        inconsistent=tuple(inconsistent),
        no_platform=tuple(walk.no_platform),
        not_platforms=dict(walk.skipped),
    )


def evaluate(policy: Policy, registry: Registry, repository: str, reference: str) -> tuple[Facts | None, Verdict]:
    """Inspect `repository@reference` (digest or tag) and decide; ignored repositories are not read at all.

    Shared by the event path and `check`, so both give the same verdict for the same manifest.
    """
    rule = policy.rule_for(repository)
    if rule.ignore:
        return None, ignored(rule, "repository is ignored by the policy")
    if policy.quarantine.holds(repository):
        return None, ignored(rule, "quarantine repository: images here are held on purpose")
    facts = inspect_manifest(registry, repository, reference, rule)
    return facts, decide(facts, rule)
