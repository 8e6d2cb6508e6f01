"""The delivery handshakes: Event Grid subscription validation and the CloudEvents webhook
abuse-protection OPTIONS request. Each answers from the request alone; neither is an event."""

from __future__ import annotations

import re
from collections.abc import Mapping

from importer.core.events.eventgrid import eventgrid_items
from importer.core.events.fields import join_path, load_json, show, text_problem
from importer.core.events.model import EventPayloadError

SUBSCRIPTION_VALIDATION_EVENT_TYPE = "Microsoft.EventGrid.SubscriptionValidationEvent"

_HEADER_ORIGIN = re.compile(r"[\x21-\x7e]{1,255}")


def eventgrid_validation_response(body: bytes | str, headers: Mapping[str, str]) -> dict[str, str] | None:
    """The answer to an Event Grid subscription validation, or None when the delivery is not one.

    A delivery is a validation when header `aeg-event-type` says `SubscriptionValidation`, or, without that
    header, when it holds a `Microsoft.EventGrid.SubscriptionValidationEvent`. Answer HTTP 200 with the dict.
    """
    event_kind = _header(headers, "aeg-event-type")
    if event_kind is not None and event_kind.strip().lower() != "subscriptionvalidation":
        return None
    document = load_json(body, "Event Grid body")
    for raw, path in eventgrid_items(document):
        if isinstance(raw, dict) and raw.get("eventType") == SUBSCRIPTION_VALIDATION_EVENT_TYPE:
            data = raw.get("data")
            code = data.get("validationCode") if isinstance(data, dict) else None
            where = join_path(join_path(path, "data"), "validationCode")
            if not isinstance(code, str) or not code:
                raise EventPayloadError(
                    f"Event Grid validation: {where}: expected a non-empty string, got {show(code)}"
                )
            problem = text_problem(code)  # echoed to the sender, and recorded if the delivery is refused
            if problem is not None:
                raise EventPayloadError(f"Event Grid validation: {where}: {problem}")
            return {"validationResponse": code}
    if event_kind is not None:
        raise EventPayloadError(
            f"Event Grid body: header aeg-event-type is {event_kind!r} "
            f"but the body holds no {SUBSCRIPTION_VALIDATION_EVENT_TYPE}"
        )
    return None


def cloudevents_options_response(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers answering the CloudEvents webhook abuse-protection handshake (an OPTIONS request).

    Echoes `WebHook-Request-Origin` as `WebHook-Allowed-Origin`, and allows any rate when one was asked for.
    """
    origin = _header(headers, "WebHook-Request-Origin")
    if origin is None or not origin.strip():
        raise EventPayloadError("CloudEvents OPTIONS handshake: header WebHook-Request-Origin is missing")
    origin = origin.strip()
    if not _HEADER_ORIGIN.fullmatch(origin):
        raise EventPayloadError(
            f"CloudEvents OPTIONS handshake: WebHook-Request-Origin {show(origin)} is not a host name"
        )
    response = {"WebHook-Allowed-Origin": origin}
    if _header(headers, "WebHook-Request-Rate") is not None:
        response["WebHook-Allowed-Rate"] = "*"
    return response


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None
