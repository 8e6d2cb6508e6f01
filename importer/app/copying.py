"""The copy engine: copy an image, a whole index, or some of an index's platforms between repositories or registries.

    result = copy_image(source, "library/nginx", "1.27", target, "mirror/nginx", "1.27")       # as is, same digest
    result = copy_image(source, "library/nginx", "1.27", target, "mirror/nginx", "1.27",
                        platforms=[parse("linux/amd64"), parse("linux/arm64")])              # a new, smaller index
    result = copy_image(..., platforms=[parse("linux/arm64")], flatten=True)                  # the tag → that manifest
    result = copy_image(..., exclude=("windows/*",))                                          # the index minus those

What is copied
- `platforms=()` and no `exclude`: everything as it is, nested indexes included (at most MAX_INDEX_DEPTH levels
  of indexes, the top one counted), so the target gets the same digest. Each distinct manifest is read, parsed and
  written once however often it is listed (memoised by digest, with the height of its subtree, so a shared index
  still counts its deepest path), and every descriptor visited (index entries, each image's config and layers)
  counts against one budget per copy (importer.core.manifests.WalkBudget, MAX_WALK_DESCRIPTORS).
- `platforms`: for each requested platform, the best top-level image child (`importer.core.platforms.best_candidate`,
  `strict` or compatible ranking). A new index holds only the chosen children, in their original order, with the
  index's media type, annotations and other fields, plus the BuildKit attestations whose
  `vnd.docker.reference.digest` names a kept child. Nested indexes and other entries are left out: subsets
  consider top-level image children only. A platform nothing satisfies is a CopyError naming it and what is
  offered, raised before anything is written.
- `exclude` (forbid patterns, `importer.core.platforms.matches_pattern`): image children matching one are dropped
  with their attestations; alone, every other entry is kept (nested indexes copied whole); with `platforms`,
  excluded children are never chosen. Nothing dropped means the same bytes and digest.
- `flatten=True` with exactly one platform: the chosen child manifest itself is pushed under the tag.
- A single image (not an index) is copied as is; `platforms`/`exclude` are then checked against its config.

How it is written (DESIGN.md §3 "Writes"): every blob first, then child manifests by digest (deepest first,
skipped when the target has them), then the top manifest under `target_tag` (by digest when None). Per blob:
HEAD on the target (present: skipped) → cross-repository mount when source and target are the same Registry
object or the same host (refused: fall back) → streamed from `source.open_blob` into `target.upload_blob`.
Blobs go `parallel` at a time (default 4); a failing blob stops the others at their next chunk and nothing
after the blobs is written. Memory stays bounded by the clients' buffers (chunks of 256 KiB; OciRegistry
buffers blobs of at most 4 MiB whole), per worker, never by the size of a layer.

Verification: the clients check manifests and streams against their digests (the source stream raises
DigestMismatch at its end, before the upload is committed), the target registry checks what it stores, and
every digest `put_manifest` returns is compared with the expected one. The stream's length is checked against
the descriptor's size as it goes.

Errors: CopyError for permanent problems with the request or the source's content (platform not offered,
unreadable manifest, nesting too deep, over the walk's budget, bad option); RegistryError from the clients
propagates unchanged (transient ones are for the caller to retry). The threads of the copy work under the caller's
time limit (importer.ports.deadlines).
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from typing import Any, Literal

from importer.app.failpoints import failpoint
from importer.app.referrers import CarriedReferrers, copy_referrers
from importer.core.manifests import (
    MAX_CONFIG_BYTES,
    MAX_INDEX_DEPTH,
    ChildKind,
    Descriptor,
    ImageManifest,
    Index,
    Manifest,
    ManifestError,
    WalkBudget,
    classify_child,
    parse_manifest,
    platform_from_config,
)
from importer.core.platforms import (
    Platform,
    format_platform,
    matches_pattern,
    satisfies,
)
from importer.core.reference import is_digest, validate_repository, validate_tag
from importer.core.referrers import Referrer, signature_status
from importer.core.retry import CONCURRENT_WRITE_RETRY, RetryPolicy, retry_call
from importer.core.selection import build_index, check_exclude_patterns, plan_subset
from importer.ports.deadlines import carrying_time_limit
from importer.ports.registry import CopyError, DigestMismatch, FetchedManifest, Registry, RegistryError

__all__ = [
    "CopyError",
    "CopyEvent",
    "CopyResult",
    "CopyStats",
    "DEFAULT_PARALLEL",
    "MAX_INDEX_DEPTH",
    "copy_image",
]

DEFAULT_PARALLEL = 4

# Layers that registries may legitimately not hold (pulled from the descriptor's `urls` instead): when the
# source lacks one, it is skipped the way containers/image skips it.
NON_DISTRIBUTABLE_LAYERS = frozenset(
    {
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
)


@dataclass(frozen=True, slots=True)
class CopyStats:
    """What a copy did: blobs skipped (already there), mounted, uploaded, and manifests written."""

    blobs_skipped: int = 0
    blobs_mounted: int = 0
    blobs_uploaded: int = 0
    bytes_uploaded: int = 0
    manifests_written: int = 0


@dataclass(frozen=True, slots=True)
class CopyResult:
    """The manifest written on the target (digest, media type, platforms it offers) and how it got there."""

    digest: str
    media_type: str
    platforms: tuple[str, ...]
    stats: CopyStats
    source_digest: str
    unchanged: tuple[str, ...] = ()  # the source's manifests written as they are (their digests stay)
    referrers: CarriedReferrers | None = None  # None: referrers were not asked for

    @property
    def referrers_copied(self) -> int:
        """How many referrer manifests (signatures, attestations, SBOMs) came along."""
        return self.referrers.copied if self.referrers is not None else 0

    @property
    def signatures(self) -> str | None:
        """kept | lost | none (importer.core.referrers.signature_status); None when referrers were not asked for."""
        if self.referrers is None:
            return None
        return signature_status(self.digest, self.source_digest, self.referrers.signed)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the fields, `stats` as a nested object."""
        return {
            "digest": self.digest,
            "media_type": self.media_type,
            "platforms": list(self.platforms),
            "stats": asdict(self.stats),
            "source_digest": self.source_digest,
            "referrers_copied": self.referrers_copied,
            "signatures": self.signatures,
        }


