"""The scan: one Sweep lists a registry's repositories and tags, judges every tag on a thread pool, and reports.

    sweep = Sweep(host, policy=policy, registries=directory, options=SweepOptions(parallel=8))
    report = sweep.run(progress=bar)      # a SweepReport; `bar` is any SweepProgress (or None)

Each tag is judged with `importer.app.inspection.evaluate`, as the event path and `check` do. Quarantine
repositories are skipped; tags of repositories the policy ignores are counted without being read. Tags sharing a
digest wait for the first one's evaluation and then read the client's cache. A dry run says what the event path
would do; the other modes hand each tag to the pipeline (importer/app/sweep/handoff.py). See docs/design.md, Sweep.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Protocol

from importer.app.inspection import evaluate
from importer.app.pipeline import Pipeline, utc_now
from importer.app.registries import RegistryDirectory
from importer.app.sweep.handoff import PipelineHandoff
from importer.app.sweep.listing import list_tags, repository_names
from importer.app.sweep.locks import KeyedLocks
from importer.app.sweep.model import DRY_RUN, ListedTag, SweepError, SweepItem, SweepOptions, SweepReport
from importer.app.sweep.suggestions import with_suggestion
from importer.core.decide import VIOLATION, Facts, Verdict
from importer.core.manifests import ManifestError
from importer.core.policy import Policy, repository_matcher
from importer.ports.ledger import Ledger
from importer.ports.registry import NotFound, Registry, RegistryError

log = logging.getLogger("platform_guard.sweep")


class SweepProgress(Protocol):
    """Told how many tags were listed, then about every tag swept (from worker threads)."""

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
        self._clock = clock
        self._first_reads = KeyedLocks()  # one evaluation at a time per repository@digest: the others hit the cache
        self._wanted = repository_matcher((options.repositories,)) if options.repositories else None

    def list_repositories(self) -> tuple[list[str], list[str]]:
        """(repositories to sweep, quarantine repositories skipped), both in name order."""
        swept: list[str] = []
        skipped: list[str] = []
        for name in repository_names(self.registry, self.options.repositories, page_size=self.options.page_size):
            if self._wanted is not None and not self._wanted(name):
                continue
            (skipped if self.policy.quarantine.holds(name) else swept).append(name)
        return sorted(set(swept)), sorted(set(skipped))

    def _list_tags(self, repository: str) -> list[ListedTag]:
        return list_tags(self.registry, self.policy, repository, page_size=self.options.page_size, clock=self._clock)

    def run(self, progress: SweepProgress | None = None) -> SweepReport:
        """List, judge (and in remediate or record mode, hand to the pipeline) every tag; SweepError if the
        repositories cannot be listed at all."""
        started_at = self._clock()
        started = time.monotonic()
        requests_before = getattr(self.registry, "requests_made", None)
        try:
            repositories, skipped = self.list_repositories()
        except RegistryError as error:
            raise SweepError(f"cannot list the repositories of {self.host}: {error}") from error
        listed: list[ListedTag] = []
        errors: list[tuple[str, str]] = []
        items: list[SweepItem] = []
        deadline = started + self.options.budget_seconds if self.options.budget_seconds is not None else None
        not_swept = 0
        with ThreadPoolExecutor(max_workers=self.options.parallel, thread_name_prefix="sweep") as pool:
            listings = {repository: pool.submit(self._list_tags, repository) for repository in repositories}
            for repository, listing in listings.items():
                try:
                    listed.extend(listing.result())
                except RegistryError as error:
                    errors.append((repository, str(error)))
            if progress is not None:
                progress.listed(len(listed))
            futures: list[Future[SweepItem | None]] = []
            try:
                for entry in listed:
                    futures.append(pool.submit(self._sweep_if_in_time, entry, deadline, progress))
                for future in futures:
                    item = future.result()
                    if item is None:
                        not_swept += 1
                    else:
                        items.append(item)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        requests_after = getattr(self.registry, "requests_made", None)
        return SweepReport(
            sweep_id=self.sweep_id,
            registry=self.host,
            mode=self.options.mode,
            repositories=self.options.repositories,
            started_at=started_at,
            finished_at=self._clock(),
            duration_seconds=time.monotonic() - started,
            items=tuple(sorted(items, key=lambda item: (item.repository, item.tag))),
            skipped_repositories=tuple(skipped),
            repository_errors=tuple(errors),
            not_swept=not_swept,
            registry_requests=(requests_after - requests_before)
            if isinstance(requests_before, int) and isinstance(requests_after, int)
            else None,
            policy_source=self.policy.source,
        )

    def _sweep_if_in_time(
        self, entry: ListedTag, deadline: float | None, progress: SweepProgress | None
    ) -> SweepItem | None:
        if deadline is not None and time.monotonic() > deadline:
            return None
        try:
            item = self._sweep_tag(entry)
        except Exception as error:  # a bug on one tag must not lose the report of every other tag
            log.exception("sweep %s: unexpected error on %s:%s", self.sweep_id, entry.repository, entry.tag)
            item = SweepItem.failed(self.host, entry, entry.digest, f"internal error: {type(error).__name__}: {error}")
        item = with_suggestion(item, self.policy, self.options.policy_hint)
        if progress is not None:
            progress.swept(item)
        return item

    def _sweep_tag(self, entry: ListedTag) -> SweepItem:
        """Read, judge and (outside a dry run) hand one tag to the pipeline."""
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
            with self._first_reads(f"{entry.repository}@{digest}"):
                facts, verdict = evaluate(self.policy, self.registry, entry.repository, digest)
        except NotFound:
            return SweepItem(self.host, entry.repository, entry.tag, "gone", digest=digest,
                             reason="the tag no longer exists (deleted since it was listed)")
        except (RegistryError, ManifestError) as error:
            return SweepItem.failed(self.host, entry, digest, str(error))
        if self.options.mode == DRY_RUN:
            return self._planned(entry, facts, verdict)
        assert self._handoff is not None
        return self._handoff.hand_off(entry, digest, read_at, facts, verdict)

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
