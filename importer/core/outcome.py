"""The outcome record: one per event, written to the ledger, the log and the alert sinks (docs/design.md, Contracts).

    record = Outcome.for_event(event_id="…", received_at="…", registry="…")
    record = record.with_verdict(reference, facts_or_none, verdict)
    record.as_dict()    # the JSON object every consumer reads; keys in OUTCOME_FIELDS order

VERDICT_FIELDS is the `check --json` contract; OUTCOME_FIELDS adds the event and result fields. Infra's alert
query and the docs read these tuples, so they are the single source of the field names.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

VERDICT_FIELDS: tuple[str, ...] = (
    "reference",
    "repository",
    "tag",
    "digest",
    "media_type",
    "kind",
    "platforms",
    "required",
    "missing",
    "forbidden",
    "inconsistent",
    "verdict",
    "action",
    "reason",
)
EVENT_FIELDS: tuple[str, ...] = (
    "event_id",
    "received_at",
    "registry",
    "actor",
    "user_agent",
    "result",
    "new_digest",
    "preserved_as",
    "source",
    "duration_ms",
    "error",
)
# Compatible extensions of the contract: which route the event came by, index children with no platform, the
# tags a quarantine removed, the kind of alert raised ("violation", "quarantined", "failed", "loopguard"), and what
# raised the decision: a registry event, or a sweep of the whole registry (importer/app/sweep). `source` keeps its
# contract meaning (where a re-import came from) whatever the trigger. `attempt` numbers a worker's tries of one
# event: set on `retrying` records and on the final outcome of an event that needed more than one.
# `referrers_copied` counts the signatures, attestations and SBOMs a re-import or quarantine carried along, and
# `signatures` says whether the upstream's signatures still cover what the tag points at after a re-import: kept,
# lost (a filtered index has a new digest) or none (docs/design.md, "Referrers").
EXTRA_FIELDS: tuple[str, ...] = (
    "schema", "no_platform", "affected_tags", "alert", "trigger", "attempt", "referrers_copied", "signatures",
)
OUTCOME_FIELDS: tuple[str, ...] = VERDICT_FIELDS + EVENT_FIELDS + EXTRA_FIELDS

RESULTS: tuple[str, ...] = (
    "compliant",
    "reimported",
    "quarantined",
    "alerted",
    "ignored",
    "superseded",
    "duplicate",
    "rejected",
    "failed",
    "retrying",  # an attempt that failed for a reason that may pass: not final, never alerts
)
# Every result but `retrying` ends an event's handling.
FINAL_RESULTS = frozenset(RESULTS) - {"retrying"}
TRIGGER_EVENT = "event"
TRIGGER_SWEEP = "sweep"
TRIGGERS: tuple[str, ...] = (TRIGGER_EVENT, TRIGGER_SWEEP)
SIGNATURES: tuple[str | None, ...] = (None, "kept", "lost", "none")
# Results that page someone (besides a loop-guard stop, which has `alert: loopguard`).
ALERTING_RESULTS = frozenset({"quarantined", "failed"})


@dataclass(frozen=True, slots=True)
class Outcome:
    """One recorded outcome; every field of OUTCOME_FIELDS, None where it does not apply."""

    event_id: str
    received_at: str
    result: str
    registry: str | None = None
    reference: str | None = None
    repository: str | None = None
    tag: str | None = None
    digest: str | None = None
    media_type: str | None = None
    kind: str | None = None
    platforms: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    forbidden: tuple[str, ...] = ()
    inconsistent: tuple[str, ...] = ()
    verdict: str | None = None
    action: str | None = None
    reason: str | None = None
    actor: str | None = None
    user_agent: str | None = None
    new_digest: str | None = None
    preserved_as: str | None = None
    source: str | None = None
    duration_ms: float | None = None
    error: str | None = None
    schema: str | None = None
    no_platform: tuple[str, ...] = field(default=())
    affected_tags: tuple[str, ...] = field(default=())
    alert: str | None = None
    trigger: str = TRIGGER_EVENT  # records written before the field existed were all events
    attempt: int | None = None
    referrers_copied: int | None = None
    signatures: str | None = None

    def __post_init__(self) -> None:
        if self.result not in RESULTS:
            raise ValueError(f"unknown outcome result {self.result!r}")
        if self.trigger not in TRIGGERS:
            raise ValueError(f"unknown outcome trigger {self.trigger!r}")
        if self.signatures not in SIGNATURES:
            raise ValueError(f"unknown outcome signatures {self.signatures!r}")

    def replace(self, **changes: Any) -> "Outcome":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """The record as a JSON-ready dict, keys in OUTCOME_FIELDS order, lists for sequences."""
        record: dict[str, Any] = {}
        for name in OUTCOME_FIELDS:
            value = getattr(self, name)
            record[name] = list(value) if isinstance(value, tuple) else value
        return record

    def verdict_dict(self) -> dict[str, Any]:
        """Only the verdict fields: the `check --json` object."""
        full = self.as_dict()
        return {name: full[name] for name in VERDICT_FIELDS}

    @property
    def final(self) -> bool:
        """Whether this record ends the event's handling (every result but `retrying`)."""
        return self.result in FINAL_RESULTS

    @property
    def alerts(self) -> bool:
        """Whether this outcome goes to the alert sinks."""
        return self.result in ALERTING_RESULTS or self.alert == "loopguard"

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> "Outcome":
        """Rebuild an outcome read back from the ledger."""
        values = {name: record.get(name) for name in OUTCOME_FIELDS if name in record}
        for name in ("platforms", "required", "missing", "forbidden", "inconsistent", "no_platform", "affected_tags"):
            values[name] = tuple(values.get(name) or ())
        return cls(**values)
