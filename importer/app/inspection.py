"""Inspection: read a pushed manifest from a registry and gather the facts the decision needs.

    facts = inspect_manifest(registry, "team/app", "sha256:…", rule)

Reads the manifest (by digest when the event gave one), walks nested indexes up to MAX_INDEX_DEPTH,
classifies every child, and checks the children that decide compliance against their config blobs
(`importer.core.decide.children_to_verify`): an entry that disagrees with its config is recorded as
inconsistent and offers nothing. Every manifest and blob read is verified against its digest by the
registry client; configs are capped at 1 MiB. Content problems raise ManifestError (a permanent
failure); registry problems raise the client's RegistryError.
"""

from __future__ import annotations

from collections import Counter

from importer.core.decide import Facts, Inconsistency, Offer, Verdict, children_to_verify, decide, ignored
from importer.core.manifests import (
    MAX_CONFIG_BYTES,
    ChildKind,
    ImageManifest,
    Index,
    ManifestError,
    classify_child,
    parse_manifest,
    platform_from_config,
)
from importer.core.platforms import Platform
from importer.core.policy import Policy, Rule
from importer.ports.registry import Registry

MAX_INDEX_DEPTH = 4


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


def _walk_index(
    registry: Registry,
    repository: str,
    index: Index,
    depth: int,
    offers: list[Offer],
    no_platform: list[str],
    skipped: Counter[str],
) -> None:
    for child in index.manifests:
        kind = classify_child(child)
        if kind is ChildKind.IMAGE:
            assert child.platform is not None
            offers.append(Offer(child.platform, child.digest, child.media_type))
        elif kind is ChildKind.INDEX:
            if depth >= MAX_INDEX_DEPTH:
                raise ManifestError(f"index nests deeper than {MAX_INDEX_DEPTH} levels (at {child.digest})")
            fetched = registry.get_manifest(repository, child.digest)
            nested = parse_manifest(fetched.raw, fetched.media_type)
            if not isinstance(nested, Index):
                raise ManifestError(f"{child.digest}: index entry says {child.media_type} but the content is a manifest")
            _walk_index(registry, repository, nested, depth + 1, offers, no_platform, skipped)
        elif kind is ChildKind.NO_PLATFORM:
            no_platform.append(child.digest)
        else:
            skipped[kind.value] += 1


def _verify(
    registry: Registry, repository: str, offers: list[Offer], rule: Rule
) -> tuple[list[Offer], list[Inconsistency], int]:
    """Check deciding offers against their configs; returns (offers kept, inconsistencies, children that are artifacts)."""
    rejected: set[str] = set()
    inconsistent: list[Inconsistency] = []
    artifacts = 0
    for offer in children_to_verify(offers, rule):
        fetched = registry.get_manifest(repository, offer.digest)
        child = parse_manifest(fetched.raw, fetched.media_type)
        if not isinstance(child, ImageManifest):
            raise ManifestError(f"{offer.digest}: index entry says {offer.media_type} but the content is an index")
        if not child.is_image:
            rejected.add(offer.digest)
            artifacts += 1
            continue
        config = _config_platform(registry, repository, child)
        if not _same_platform(offer.platform, config):
            inconsistent.append(Inconsistency(offer.digest, offer.platform, config))
            rejected.add(offer.digest)
    return [offer for offer in offers if offer.digest not in rejected], inconsistent, artifacts


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
    offers: list[Offer] = []
    no_platform: list[str] = []
    skipped: Counter[str] = Counter()
    _walk_index(registry, repository, manifest, 1, offers, no_platform, skipped)
    kept, inconsistent, artifacts = _verify(registry, repository, offers, rule)
    if artifacts:
        skipped["artifact"] += artifacts
    return Facts(
        repository=repository,
        digest=fetched.digest,
        media_type=fetched.media_type,
        kind="index",
        offers=tuple(kept),
        inconsistent=tuple(inconsistent),
        no_platform=tuple(no_platform),
        not_platforms=dict(skipped),
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
