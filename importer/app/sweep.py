"""Sweep: reconcile a whole registry against the policy — the safety net behind events, and the day-one audit.

    sweep = Sweep("127.0.0.1:5000", policy=policy, registries=directory)                 # a dry run
    sweep = Sweep(host, policy=pipeline.policy, registries=pipeline.registries, pipeline=pipeline,
                  options=SweepOptions(mode=REMEDIATE, repositories="team/**", parallel=8))
    report = sweep.run()                  # SweepReport: totals by status and repository, the violations
    write_report(report, Path("audit.md"))   # or .html; report.as_dict() is the --json object

Events can be missed (Event Grid gives up after 24 h, images predate the deployment, the policy changed). A sweep
lists every repository (`/v2/_catalog`, or ACR's `/acr/v1/_catalog`) and every tag (`/v2/<name>/tags/list`, or
ACR's `/acr/v1/<name>/_tags`, which also gives each tag's digest), following `Link` pagination, and judges each
tag with `importer.app.pipeline.evaluate`, the function the event path and `check` use. Quarantine repositories are
skipped; tags of repositories the policy ignores are counted without being read. A thread pool of `parallel`
workers reads the tags; manifests and configs are cached by digest in the registry client, and tags sharing a
digest wait for the first one's evaluation, so a registry of re-tagged multi-arch images costs about one manifest GET
per tag (bench/audit.py).

Modes (`SweepOptions.mode`):
- `dry-run` (the default; `python -m importer audit`): read only. Nothing is recorded in the ledger and no alert is
  raised; each violation says what the event path would do (`action`) and a command that would fix it.
- `remediate` (`audit --remediate`, the timer with PLATFORM_GUARD_SWEEP_REMEDIATE=true): each tag becomes a
  synthetic push event handed to the same Pipeline, so claims, the loop guard, preservation, compare-and-swap and
  outcome recording all apply. Event ids come from (registry, repository, tag, digest, sweep id): a new sweep is a
  new decision. Outcomes carry `schema: sweep` and `trigger: sweep`; `source` keeps its meaning (where a re-import
  came from). Before a violation is remediated, the ledger is asked for an event outcome of that repository:tag
  received after the sweep read the tag; if there is one, the newer decision stands and the sweep records
  `superseded`. Remediations in one repository run one at a time (reads stay parallel): on a distribution
  registry a quarantine removes every tag of the digest, and two copies writing the same blobs into one repository
  at once can fail there with MANIFEST_BLOB_UNKNOWN (seen with the filesystem storage driver).
- `record` (the timer with PLATFORM_GUARD_SWEEP_REMEDIATE=false): like `remediate`, but through a pipeline whose
  remediation is paused for every repository: violations are recorded as `alerted`, nothing is changed.

Statuses of a swept tag: compliant, violation, ignored (by the policy, or not an image: artifacts, charts), failed
(could not be read or decided; `error` says why) and gone (deleted between listing and reading, e.g. by a quarantine
of another tag with the same digest in this sweep). An image released on purpose stays a violation whose action is
`none` (result `ignored` outside a dry run). A dry run judges a chart as the artifact it is; outside a dry run the
pipeline hands chart tags to the chart manager (importer/chartguard.py), as for a chart push.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import secrets
import shlex
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from importer.core.decide import VIOLATION, Facts, Verdict
from importer.core.events import PushEvent
from importer.ports.ledger import Ledger, LedgerUnavailable
from importer.core.manifests import ManifestError
from importer.core.outcome import TRIGGER_SWEEP, Outcome
from importer.app.pipeline import Pipeline, TransientFailure, evaluate, reference_of, utc_now, verdict_fields
from importer.core.policy import Policy, repository_matcher
from importer.entry.progress import ProgressBar
from importer.core.reference import ReferenceError, validate_host
from importer.ports.registry import CopyError, ListsTagDigests, NotFound, Registry, RegistryError
from importer.app.registries import RegistryDirectory

if TYPE_CHECKING:
    from importer.entry.runtime import Runtime

log = logging.getLogger("platform_guard.sweep")

DRY_RUN = "dry-run"
RECORD = "record"
REMEDIATE = "remediate"
MODES: tuple[str, ...] = (DRY_RUN, RECORD, REMEDIATE)
STATUSES: tuple[str, ...] = ("compliant", "violation", "ignored", "failed", "gone")
SWEEP_SCHEMA = TRIGGER_SWEEP  # the `schema` of a sweep's synthetic events (the route they came by)
DEFAULT_PARALLEL = 8
MAX_PARALLEL = 64
# Outcomes a sweep leaves alone: the violation is fixed, or someone else's newer decision stands.
SETTLED_RESULTS = frozenset({"reimported", "quarantined", "superseded", "duplicate", "ignored"})
# The Functions host stops an invocation at host.json's functionTimeout (5 minutes): stop starting tags before.
TIMER_BUDGET_SECONDS = 240.0


class SweepError(Exception):
    """A sweep could not run at all (bad scope, repositories not listable); the message names the registry."""


class SweepProgress(Protocol):
    """Told how many tags were listed, then about every tag swept (from worker threads)."""

    def listed(self, tags: int) -> None: ...

    def swept(self, item: "SweepItem") -> None: ...


@dataclass(frozen=True, slots=True)
class SweepOptions:
    """How to sweep: mode, which repositories (a policy-style glob, None for all), workers, listing page size."""

    mode: str = DRY_RUN
    repositories: str | None = None
    parallel: int = DEFAULT_PARALLEL
    page_size: int | None = None
    policy_hint: str | None = None  # the --policy path, repeated in suggested commands
    budget_seconds: float | None = None  # stop starting new tags after this long (the rest is `not_swept`)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"sweep mode must be one of {', '.join(MODES)} (got {self.mode!r})")
        if not 1 <= self.parallel <= MAX_PARALLEL:
            raise ValueError(f"sweep parallel must be between 1 and {MAX_PARALLEL} (got {self.parallel})")
        if self.budget_seconds is not None and self.budget_seconds < 0:
            raise ValueError(f"sweep budget must not be negative (got {self.budget_seconds})")
        if self.page_size is not None and self.page_size < 1:
            raise ValueError(f"sweep page size must be at least 1 (got {self.page_size})")
        if self.repositories is not None:
            try:
                repository_matcher((self.repositories,))
            except ValueError as error:
                raise ValueError(f"sweep repositories: {error}") from None


@dataclass(frozen=True, slots=True)
class SweepItem:
    """One swept tag: what it is, what the policy says, and what was (dry run: would be) done."""

    registry: str
    repository: str
    tag: str
    status: str  # one of STATUSES
    digest: str | None = None
    kind: str | None = None
    verdict: str | None = None  # compliant | violation | ignored (None when failed or gone)
    action: str | None = None  # what the event path does: none | reimport | quarantine | alert
    result: str | None = None  # the recorded outcome's result; None in a dry run
    reason: str | None = None
    platforms: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    forbidden: tuple[str, ...] = ()
    inconsistent: tuple[str, ...] = ()
    error: str | None = None
    event_id: str | None = None
    new_digest: str | None = None
    preserved_as: str | None = None
    source: str | None = None
    affected_tags: tuple[str, ...] = ()
    suggestion: str | None = None

    @property
    def reference(self) -> str:
        return reference_of(self.registry, self.repository, self.tag, self.digest)

    @property
    def pending(self) -> bool:
        """Whether something is left to do: a violation not fixed (nor excused), or a tag that could not be judged."""
        if self.status == "failed":
            return True
        if self.status != "violation":
            return False
        if self.result is None:
            return self.action in ("reimport", "quarantine", "alert")
        return self.result not in SETTLED_RESULTS

    def as_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"reference": self.reference}
        for name in (each.name for each in fields(self)):
            value = getattr(self, name)
            record[name] = list(value) if isinstance(value, tuple) else value
        return record


@dataclass(frozen=True, slots=True)
class SweepReport:
    """Everything one sweep of one registry found and did."""

    sweep_id: str
    registry: str
    mode: str
    repositories: str | None  # the glob swept, None for all
    started_at: str
    finished_at: str
    duration_seconds: float
    items: tuple[SweepItem, ...]
    skipped_repositories: tuple[str, ...] = ()  # quarantine repositories
    repository_errors: tuple[tuple[str, str], ...] = ()  # (repository, why its tags could not be listed)
    not_swept: int = 0  # tags left when the time budget ran out
    registry_requests: int | None = None  # HTTP requests to the swept registry (None when the client cannot tell)
    policy_source: str | None = None

    def totals(self) -> dict[str, int]:
        """Tags per status, every status present, in STATUSES order."""
        counted = Counter(item.status for item in self.items)
        return {status: counted.get(status, 0) for status in STATUSES}

    def results(self) -> dict[str, int]:
        """Tags per recorded outcome result (empty for a dry run)."""
        return dict(sorted(Counter(item.result for item in self.items if item.result).items()))

    def actions(self) -> dict[str, int]:
        """Violations per action (what the event path does about them)."""
        return dict(sorted(Counter(item.action or "none" for item in self.violations).items()))

    def by_repository(self) -> dict[str, dict[str, int]]:
        """Repository → tags per status (and `tags`), repositories in name order."""
        table: dict[str, Counter[str]] = {}
        for item in self.items:
            table.setdefault(item.repository, Counter())[item.status] += 1
        return {
            name: {"tags": sum(counts.values()), **{status: counts.get(status, 0) for status in STATUSES}}
            for name, counts in sorted(table.items())
        }

    @property
    def violations(self) -> tuple[SweepItem, ...]:
        return tuple(item for item in self.items if item.status == "violation")

    @property
    def failures(self) -> tuple[SweepItem, ...]:
        return tuple(item for item in self.items if item.status == "failed")

    @property
    def pending(self) -> tuple[SweepItem, ...]:
        """Tags that still need someone: violations not fixed, and tags that could not be judged."""
        return tuple(item for item in self.items if item.pending)

    @property
    def complete(self) -> bool:
        """Every listed tag was swept and every repository listed."""
        return self.not_swept == 0 and not self.repository_errors

    def as_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready object (the `audit --json` output)."""
        return {
            "sweep_id": self.sweep_id,
            "registry": self.registry,
            "repositories": self.repositories,
            "mode": self.mode,
            "policy": self.policy_source,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_seconds": round(self.duration_seconds, 3),
            "registry_requests": self.registry_requests,
            "tags": len(self.items),
            "totals": self.totals(),
            "actions": self.actions(),
            "results": self.results(),
            "pending": len(self.pending),
            "not_swept": self.not_swept,
            "skipped_repositories": list(self.skipped_repositories),
            "repository_errors": [{"repository": name, "error": error} for name, error in self.repository_errors],
            "by_repository": self.by_repository(),
            "violations": [item.as_dict() for item in self.violations],
            "failures": [item.as_dict() for item in self.failures],
        }