CopyEventKind = Literal["planned", "streamed", "blob", "manifest"]


@dataclass(frozen=True, slots=True)
class CopyEvent:
    """One step of a copy, for a progress display; callbacks are never called from two threads at once.

    planned:  `blobs` blobs of `size` bytes in total are about to be copied.
    streamed: `size` more bytes of blob `digest` were read from the source.
    blob:     blob `digest` (`size` bytes) is done; `outcome` is skipped, mounted or uploaded.
    manifest: manifest `digest` (`size` bytes) is done; `outcome` is written or present.
    """

    kind: CopyEventKind
    digest: str = ""
    size: int = 0
    outcome: str = ""
    blobs: int = 0


# --- pure planning --------------------------------------------------------------------------------------


# --- the copy -------------------------------------------------------------------------------------------


def copy_image(
    source: Registry,
    source_repository: str,
    source_reference: str,
    target: Registry,
    target_repository: str,
    target_tag: str | None,
    *,
    platforms: Sequence[Platform] = (),
    strict: bool = False,
    exclude: Sequence[str] = (),
    flatten: bool = False,
    parallel: int = DEFAULT_PARALLEL,
    progress: Callable[[CopyEvent], None] | None = None,
    retry: RetryPolicy = CONCURRENT_WRITE_RETRY,
    referrers: bool = False,
    vet: Callable[[FetchedManifest, Sequence[FetchedManifest]], None] | None = None,
) -> CopyResult:
    """Copy `source_repository:source_reference` to `target_repository:target_tag` (see the module docstring).

    `target_tag` None pushes the result by digest only. Returns what was written; raises CopyError before
    writing anything when the request cannot be met, and lets the clients' RegistryError through. `retry` paces
    the retries of a manifest PUT refused because a concurrent writer into the same repository is still linking a
    blob (transient errors are retried by the clients, under their own policies). `referrers`: carry the referrers
    of every manifest copied unchanged (importer.app.referrers), after the manifests and before the tag.
    `vet`: called with the manifest the tag will hold and the child manifests to be written, once the source is read
    and before anything is written; what it raises stops the copy (importer.app.copy_policy judges them).
    """
    if parallel < 1:
        raise ValueError(f"parallel={parallel}: at least one blob must be copied at a time")
    validate_repository(source_repository)
    validate_repository(target_repository)
    if target_tag is not None:
        validate_tag(target_tag)
    if flatten and len(platforms) != 1:
        requested = ", ".join(map(str, platforms)) or "none"
        raise CopyError(f"flatten needs exactly one platform, got {len(platforms)} ({requested})")
    check_exclude_patterns(exclude)

    where = _display(source.host, source_repository, source_reference)
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="copy") as pool:
        reader = _SourceReader(source, source_repository, pool, where)
        plan = _plan(reader, source_reference, platforms, strict=strict, exclude=exclude, flatten=flatten)
        if vet is not None:
            vet(plan.top, plan.children)
        job = _CopyJob(source, source_repository, target, target_repository, _Events(progress), retry)
        job.events.emit(CopyEvent("planned", size=sum(blob.size for blob in plan.blobs), blobs=len(plan.blobs)))
        job.copy_blobs(plan.blobs, pool)
    failpoint("after-blobs")
    for child in plan.children:
        job.write_manifest(child, child.digest)
    failpoint("after-children")
    unchanged = tuple(child.digest for child in plan.children) + ((plan.top.digest,) if plan.top_unchanged else ())
    carried = None
    top_written: str | None = None  # the top's digest once it is written by digest
    if referrers:

        def bring(referrer: Referrer) -> None:
            nonlocal top_written
            if top_written is None:  # a referrer's subject is there before the referrer
                top_written = job.write_manifest(plan.top, plan.top.digest)
            # as it is, by digest, or under its cosign tag when it has one
            copy_image(source, source_repository, referrer.digest, target, target_repository, referrer.tag,
                       parallel=parallel, retry=retry)

        carried = copy_referrers(source, source_repository, target, target_repository, unchanged,
                                 examine=(plan.source_digest,), parallel=parallel, bring=bring)
    if target_tag is None and top_written is not None:
        written = top_written  # pushed by digest only, and that was done before the referrers
    else:
        written = job.write_manifest(plan.top, target_tag or plan.top.digest)
    return CopyResult(
        digest=written,
        media_type=plan.top.media_type,
        platforms=plan.platforms,
        stats=job.stats(),
        source_digest=plan.source_digest,
        unchanged=unchanged,
        referrers=carried,
    )


