"""The time limit of one event: no try of an event outlasts it, however its registry requests add up.

Each try of an event (the local workers' and the Functions queue trigger's, both through importer.app.attempt) runs
under one time limit (Pipeline `event_deadline`, the setting PLATFORM_GUARD_EVENT_DEADLINE_SECONDS, 240 s by default:
well under the Functions host's 5-minute functionTimeout). A try that runs out of time ends as a transient failure:
a `retrying` attempt is recorded and the message is tried again later. The registries here are fake
(tests/app/content_registry.py): one drips its headers, one answers every request correctly but 0.25 s late, which
no request deadline minds, but which adds up over the requests an index with many children needs.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from importer.adapters.ledger.sqlite import SqliteLedger
from importer.adapters.registry.oci import OciRegistry
from importer.app.attempt import RETRY, attempt_event
from importer.app.pipeline import Pipeline, TransientFailure
from importer.app.registries import RegistryDirectory
from importer.app.settings import DEFAULT_EVENT_DEADLINE_SECONDS, Settings, SettingsError, load_settings
from importer.core.events import PushEvent
from importer.core.policy import parse_policy
from importer.entry.queue_trigger import HOST_JSON, TAG_LEASE_SECONDS
from tests.app.content_registry import ContentRegistry

pytestmark = pytest.mark.timeout(120)

EVENT_DEADLINE = 1.5
FINISHED_WITHIN = EVENT_DEADLINE + 1.5  # generous; without the limit these tries took 6 s to minutes

POLICY = parse_policy("version: 1\ndefaults:\n  require: [linux/amd64]\n  on_violation: alert\n", source="test.yaml")


@dataclass(frozen=True, slots=True)
class SlowCase:
    registry: dict[str, object]  # ContentRegistry options
    children: int  # linux/amd64 children of the pushed index (each needs its manifest and config read)
    request_deadline: float  # the client's own deadline per request


SLOW_CASES = {
    # One request dripping its headers, with a request deadline far away: the event's limit ends it.
    "dripped-headers": SlowCase({"drip": "headers", "drip_seconds": 0.2}, 1, 60.0),
    # 1 + 2 * 12 requests, each answered 0.25 s late: each is fine, together they take over 6 s.
    "many-acceptable-requests": SlowCase({"delay": 0.25}, 12, 1.0),
}


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqliteLedger]:
    ledger = SqliteLedger(tmp_path / "ledger.db")
    yield ledger
    ledger.close()


def pipeline_for(registry: ContentRegistry, ledger: SqliteLedger, *, request_deadline: float,
                 event_deadline: float) -> Pipeline:
    settings = Settings(registries=(registry.host,), policy=POLICY, ledger_path=Path(ledger.path))
    directory = RegistryDirectory(settings, factory=lambda host: OciRegistry(
        host, request_deadline=request_deadline, max_attempts=2, backoff=0.01))
    return Pipeline(policy=POLICY, ledger=ledger, registries=directory, event_deadline=event_deadline)


def push_event(registry: ContentRegistry, digest: str) -> PushEvent:
    return PushEvent(event_id="e-slow", schema="distribution", action="push", origin=registry.host,
                     repository="team/app", tag="1", digest=digest, media_type=None, size=None, artifact="image",
                     actor="ci", user_agent="test", occurred_at=None)


@pytest.mark.parametrize("case", SLOW_CASES.values(), ids=SLOW_CASES.keys())
def test_a_try_that_runs_out_of_time_ends_as_a_transient_failure(ledger: SqliteLedger, case: SlowCase) -> None:
    """The try ends within the event's limit, as a retry: a `retrying` attempt whose error names the limit, and the
    claim given back so that the next try decides the event."""
    with ContentRegistry(**case.registry) as registry:  # type: ignore[arg-type]
        children = [registry.add_image(seed=str(n)) for n in range(case.children)]
        index = registry.add_index(children, tag=("team/app", "1"))
        pipeline = pipeline_for(registry, ledger, request_deadline=case.request_deadline,
                                event_deadline=EVENT_DEADLINE)
        event = push_event(registry, index["digest"])
        started = time.monotonic()
        ending = attempt_event(pipeline, event, "2026-01-01T00:00:00.000Z", attempt=1, last_try=lambda _: False)
        elapsed = time.monotonic() - started
    assert ending.settle == RETRY, ending
    assert elapsed < FINISHED_WITHIN, elapsed
    assert f"the time limit of this event ({EVENT_DEADLINE:g} s) ran out" in ending.error, ending.error
    [record] = ledger.outcomes(event_id=event.event_id, limit=10)
    assert record.result == "retrying" and record.attempt == 1 and "time limit" in (record.error or "")
    assert ledger.claim(event.event_id) is True  # the claim was given back: the next try decides the event


@pytest.mark.parametrize("events", [1, 5])
def test_a_delivery_handled_in_place_gets_one_time_limit(ledger: SqliteLedger, events: int) -> None:
    """Without a queue (`handle_all`, the in-place delivery path) running out of time is a TransientFailure too, so
    the sender delivers again; and a delivery of many events gets one limit in all, not one per event."""
    with ContentRegistry(drip="headers") as registry:
        index = registry.add_index([registry.add_image()], tag=("team/app", "1"))
        pipeline = pipeline_for(registry, ledger, request_deadline=60.0, event_deadline=EVENT_DEADLINE)
        delivery = [dataclasses.replace(push_event(registry, index["digest"]), event_id=f"e-{n}")
                    for n in range(events)]
        started = time.monotonic()
        with pytest.raises(TransientFailure, match=re.escape(f"time limit of this delivery ({EVENT_DEADLINE:g} s)")):
            pipeline.handle_all(delivery)
        assert time.monotonic() - started < FINISHED_WITHIN


def test_a_quick_event_is_decided_as_before(ledger: SqliteLedger) -> None:
    """The limit changes nothing for an event that fits in it."""
    with ContentRegistry() as registry:
        index = registry.add_index([registry.add_image(seed=str(n)) for n in range(3)], tag=("team/app", "1"))
        pipeline = pipeline_for(registry, ledger, request_deadline=5.0, event_deadline=EVENT_DEADLINE)
        ending = attempt_event(pipeline, push_event(registry, index["digest"]), "2026-01-01T00:00:00.000Z",
                               attempt=1, last_try=lambda _: False)
    assert ending.settle == "complete"
    [record] = ledger.outcomes(event_id="e-slow", limit=10)
    assert record.result == "compliant"


# -- the setting ---------------------------------------------------------------------------------------------------

SETTING = "PLATFORM_GUARD_EVENT_DEADLINE_SECONDS"


@pytest.mark.parametrize(("raw", "seconds"), [(None, DEFAULT_EVENT_DEADLINE_SECONDS), ("", 240.0), ("30", 30.0),
                                              ("90.5", 90.5), ("1", 1.0), ("3600", 3600.0)])
def test_the_event_deadline_setting_is_read(raw: str | None, seconds: float) -> None:
    """Unset or empty: 240 s; otherwise seconds from 1 to 3600, read as the other numeric settings are."""
    environ = {} if raw is None else {SETTING: raw}
    assert load_settings(environ).event_deadline_seconds == seconds


@pytest.mark.parametrize("raw", ["0", "0.5", "-5", "3601", "nan", "inf", "-inf", "1e400", "ten", "30s", "0x10",
                                 " 90 "])
def test_the_event_deadline_setting_is_strict(raw: str) -> None:
    """A value no limit can be made of, or one out of range, is refused by name."""
    with pytest.raises(SettingsError, match=f"{SETTING}: expected a number of seconds from 1 to 3600"):
        load_settings({SETTING: raw})


def test_the_default_ends_well_before_the_functions_timeout_and_the_tag_lease() -> None:
    """On Azure a try is stopped after host.json's functionTimeout: the default limit leaves a minute for the rest of
    the invocation (recording the outcome, settling the message), and the tag lease outlives the limit."""
    hours, minutes, seconds = (int(part) for part in json.loads(HOST_JSON.read_text())["functionTimeout"].split(":"))
    function_timeout = hours * 3600 + minutes * 60 + seconds
    assert DEFAULT_EVENT_DEADLINE_SECONDS + 60 <= function_timeout
    assert DEFAULT_EVENT_DEADLINE_SECONDS < TAG_LEASE_SECONDS
    assert Pipeline(policy=POLICY, ledger=None, registries=None).event_deadline == DEFAULT_EVENT_DEADLINE_SECONDS  # type: ignore[arg-type]
