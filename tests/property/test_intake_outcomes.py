"""One outcome per event: every event the parsers return from a hostile body, admitted by the intake
(importer.app.intake) into a real SQLite ledger and SQLite queue, is either queued exactly once or recorded exactly
once (rejected), never both, and admission raises nothing but TransientFailure.

The pipeline guards two registries (`CONFIGURED_REGISTRY`, and `CONFIGURED_ACR` reached through its Azure resource
id); the bodies name them and hosts nobody configured, so both paths are taken. Admission reads no registry: the
registry clients are made lazily and no host here listens. Blob pushes are dropped (neither queued nor recorded).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from importer.adapters.ledger.sqlite import SqliteLedger
from importer.adapters.queue.sqlite import SqliteQueue
from importer.app.intake import Accepted, Intake
from importer.app.pipeline import Pipeline, TransientFailure
from importer.app.settings import Settings
from importer.core.events import EventPayloadError, ParsedEvent, PushEvent, event_from_json, triage
from importer.core.policy import parse_policy
from importer.entry.composition import registry_directory_for
from tests.property.event_bodies import (
    ACR_RESOURCE_ID,
    CONFIGURED_ACR,
    CONFIGURED_REGISTRY,
    PARSERS,
    SCHEMAS,
    event_bodies,
)
from tests.property.hostile import bounded, scaled_examples

POLICY = parse_policy("version: 1\ndefaults:\n  require: [linux/amd64]\n", source="intake-property.yaml")


def drain(queue: SqliteQueue) -> Counter[str]:
    """Take every queued message (completing each), and count them by event id."""
    queued: Counter[str] = Counter()
    later = time.time() + 3600.0  # every message is ready by then
    while (message := queue.take("property", lease_seconds=60.0, now=later)) is not None:
        event, _ = event_from_json(message.body)
        queued[event.event_id] += 1
        assert queue.complete(message)
    return queued


def is_dropped(event: ParsedEvent) -> bool:
    """Blob pushes: neither queued nor recorded, by design."""
    return isinstance(event, PushEvent) and triage(event).disposition == "drop"


DELIVERIES = st.sampled_from(SCHEMAS).flatmap(lambda schema: st.tuples(st.just(schema), event_bodies(schema)))
# Issue 12 item 2: an event id SQLite cannot store, from a configured registry (queued) and from an unknown one.
SURROGATE_ID_PUSH = (
    '{{"events":[{{"id":"\\ud800","action":"push","request":{{"host":"{host}"}},"target":{{"repository":"team/app",'
    '"tag":"1","digest":"sha256:{hex}","mediaType":"application/vnd.oci.image.index.v1+json"}}}}]}}'
)


@settings(max_examples=scaled_examples(2.0))
@given(delivery=DELIVERIES)
@example(delivery=("distribution", (SURROGATE_ID_PUSH.format(host=CONFIGURED_REGISTRY, hex="a" * 64), None)))
@example(delivery=("distribution", (SURROGATE_ID_PUSH.format(host="elsewhere.example", hex="b" * 64), None)))
@example(delivery=("eventgrid", (('[{"id":"\\udfff","eventType":"Microsoft.ContainerRegistry.ImagePushed",'
                                  f'"topic":"{ACR_RESOURCE_ID}","data":{{}}}}]'), None)))
def test_every_parsed_event_is_queued_or_recorded_exactly_once(
    delivery: tuple[str, tuple[bytes | str, str | None]], fuzz_directory: Callable[[], Path]
) -> None:
    """Parse a hostile body of any schema, admit its events, then count what the queue and the ledger hold."""
    schema, (body, content_type) = delivery
    try:
        events = PARSERS[schema](body, content_type)
    except EventPayloadError:
        return  # the route answers 400; nothing reaches the intake
    directory = fuzz_directory()
    guarded = Settings(registries=(CONFIGURED_REGISTRY, CONFIGURED_ACR), policy=POLICY,
                       ledger_path=directory / "ledger.db")
    ledger, queue = SqliteLedger(guarded.ledger_path), SqliteQueue(guarded.queue_path)
    try:
        pipeline = Pipeline(policy=POLICY, ledger=ledger, registries=registry_directory_for(guarded))
        accepted = bounded(lambda: Intake(pipeline, queue).accept(events), allowed=(TransientFailure,),
                           peak_bytes=None, what="admission")
        # TransientFailure is the one error admission may raise; with local files it has no cause: here it fails too.
        assert isinstance(accepted, Accepted), f"the ledger and queue are local files: {accepted!r}"
        queued = drain(queue)
        recorded = Counter(outcome.event_id for outcome in ledger.outcomes(limit=10 * len(events) + 10))
    finally:
        queue.close()
        ledger.close()

    expected = Counter(event.event_id for event in events if not is_dropped(event))
    kept = queued + recorded
    assert kept == expected, f"by event id, queued {dict(queued)} + recorded {dict(recorded)} != {dict(expected)}"
    for event_id, count in expected.items():
        if count == 1:
            assert not (queued[event_id] and recorded[event_id]), f"{event_id!r} was queued and recorded"
    assert Counter(accepted.queued) == queued
    assert Counter(outcome.event_id for outcome in accepted.outcomes) == recorded
    assert all(outcome.result == "rejected" for outcome in accepted.outcomes), accepted.outcomes