@dataclass(frozen=True, slots=True)
class _Plan:
    """Everything to write: blobs, child manifests (pushed by digest, in order), then the top manifest."""

    top: FetchedManifest
    children: tuple[FetchedManifest, ...]
    blobs: tuple[Descriptor, ...]
    platforms: tuple[str, ...]
    source_digest: str
    top_unchanged: bool = True  # False: `top` is a new, smaller index built here


def _plan(
    reader: _SourceReader,
    reference: str,
    platforms: Sequence[Platform],
    *,
    strict: bool,
    exclude: Sequence[str],
    flatten: bool,
) -> _Plan:
    """Read what the copy needs from the source and decide what to write; writes nothing."""
    fetched = reader.manifest(reference)
    reader.budget = WalkBudget(fetched.digest)
    manifest = reader.parse(fetched)
    selecting = bool(platforms or exclude)
    if isinstance(manifest, ImageManifest):
        platform = reader.image_platform(manifest)
        if selecting:
            _check_single_image(platform, platforms, strict=strict, exclude=exclude, where=reader.where)
        reader.add_image(manifest, fetched.digest)
        return reader.plan(fetched, source_digest=fetched.digest, platforms=(str(platform),) if platform else ())
    reader.visit(len(manifest.manifests), fetched.digest)
    if not selecting:
        reader.add_children(manifest.manifests, depth=1)
        return reader.plan(fetched, source_digest=fetched.digest)
    try:
        kept = plan_subset(manifest, platforms, strict=strict, exclude=exclude)
    except CopyError as error:
        raise CopyError(f"{reader.where}: {error}") from None
    if flatten:
        chosen = next(child for child in kept if classify_child(child) is ChildKind.IMAGE)
        child_manifest = reader.manifest(chosen.digest)
        parsed = reader.parse(child_manifest)
        if not isinstance(parsed, ImageManifest):
            raise CopyError(f"{reader.where}: cannot flatten to {chosen.digest}: its content is an index")
        reader.add_image(parsed, child_manifest.digest)
        return reader.plan(child_manifest, source_digest=fetched.digest, platforms=(str(chosen.platform),))
    raw = build_index(manifest, fetched.raw, kept)
    top = fetched
    if raw != fetched.raw:
        top = FetchedManifest(raw=raw, media_type=manifest.media_type, digest=_sha256(raw))
    reader.add_children(kept, depth=1)
    return reader.plan(top, source_digest=fetched.digest, top_unchanged=top is fetched)