# -- identifiers ------------------------------------------------------------------------------------------


def new_sweep_id(now: datetime | None = None) -> str:
    """`20261126T101500Z-3f2a9c`: when, plus randomness so two sweeps started together differ."""
    moment = now or datetime.now(timezone.utc)
    return f"{moment.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


def sweep_event_id(sweep_id: str, registry: str, repository: str, tag: str, digest: str) -> str:
    """The synthetic event id of one tag in one sweep: the same inputs give the same id, a new sweep a new one."""
    key = "\n".join((registry, repository, tag, digest, sweep_id)).encode()
    return f"sweep-{sweep_id}-{hashlib.sha256(key).hexdigest()[:32]}"


def parse_scope(text: str) -> tuple[str, str | None]:
    """`REGISTRY[/REPO_GLOB]` → (host, glob or None); ValueError names what is wrong."""
    host, _, glob = text.strip().partition("/")
    try:
        validate_host(host)
    except ReferenceError as error:
        raise ValueError(f"{text!r}: expected REGISTRY[/REPOSITORY_GLOB] ({error})") from None
    if not glob:
        return host.lower(), None
    try:
        repository_matcher((glob,))
    except ValueError as error:
        raise ValueError(f"{text!r}: {error}") from None
    return host.lower(), glob


def _has_wildcard(glob: str) -> bool:
    return "*" in glob or "?" in glob


