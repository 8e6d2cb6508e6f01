"""What an alert says: the notification kind of an outcome, the summary on-call reads first, the CloudEvent.

    event_kind(outcome)       # "quarantined", "reimported", "violation", "failed", "loopguard", or None
    alert_summary(outcome)    # pushed / expected / done / kept_at / release_command
    cloud_event(outcome)      # a structured-mode CloudEvents 1.0 object (deterministic id)

Pure: the sinks in importer/adapters/sinks/ deliver these (docs/design.md, "Outcomes and alerts").
"""

from __future__ import annotations

import uuid
from typing import Any

from importer.core.outcome import Outcome
from importer.core.program import command_line

DEFAULT_TYPE_PREFIX = "io.platformguard"


def event_kind(outcome: Outcome) -> str | None:
    """The notification kind of an outcome: quarantined, reimported, violation, failed, loopguard (None: nothing to tell)."""
    if outcome.alert == "loopguard":
        return "loopguard"
    return {"quarantined": "quarantined", "reimported": "reimported", "alerted": "violation", "failed": "failed"}.get(
        outcome.result
    )


def alert_summary(outcome: Outcome) -> dict[str, Any]:
    """What on-call needs first, in plain fields."""
    release = command_line("release", outcome.preserved_as) if outcome.preserved_as else None
    return {
        "pushed": {"reference": outcome.reference, "actor": outcome.actor, "user_agent": outcome.user_agent,
                   "platforms": list(outcome.platforms)},
        "expected": {"required": list(outcome.required), "missing": list(outcome.missing),
                     "forbidden": list(outcome.forbidden), "inconsistent": list(outcome.inconsistent)},
        "done": {"result": outcome.result, "reason": outcome.reason, "error": outcome.error,
                 "new_digest": outcome.new_digest, "source": outcome.source},
        "kept_at": outcome.preserved_as,
        "release_command": release,
    }


def cloud_event(outcome: Outcome, *, type_prefix: str = DEFAULT_TYPE_PREFIX) -> dict[str, Any]:
    """The outcome as a structured-mode CloudEvents 1.0 object."""
    kind = event_kind(outcome) or outcome.result
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{outcome.event_id}/{outcome.result}/{outcome.received_at}")),
        "source": f"/platform-guard/{outcome.registry or 'unknown'}",
        "type": f"{type_prefix}.image.{kind}",
        "subject": outcome.reference or outcome.event_id,
        "time": outcome.received_at,
        "datacontenttype": "application/json",
        "data": {**outcome.as_dict(), "summary": alert_summary(outcome)},
    }
