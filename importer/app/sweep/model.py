"""What a sweep is asked to do (SweepOptions, parse_scope) and what it reports (SweepItem per tag, SweepReport).

    host, glob, tag = parse_scope("127.0.0.1:5000/team/**")          # tag None; "…/team/app:1.0" names one tag
    options = SweepOptions(mode=REMEDIATE, repositories=glob, tag=tag, parallel=8)   # ValueError names a bad option
    report.totals()        # {"compliant": 180, "violation": 12, "ignored": 6, "failed": 2, "gone": 0}
    report.as_dict()       # the `audit --json` object

Statuses of a swept tag: compliant, violation, ignored (by the policy, or not an image: artifacts, charts), failed
(could not be read or decided; `error` says why) and gone (deleted between listing and reading). See docs/design.md,
Sweep.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

from importer.core.policy import repository_matcher
from importer.core.reference import ReferenceError, reference_of, validate_host, validate_repository, validate_tag

DRY_RUN = "dry-run"
RECORD = "record"
REMEDIATE = "remediate"
MODES: tuple[str, ...] = (DRY_RUN, RECORD, REMEDIATE)
STATUSES: tuple[str, ...] = ("compliant", "violation", "ignored", "failed", "gone")
DEFAULT_PARALLEL = 8
MAX_PARALLEL = 64
# Outcomes a sweep leaves alone: the violation is fixed, or someone else's newer decision stands.
SETTLED_RESULTS = frozenset({"reimported", "quarantined", "superseded", "duplicate", "ignored"})


class SweepError(Exception):
    """A sweep could not run at all (bad scope, repositories not listable); the message names the registry."""


@dataclass(frozen=True, slots=True)
class SweepOptions:
    """How to sweep: mode, which repositories (a policy-style glob, None for all) or which one tag of one repository,
    workers, listing page size."""

    mode: str = DRY_RUN
    repositories: str | None = None
    tag: str | None = None  # sweep this tag only; `repositories` then names one repository, without wildcards
    parallel: int = DEFAULT_PARALLEL
    page_size: int | None = None
    policy_hint: str | None = None  # the --policy path, repeated in suggested commands
    budget_seconds: float | None = None  # stop listing and starting tags after this long (see SweepReport)

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
            _check_glob(self.repositories, "sweep repositories")
        if self.tag is not None:
            _check_tag(self.repositories, self.tag, "sweep tag")


class SweepScope(NamedTuple):
    """What `audit` was asked to sweep: a registry, a repository glob (None: all) and one tag (None: every tag)."""

    host: str
    repositories: str | None = None
    tag: str | None = None


def parse_scope(text: str) -> SweepScope:
    """`REGISTRY[/REPO_GLOB]` or `REGISTRY/REPOSITORY:TAG` → (host, glob or None, tag or None); ValueError names what
    is wrong."""
    host, _, rest = text.strip().partition("/")
    try:
        validate_host(host)
    except ReferenceError as error:
        raise ValueError(f"{text!r}: expected REGISTRY[/REPOSITORY_GLOB] or REGISTRY/REPOSITORY:TAG ({error})") from None
    if not rest:
        return SweepScope(host.lower())
    glob, colon, tag = rest.partition(":")  # a repository name never holds a colon: what follows one is a tag
    _check_glob(glob, repr(text))
    if not colon:
        return SweepScope(host.lower(), glob)
    _check_tag(glob, tag, repr(text))
    return SweepScope(host.lower(), glob, tag)


def has_wildcard(glob: str) -> bool:
    """Whether a repository glob has a wildcard (`*`, `**`, `?`); one without names a single repository outright."""
    return "*" in glob or "?" in glob


def _check_tag(repository: str | None, tag: str, subject: str) -> None:
    """ValueError `subject: why` unless `tag` is a tag and `repository` names one repository outright."""
    if repository is None or has_wildcard(repository):
        raise ValueError(f"{subject}: a tag names one tag of one repository, so the repository takes no wildcard "
                         f"(got {repository or 'every repository'!r} with tag {tag!r})")
    try:
        validate_repository(repository)
        validate_tag(tag)
    except ReferenceError as error:
        raise ValueError(f"{subject}: {error}") from None


def _check_glob(glob: str, subject: str) -> None:
    """ValueError `subject: why` when `glob` is not a policy-style repository glob."""
    try:
        repository_matcher((glob,))
    except ValueError as error:
        raise ValueError(f"{subject}: {error}") from None


@dataclass(frozen=True, slots=True)
class ListedTag:
    """One tag as listed: its digest and when it was read, when the listing says (ACR)."""

    repository: str
    tag: str
    digest: str | None = None
    read_at: str | None = None
    ignored_because: str | None = None  # the policy ignores the repository: counted, never read


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
    suggestion: str | None = None  # the command that deals with this tag by hand (importer/app/sweep/suggestions.py)
    remedy: str | None = None  # what fixing it means, for people: "re-import from docker.io/library/nginx"

    @classmethod
    def failed(cls, host: str, entry: ListedTag, digest: str | None, error: str, *,
               event_id: str | None = None) -> SweepItem:
        """A listed tag that could not be read or decided (`result` is `failed` once the pipeline recorded it)."""
        return cls(host, entry.repository, entry.tag, "failed", digest=digest, error=error,
                   event_id=event_id, result="failed" if event_id else None)

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
    not_swept: int = 0  # tags listed but not started when the time ran out
    # The resume point: repositories not reached when the time ran out (tags not listed, or some not started), in
    # the order they were to be swept; and whether the repositories were all listed before it ran out.
    not_reached: tuple[str, ...] = ()
    repositories_not_listed: int = 0  # of not_reached, those whose tags were not listed at all
    catalog_complete: bool = True
    registry_requests: int | None = None  # HTTP requests to the swept registry (None when the client cannot tell)
    policy_source: str | None = None
    tag: str | None = None  # the one tag swept (of the one repository `repositories` names), None for every tag
    policy_hint: str | None = None  # the --policy path, repeated in suggested commands

    @property
    def scope(self) -> str:
        """What was swept, as `audit` takes it: `REGISTRY`, `REGISTRY/GLOB` or `REGISTRY/REPOSITORY:TAG`."""
        scope = f"{self.registry}/{self.repositories}" if self.repositories else self.registry
        return f"{scope}:{self.tag}" if self.tag else scope

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
    def out_of_time(self) -> bool:
        """The time ran out before every repository was listed and every tag started."""
        return not self.catalog_complete or bool(self.not_reached) or self.not_swept > 0

    @property
    def complete(self) -> bool:
        """Every listed tag was swept and every repository listed."""
        return not self.out_of_time and not self.repository_errors

    def as_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready object (the `audit --json` output)."""
        return {
            "sweep_id": self.sweep_id,
            "registry": self.registry,
            "repositories": self.repositories,
            "tag": self.tag,
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
            "catalog_complete": self.catalog_complete,
            "repositories_not_listed": self.repositories_not_listed,
            "not_reached": list(self.not_reached),
            "skipped_repositories": list(self.skipped_repositories),
            "repository_errors": [{"repository": name, "error": error} for name, error in self.repository_errors],
            "by_repository": self.by_repository(),
            "violations": [item.as_dict() for item in self.violations],
            "failures": [item.as_dict() for item in self.failures],
        }