def _check_single_image(
    platform: Platform | None, platforms: Sequence[Platform], *, strict: bool, exclude: Sequence[str], where: str
) -> None:
    offered = format_platform(platform, with_os_version=True) if platform else "no readable platform"
    for requested in platforms:
        if platform is None or not satisfies(requested, platform, strict=strict):
            match = " (strict match)" if strict else ""
            raise CopyError(
                f"{where}: platform {format_platform(requested, with_os_version=True)} is not offered{match}; "
                f"it is a single image for {offered}"
            )
    for pattern in exclude:
        if platform is not None and matches_pattern(pattern, platform):
            raise CopyError(f"{where}: excluding {pattern} leaves nothing: it is a single image for {offered}")


class _SourceReader:
    """Reads the source's manifests (children fetched in parallel) and gathers blobs and platforms to copy.

    One walk: each distinct manifest is fetched and parsed once, and every descriptor visited counts against
    `budget` (set by `_plan` once the top manifest is known)."""

    def __init__(self, source: Registry, repository: str, pool: ThreadPoolExecutor, where: str) -> None:
        self.source = source
        self.repository = repository
        self.pool = pool
        self.where = where
        self.budget = WalkBudget(where)
        self.children: dict[str, FetchedManifest] = {}  # insertion order is the push order
        self.heights: dict[str, int] = {}  # nested index digest → levels of indexes from it down, itself counted
        self.blobs: dict[str, Descriptor] = {}
        self.platforms: list[str] = []

    def manifest(self, reference: str) -> FetchedManifest:
        return self.source.get_manifest(self.repository, reference)

    def parse(self, fetched: FetchedManifest) -> Manifest:
        try:
            return parse_manifest(fetched.raw, fetched.media_type)
        except ManifestError as error:
            raise CopyError(f"{self.where}: manifest {fetched.digest} cannot be copied: {error}") from None

    def visit(self, count: int, digest: str) -> None:
        """Count `count` descriptors of manifest `digest` against the copy's budget."""
        try:
            self.budget.visit(count, digest)
        except ManifestError as error:
            raise CopyError(f"{self.where}: {error}") from None

    def image_platform(self, manifest: ImageManifest) -> Platform | None:
        """The platform an image's config declares; None for artifacts and unreadable configs."""
        if not manifest.is_image or manifest.config.size > MAX_CONFIG_BYTES:
            return None
        raw = self.source.get_blob(self.repository, manifest.config.digest, max_bytes=MAX_CONFIG_BYTES)
        try:
            return platform_from_config(raw)
        except ManifestError:
            return None

    def add_image(self, manifest: ImageManifest, digest: str) -> None:
        self.visit(1 + len(manifest.layers), digest)
        for blob in (manifest.config, *manifest.layers):
            self.blobs.setdefault(blob.digest, blob)

    def add_children(self, children: Sequence[Descriptor], *, depth: int) -> int:
        """Fetch `children` (entries of an index at nesting `depth`), recursing into nested indexes; each distinct
        child once in the whole copy. Returns the levels of indexes from that index down, itself counted."""
        self.platforms.extend(str(child.platform) for child in children if classify_child(child) is ChildKind.IMAGE)
        unique = list({child.digest: child for child in children if child.digest not in self.children}.values())
        fetch = carrying_time_limit(lambda child: self.manifest(child.digest))
        fetched = list(self.pool.map(fetch, unique))
        for child, content in zip(unique, fetched):
            if content.digest in self.children:  # walked meanwhile, below an earlier sibling
                continue
            parsed = self.parse(content)
            if isinstance(parsed, Index):
                self._check_depth(depth + 1, child.digest)
                self.visit(len(parsed.manifests), content.digest)
                self.heights[content.digest] = self.add_children(parsed.manifests, depth=depth + 1)
            else:
                self.add_image(parsed, content.digest)
            self.children[content.digest] = content
        height = 1
        for child in children:  # every nested index, walked now or before: its deepest path from here must fit
            below = self.heights.get(child.digest)
            if below is not None:
                self._check_depth(depth + below, child.digest)
                height = max(height, below + 1)
        return height

    def _check_depth(self, levels: int, digest: str) -> None:
        if levels > MAX_INDEX_DEPTH:
            raise CopyError(f"{self.where}: indexes nest deeper than {MAX_INDEX_DEPTH} levels (at {digest})")

    def plan(
        self, top: FetchedManifest, *, source_digest: str, platforms: tuple[str, ...] | None = None,
        top_unchanged: bool = True,
    ) -> _Plan:
        return _Plan(
            top=top,
            children=tuple(self.children.values()),
            blobs=tuple(self.blobs.values()),
            platforms=platforms if platforms is not None else tuple(dict.fromkeys(self.platforms)),
            source_digest=source_digest,
            top_unchanged=top_unchanged,
        )


