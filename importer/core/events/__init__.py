"""Registry push notifications of every kind → one normalised `PushEvent`, plus the delivery handshakes.

Pure: bytes and header dicts in, values out; no I/O, no clock. Schemas: Event Grid (`eventgrid`), CloudEvents
1.0 single and batch (`cloudevents`), CNCF distribution envelopes and ACR classic webhooks (`notifications`),
Harbor's webhooks native and CloudEvents (`harbor`, `harbor-cloudevents`) and Quay's `repo_push` (`quay`).
An event's `origin` (Event Grid `topic`, CloudEvents `source`, else `request.host`) only names the sender:
it is matched later against the configured registries, and nothing ever connects to a host from the body.

    for event in parse_eventgrid(body):            # or parse_cloudevents / parse_registry_notification
        if isinstance(event, RejectedEvent):
            record_rejection(event.event_id, event.reason)
        elif triage(event).disposition == "decide":
            handle(event)                          # tagged manifest push: inspect and decide
"""

from importer.core.events.acr import ACR_EVENT_TYPES
from importer.core.events.cloudevents import parse_cloudevents
from importer.core.events.eventgrid import parse_eventgrid, parse_eventgrid_envelope
from importer.core.events.fields import MAX_BODY_BYTES
from importer.core.events.handshakes import (
    SUBSCRIPTION_VALIDATION_EVENT_TYPE,
    cloudevents_options_response,
    eventgrid_validation_response,
)
from importer.core.events.harbor import SCHEMA_HARBOR, SCHEMA_HARBOR_CLOUDEVENTS
from importer.core.events.model import (
    CHART,
    DELETE,
    IMAGE,
    PUSH,
    SCHEMA_ACR_WEBHOOK,
    SCHEMA_CLOUDEVENTS,
    SCHEMA_DISTRIBUTION,
    SCHEMA_EVENTGRID,
    EventPayloadError,
    ParsedEvent,
    PushEvent,
    RejectedEvent,
    Triage,
    event_from_json,
    event_to_json,
    is_manifest_media_type,
    may_be_referrer,
    ordering_key,
    triage,
)
from importer.core.events.notifications import parse_registry_notification
from importer.core.events.quay import SCHEMA_QUAY

__all__ = [
    "ACR_EVENT_TYPES",
    "CHART",
    "DELETE",
    "IMAGE",
    "MAX_BODY_BYTES",
    "PUSH",
    "SCHEMA_ACR_WEBHOOK",
    "SCHEMA_CLOUDEVENTS",
    "SCHEMA_DISTRIBUTION",
    "SCHEMA_EVENTGRID",
    "SCHEMA_HARBOR",
    "SCHEMA_HARBOR_CLOUDEVENTS",
    "SCHEMA_QUAY",
    "SUBSCRIPTION_VALIDATION_EVENT_TYPE",
    "EventPayloadError",
    "ParsedEvent",
    "PushEvent",
    "RejectedEvent",
    "Triage",
    "cloudevents_options_response",
    "event_from_json",
    "event_to_json",
    "eventgrid_validation_response",
    "is_manifest_media_type",
    "may_be_referrer",
    "ordering_key",
    "parse_cloudevents",
    "parse_eventgrid",
    "parse_eventgrid_envelope",
    "parse_registry_notification",
    "triage",
]
