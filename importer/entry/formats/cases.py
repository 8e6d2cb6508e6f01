"""What JUnit and SARIF are rendered from: one Case per image or tag judged, and the Run they belong to.

    run = Run("check", "platform-guard check 127.0.0.1:5000/team/app:1", cases=(case_from_verdict(record),))
    run = Run("audit", title, cases=tuple(case_from_sweep_item(item) for item in report.items), …)

A case is `passed` (compliant, or a violation already settled by a re-import or quarantine), `failed` (a violation
still to be dealt with), `error` (it could not be read or judged) or `skipped` (ignored by the policy, not an image,
gone before it was read). Its problems say which SARIF rules it breaks: missing platforms, forbidden platforms, an
inconsistent index, or any other violation. Errors of the run itself (the sweep could not start, the image could not
be read) are the run's `errors`, not cases.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from importer.entry.formats.errors import ErrorInfo

if TYPE_CHECKING:
    from importer.app.sweep import SweepItem

PASSED = "passed"
FAILED = "failed"
ERROR = "error"
SKIPPED = "skipped"

# Problem kinds, in the order their SARIF rules are listed.
MISSING = "missing-platform"
FORBIDDEN = "forbidden-platform"
INCONSISTENT = "inconsistent-index"
UNREADABLE = "unreadable"
OTHER = "policy-violation"
PROBLEMS: tuple[str, ...] = (MISSING, FORBIDDEN, INCONSISTENT, UNREADABLE, OTHER)


@dataclass(frozen=True, slots=True)
class Case:
    """One image or tag judged."""

    reference: str  # as judged: registry/repository:tag@digest, what is known of it
    status: str  # passed | failed | error | skipped
    message: str  # the reason, or the error
    platforms: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    forbidden: tuple[str, ...] = ()
    inconsistent: tuple[str, ...] = ()
    action: str | None = None
    digest: str | None = None
    error_kind: str | None = None  # for an error: importer.entry.formats.errors kinds, or "unreadable"
    notes: tuple[str, ...] = ()  # more lines for people: what was done, the command that fixes it
    location: str | None = None  # the name a dashboard tracks it by (the tag, not its digest); default reference
    suite: str | None = None  # JUnit's classname when the case is no image (an error of the run itself)

    @property
    def where(self) -> str:
        return self.location or self.reference

    @property
    def group(self) -> str:
        """The repository the case belongs to (`registry/repository`): JUnit's classname."""
        return self.suite or repository_of(self.where)

    @property
    def name(self) -> str:
        """The tag or digest within the repository (JUnit's test name); the whole reference when it has neither."""
        if self.suite:
            return self.where
        rest = self.where[len(self.group):]
        return rest.lstrip(":@") or self.where

    @property
    def problems(self) -> tuple[str, ...]:
        """The problem kinds of this case: SARIF results, one per kind."""
        if self.status == ERROR:
            return (UNREADABLE,)
        if self.status != FAILED:
            return ()
        found = tuple(kind for kind, present in ((MISSING, self.missing), (FORBIDDEN, self.forbidden),
                                                 (INCONSISTENT, self.inconsistent)) if present)
        return found or (OTHER,)

    def details(self) -> list[str]:
        """Lines that say what was found and expected, for a failure's text."""
        lines = [f"reference: {self.reference}"]
        for label, values in (("platforms", self.platforms), ("required", self.required), ("missing", self.missing),
                              ("forbidden", self.forbidden), ("inconsistent", self.inconsistent)):
            if values or label in ("platforms", "required"):
                lines.append(f"{label}: {', '.join(values) or '-'}")
        if self.action and self.action != "none":
            lines.append(f"action: {self.action}")
        lines.append(f"reason: {self.message}")
        lines += list(self.notes)
        return lines


@dataclass(frozen=True, slots=True)
class Run:
    """One command's judgements: its cases, and the errors that kept it from judging (some of) what it was asked."""

    command: str  # check | audit
    title: str
    cases: tuple[Case, ...] = ()
    errors: tuple[ErrorInfo, ...] = ()
    warnings: tuple[str, ...] = ()  # the run did not judge everything (a sweep out of time)
    started_at: str | None = None  # ISO 8601, UTC
    duration_seconds: float = 0.0
    properties: Mapping[str, Any] | None = None  # totals and the like, for SARIF's run properties


def repository_of(reference: str) -> str:
    """`registry/repository` of `registry/repository[:tag][@digest]`."""
    name = reference.partition("@")[0]
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > last_slash else name


def _strings(values: object) -> tuple[str, ...]:
    return tuple(str(value) for value in values) if isinstance(values, (list, tuple)) else ()


def case_from_verdict(record: Mapping[str, Any], error: ErrorInfo | None = None) -> Case:
    """A case from a verdict object (`check --json`); `error` when the image could not be read or judged."""
    reference = str(record.get("reference") or "")
    tag, digest = record.get("tag"), record.get("digest")
    location = repository_of(reference) + f":{tag}" if tag else None
    common: dict[str, Any] = {
        "platforms": _strings(record.get("platforms")), "required": _strings(record.get("required")),
        "missing": _strings(record.get("missing")), "forbidden": _strings(record.get("forbidden")),
        "inconsistent": _strings(record.get("inconsistent")), "action": record.get("action"),
        "digest": digest, "location": location,
    }
    if error is not None:
        return Case(reference, ERROR, error.message, error_kind=error.kind, **common)
    verdict = record.get("verdict")
    status = {"compliant": PASSED, "violation": FAILED}.get(str(verdict), SKIPPED)
    return Case(reference, status, str(record.get("reason") or verdict or ""), **common)


def case_from_sweep_item(item: SweepItem) -> Case:
    """A case from one swept tag: a violation fixed by --remediate passes, with what was done in its notes."""
    notes: list[str] = []
    if item.result:
        notes.append(f"result: {item.result}" + (f" (new digest {item.new_digest})" if item.new_digest else ""))
    if item.preserved_as:
        notes.append(f"preserved as: {item.preserved_as}")
    if item.suggestion:
        notes.append(f"suggested command: {item.suggestion}")
    if item.status == "compliant":
        status, message = PASSED, item.reason or "compliant"
    elif item.status == "violation":
        status, message = (FAILED if item.pending else PASSED), item.reason or "violation"
    elif item.status == "failed":
        status, message = ERROR, item.error or item.reason or "could not be read or decided"
    elif item.status == "gone":
        status, message = SKIPPED, "deleted between listing and reading"
    else:
        status, message = SKIPPED, item.reason or "ignored"
    return Case(
        reference=item.reference, status=status, message=message, platforms=item.platforms, required=item.required,
        missing=item.missing, forbidden=item.forbidden, inconsistent=item.inconsistent, action=item.action,
        digest=item.digest, error_kind=UNREADABLE if status == ERROR else None, notes=tuple(notes),
        location=f"{item.registry}/{item.repository}:{item.tag}",
    )