class _Stopped(Exception):
    """Raised inside a blob stream when another blob failed: that copy is abandoned."""


class _Events:
    """Calls the progress callback, one call at a time."""

    def __init__(self, callback: Callable[[CopyEvent], None] | None) -> None:
        self._callback = callback
        self._lock = threading.Lock()

    def emit(self, event: CopyEvent) -> None:
        if self._callback is not None:
            with self._lock:
                self._callback(event)


class _CopyJob:
    """The writes of one copy: blobs (from worker threads), then manifests; counts what it did."""

    def __init__(
        self,
        source: Registry,
        source_repository: str,
        target: Registry,
        target_repository: str,
        events: _Events,
        retry: RetryPolicy,
    ) -> None:
        self.source = source
        self.source_repository = source_repository
        self.target = target
        self.target_repository = target_repository
        self.events = events
        self.retry = retry
        self.same_registry = source is target or source.host.lower() == target.host.lower()
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def stats(self) -> CopyStats:
        with self._lock:
            return CopyStats(**{field: self._counts[field] for field in CopyStats.__dataclass_fields__})

    def _count(self, **amounts: int) -> None:
        with self._lock:
            self._counts.update(amounts)

    def copy_blobs(self, blobs: Sequence[Descriptor], pool: ThreadPoolExecutor) -> None:
        """Copy every blob, `pool`'s size at a time; on the first failure stop the rest and raise it."""
        stop = threading.Event()
        copy_blob = carrying_time_limit(self.copy_blob)
        futures = [pool.submit(copy_blob, blob, stop) for blob in blobs]
        try:
            wait(futures, return_when=FIRST_EXCEPTION)
        finally:
            stop.set()  # everything is done, or something failed: running streams end at their next chunk
            for future in futures:
                future.cancel()
            wait(futures)
        for future in futures:
            error = None if future.cancelled() else future.exception()
            if error is not None and not isinstance(error, _Stopped):
                raise error

    def copy_blob(self, blob: Descriptor, stop: threading.Event) -> None:
        if stop.is_set():
            raise _Stopped()
        outcome = self._transfer(blob, stop)
        self._count(**{f"blobs_{outcome}": 1}, bytes_uploaded=blob.size if outcome == "uploaded" else 0)
        self.events.emit(CopyEvent("blob", digest=blob.digest, size=blob.size, outcome=outcome))

    def _transfer(self, blob: Descriptor, stop: threading.Event) -> str:
        if self.target.head_blob(self.target_repository, blob.digest) is not None:
            return "skipped"
        if self.same_registry and self.target.mount_blob(self.target_repository, blob.digest, self.source_repository):
            return "mounted"
        if blob.media_type in NON_DISTRIBUTABLE_LAYERS and self.source.head_blob(
            self.source_repository, blob.digest
        ) is None:
            return "skipped"
        try:
            with self.source.open_blob(self.source_repository, blob.digest) as chunks:
                self.target.upload_blob(
                    self.target_repository, blob.digest, self._metered(chunks, blob, stop), size=blob.size
                )
        except DigestMismatch:
            # Two copies writing one blob into one repository at once: distribution answers the loser with
            # DIGEST_INVALID. If the blob is there now, the registry has verified it: nothing is missing.
            if self.target.head_blob(self.target_repository, blob.digest) is not None:
                return "skipped"
            raise
        return "uploaded"

    def _metered(self, chunks: Iterable[bytes], blob: Descriptor, stop: threading.Event) -> Iterator[bytes]:
        """Pass the source's chunks on, checking the length against the descriptor and reporting progress."""
        total = 0
        name = self._blob_name(blob)
        for chunk in chunks:
            if stop.is_set():
                raise _Stopped()
            total += len(chunk)
            if total > blob.size:
                raise DigestMismatch(f"{name}: the source sends more than the {blob.size} bytes listed")
            self.events.emit(CopyEvent("streamed", digest=blob.digest, size=len(chunk)))
            yield chunk
        if total != blob.size:
            raise DigestMismatch(f"{name}: the source sent {total} bytes, {blob.size} are listed")

    def _blob_name(self, blob: Descriptor) -> str:
        return f"blob {self.source.host}/{self.source_repository}@{blob.digest}"

    def write_manifest(self, manifest: FetchedManifest, reference: str) -> str:
        """Put `manifest` under `reference` (a tag, or its digest: skipped when present); return the digest."""
        if is_digest(reference) and self.target.head_manifest(self.target_repository, reference) is not None:
            self.events.emit(CopyEvent("manifest", digest=manifest.digest, size=len(manifest.raw), outcome="present"))
            return manifest.digest
        written = self._put_manifest(manifest, reference)
        if written not in (manifest.digest, _sha256(manifest.raw)):
            raise DigestMismatch(
                f"manifest {_display(self.target.host, self.target_repository, reference)}: the registry stored it "
                f"as {written}, expected {manifest.digest}"
            )
        self._count(manifests_written=1)
        self.events.emit(CopyEvent("manifest", digest=written, size=len(manifest.raw), outcome="written"))
        return written


    def _put_manifest(self, manifest: FetchedManifest, reference: str) -> str:
        """PUT with a short, bounded retry for the refusals a concurrent writer into the same repository causes.

        Distribution answers a manifest PUT with DIGEST_INVALID or MANIFEST_BLOB_UNKNOWN while another upload of one of
        its blobs into the same repository is still being linked; a moment later the same PUT succeeds.
        """
        return retry_call(
            lambda: self.target.put_manifest(self.target_repository, reference, manifest.raw, manifest.media_type),
            policy=self.retry,
            is_retryable=_racing_write,
            sleep=time.sleep,
            random_fraction=random.random,
        )


def _racing_write(error: Exception) -> bool:
    """A manifest PUT refusal that a concurrent writer's blob upload, still being linked, explains."""
    return isinstance(error, RegistryError) and (
        isinstance(error, DigestMismatch) or "MANIFEST_BLOB_UNKNOWN" in error.codes
    )


def _sha256(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _display(host: str, repository: str, reference: str) -> str:
    return f"{host}/{repository}{'@' if is_digest(reference) else ':'}{reference}"
