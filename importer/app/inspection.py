"""Inspection: read a pushed manifest from a registry and gather the facts the decision needs.

    facts = inspect_manifest(registry, "team/app", "sha256:…", rule, tag="1.0")
    facts = inspect_fetched(registry, "team/app", fetched, rule, tag="1.0")   # the manifest read already
    artifact = inspect_untagged(registry, "team/app", "sha256:…")   # an untagged push: a referrer? (one GET)

Reads the manifest (by digest when the event gave one) and tells first whether it is an image to judge at all:
signatures, attestations, SBOMs, referrers indexes and other artifacts (importer.core.artifacts) are facts of their
own kind, never offers; an image manifest's config is read once, for that and for its platform. Then it
walks nested indexes up to MAX_INDEX_DEPTH,
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
from collections.abc import Mapping

from importer.core.artifacts import Artifact, classify, referrer_of
from importer.core.decide import Facts, Inconsistency, Offer, Verdict, children_to_verify, decide, ignored
from importer.core.manifests import (
    MAX_CONFIG_BYTES,
    MAX_INDEX_DEPTH,
    ChildKind,
    FetchedManifest,
    ImageManifest,
    Index,
    ManifestError,
    WalkBudget,
    classify_child,
    config_document,
    parse_manifest,
    platform_of_config,
)
from importer.core.media_types import IMAGE_CONFIG_MEDIA_TYPES
from importer.core.platforms import Platform
from importer.core.policy import Policy, Rule
from importer.core.reference import is_valid_digest
from importer.ports.registry import RegistryReader

__all__ = ["MAX_INDEX_DEPTH", "evaluate", "inspect_fetched", "inspect_manifest", "inspect_untagged"]


def _same_platform(entry: Platform, config: Platform) -> bool:
    if (entry.os, entry.architecture, entry.variant) != (config.os, config.architecture, config.variant):
        return False
    return not (entry.os_version and config.os_version and entry.os_version != config.os_version)


def _read_config(registry: RegistryReader, repository: str, manifest: ImageManifest) -> Mapping[str, object] | None:
    """The image config of `manifest` as a JSON object, read once (capped at 1 MiB); None when its config is not an
    image config (a chart, an OCI artifact's empty config), which is never read. ManifestError names the config."""
    if manifest.config.media_type not in IMAGE_CONFIG_MEDIA_TYPES:
        return None
    if manifest.config.size > MAX_CONFIG_BYTES:
        raise ManifestError(
            f"config {manifest.config.digest}: {manifest.config.size} bytes is over the {MAX_CONFIG_BYTES} byte limit"
        )
    raw = registry.get_blob(repository, manifest.config.digest, max_bytes=MAX_CONFIG_BYTES)
    return config_document(raw, where=_where(manifest))


def _where(manifest: ImageManifest) -> str:
    """How a message names an image's config: `sha256:…: config` (`…: config is not valid JSON`, `…: config: 'os'
    missing`)."""
    return f"{manifest.config.digest}: config"


def _image_platform(
    manifest: ImageManifest, config: Mapping[str, object] | None, tag: str | None
) -> Platform | Artifact:
    """The platform of an image, or what the manifest is instead (a signature, an SBOM, a chart…)."""
    artifact = classify(manifest, tag=tag, config=config)
    if artifact is not None:
        return artifact
    assert config is not None  # classify() says a manifest without an image config is an artifact
    return platform_of_config(config, where=_where(manifest))


class _IndexWalk:
    """One walk over the graph below a pushed index: what it offers, what it holds that is not a platform."""

    def __init__(self, registry: RegistryReader, repository: str, root: str) -> None:
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
                found = _image_platform(child, _read_config(self.registry, self.repository, child), None)
                configs[offer.digest] = None if isinstance(found, Artifact) else found
                if configs[offer.digest] is None:
                    artifacts += 1
            config = configs[offer.digest]
            if config is None:
                rejected.add(offer.digest)
            elif not _same_platform(offer.platform, config):
                inconsistent.append(Inconsistency(offer.digest, offer.platform, config))
                rejected.add(offer.digest)
        return [offer for offer in self.offers if offer.digest not in rejected], inconsistent, artifacts


def inspect_manifest(
    registry: RegistryReader, repository: str, reference: str, rule: Rule, *, tag: str | None = None
) -> Facts:
    """Read `repository@reference` (a digest or a tag) and return what it offers, or what it is when it is not an
    image to judge. `tag`: the tag it was pushed under (default: `reference` when that is a tag), which tells a
    referrers index and names a cosign signature's subject (importer.core.artifacts)."""
    if tag is None and not is_valid_digest(reference):
        tag = reference
    return inspect_fetched(registry, repository, registry.get_manifest(repository, reference), rule, tag=tag)


def inspect_fetched(
    registry: RegistryReader, repository: str, fetched: FetchedManifest, rule: Rule, *, tag: str | None = None
) -> Facts:
    """`inspect_manifest` of a manifest already read from `repository` (verified by the registry's client): what it
    offers, or what it is; its children and configs are read from `registry`. `tag`: the tag it was pushed under."""
    manifest = parse_manifest(fetched.raw, fetched.media_type)
    if isinstance(manifest, ImageManifest):
        found = _image_platform(manifest, _read_config(registry, repository, manifest), tag)
        if isinstance(found, Artifact):
            return _artifact_facts(repository, fetched.digest, fetched.media_type, found)
        return Facts(
            repository=repository,
            digest=fetched.digest,
            media_type=fetched.media_type,
            kind="image",
            offers=(Offer(found, fetched.digest, fetched.media_type),),
        )

    artifact = classify(manifest, tag=tag)
    if artifact is not None:
        return _artifact_facts(repository, fetched.digest, fetched.media_type, artifact)
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


def _artifact_facts(repository: str, digest: str, media_type: str, artifact: Artifact) -> Facts:
    return Facts(repository=repository, digest=digest, media_type=media_type, kind=artifact.kind,
                 artifact_type=artifact.media_type, artifact=artifact)


def inspect_untagged(registry: RegistryReader, repository: str, digest: str) -> Artifact | None:
    """What an untagged push is when its manifest alone says it is a referrer or another artifact (a Notation
    signature pushed by digest, say); None for anything else (a child of a multi-arch push). One manifest GET,
    capped and verified by the client, under the event's time limit; no config is read. Registry and content errors
    are the caller's: importer.app.pipeline falls back to the untagged push's usual reason."""
    fetched = registry.get_manifest(repository, digest)
    return referrer_of(parse_manifest(fetched.raw, fetched.media_type))


def evaluate(
    policy: Policy, registry: RegistryReader, repository: str, reference: str, *, tag: str | None = None
) -> tuple[Facts | None, Verdict]:
    """Inspect `repository@reference` (digest or tag; `tag`: the tag it was pushed under) and decide; ignored
    repositories are not read at all.

    Shared by the event path, the sweep and `check`, so all give the same verdict for the same manifest and tag.
    """
    rule = policy.rule_for(repository)
    if rule.ignore:
        return None, ignored(rule, "repository is ignored by the policy")
    if policy.quarantine.holds(repository):
        return None, ignored(rule, "quarantine repository: images here are held on purpose")
    facts = inspect_manifest(registry, repository, reference, rule, tag=tag)
    return facts, decide(facts, rule)
