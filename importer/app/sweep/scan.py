"""The scan: one Sweep lists a registry's repositories and tags, judges every tag on a thread pool, and reports.

    sweep = Sweep(host, policy=policy, registries=directory, options=SweepOptions(parallel=8))
    report = sweep.run(progress=bar)      # a SweepReport; `bar` is any SweepProgress (or None)
    report = sweep.run(deadline=deadline, resume=saved)   # a timer run: its deadline, and where the last run stopped

Each tag is judged with `importer.app.inspection.evaluate`, as the event path and `check` do. Quarantine
repositories are skipped; tags of repositories the policy ignores are counted without being read. Tags sharing a
digest wait for the first one's evaluation and then read the client's cache. A dry run says what the event path
would do; the other modes hand each tag to the pipeline (importer/app/sweep/handoff.py).

Listing and judging overlap: each repository's tags are queued as soon as it is listed, with at most `parallel`
listings ahead, so a sweep that runs out of time has judged whole repositories rather than listed them all. Once the
deadline passes nothing new starts: not the catalog's next name, not a tag listing, not a tag, not a remediation
waiting for its turn; what is under way finishes. The report names the repositories not reached. See docs/design.md,
Sweep.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol

from importer.app.inspection import evaluate
from importer.app.pipeline import Pipeline, utc_now
from importer.app.registries import RegistryDirectory
from importer.app.settings import DEFAULT_EVENT_DEADLINE_SECONDS
from importer.app.sweep.budget import OutOfTime, before, earliest, passed
from importer.app.sweep.handoff import PipelineHandoff
from importer.app.sweep.listing import list_tags, listed_tag, repository_names, resume_order
from importer.app.sweep.locks import KeyedLocks
from importer.app.sweep.model import DRY_RUN, ListedTag, SweepError, SweepItem, SweepOptions, SweepReport
from importer.app.sweep.suggestions import with_suggestion
from importer.core.decide import VIOLATION, Facts, Verdict
from importer.core.manifests import ManifestError
from importer.core.policy import Policy, repository_matcher
from importer.ports.deadlines import time_limit
from importer.ports.ledger import Ledger
from importer.ports.registry import NotFound, Registry, RegistryError

log = logging.getLogger("platform_guard.sweep")


class SweepProgress(Protocol):
    """Told how many tags were listed so far (again after each repository), and about every tag swept (from worker
    threads)."""

    def listed(self, tags: int) -> None: ...

    def swept(self, item: SweepItem) -> None: ...


def new_sweep_id(now: datetime | None = None) -> str:
    """`20261126T101500Z-3f2a9c`: when, plus randomness so two sweeps started together differ."""
    moment = now or datetime.now(timezone.utc)
    return f"{moment.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


class Sweep:
    """One sweep of one registry; `run()` once."""

    def __init__(
        self,
        host: str,
        *,
        policy: Policy,
        registries: RegistryDirectory,
        pipeline: Pipeline | None = None,
        ledger: Ledger | None = None,
        paused_repositories: Sequence[str] = (),
        options: SweepOptions = SweepOptions(),
        sweep_id: str | None = None,
        clock: Callable[[], str] = utc_now,
    ) -> None:
        if options.mode != DRY_RUN and pipeline is None:
            raise ValueError(f"a {options.mode} sweep of {host} needs a pipeline to hand its events to")
        self.host = host.lower()
        self.policy = policy
        self.options = options
        self.sweep_id = sweep_id or new_sweep_id()
        self.registry: Registry = registries.client(self.host)
        self._ledger = ledger if ledger is not None else (pipeline.ledger if pipeline is not None else None)
        self._handoff: PipelineHandoff | None = None
        if pipeline is not None:
            self._handoff = PipelineHandoff(self.host, self.sweep_id, pipeline=pipeline,
                                            ledger=ledger if ledger is not None else pipeline.ledger, clock=clock)
        self._paused = repository_matcher(tuple(paused_repositories))
        # Reading one tag gets the time limit an event gets: no registry can hold a sweep thread longer.
        self._tag_time_limit = pipeline.event_deadline if pipeline is not None else DEFAULT_EVENT_DEADLINE_SECONDS
        self._clock = clock
        self._first_reads = KeyedLocks()  # one evaluation at a time per repository@digest: the others hit the cache
        self._wanted = repository_matcher((options.repositories,)) if options.repositories else None

    def list_repositories(self, deadline: float | None = None) -> tuple[list[str], list[str]]:
        """(repositories to sweep, quarantine repositories skipped), both in name order; OutOfTime when `deadline`
        passes before the catalog is read to its end."""
        swept: list[str] = []
        skipped: list[str] = []
        names = repository_names(self.registry, self.options.repositories, page_size=self.options.page_size)
        for name in before(deadline, names):
            if self._wanted is not None and not self._wanted(name):
                continue
            (skipped if self.policy.quarantine.holds(name) else swept).append(name)
        return sorted(set(swept)), sorted(set(skipped))

    def _list_tags(self, repository: str, deadline: float | None) -> list[ListedTag] | None:
        """The tags of `repository` (only `options.tag` when set: NotFound if it has no such tag); None when the
        deadline passed before they were all listed."""
        if passed(deadline):
            return None
        if self.options.tag is not None:  # one tag: a HEAD, not the repository's whole listing
            entry = listed_tag(self.registry, self.policy, repository, self.options.tag, clock=self._clock)
            if entry is None:
                raise NotFound(f"{self.host}/{repository} has no tag {self.options.tag}")
            return [entry]
        try:
            return list_tags(self.registry, self.policy, repository, page_size=self.options.page_size,
                             clock=self._clock, deadline=deadline)
        except OutOfTime:
            return None

    def run(self, progress: SweepProgress | None = None, *, deadline: float | None = None,
            resume: Sequence[str] = ()) -> SweepReport:
        """List, judge (and in remediate or record mode, hand to the pipeline) every tag; SweepError if the
        repositories cannot be listed at all.

        `deadline` (on time.monotonic) stops listing and starting tags once it passes, as `options.budget_seconds`
        counted from now does; `resume` (the last run's `not_reached`) is swept first (listing.resume_order)."""
        started_at = self._clock()
        started = time.monotonic()
        if self.options.budget_seconds is not None:
            deadline = earliest(deadline, started + self.options.budget_seconds)
        requests_before = getattr(self.registry, "requests_made", None)
        try:
            repositories, skipped = self.list_repositories(deadline)
        except OutOfTime:  # nothing was started: where the last run stopped is still where the next one starts
            tally = _Tally(catalog_complete=False, not_reached=list(resume), not_listed=len(resume))
            repositories, skipped = [], []
        except RegistryError as error:
            raise SweepError(f"cannot list the repositories of {self.host}: {error}") from error
        else:
            tally = self._sweep_in_order(resume_order(resume, repositories), deadline, progress)
        requests_after = getattr(self.registry, "requests_made", None)
        return SweepReport(
            sweep_id=self.sweep_id,
            registry=self.host,
            mode=self.options.mode,
            repositories=self.options.repositories,
            started_at=started_at,
            finished_at=self._clock(),
            duration_seconds=time.monotonic() - started,
            items=tuple(sorted(tally.items, key=lambda item: (item.repository, item.tag))),
            skipped_repositories=tuple(skipped),
            repository_errors=tuple(tally.errors),
            not_swept=tally.not_swept,
            not_reached=tuple(tally.not_reached),
            repositories_not_listed=tally.not_listed,
            catalog_complete=tally.catalog_complete,
            registry_requests=(requests_after - requests_before)
            if isinstance(requests_before, int) and isinstance(requests_after, int)
            else None,
            policy_source=self.policy.source,
            tag=self.options.tag,
            policy_hint=self.options.policy_hint,
        )

    def _sweep_in_order(self, repositories: list[str], deadline: float | None,
                        progress: SweepProgress | None) -> _Tally:
        """List and judge `repositories` in this order on the pool: each repository's tags are queued as soon as it
        is listed, with at most `parallel` listings queued ahead of them."""
        tally = _Tally()
        not_listed: set[str] = set()
        unfinished: set[str] = set()
        with ThreadPoolExecutor(max_workers=self.options.parallel, thread_name_prefix="sweep") as pool:
            listings: deque[tuple[str, Future[list[ListedTag] | None]]] = deque()
            tags: list[tuple[str, Future[SweepItem | None]]] = []

            def queue_tags_of_the_oldest_listing() -> None:
                repository, listing = listings.popleft()
                try:
                    entries = listing.result()
                except RegistryError as error:
                    tally.errors.append((repository, str(error)))
                    return
                if entries is None:
                    not_listed.add(repository)
                    return
                tally.listed += len(entries)
                if progress is not None:
                    progress.listed(tally.listed)
                tags.extend((repository, pool.submit(self._sweep_if_in_time, entry, deadline, progress))
                            for entry in entries)

            try:
                for repository in repositories:
                    listings.append((repository, pool.submit(self._list_tags, repository, deadline)))
                    if len(listings) >= self.options.parallel:
                        queue_tags_of_the_oldest_listing()
                while listings:
                    queue_tags_of_the_oldest_listing()
                for repository, future in tags:
                    item = future.result()
                    if item is None:
                        tally.not_swept += 1
                        unfinished.add(repository)
                    else:
                        tally.items.append(item)
            except BaseException:
                for _, future in [*listings, *tags]:
                    future.cancel()
                raise
        tally.not_reached = [name for name in repositories if name in not_listed or name in unfinished]
        tally.not_listed = len(not_listed)
        return tally

    def _sweep_if_in_time(
        self, entry: ListedTag, deadline: float | None, progress: SweepProgress | None
    ) -> SweepItem | None:
        """The swept tag; None when the deadline passed before it started (or before its remediation's turn)."""
        if passed(deadline):
            return None
        try:
            item = self._sweep_tag(entry, deadline)
        except Exception as error:  # a bug on one tag must not lose the report of every other tag
            log.exception("sweep %s: unexpected error on %s:%s", self.sweep_id, entry.repository, entry.tag)
            item = SweepItem.failed(self.host, entry, entry.digest, f"internal error: {type(error).__name__}: {error}")
        if item is None:
            return None
        item = with_suggestion(item, self.policy, self.options.policy_hint)
        if progress is not None:
            progress.swept(item)
        return item

    def _sweep_tag(self, entry: ListedTag, deadline: float | None) -> SweepItem | None:
        """Read, judge and (outside a dry run) hand one tag to the pipeline; None when a remediation would start
        after the deadline."""
        if entry.ignored_because is not None:
            rule = self.policy.rule_for(entry.repository)
            return SweepItem(self.host, entry.repository, entry.tag, "ignored", digest=entry.digest,
                             verdict="ignored", action="none", reason=entry.ignored_because,
                             required=tuple(str(p) for p in rule.require))
        read_at = entry.read_at or self._clock()
        digest = entry.digest
        try:
            if digest is None:
                digest = self.registry.get_manifest(entry.repository, entry.tag).digest  # cached by digest
            # Tags sharing a digest wait for the first to read its children and configs, then read them from the
            # client's cache instead of racing it to the registry.
            with self._first_reads(f"{entry.repository}@{digest}"), \
                    time_limit(self._tag_time_limit, f"reading {entry.repository}:{entry.tag}"):
                facts, verdict = evaluate(self.policy, self.registry, entry.repository, digest, tag=entry.tag)
        except NotFound:
            return SweepItem(self.host, entry.repository, entry.tag, "gone", digest=digest,
                             reason="the tag no longer exists (deleted since it was listed)")
        except (RegistryError, ManifestError) as error:
            return SweepItem.failed(self.host, entry, digest, str(error))
        if self.options.mode == DRY_RUN:
            return self._planned(entry, facts, verdict)
        assert self._handoff is not None
        return self._handoff.hand_off(entry, digest, read_at, facts, verdict, deadline=deadline)

    def _planned(self, entry: ListedTag, facts: Facts | None, verdict: Verdict) -> SweepItem:
        """What the event path would do with this tag, without doing it (a dry run)."""
        action, reason = verdict.action, verdict.reason
        if verdict.verdict == VIOLATION and facts is not None:
            if self._ledger is not None and self._ledger.is_released(f"{self.host}/{entry.repository}", facts.digest):
                action, reason = "none", f"released on purpose; {verdict.reason}"
            elif action in ("reimport", "quarantine") and self._paused(entry.repository):
                action, reason = "alert", f"remediation paused for {entry.repository}; {verdict.reason}"
        return SweepItem(
            self.host, entry.repository, entry.tag, verdict.verdict,
            digest=facts.digest if facts is not None else entry.digest,
            kind=facts.kind if facts is not None else None,
            verdict=verdict.verdict, action=action, reason=reason,
            platforms=verdict.platforms, required=verdict.required, missing=verdict.missing,
            forbidden=verdict.forbidden, inconsistent=verdict.inconsistent,
        )


@dataclass(slots=True)
class _Tally:
    """What one sweep's scan found, as it goes (filled by the calling thread only)."""

    items: list[SweepItem] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (repository, why its tags could not be listed)
    listed: int = 0  # tags listed so far
    not_swept: int = 0  # tags listed but not started
    not_reached: list[str] = field(default_factory=list)
    not_listed: int = 0
    catalog_complete: bool = True
