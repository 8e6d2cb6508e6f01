"""Referrers on a registry: find the signatures, attestations and SBOMs of a manifest, and carry them along a copy.

    found = find_referrers(registry, "team/app", digest)    # the API, else the referrers tag's index; cosign tags too
    carried = copy_referrers(upstream, "library/app", registry, "team/app", subjects=[index, *children],
                             examine=[source_top])          # .copied: how many; .signed: which digests had signatures
    add_referrers(registry, "team/app", subject, [entry])    # the referrers tag schema's index, read-add-write-verify

Reading: where the registry offers the referrers API it lists every manifest whose `subject` is the digest; where it
does not (distribution 2.8), the referrers tag `<algorithm>-<hex>` holds an index of them. Cosign's tags
(`sha256-<hex>.sig/.att/.sbom`) are looked up on both, since cosign 2 writes them whatever the registry offers.

Writing follows the target: each referrer manifest is copied as it is (same digest, its `subject` inside), cosign
referrers under their tag; a registry with the API indexes `subject` itself, on one without it the referrers tag's
index gets the new entries. Referrers of referrers (the signature of an attestation) come too, at most
MAX_REFERRER_DEPTH levels down and MAX_REFERRERS in all (importer.core.referrers). Our own quarantine-origin
artifacts are never carried: they describe one quarantine name, not the image.

The referrers tag schema has no compare-and-swap on registries without `If-Match` (distribution has none): the
index is read, extended, written and read back; an index that lost our entries to a concurrent writer is extended
again, a bounded number of times.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from importer.core.media_types import OCI_EMPTY, OCI_INDEX, QUARANTINE_ORIGIN_ARTIFACT
from importer.core.referrers import (
    MAX_REFERRER_DEPTH,
    MAX_REFERRERS,
    Referrer,
    cosign_tags,
    index_entry,
    referrers_in_index,
    referrers_tag,
    with_entries,
)
from importer.core.selection import CopyError
from importer.ports.abilities import ListsReferrers
from importer.ports.deadlines import carrying_time_limit
from importer.ports.registry import FetchedManifest, NotFound, ProtocolError, Registry

__all__ = ["CarriedReferrers", "add_referrers", "copy_referrers", "find_referrers", "manifest_or_none"]

INDEX_UPDATE_ATTEMPTS = 5
NOT_CARRIED = frozenset({QUARANTINE_ORIGIN_ARTIFACT})

# Copies one referrer manifest (and what it references) from the source into the target repository by digest,
# under `tag` when given; importer.app.copying passes its engine, server-side import its own.
BringReferrer = Callable[[Referrer], None]


@dataclass(frozen=True, slots=True)
class CarriedReferrers:
    """What carrying the referrers did: how many referrer manifests the target now has from the source, and which of
    the digests looked at had at least one signature at the source."""

    copied: int = 0
    signed: frozenset[str] = frozenset()


class _Lister:
    """Finds referrers on one registry repository, asking whether it has the referrers API only once."""

    def __init__(self, registry: Registry, repository: str) -> None:
        self.registry = registry
        self.repository = repository
        self.has_api: bool | None = None if isinstance(registry, ListsReferrers) else False

    def find(self, digest: str) -> tuple[Referrer, ...]:
        found: dict[str, Referrer] = {}
        for referrer in (*self._by_subject(digest), *self._by_cosign_tag(digest)):
            if (referrer.artifact_type or "") not in NOT_CARRIED:
                found.setdefault(referrer.digest, referrer)
        return tuple(found.values())

    def _typed(self, referrer: Referrer) -> Referrer:
        """The referrer with the artifact type its manifest declares, where the listing gave none or the empty type
        (cosign lists its Sigstore bundles as `application/vnd.oci.empty.v1+json`): one read of the manifest."""
        if referrer.artifact_type not in (None, OCI_EMPTY):
            return referrer
        try:
            fetched = self.registry.get_manifest(self.repository, referrer.digest)
            entry = index_entry(fetched.raw, fetched.media_type, fetched.digest)
        except (NotFound, ValueError):  # listed but gone, or not a manifest: copying it will say so
            return referrer
        artifact_type = entry.get("artifactType")
        return replace(referrer, artifact_type=artifact_type if isinstance(artifact_type, str) else None)

    def _by_subject(self, digest: str) -> tuple[Referrer, ...]:
        if self.has_api is not False:
            assert isinstance(self.registry, ListsReferrers)
            listed = self.registry.referrers(self.repository, digest)
            self.has_api = listed is not None
            if listed is not None:
                return tuple(map(self._typed, listed))
        fetched = manifest_or_none(self.registry, self.repository, referrers_tag(digest))
        return tuple(map(self._typed, referrers_in_index(fetched.raw))) if fetched is not None else ()

    def _by_cosign_tag(self, digest: str) -> list[Referrer]:
        found = []
        for tag in cosign_tags(digest):
            head = self.registry.head_manifest(self.repository, tag)
            if head is not None:
                found.append(Referrer(head.digest, head.media_type, head.size, tag=tag))
        return found


def find_referrers(registry: Registry, repository: str, digest: str) -> tuple[Referrer, ...]:
    """Every referrer of `digest` in `repository`: by `subject` (the API, else the referrers tag's index) and by
    cosign tag, each once, our quarantine-origin artifacts left out."""
    return _Lister(registry, repository).find(digest)


def copy_referrers(
    source: Registry,
    source_repository: str,
    target: Registry,
    target_repository: str,
    subjects: Iterable[str],
    *,
    bring: BringReferrer,
    examine: Iterable[str] = (),
    parallel: int = 4,
    limit: int = MAX_REFERRERS,
) -> CarriedReferrers:
    """Copy the referrers of every digest in `subjects` (manifests already copied unchanged into the target), and
    theirs in turn, from the source repository into the target's; `examine` digests are only looked at, to learn
    whether they had signatures. CopyError past `limit` referrers in all; registry errors propagate."""
    lister = _Lister(source, source_repository)
    signed: set[str] = set()
    copied: dict[str, Referrer] = {}
    target_has_api: bool | None = None
    examined: set[str] = set()
    level = list(dict.fromkeys(subjects))
    watch = [digest for digest in dict.fromkeys(examine) if digest not in level]
    depth = 0
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="referrers") as pool:
        find = carrying_time_limit(lister.find)
        for digest, listed in zip(watch, pool.map(find, watch)):
            if any(referrer.is_signature for referrer in listed):
                signed.add(digest)
        while level and depth < MAX_REFERRER_DEPTH:
            examined.update(level)
            if lister.has_api is None:  # learn it once before the threads ask
                listings = [find(level[0])] + list(pool.map(find, level[1:]))
            else:
                listings = list(pool.map(find, level))
            following: list[str] = []
            for subject, listed in zip(level, listings):
                if any(referrer.is_signature for referrer in listed):
                    signed.add(subject)
                new = [referrer for referrer in listed if referrer.digest not in copied]
                if len(copied) + len(new) > limit:
                    raise CopyError(
                        f"{source.host}/{source_repository}: more than the {limit} referrers one copy may "
                        "carry (signatures, attestations and SBOMs, theirs included)"
                    )
                brought = []
                for referrer in new:
                    try:
                        bring(referrer)
                    except NotFound:
                        # A referrers tag's index outlives deletes (nothing prunes it): a listed manifest that is
                        # gone from the source is nothing to carry.
                        continue
                    brought.append(referrer)
                    copied[referrer.digest] = referrer
                    if referrer.digest not in examined:
                        following.append(referrer.digest)
                linked = [referrer for referrer in brought if referrer.tag is None]
                if linked:
                    if target_has_api is None:
                        target_has_api = _offers_api(target, target_repository, subject)
                    if not target_has_api:
                        entries = [_entry(target, target_repository, referrer) for referrer in linked]
                        add_referrers(target, target_repository, subject, entries)
            level = list(dict.fromkeys(following))
            depth += 1
    return CarriedReferrers(copied=len(copied), signed=frozenset(signed))


def _offers_api(registry: Registry, repository: str, digest: str) -> bool:
    return isinstance(registry, ListsReferrers) and registry.referrers(repository, digest) is not None


def _entry(registry: Registry, repository: str, referrer: Referrer) -> Mapping[str, object]:
    """The referrers index entry for a referrer now in `repository`, built from its own bytes (a listing may omit
    fields the spec asks for)."""
    fetched = registry.get_manifest(repository, referrer.digest)
    try:
        return index_entry(fetched.raw, fetched.media_type, fetched.digest)
    except ValueError as error:
        raise ProtocolError(f"{registry.host}/{repository}@{referrer.digest}: referrer is not a manifest ({error})")


def add_referrers(
    registry: Registry,
    repository: str,
    subject: str,
    entries: Sequence[Mapping[str, object]],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """List `entries` in the referrers tag's index of `subject` in `repository`, keeping what it lists already.

    Read, add, write, read back: True once every entry is listed (False when they all were already). ProtocolError
    when concurrent writers keep dropping them for INDEX_UPDATE_ATTEMPTS rounds.
    """
    tag = referrers_tag(subject)
    for attempt in range(INDEX_UPDATE_ATTEMPTS):
        current = manifest_or_none(registry, repository, tag)
        updated = with_entries(current.raw if current is not None else None, entries)
        if updated is None:
            return attempt > 0
        registry.put_manifest(repository, tag, updated, OCI_INDEX)
        after = manifest_or_none(registry, repository, tag)
        if after is not None and with_entries(after.raw, entries) is None:
            return True
        sleep(0.05 * (attempt + 1))
    raise ProtocolError(
        f"{registry.host}/{repository}:{tag}: the referrers index kept changing while it was updated "
        f"({INDEX_UPDATE_ATTEMPTS} tries); the referrers are stored, but not listed for {subject}"
    )


def manifest_or_none(registry: Registry, repository: str, reference: str) -> FetchedManifest | None:
    """The manifest at `repository:reference` (a tag or a digest), or None when there is none (NotFound)."""
    try:
        return registry.get_manifest(repository, reference)
    except NotFound:
        return None