# -- the sweep ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Listed:
    """One tag as listed: its digest and when it was read, when the listing says (ACR)."""

    repository: str
    tag: str
    digest: str | None = None
    read_at: str | None = None
    ignored_because: str | None = None  # the policy ignores the repository: counted, never read


class _KeyedLocks:
    """One lock per key, created on first use."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def __call__(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())


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
        self._pipeline = pipeline
        self._ledger = ledger if ledger is not None else (pipeline.ledger if pipeline is not None else None)
        self._paused = repository_matcher(tuple(paused_repositories))
        self._clock = clock
        self._locks = _KeyedLocks()  # one remediation at a time per repository
        self._first_reads = _KeyedLocks()  # one evaluation at a time per repository@digest: the others hit the cache
        self._wanted = repository_matcher((options.repositories,)) if options.repositories else None

    # -- listing ----------------------------------------------------------------------------------------

    def _repository_names(self) -> Iterator[str]:
        glob = self.options.repositories
        if glob is not None and not _has_wildcard(glob):
            return iter((glob,))  # one repository named outright: no catalog needed (nor the right to read it)
        if isinstance(self.registry, ListsTagDigests):
            return self.registry.list_repository_names(page_size=self.options.page_size)
        return self.registry.catalog(page_size=self.options.page_size)

    def list_repositories(self) -> tuple[list[str], list[str]]:
        """(repositories to sweep, quarantine repositories skipped), both in name order."""
        swept: list[str] = []
        skipped: list[str] = []
        for name in self._repository_names():
            if self._wanted is not None and not self._wanted(name):
                continue
            (skipped if self.policy.quarantine.holds(name) else swept).append(name)
        return sorted(set(swept)), sorted(set(skipped))

    def _list_tags(self, repository: str) -> list[_Listed]:
        rule = self.policy.rule_for(repository)
        ignored = "repository is ignored by the policy" if rule.ignore else None
        try:
            if isinstance(self.registry, ListsTagDigests):
                read_at = self._clock()  # before the listing: anything recorded after it is newer than what we saw
                listing = self.registry.list_tag_properties(repository, page_size=self.options.page_size)
                return [_Listed(repository, tag.name, tag.digest, read_at, ignored) for tag in listing]
            names = self.registry.list_tags(repository, page_size=self.options.page_size)
            return [_Listed(repository, name, ignored_because=ignored) for name in names]
        except NotFound:  # deleted since the catalog named it: nothing left to judge
            return []

    # -- running ----------------------------------------------------------------------------------------

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
        listed: list[_Listed] = []
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
        self, entry: _Listed, deadline: float | None, progress: SweepProgress | None
    ) -> SweepItem | None:
        if deadline is not None and time.monotonic() > deadline:
            return None
        try:
            item = self._sweep_tag(entry)
        except Exception as error:  # a bug on one tag must not lose the report of every other tag
            log.exception("sweep %s: unexpected error on %s:%s", self.sweep_id, entry.repository, entry.tag)
            item = self._failed(entry, entry.digest, f"internal error: {type(error).__name__}: {error}")
        item = _with_suggestion(item, self.policy, self.options.policy_hint)
        if progress is not None:
            progress.swept(item)
        return item

    def _sweep_tag(self, entry: _Listed) -> SweepItem:
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
            return self._failed(entry, digest, str(error))
        if self.options.mode == DRY_RUN:
            return self._planned(entry, facts, verdict)
        return self._through_pipeline(entry, digest, read_at, facts, verdict)

    # -- dry run ----------------------------------------------------------------------------------------

    def _planned(self, entry: _Listed, facts: Facts | None, verdict: Verdict) -> SweepItem:
        """What the event path would do with this tag, without doing it."""
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

    # -- remediate and record ---------------------------------------------------------------------------

    def _through_pipeline(self, entry: _Listed, digest: str, read_at: str, facts: Facts | None,
                          verdict: Verdict) -> SweepItem:
        assert self._pipeline is not None
        event = PushEvent(
            event_id=sweep_event_id(self.sweep_id, self.host, entry.repository, entry.tag, digest),
            schema=SWEEP_SCHEMA,
            action="push",
            origin=self.host,
            repository=entry.repository,
            tag=entry.tag,
            digest=digest,
            media_type=None,  # unknown to a listing; inspection tells
            size=None,
            artifact="image",
            actor=None,
            user_agent=None,
            occurred_at=read_at,
        )
        try:
            if verdict.verdict == VIOLATION and verdict.action in ("reimport", "quarantine"):
                with self._locks(entry.repository):
                    newer = self._event_outcome_after(entry.repository, entry.tag, read_at)
                    if newer is not None:
                        outcome = self._record_superseded(event, facts, verdict, newer, read_at)
                    else:
                        outcome = self._pipeline.handle(event)
            else:
                outcome = self._pipeline.handle(event)
        except TransientFailure as failure:  # recorded as failed by the pipeline; the next sweep tries again
            return self._failed(entry, digest, f"{failure} (the next sweep tries again)", event_id=event.event_id)
        except LedgerUnavailable as failure:
            return self._failed(entry, digest, f"ledger unavailable: {failure}", event_id=event.event_id)
        except CopyError as failure:
            return self._failed(entry, digest, str(failure), event_id=event.event_id)
        if outcome is None:  # only blob pushes are dropped, and a sweep never makes one
            return self._failed(entry, digest, "the pipeline dropped the event", event_id=event.event_id)
        return _item_from_outcome(self.host, entry, outcome, verdict)

    def _event_outcome_after(self, repository: str, tag: str, read_at: str) -> Outcome | None:
        """An outcome of an event (not a sweep) for this registry and repository:tag received after `read_at`."""
        assert self._ledger is not None
        limit = 64
        while True:
            recent = self._ledger.outcomes(repository=repository, limit=limit)
            for outcome in recent:
                if (outcome.registry == self.host and outcome.tag == tag and outcome.trigger != TRIGGER_SWEEP
                        and outcome.received_at > read_at):
                    return outcome
            # Newest first: once a page reaches back past the read, or the ledger has no more, we have seen enough.
            if len(recent) < limit or recent[-1].received_at <= read_at:
                return None
            limit *= 4

    def _record_superseded(self, event: PushEvent, facts: Facts | None, verdict: Verdict, newer: Outcome,
                           read_at: str) -> Outcome:
        assert self._pipeline is not None and event.tag is not None
        reason = (
            f"{self.host}/{event.repository}:{event.tag} was decided by event {newer.event_id} ({newer.result}, "
            f"received {newer.received_at}) after this sweep read it at {read_at}: the newer decision stands"
        )
        outcome = Outcome(
            event_id=event.event_id,
            received_at=self._clock(),
            result="superseded",
            registry=self.host,
            reference=reference_of(self.host, event.repository, event.tag, event.digest),
            repository=event.repository,
            tag=event.tag,
            schema=SWEEP_SCHEMA,
            trigger=TRIGGER_SWEEP,
            **verdict_fields(facts, verdict),  # type: ignore[arg-type]
        )
        return self._pipeline.record_outcome(outcome.replace(reason=reason))

    def _failed(self, entry: _Listed, digest: str | None, error: str, *, event_id: str | None = None) -> SweepItem:
        return SweepItem(self.host, entry.repository, entry.tag, "failed", digest=digest, error=error,
                         event_id=event_id, result="failed" if event_id else None)


def _item_from_outcome(host: str, entry: _Listed, outcome: Outcome, verdict: Verdict) -> SweepItem:
    if outcome.result == "failed":
        status = "failed"
    elif outcome.result == "duplicate" and outcome.verdict is None:
        status = verdict.verdict  # a digest already quarantined by this sweep: judged as the sweep read it
    else:
        status = outcome.verdict or verdict.verdict
    return SweepItem(
        host, entry.repository, entry.tag, status,
        digest=outcome.digest, kind=outcome.kind, verdict=outcome.verdict or verdict.verdict,
        action=outcome.action or verdict.action, result=outcome.result, reason=outcome.reason,
        platforms=outcome.platforms or verdict.platforms, required=outcome.required or verdict.required,
        missing=outcome.missing or verdict.missing, forbidden=outcome.forbidden or verdict.forbidden,
        inconsistent=outcome.inconsistent or verdict.inconsistent, error=outcome.error,
        event_id=outcome.event_id, new_digest=outcome.new_digest, preserved_as=outcome.preserved_as,
        source=outcome.source, affected_tags=outcome.affected_tags,
    )


# -- suggestions -------------------------------------------------------------------------------------------


def suggested_command(item: SweepItem, policy: Policy, policy_hint: str | None = None) -> str | None:
    """The command that would deal with `item` by hand, or None when there is nothing to do."""
    policy_option = f" --policy {shlex.quote(policy_hint)}" if policy_hint else ""
    tagged = f"{item.registry}/{item.repository}:{item.tag}"
    if item.result == "quarantined" and item.preserved_as and "@" not in item.preserved_as:
        return f"python -m importer release {item.preserved_as}{policy_option}"  # put back if it was wanted
    if item.status == "failed":
        return f"python -m importer check {tagged}{policy_option}"
    if item.status != "violation" or not item.pending:
        return None
    if item.result is None and item.action == "reimport":
        rule = policy.rule_for(item.repository)
        upstream = rule.upstream_for(item.repository)
        if upstream is not None:
            command = ["python", "-m", "importer", "copy", f"{upstream}:{item.tag}", tagged]
            if rule.flatten and len(rule.require) == 1:
                command += ["--platform", str(rule.require[0]), "--flatten"]
            for pattern in rule.forbid:
                command += ["--exclude", pattern]
            return " ".join(shlex.quote(part) for part in command)
    if item.result is None and item.action == "quarantine":
        return f"python -m importer audit {item.registry}/{item.repository}{policy_option} --remediate"
    return f"python -m importer check {tagged}{policy_option}"


def _with_suggestion(item: SweepItem, policy: Policy, policy_hint: str | None) -> SweepItem:
    suggestion = suggested_command(item, policy, policy_hint)
    return item if suggestion is None else replace(item, suggestion=suggestion)


# -- reports -----------------------------------------------------------------------------------------------


def _problem(item: SweepItem) -> str:
    if item.error:
        return item.error
    return item.reason or ""


def _what(item: SweepItem) -> str:
    """`quarantine` in a dry run; `reimport → reimported` once done."""
    action = item.action or "none"
    return f"{action} → {item.result}" if item.result else action


def _heading(report: SweepReport) -> str:
    scope = f"{report.registry}/{report.repositories}" if report.repositories else report.registry
    return f"Platform Guard audit of {scope}"


def _summary_lines(report: SweepReport) -> list[str]:
    requests = f", {report.registry_requests} registry requests" if report.registry_requests is not None else ""
    lines = [
        f"sweep {report.sweep_id}, mode {report.mode}, policy {report.policy_source}",
        f"{report.started_at} to {report.finished_at} ({report.duration_seconds:.1f} s{requests})",
    ]
    if report.skipped_repositories:
        lines.append(f"quarantine repositories skipped: {', '.join(report.skipped_repositories)}")
    if report.not_swept:
        lines.append(f"incomplete: the time budget ran out with {report.not_swept} tags not swept")
    return lines


def render_markdown(report: SweepReport) -> str:
    """The report as Markdown: totals, per repository, violations with reasons and commands, failures."""

    def cell(text: object) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    def code(text: str | None) -> str:
        return f"`{cell(text)}`" if text else ""

    out = [f"# {_heading(report)}", ""]
    out += [f"- {line}" for line in _summary_lines(report)]
    out += ["", "## Totals", "", "| status | tags |", "|---|---:|"]
    out += [f"| {status} | {count} |" for status, count in report.totals().items()]
    out += [f"| **total** | **{len(report.items)}** |", ""]
    if report.results():
        out += ["## Results", "", "| result | tags |", "|---|---:|"]
        out += [f"| {result} | {count} |" for result, count in report.results().items()]
        out.append("")
    out += ["## By repository", "", "| repository | tags | " + " | ".join(STATUSES) + " |",
            "|---|---:|" + "---:|" * len(STATUSES)]
    for name, counts in report.by_repository().items():
        out.append(f"| {cell(name)} | {counts['tags']} | " + " | ".join(str(counts[s]) for s in STATUSES) + " |")
    out += ["", f"## Violations ({len(report.violations)})", ""]
    if report.violations:
        out += ["| reference | platforms | required | action | reason | suggested command |",
                "|---|---|---|---|---|---|"]
        for item in report.violations:
            out.append(
                f"| {code(item.reference)} | {cell(', '.join(item.platforms) or '—')} "
                f"| {cell(', '.join(item.required))} | {cell(_what(item))} | {cell(_problem(item))} "
                f"| {code(item.suggestion)} |"
            )
    else:
        out.append("None.")
    if report.failures or report.repository_errors:
        out += ["", f"## Failures ({len(report.failures) + len(report.repository_errors)})", "",
                "| reference | error | suggested command |", "|---|---|---|"]
        for name, error in report.repository_errors:
            out.append(f"| {code(f'{report.registry}/{name}')} | {cell(error)} | |")
        for item in report.failures:
            out.append(f"| {code(item.reference)} | {cell(_problem(item))} | {code(item.suggestion)} |")
    return "\n".join(out) + "\n"


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}"
    "th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}td.n{text-align:right}"
    "code{font-size:.9em}tr.violation td:first-child{border-left:4px solid #c33}"
)


def render_html(report: SweepReport) -> str:
    """The report as one self-contained HTML page with the same sections as the Markdown."""
    e = html.escape

    def table(header: Sequence[str], rows: Sequence[Sequence[str]], *, numeric_from: int = 99,
              row_class: str = "") -> str:
        head = "".join(f"<th>{e(name)}</th>" for name in header)
        body = "".join(
            f"<tr class=\"{row_class}\">" + "".join(
                f"<td class=\"n\">{value}</td>" if index >= numeric_from else f"<td>{value}</td>"
                for index, value in enumerate(row)
            ) + "</tr>"
            for row in rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def code(text: str | None) -> str:
        return f"<code>{e(text)}</code>" if text else ""

    parts = [f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{e(_heading(report))}</title>"
             f"<style>{_STYLE}</style></head><body><h1>{e(_heading(report))}</h1><ul>"]
    parts += [f"<li>{e(line)}</li>" for line in _summary_lines(report)]
    parts.append("</ul><h2>Totals</h2>")
    totals = [[e(status), str(count)] for status, count in report.totals().items()]
    totals.append(["<strong>total</strong>", f"<strong>{len(report.items)}</strong>"])
    parts.append(table(["status", "tags"], totals, numeric_from=1))
    if report.results():
        parts.append("<h2>Results</h2>")
        parts.append(table(["result", "tags"], [[e(r), str(c)] for r, c in report.results().items()], numeric_from=1))
    parts.append("<h2>By repository</h2>")
    rows = [[e(name), str(counts["tags"]), *(str(counts[s]) for s in STATUSES)]
            for name, counts in report.by_repository().items()]
    parts.append(table(["repository", "tags", *STATUSES], rows, numeric_from=1))
    parts.append(f"<h2>Violations ({len(report.violations)})</h2>")
    if report.violations:
        rows = [[code(item.reference), e(", ".join(item.platforms) or "—"), e(", ".join(item.required)),
                 e(_what(item)), e(_problem(item)), code(item.suggestion)] for item in report.violations]
        parts.append(table(["reference", "platforms", "required", "action", "reason", "suggested command"], rows,
                           row_class="violation"))
    else:
        parts.append("<p>None.</p>")
    if report.failures or report.repository_errors:
        parts.append(f"<h2>Failures ({len(report.failures) + len(report.repository_errors)})</h2>")
        rows = [[code(f"{report.registry}/{name}"), e(error), ""] for name, error in report.repository_errors]
        rows += [[code(item.reference), e(_problem(item)), code(item.suggestion)] for item in report.failures]
        parts.append(table(["reference", "error", "suggested command"], rows))
    parts.append("</body></html>\n")
    return "".join(parts)


def write_report(report: SweepReport, path: Path) -> None:
    """Write the report as Markdown (`.md`) or HTML (`.html`, `.htm`); ValueError for another extension."""
    suffix = path.suffix.lower()
    if suffix == ".md":
        text = render_markdown(report)
    elif suffix in (".html", ".htm"):
        text = render_html(report)
    else:
        raise ValueError(f"report {str(path)!r}: the name must end in .md or .html")
    path.write_text(text, encoding="utf-8")


def format_summary(report: SweepReport) -> str:
    """A few lines for a terminal: totals, then each violation and failure with its command."""
    totals = ", ".join(f"{count} {status}" for status, count in report.totals().items() if count)
    lines = [f"{_heading(report)}: {len(report.items)} tags ({totals or 'none'})"]
    lines += ["  " + line for line in _summary_lines(report)]
    if report.results():
        lines.append("  results: " + ", ".join(f"{count} {result}" for result, count in report.results().items()))
    for name, error in report.repository_errors:
        lines.append(f"  FAILED  {report.registry}/{name}: {error}")
    for item in report.violations + report.failures:
        lines.append(f"  {item.status.upper():<9} {item.reference}  [{_what(item)}] {_problem(item)}")
        if item.suggestion:
            lines.append(f"            $ {item.suggestion}")
    return "\n".join(lines)


# -- a progress bar counting tags -------------------------------------------------------------------------


class TagProgressBar(ProgressBar):
    """`auditing 127.0.0.1:5000 [######........]  450/1000 tags  45%` on a terminal; silent otherwise."""

    def __init__(self, label: str, **options: Any) -> None:
        super().__init__(label, item_name="tags", **options)

    def listed(self, tags: int) -> None:
        self.start(tags)

    def swept(self, item: SweepItem) -> None:
        self.advance(1)

    def render(self) -> str:
        done, total = self._done, self._total
        fraction = done / total if total else 1.0
        filled = round(fraction * self._width)
        return f"{self._label} [{'#' * filled}{'.' * (self._width - filled)}]  {done}/{total} tags  {fraction:4.0%}"


# -- the timer ---------------------------------------------------------------------------------------------


def record_only(pipeline: Pipeline) -> Pipeline:
    """A pipeline sharing `pipeline`'s policy, ledger, clients and sinks whose remediation is paused everywhere:
    violations are recorded as `alerted` and nothing is changed (the timer without remediation)."""
    return Pipeline(policy=pipeline.policy, ledger=pipeline.ledger, registries=pipeline.registries,
                    sinks=pipeline.sinks, paused_repositories=("**",))


def run_scheduled_sweep(runtime: "Runtime", *, past_due: bool = False) -> list[SweepReport]:
    """Sweep every guarded registry as the settings say (the timer trigger); SweepError after all of them if any
    registry could not be swept, so the invocation shows as failed."""
    settings = runtime.settings
    mode = REMEDIATE if settings.sweep_remediate else RECORD
    pipeline = runtime.pipeline if mode == REMEDIATE else record_only(runtime.pipeline)
    options = SweepOptions(mode=mode, parallel=settings.sweep_parallel, budget_seconds=TIMER_BUDGET_SECONDS)
    if past_due:
        log.warning("sweep timer is past due: running now")
    reports: list[SweepReport] = []
    problems: list[str] = []
    for host in settings.registries:
        sweep = Sweep(host, policy=pipeline.policy, registries=pipeline.registries, pipeline=pipeline,
                      options=options)
        try:
            report = sweep.run()
        except SweepError as error:
            log.error("sweep %s of %s failed: %s", sweep.sweep_id, host, error)
            problems.append(str(error))
            continue
        summary = {key: value for key, value in report.as_dict().items() if key not in ("violations", "failures",
                                                                                          "by_repository")}
        level = logging.WARNING if report.pending or not report.complete else logging.INFO
        log.log(level, "sweep finished: %s", json.dumps(summary, separators=(",", ":")))
        reports.append(report)
    if problems:
        raise SweepError("; ".join(problems))
    return reports


__all__ = [
    "DRY_RUN",
    "MODES",
    "RECORD",
    "REMEDIATE",
    "STATUSES",
    "Sweep",
    "SweepError",
    "SweepItem",
    "SweepOptions",
    "SweepProgress",
    "SweepReport",
    "TagProgressBar",
    "format_summary",
    "new_sweep_id",
    "parse_scope",
    "record_only",
    "render_html",
    "render_markdown",
    "run_scheduled_sweep",
    "suggested_command",
    "sweep_event_id",
    "write_report",
]
