"""Remediation: fix a violating tag from a known upstream, or quarantine it — and never lose an image.

    remedy = Remediator(policy, registries, ledger).remediate(target, facts, verdict, rule)
    remedy.result   # reimported | quarantined | superseded | duplicate | alerted | failed

The guarantees, in the order the steps run:
1. One worker at a time: a leased claim in the ledger on registry/repository:tag@digest.
2. Loop guard: at most `loop_limit` remediations (changes made) of one tag per `loop_window` seconds; then stop
   and alert.
3. Preserve first: the offending image is copied (mounted, no bytes move) into the quarantine repository under
   `<tag>.sha256-<hex>` (names that would not fit are shortened: importer.core.quarantine_names) and the copy is
   verified before anything else happens (`preserved_as`); its original repository, tag and digest go on record in
   the ledger and, where the registry takes it, in an artifact next to it, which `release` reads back.
4. Compare-and-swap: right before a tag is re-pointed or removed, it is resolved again; if it no longer points at
   the offending digest, nothing is changed and the result is `superseded`.
5. Re-import writes every blob and child by digest first and the tag last, then inspects the result again.
6. Quarantine (`mode: move`) removes the tag only after the preserved copy is verified: on ACR by deleting the tag,
   on a distribution registry by deleting the manifest (which takes every tag on it along; not when another tag's
   index still uses it, which would break a good image). `mode: lock` (ACR) locks the manifest in place instead.
7. On ACR with PLATFORM_GUARD_ACR_RESOURCE_ID, re-imports run server-side (ARM importImage): no bytes pass here.
8. `import_missing` brings in an image that is not in the guarded registry at all (an image a Helm chart needs,
   importer/app/chart_guard.py): nothing to preserve, and a tag that appears meanwhile is never overwritten.
Registry problems that may pass propagate (the event is delivered again); the claim is given back either way.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from importer.app.copying import CopyError, copy_image
from importer.app.failpoints import failpoint
from importer.app.inspection import inspect_fetched, inspect_manifest
from importer.app.referrers import add_referrers, copy_referrers, find_referrers, manifest_or_none
from importer.app.registries import RegistryDirectory
from importer.core.decide import COMPLIANT, Facts, Verdict, decide
from importer.core.manifests import Descriptor, Index, ManifestError, parse_manifest
from importer.core.media_types import INDEX_MEDIA_TYPES, OCI_MANIFEST, QUARANTINE_ORIGIN_ARTIFACT
from importer.core.policy import Policy, Rule
from importer.core.quarantine_names import QuarantineOrigin, parse_quarantine_tag, quarantine_tag
from importer.core.quarantine_origin import EMPTY_BLOB, EMPTY_DIGEST, digest_of, origin_artifact, read_origin_artifact
from importer.core.reference import ReferenceError, is_digest, is_valid_digest, parse_reference
from importer.core.referrers import (
    SIGNATURE_LOST,
    SIGNATURE_NONE,
    Referrer,
    index_entry,
    referrers_in_index,
    referrers_tag,
    signature_status,
)
from importer.core.selection import ImportPlan, plan_import
from importer.core.words import counted, noun_for
from importer.ports.abilities import DeletesTags, ListsReferrers, LocksManifests, ServerImport
from importer.ports.ledger import Ledger, LedgerUnavailable
from importer.ports.registry import FetchedManifest, NotFound, Registry, RegistryError

CLAIM_LEASE_SECONDS = 600.0

log = logging.getLogger("platform_guard.remediation")


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
    referrers_copied: int | None = None  # signatures, attestations and SBOMs that came along (re-import, quarantine)
    signatures: str | None = None  # re-imports: kept | lost | none (importer.core.referrers.signature_status)


@dataclass(frozen=True, slots=True)
class _Brought:
    """What `_bring_in` put into the target repository: the digest the tag is to point at, and the referrers."""

    digest: str
    referrers_copied: int
    signatures: str


class NoCompliantSource(Exception):
    """The upstream has no variant that satisfies the rule (or cannot be read): fall back to quarantine."""


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
        server_import: ServerImport | None = None,
        now: Callable[[], float] = time.time,
        claim_lease_seconds: float = CLAIM_LEASE_SECONDS,
    ) -> None:
        self.policy = policy
        self.registries = registries
        self.ledger = ledger
        self.loop_limit = loop_limit
        self.loop_window = loop_window
        self.server_import = server_import
        self._now = now
        self.claim_lease_seconds = claim_lease_seconds

    def remediate(self, target: Target, facts: Facts, verdict: Verdict, rule: Rule, *,
                  quarantine_fallback: bool = True, owner: str | None = None) -> Remedy:
        """Fix or quarantine `target` as the rule says; the verdict must be a violation.

        `quarantine_fallback=False`: a re-import that is not possible ends `failed` and leaves the image alone
        (the chart manager fixes images that may well be good enough for their own repository).
        `owner` (the event being decided) owns the remediation claim: a worker that takes the event over after
        another died resumes at once, and every step below is safe to run again (docs/design.md, "Intake and
        workers").
        """
        with self._claimed(target.key, owner) as held:
            if not held:
                return Remedy("duplicate", f"another worker is remediating {target.key}")
            return self._remediate(target, facts, verdict, rule, quarantine_fallback=quarantine_fallback)

    def _remediate(self, target: Target, facts: Facts, verdict: Verdict, rule: Rule, *,
                   quarantine_fallback: bool) -> Remedy:
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
                if not quarantine_fallback:
                    return Remedy("failed", f"re-import not possible: {why}; left as it is", error=str(why))
                remedy = self._quarantine(registry, target, prefix=f"re-import not possible: {why}; ")
        else:
            remedy = self._quarantine(registry, target, prefix="")
        if remedy.result in ("reimported", "quarantined"):
            # Only changes count: an attempt that failed and is retried must not trip the guard.
            self.ledger.note_remediation(target.scope, now=self._now())
        return remedy

    @contextlib.contextmanager
    def _claimed(self, key: str, owner: str | None) -> Iterator[bool]:
        """Hold the remediation claim on `key` while the block runs (False: someone else holds it). With an owner
        the lease is renewed every third of its length, so a long server-side import never outlives it; a renewal
        that finds the claim taken over stops, and the claim is given back only if it is still the owner's."""
        lease = self.claim_lease_seconds
        if not self.ledger.claim_remediation(key, lease_seconds=lease, now=self._now(), owner=owner):
            yield False
            return
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(lease / 3):
                try:
                    if not self.ledger.claim_remediation(key, lease_seconds=lease, now=self._now(),
                                                         owner=owner):
                        return  # taken over after it ran out: the successor's now
                except LedgerUnavailable:
                    continue  # try again at the next third; the lease still has two thirds to run

        renewer = threading.Thread(target=renew, name=f"claim-{key}", daemon=True) if owner is not None else None
        if renewer is not None:
            renewer.start()
        try:
            yield True
        finally:
            stop.set()
            if renewer is not None:
                renewer.join(timeout=5)
            self.ledger.finish_remediation(key, owner=owner)

    def import_missing(self, host: str, repository: str, tag: str | None, digest: str | None, rule: Rule) -> Remedy:
        """Bring in an image that is not in `host/repository` at all from the rule's upstream.

        By tag: what the rule needs, as a re-import brings it (the whole index, without forbidden platforms, or
        flattened), by digest first and the tag last — unless the tag appeared meanwhile (`superseded`: a push
        wins). By digest (`digest` set): exactly that manifest, which must satisfy the rule as it is (a subset
        would change the digest); `tag`, when given, is set only while it is free. Nothing was there, so nothing
        is preserved, and the loop guard does not count it. Result `reimported`, or `failed` when the upstream has
        no compliant variant or cannot be read; transient registry errors propagate.
        """
        reference = digest or tag
        if reference is None:
            raise ValueError(f"{host}/{repository}: import_missing needs a tag or a digest")
        key = f"{host}/{repository}:{tag or ''}@{digest or 'missing'}"
        with self._claimed(key, None) as held:
            if not held:
                return Remedy("duplicate", f"another worker is importing {key}")
            try:
                return self._import_missing(self.registries.client(host), host, repository, tag, digest, rule)
            except NoCompliantSource as why:
                return Remedy("failed", f"{host}/{repository}:{reference} is missing and cannot be imported: {why}",
                              error=str(why))

    def _import_missing(self, registry: Registry, host: str, repository: str, tag: str | None, digest: str | None,
                        rule: Rule) -> Remedy:
        reference = digest or tag
        assert reference is not None
        upstream, upstream_repository, upstream_facts, fetched = self._upstream(repository, reference, rule)
        if digest is not None:  # forbidden platforms cannot be filtered out of a pinned digest
            pinned = decide(upstream_facts, rule)
            if pinned.verdict != COMPLIANT:
                raise NoCompliantSource(f"the pinned {digest} cannot be changed and does not satisfy the rule "
                                        f"({pinned.reason})")
        flatten = digest is None and rule.flatten and len(rule.require) == 1
        try:
            plan, flatten = self._import_plan(upstream, upstream_repository, fetched, rule, flatten)
            brought = self._bring_in(upstream, upstream_repository, fetched, plan, registry, repository, rule,
                                     flatten)
        except CopyError as error:
            raise NoCompliantSource(str(error)) from None
        new_digest = brought.digest
        source = f"{upstream.host}/{upstream_repository}{'@' if is_digest(reference) else ':'}{reference}"
        if digest is None:
            source += f"@{upstream_facts.digest}"
        if digest is not None and new_digest != digest:
            raise RegistryError(f"{host}/{repository}: imported {new_digest}, not the pinned {digest}")
        if tag is not None:
            current = registry.head_manifest(repository, tag)
            if current is None:
                written = registry.get_manifest(repository, new_digest)
                registry.put_manifest(repository, tag, written.raw, written.media_type)
            elif digest is None and current.digest != new_digest:
                return Remedy("superseded", f"{host}/{repository}:{tag} was pushed meanwhile (now {current.digest}): "
                              "a newer push wins, the tag was left alone", new_digest=new_digest, source=source)
        check = decide(inspect_manifest(registry, repository, new_digest, rule), rule)
        if check.verdict != COMPLIANT:
            return Remedy("failed", f"imported {source} but the result is still a violation: {check.reason}",
                          new_digest=new_digest, source=source, error="imported image is not compliant")
        how = _how_imported(rule, flatten=flatten, changed=new_digest != upstream_facts.digest)
        return Remedy("reimported",
                      f"imported {source} ({how}{_signatures_note(brought)}); now offers {', '.join(check.platforms)}",
                      new_digest=new_digest, source=source, referrers_copied=brought.referrers_copied,
                      signatures=brought.signatures)

    # -- steps ---------------------------------------------------------------------------------------

    def _preserve(self, registry: Registry, target: Target) -> tuple[str, int]:
        """Copy the offending image with its referrers into the quarantine repository, verify it and put its origin
        on record (the ledger, and an artifact next to it where the registry takes one); returns its reference and
        how many referrers came along."""
        repository = self.policy.quarantine.repository_for(target.repository)
        tag = quarantine_tag(target.tag, target.digest)
        copied = copy_image(registry, target.repository, target.digest, registry, repository, tag, referrers=True)
        kept = registry.head_manifest(repository, tag)
        if kept is None or kept.digest != target.digest:
            raise RegistryError(f"{target.host}/{repository}:{tag}: preserved copy does not match {target.digest}")
        # On record before anything is removed: a shortened name does not say where the image came from.
        origin = QuarantineOrigin(target.repository, target.tag, target.digest)
        self.ledger.record_quarantine(target.host, repository, tag, origin.repository, origin.tag, origin.digest,
                                      now=self._now())
        attach_origin(registry, repository, Descriptor(kept.media_type, kept.digest, kept.size), origin, kept_tag=tag)
        failpoint("after-preserve")
        return f"{target.host}/{repository}:{tag}", copied.referrers_copied

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

    def _upstream(self, target_repository: str, reference: str,
                  rule: Rule) -> tuple[Registry, str, Facts, FetchedManifest]:
        """The rule's upstream of `target_repository` at `reference` (a tag or a digest), if it satisfies the rule:
        its registry, repository, facts and top manifest (read once, by the inspection and for the import)."""
        template = rule.upstream_for(target_repository)
        if template is None:
            raise NoCompliantSource("the rule has no upstream")
        try:
            upstream = parse_reference(f"{template}{'@' if is_digest(reference) else ':'}{reference}")
        except ReferenceError as error:
            raise NoCompliantSource(f"upstream {template!r}: {error}") from None
        registry = self.registries.client(upstream.registry)
        try:
            fetched = registry.get_manifest(upstream.repository, reference)
            facts = inspect_fetched(registry, upstream.repository, fetched, rule,
                                    tag=None if is_valid_digest(reference) else reference)
        except (RegistryError, ManifestError) as error:
            if isinstance(error, RegistryError) and error.transient:
                raise
            raise NoCompliantSource(f"{upstream} cannot be read: {error}") from None
        # Forbidden platforms can be filtered out of an index; what is missing or inconsistent cannot be added.
        verdict = decide(facts, Rule(require=rule.require, match=rule.match))
        if verdict.verdict != COMPLIANT or (facts.kind == "image" and any(decide(facts, rule).forbidden)):
            raise NoCompliantSource(f"{upstream} has no compliant variant ({verdict.reason})")
        return registry, upstream.repository, facts, fetched

    def _reimport(self, registry: Registry, target: Target, facts: Facts, rule: Rule) -> Remedy:
        upstream, upstream_repository, upstream_facts, fetched = self._upstream(target.repository, target.tag, rule)
        flatten = rule.flatten and len(rule.require) == 1
        try:
            plan, flatten = self._import_plan(upstream, upstream_repository, fetched, rule, flatten)
        except CopyError as error:
            raise NoCompliantSource(str(error)) from None
        preserved, _ = self._preserve(registry, target)
        try:
            # Everything lands by digest first; the tag is re-pointed below, after the compare-and-swap.
            brought = self._bring_in(upstream, upstream_repository, fetched, plan, registry, target.repository, rule,
                                     flatten)
        except CopyError as error:
            raise NoCompliantSource(str(error)) from None
        new_digest = brought.digest
        source = f"{upstream.host}/{upstream_repository}:{target.tag}@{upstream_facts.digest}"
        current = registry.head_manifest(target.repository, target.tag)
        if current is None or current.digest not in (target.digest, new_digest):
            return self._superseded(target, preserved)
        if current.digest == target.digest:  # else a try that died after the write already put it there
            written = registry.get_manifest(target.repository, new_digest)
            failpoint("before-tag-write")
            registry.put_manifest(target.repository, target.tag, written.raw, written.media_type)
            failpoint("after-tag-write")
        check = decide(inspect_manifest(registry, target.repository, new_digest, rule), rule)
        if check.verdict != COMPLIANT:
            return Remedy(
                "failed",
                f"re-imported {source} but the result is still a violation: {check.reason}",
                new_digest=new_digest,
                preserved_as=preserved,
                source=source,
                error="re-imported image is not compliant",
            )
        how = _how_imported(rule, flatten=flatten, changed=new_digest != upstream_facts.digest)
        return Remedy(
            "reimported",
            f"re-imported {source} ({how}{_signatures_note(brought)}); now offers {', '.join(check.platforms)}",
            new_digest=new_digest,
            preserved_as=preserved,
            source=source,
            referrers_copied=brought.referrers_copied,
            signatures=brought.signatures,
        )

    def _import_plan(self, upstream: Registry, upstream_repository: str, fetched: FetchedManifest, rule: Rule,
                     flatten: bool) -> tuple[ImportPlan, bool]:
        """What to bring in from the upstream manifest `fetched`, and whether flattened; with `signatures: keep`,
        a remedy whose digest no upstream signature covers is replaced by a signed flattened child when one platform
        is required, else refused (NoCompliantSource: the caller quarantines). Writes nothing."""
        plan = plan_import(fetched, platforms=rule.require if flatten else (), strict=rule.strict, exclude=rule.forbid,
                           flatten=flatten)
        if not rule.keeps_signatures or plan.digest == fetched.digest:
            return plan, flatten
        # A filtered index built here (`plan.manifest`) has a new digest, which nothing upstream can have signed.
        looked_up = (fetched.digest,) if plan.manifest is not None else (fetched.digest, plan.digest)
        signed = self._signed(upstream, upstream_repository, looked_up)
        if signature_status(plan.digest, fetched.digest, signed) != SIGNATURE_LOST:
            return plan, flatten
        if not flatten and len(rule.require) == 1:
            single = plan_import(fetched, platforms=rule.require, strict=rule.strict, exclude=rule.forbid,
                                 flatten=True)
            if single.digest in self._signed(upstream, upstream_repository, (single.digest,)):
                return single, True
        shape = "a flattened child" if flatten else "an index without " + ", ".join(rule.forbid)
        raise NoCompliantSource(
            f"signatures: keep: the upstream's signatures cover {fetched.digest}, but the compliant remedy ({shape}, "
            f"{plan.digest}) is signed by none of them"
        )

    @staticmethod
    def _signed(upstream: Registry, repository: str, digests: tuple[str, ...]) -> set[str]:
        """The digests among `digests` that have at least one signature in the upstream repository."""
        return {digest for digest in dict.fromkeys(digests)
                if any(referrer.is_signature for referrer in find_referrers(upstream, repository, digest))}

    def _bring_in(self, upstream: Registry, upstream_repository: str, fetched: FetchedManifest, plan: ImportPlan,
                  registry: Registry, target_repository: str, rule: Rule, flatten: bool) -> _Brought:
        """Put what `plan` needs from the upstream into the target repository by digest, with the referrers of every
        manifest brought in unchanged; returns the new digest and what became of the signatures."""
        if self.server_import is not None and self.server_import.serves(registry):
            login = self.registries.credentials_for(upstream.host)

            def server_import(digests: tuple[str, ...]) -> None:
                self.server_import.import_digests(  # type: ignore[union-attr]
                    source_registry=upstream.host, source_repository=upstream_repository, digests=digests,
                    target_repository=target_repository, username=login.username if login else None,
                    password=login.password if login else None,
                )

            server_import(plan.imports)
            if plan.manifest is not None:  # a filtered index is written by us, after its children
                registry.put_manifest(target_repository, plan.digest, plan.manifest, plan.media_type)

            def bring(referrer: Referrer) -> None:
                server_import((referrer.digest,))
                if referrer.tag is not None:
                    written = registry.get_manifest(target_repository, referrer.digest)
                    registry.put_manifest(target_repository, referrer.tag, written.raw, written.media_type)

            carried = copy_referrers(upstream, upstream_repository, registry, target_repository,
                                     _unchanged(fetched, plan), examine=(fetched.digest,), bring=bring)
            return _Brought(plan.digest, carried.copied, signature_status(plan.digest, fetched.digest, carried.signed))
        platforms = rule.require if flatten else ()
        copied = copy_image(upstream, upstream_repository, fetched.digest, registry, target_repository, None,
                            platforms=platforms, strict=rule.strict, exclude=rule.forbid, flatten=flatten,
                            referrers=True)
        if copied.digest != plan.digest:
            raise CopyError(f"{upstream.host}/{upstream_repository}@{fetched.digest}: the copy wrote {copied.digest}, "
                            f"the plan was {plan.digest}")
        return _Brought(copied.digest, copied.referrers_copied, copied.signatures or SIGNATURE_NONE)

    def _quarantine(self, registry: Registry, target: Target, *, prefix: str) -> Remedy:
        if self.policy.quarantine.mode == "lock":
            if not isinstance(registry, LocksManifests):
                return Remedy(
                    "failed",
                    prefix + "quarantine mode 'lock' needs Azure Container Registry",
                    error="unsupported quarantine mode for this registry",
                )
            return self._lock(registry, target, prefix=prefix)
        preserved, carried = self._preserve(registry, target)
        if not self._still_points_at_offender(registry, target):
            return self._superseded(target, preserved)
        if isinstance(registry, DeletesTags):  # only the tag goes, the manifest stays where it was
            failpoint("before-quarantine-delete")
            with contextlib.suppress(NotFound):  # a redelivery may find it gone already
                registry.delete_tag(target.repository, target.tag)
            failpoint("after-quarantine-delete")
            return Remedy(
                "quarantined",
                prefix + f"moved to {preserved}{_with_referrers(carried)}; removed tag {target.tag} from "
                f"{target.repository}",
                preserved_as=preserved,
                affected_tags=(target.tag,),
                referrers_copied=carried,
            )
        tags, users = self._tags_using(registry, target)
        if users:
            return Remedy(
                "alerted",
                prefix + f"kept in {preserved}, but not removed: {', '.join(users)} still use {target.digest}",
                preserved_as=preserved,
                referrers_copied=carried,
            )
        failpoint("before-quarantine-delete")
        registry.delete_manifest(target.repository, target.digest)
        failpoint("after-quarantine-delete")
        return Remedy(
            "quarantined",
            prefix + f"moved to {preserved}{_with_referrers(carried)}; removed {noun_for(len(tags), 'tag')} "
            f"{', '.join(tags)} from {target.repository}",
            preserved_as=preserved,
            affected_tags=tuple(tags),
            referrers_copied=carried,
        )

    def _lock(self, registry: LocksManifests, target: Target, *, prefix: str) -> Remedy:
        """`quarantine.mode: lock`: the manifest stays, pulls fail closed, nothing can overwrite or delete it."""
        if not self._still_points_at_offender(registry, target):  # type: ignore[arg-type]
            return Remedy("superseded", f"{target.scope} no longer points at {target.digest}: nothing changed")
        registry.lock_manifest(target.repository, target.digest, read=False, write=False, delete=False)
        kept = f"{target.host}/{target.repository}@{target.digest}"
        return Remedy(
            "quarantined",
            prefix + f"locked {kept} (read, write and delete disabled): pulls of {target.tag} fail",
            preserved_as=kept,
            affected_tags=(target.tag,),
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


def _unchanged(fetched: FetchedManifest, plan: ImportPlan) -> tuple[str, ...]:
    """The upstream manifests an import brings in as they are: the whole index and its children, the one flattened
    child, or the kept children of a filtered index (whose own digest is new)."""
    if plan.shape == "single":
        return (plan.digest,)
    children = tuple(dict.fromkeys(plan.imports)) if plan.shape == "assembled" else ()
    if plan.shape == "whole":
        manifest = parse_manifest(fetched.raw, fetched.media_type)
        if isinstance(manifest, Index):
            children = tuple(dict.fromkeys(child.digest for child in manifest.manifests))
    return ((fetched.digest,) if plan.digest == fetched.digest else ()) + children


def _signatures_note(brought: _Brought) -> str:
    """The reason's words on signatures: what came along, and a signed digest replaced by an unsigned one."""
    note = _with_referrers(brought.referrers_copied)
    if brought.signatures == SIGNATURE_LOST:
        note += "; the upstream's signatures do not cover the new digest (signatures: lost)"
    return note


def _with_referrers(count: int) -> str:
    return f" with {counted(count, 'referrer')}" if count else ""


def _how_imported(rule: Rule, *, flatten: bool, changed: bool) -> str:
    """How a re-import shaped what it brought in, for the outcome's reason."""
    if flatten:
        return "flattened to " + ", ".join(str(platform) for platform in rule.require)
    if changed:
        return "without " + ", ".join(rule.forbid)
    return "as is"


class ReleaseError(Exception):
    """A release that cannot be done as asked; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Released:
    """Where a quarantined image went back to."""

    source: str
    destination: str
    digest: str
    referrers_copied: int = 0  # signatures, attestations and SBOMs brought back with it


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
    any_source: bool = False,
    now: Callable[[], float] = time.time,
) -> Released:
    """Put a quarantined image back on purpose: same digest, mounted, and remembered so it is not remediated again.

    The destination defaults to the repository and tag the image was quarantined from: the ledger's record of the
    quarantine, else the origin artifact kept next to the image, else what the quarantine name says (images
    quarantined before either existed); `to` = (repository, tag) overrides it. A destination tag that now points at
    another image (a newer push) is not overwritten unless `force`.

    Only quarantined images are released: from one of the policy's quarantine repositories (`quarantine.repository`),
    or a manifest that `quarantine.mode: lock` locked in place (pulls disabled). A release exempts its digest from the
    policy from then on, so an image anywhere else is refused (ReleaseError) unless `any_source` says so on purpose.
    """
    in_quarantine = policy.quarantine.holds(quarantine_repository)
    if isinstance(registry, LocksManifests) and not in_quarantine:
        return _unlock(registry, policy, ledger, host, quarantine_repository, quarantine_reference, now,
                       any_source=any_source)
    if not in_quarantine and not any_source:
        raise ReleaseError(_not_quarantined(policy, host, quarantine_repository, quarantine_reference, ""))
    fetched = registry.get_manifest(quarantine_repository, quarantine_reference)
    if to is None:
        origin = _origin(registry, policy, ledger, host, quarantine_repository, quarantine_reference, fetched.digest)
        to = (origin.repository, origin.tag)
    repository, tag = to
    current = registry.head_manifest(repository, tag)
    if current is not None and current.digest != fetched.digest and not force:
        raise ReleaseError(
            f"{host}/{repository}:{tag} now points at {current.digest} (a newer push); use --force to overwrite it"
        )
    copied = copy_image(registry, quarantine_repository, fetched.digest, registry, repository, None, referrers=True)
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
        referrers_copied=copied.referrers_copied,
    )


def _origin(registry: Registry, policy: Policy, ledger: Ledger, host: str, repository: str, reference: str,
            digest: str) -> QuarantineOrigin:
    """Where the image kept at `repository` under `reference` (holding `digest`) came from: the ledger's record,
    else the origin artifact next to it, else its name; ReleaseError when none of them says."""
    kept_tag = None if is_digest(reference) else reference
    where = f"{host}/{repository}{'@' if kept_tag is None else ':'}{reference}"
    origin = ledger.quarantine_origin(host, repository, kept_tag) if kept_tag is not None else None
    if origin is None:
        origin = registry_origin(registry, repository, digest, kept_tag=kept_tag)
        # The artifact is only believed when the names it gives lead back to this very quarantine name.
        if origin is not None and (
            policy.quarantine.repository_for(origin.repository) != repository
            or (kept_tag is not None and quarantine_tag(origin.tag, origin.digest) != kept_tag)
        ):
            origin = None
    if origin is not None:
        if origin.digest != digest:
            raise ReleaseError(f"{where} was quarantined as {origin.digest} but holds {digest}: refusing to guess")
        return origin
    original_repository = policy.quarantine.original_of(repository)
    parsed = parse_quarantine_tag(reference)
    if policy.quarantine.holds(repository) and (original_repository is None or (parsed and parsed.shortened)):
        raise ReleaseError(
            f"{where} has a shortened name, and neither the ledger nor the registry knows where it came from: "
            "say where it goes with --to REPO:TAG"
        )
    if original_repository is None or parsed is None:
        raise ReleaseError(
            f"{where} is not named like a quarantined image ({policy.quarantine.repository} and "
            "<tag>.sha256-<hex>): say where it goes with --to REPO:TAG"
        )
    if not digest.startswith(parsed.digest):
        raise ReleaseError(f"quarantine tag names {parsed.digest} but holds {digest}: refusing to guess")
    return QuarantineOrigin(original_repository, parsed.tag, digest)


def attach_origin(registry: Registry, repository: str, subject: Descriptor, origin: QuarantineOrigin, *,
                  kept_tag: str) -> bool:
    """Keep `origin` next to the preserved image `subject` in `repository`: an artifact about it, pushed by digest
    (importer.core.quarantine_origin), and listed in the referrers tag's index where the registry has no referrers
    API. The image itself is not touched. Best effort: False when the registry refused (the ledger has it)."""
    raw = origin_artifact(origin, kept_tag=kept_tag, subject=subject)
    try:
        if registry.head_blob(repository, EMPTY_DIGEST) is None:
            registry.upload_blob(repository, EMPTY_DIGEST, [EMPTY_BLOB], len(EMPTY_BLOB))
        registry.put_manifest(repository, digest_of(raw), raw, OCI_MANIFEST)
        if _origin_listing(registry, repository, subject.digest) is None:
            add_referrers(registry, repository, subject.digest, [index_entry(raw, OCI_MANIFEST, digest_of(raw))])
    except RegistryError as error:
        log.warning("%s/%s: the origin of %s is not kept next to it (%s); the ledger has it",
                    registry.host, repository, subject.digest, error)
        return False
    return True


def registry_origin(
    registry: Registry, repository: str, digest: str, *, kept_tag: str | None
) -> QuarantineOrigin | None:
    """The origin kept next to `digest` in `repository` by attach_origin, or None when none can be found.

    With `kept_tag`, only an artifact written for that quarantine tag counts; without it (a release by digest) the
    artifacts found must agree on one origin. Registry errors that will not pass count as nothing found.
    """
    try:
        listing = _origin_listing(registry, repository, digest)
        if listing is None:
            kept_index = manifest_or_none(registry, repository, referrers_tag(digest))
            listing = referrers_in_index(kept_index.raw) if kept_index is not None else ()
        found: set[QuarantineOrigin] = set()
        for artifact in (referrer.digest for referrer in listing if referrer.artifact_type == QUARANTINE_ORIGIN_ARTIFACT):
            read = read_origin_artifact(registry.get_manifest(repository, artifact).raw, digest)
            if read is not None and (kept_tag is None or read[1] == kept_tag):
                found.add(read[0])
    except RegistryError as error:
        if error.transient:
            raise
        return None
    return found.pop() if len(found) == 1 else None


def _origin_listing(registry: Registry, repository: str, digest: str) -> tuple[Referrer, ...] | None:
    """Our origin artifacts about `digest` as the referrers API lists them, or None without the API."""
    if isinstance(registry, ListsReferrers):
        return registry.referrers(repository, digest, artifact_type=QUARANTINE_ORIGIN_ARTIFACT)
    return None


def _not_quarantined(policy: Policy, host: str, repository: str, reference: str, locked: str) -> str:
    """Why an image outside quarantine is not released, and how to release it all the same."""
    where = f"{host}/{repository}{'@' if is_digest(reference) else ':'}{reference}"
    return (
        f"{where} is not in a quarantine repository ({policy.quarantine.repository}){locked}: only quarantined "
        "images are released. To put an image from anywhere else in place and exempt its digest from the policy "
        "from then on, add --any-source"
    )


def _unlock(registry: LocksManifests, policy: Policy, ledger: Ledger, host: str, repository: str, reference: str,
            now: Callable[[], float], *, any_source: bool) -> Released:
    """Release a manifest that `quarantine.mode: lock` locked in place: enable read, write and delete again. A
    manifest whose pulls are enabled was not locked by a quarantine: refused unless `any_source`."""
    if not reference.startswith(("sha256:", "sha512:")):
        raise ReleaseError(f"{host}/{repository}:{reference}: a locked image is released by digest (REPO@sha256:…)")
    if not any_source and registry.manifest_properties(repository, reference).can_read:
        raise ReleaseError(_not_quarantined(policy, host, repository, reference, " nor locked by a quarantine"))
    ledger.mark_released(f"{host}/{repository}", reference, now=now())
    registry.lock_manifest(repository, reference, read=True, write=True, delete=True)
    where = f"{host}/{repository}@{reference}"
    return Released(source=f"{where} (locked)", destination=where, digest=reference)
