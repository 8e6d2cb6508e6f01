"""EventGridSink with the real azure-eventgrid SDK posting to a local HTTP receiver that plays the Event Grid topic.

The topic is an Azure-only endpoint, so the request tests are contract tests: they pin the documented publish request
(POST to the topic endpoint with `api-version`, `aeg-sas-key` for a key or `Authorization: Bearer` for an Entra ID
token of scope `https://eventgrid.azure.net/.default`, `Content-Type: application/cloudevents-batch+json`, a JSON array
of CloudEvents 1.0) and the documented answer (200 is success; anything else is an error the sink logs).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.credentials import AccessToken, AzureKeyCredential

from importer.adapters.sinks.eventgrid import EVENT_KINDS, EventGridSink, topic_endpoint
from importer.core.alerts import alert_summary
from importer.core.outcome import Outcome
from testbed.http_server import LocalHttpServer, QuietRequestHandler
from testbed.images import ImageBuilder, single
from testbed.push import push
from testbed.stack import GuardedRegistry

TOPIC_KEY = "topic-key-do-not-log-0123456789"
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class Received:
    """One request the receiver got."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    client_port: int

    def events(self) -> list[dict[str, Any]]:
        return json.loads(self.body)


@dataclass
class TopicReceiver:
    """A stand-in Event Grid topic on 127.0.0.1 that records every request and answers `status`."""

    status: int = 200
    requests: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(QuietRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, so a reused client shows as one connection

            def do_POST(self) -> None:
                body = self.read_body()
                parts = urlsplit(self.path)
                receiver.requests.append(Received(
                    "POST", parts.path, parse_qs(parts.query), self.lowercase_headers(), body, self.client_address[1],
                ))
                answer = b"" if receiver.status == 200 else b'{"error":{"code":"Internal","message":"boom"}}'
                self.send_body(receiver.status, answer, {"Content-Type": "application/json"})

        self._http = LocalHttpServer(Handler, name="event-grid-topic").start()

    @property
    def endpoint(self) -> str:
        return f"{self._http.url}/api/events"

    def stop(self) -> None:
        self._http.stop()


@pytest.fixture
def topic() -> Iterator[Callable[..., TopicReceiver]]:
    """Start stand-in topics: `topic()` answers 200, `topic(status=500)` fails every publish."""
    started: list[TopicReceiver] = []

    def start(status: int = 200) -> TopicReceiver:
        started.append(TopicReceiver(status))
        return started[-1]

    yield start
    for receiver in started:
        receiver.stop()


class FixedTokenCredential:
    """A TokenCredential (an input, not a mock): returns one fixed token and remembers the scopes asked for."""

    def __init__(self, token: str = "entra-token-0123456789") -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **options: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


def outcome(result: str, **fields: Any) -> Outcome:
    """An outcome for a wrong-arch push to team/app:1, with `fields` changed."""
    digest = "sha256:" + "a" * 64
    values: dict[str, Any] = dict(
        event_id="evt-0001",
        received_at="2026-11-26T09:00:00.123Z",
        result=result,
        registry="registry.example.test",
        reference=f"registry.example.test/team/app:1@{digest}",
        repository="team/app",
        tag="1",
        digest=digest,
        media_type="application/vnd.oci.image.manifest.v1+json",
        kind="image",
        platforms=("linux/arm64",),
        required=("linux/amd64",),
        missing=("linux/amd64",),
        verdict="violation",
        action="quarantine",
        reason="linux/amd64 is missing",
        actor="alice",
        user_agent="docker/27.3.1 go/go1.22 os/darwin arch/arm64",
        duration_ms=41.5,
        schema="registry-notification",
    )
    values.update(fields)
    return Outcome(**values)


NOTIFIED = [
    ("quarantined", outcome("quarantined", preserved_as="registry.example.test/quarantine/team/app:1-aaaa")),
    ("reimported", outcome("reimported", action="reimport", new_digest="sha256:" + "b" * 64, source="docker.io/x")),
    ("violation", outcome("alerted", action="alert")),
    ("failed", outcome("failed", error="registry answered 500 (will be retried)")),
    ("loopguard", outcome("alerted", alert="loopguard", reason="loop guard: 3 remediations of team/app:1 in 3600 s")),
]
NOT_NOTIFIED = [
    ("compliant", outcome("compliant", platforms=("linux/amd64",), missing=(), verdict="compliant", action="none")),
    ("ignored", outcome("ignored", verdict="ignored", action="none")),
    ("duplicate", outcome("duplicate", verdict=None, action=None)),
    ("rejected", outcome("rejected", verdict=None, action=None, reason="not a configured registry")),
    ("superseded", outcome("superseded")),
]


@pytest.mark.parametrize(
    ("credential", "expected_auth"),
    [
        (AzureKeyCredential(TOPIC_KEY), ("aeg-sas-key", TOPIC_KEY)),
        (FixedTokenCredential(), ("authorization", "Bearer entra-token-0123456789")),
    ],
    ids=["access-key", "entra-token"],
)
def test_contract_publish_request_carries_the_outcome_as_a_cloud_event(
    topic: Callable[..., TopicReceiver], credential: object, expected_auth: tuple[str, str]
) -> None:
    """A quarantine is POSTed to /api/events as a CloudEvents batch with the documented auth header and fields."""
    receiver = topic()
    quarantined = NOTIFIED[0][1]
    EventGridSink(receiver.endpoint, credential=credential).emit(quarantined)

    [request] = receiver.requests
    assert (request.method, request.path) == ("POST", "/api/events")
    assert request.query["api-version"] == ["2018-01-01"]
    header, value = expected_auth
    assert request.headers[header] == value
    other = "authorization" if header == "aeg-sas-key" else "aeg-sas-key"
    assert other not in request.headers
    assert request.headers["content-type"].startswith("application/cloudevents-batch+json")
    [event] = request.events()
    assert event["specversion"] == "1.0"
    assert event["type"] == "io.platformguard.image.quarantined"
    assert event["source"] == "/platform-guard/registry.example.test"
    assert event["subject"] == quarantined.reference
    assert event["time"].startswith("2026-11-26T09:00:00.123")
    assert event["id"] and event["datacontenttype"] == "application/json"
    assert event["data"] == {**quarantined.as_dict(), "summary": alert_summary(quarantined)}
    if isinstance(credential, FixedTokenCredential):
        assert credential.scopes == [("https://eventgrid.azure.net/.default",)]


@pytest.mark.parametrize(("kind", "record"), NOTIFIED + NOT_NOTIFIED, ids=[k for k, _ in NOTIFIED + NOT_NOTIFIED])
def test_contract_event_type_names_the_kind_and_only_notable_outcomes_are_published(
    topic: Callable[..., TopicReceiver], kind: str, record: Outcome
) -> None:
    """The five notable kinds are published as `<prefix>.image.<kind>`; other results publish nothing."""
    receiver = topic()
    EventGridSink(receiver.endpoint, credential=AzureKeyCredential(TOPIC_KEY), type_prefix="com.example.guard").emit(
        record
    )
    published = [event["type"] for request in receiver.requests for event in request.events()]
    if kind in EVENT_KINDS:
        assert published == [f"com.example.guard.image.{kind}"]
    else:
        assert published == []


@pytest.mark.parametrize(
    ("kinds", "expected"),
    [
        ({"quarantined", "loopguard"}, ["quarantined", "loopguard"]),
        ({"reimported"}, ["reimported"]),
        (set(), []),
        (set(EVENT_KINDS), [kind for kind, _ in NOTIFIED]),
    ],
    ids=["alerts-only", "reimports-only", "none", "all-five"],
)
def test_kinds_filter_selects_what_is_published(
    topic: Callable[..., TopicReceiver], kinds: set[str], expected: list[str]
) -> None:
    """Only outcomes whose kind is in `kinds` reach the topic, in the order they were emitted."""
    receiver = topic()
    sink = EventGridSink(receiver.endpoint, credential=AzureKeyCredential(TOPIC_KEY), kinds=kinds)
    for _, record in NOTIFIED + NOT_NOTIFIED:
        sink.emit(record)
    published = [event["type"].rsplit(".", 1)[1] for request in receiver.requests for event in request.events()]
    assert published == expected


def test_default_kinds_are_all_five() -> None:
    """Without `kinds`, every kind importer.core.alerts.event_kind can return is published."""
    sink = EventGridSink("https://topic.example.test/api/events", credential=AzureKeyCredential(TOPIC_KEY))
    assert sink.kinds == {"quarantined", "reimported", "violation", "failed", "loopguard"}
    assert all(sink.publishes(record) for _, record in NOTIFIED)


@pytest.mark.parametrize(
    ("status", "credential", "expected_requests", "expected_error"),
    [
        (500, AzureKeyCredential(TOPIC_KEY), 3, "HttpResponseError"),
        (503, FixedTokenCredential(TOPIC_KEY), 3, "HttpResponseError"),
        (401, AzureKeyCredential(TOPIC_KEY), 1, "ClientAuthenticationError"),
        (403, FixedTokenCredential(TOPIC_KEY), 1, "HttpResponseError"),
    ],
    ids=["500-retried-then-logged", "503-token-retried-then-logged", "401-not-retried", "403-not-retried"],
)
def test_contract_error_answers_are_logged_never_raised(
    topic: Callable[..., TopicReceiver],
    caplog: pytest.LogCaptureFixture,
    status: int,
    credential: object,
    expected_requests: int,
    expected_error: str,
) -> None:
    """A topic answering an error makes emit log one ERROR naming the event (never the key) and return normally."""
    receiver = topic(status=status)
    sink = EventGridSink(receiver.endpoint, credential=credential, attempts=3)
    with caplog.at_level(logging.DEBUG):
        started = time.monotonic()
        sink.emit(NOTIFIED[0][1])
        elapsed = time.monotonic() - started
    assert len(receiver.requests) == expected_requests
    assert elapsed < 10
    errors = [r for r in caplog.records if r.name == "platform_guard.alerts.eventgrid" and r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "evt-0001" in errors[0].getMessage() and expected_error in errors[0].getMessage()
    assert all(TOPIC_KEY not in record.getMessage() for record in caplog.records)
    assert not [r for r in caplog.records if "is not a known attribute" in r.getMessage()]


def test_unreachable_topic_is_logged_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    """A topic that refuses connections (nothing listening on the port) is logged as an error, not raised."""
    receiver = TopicReceiver()
    endpoint = receiver.endpoint
    receiver.stop()  # the port is now closed
    sink = EventGridSink(endpoint, credential=AzureKeyCredential(TOPIC_KEY), attempts=2, timeout=2)
    with caplog.at_level(logging.ERROR, logger="platform_guard.alerts.eventgrid"):
        sink.emit(NOTIFIED[0][1])
    [error] = [r for r in caplog.records if r.name == "platform_guard.alerts.eventgrid"]
    assert "ServiceRequestError" in error.getMessage() and TOPIC_KEY not in error.getMessage()


def test_client_is_built_once_and_reused(topic: Callable[..., TopicReceiver]) -> None:
    """Consecutive publishes go over one kept-alive connection: the client (and its session) is reused."""
    receiver = topic()
    sink = EventGridSink(receiver.endpoint, credential=FixedTokenCredential())
    for _, record in NOTIFIED:
        sink.emit(record)
    assert len(receiver.requests) == len(NOTIFIED)
    assert len({request.client_port for request in receiver.requests}) == 1
    sink.close()


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("https://guard.westeurope-1.eventgrid.azure.net/api/events",
         "https://guard.westeurope-1.eventgrid.azure.net/api/events"),
        ("https://guard.westeurope-1.eventgrid.azure.net", "https://guard.westeurope-1.eventgrid.azure.net/api/events"),
        ("https://guard.westeurope-1.eventgrid.azure.net/",
         "https://guard.westeurope-1.eventgrid.azure.net/api/events"),
        ("http://127.0.0.1:8080/api/events", "http://127.0.0.1:8080/api/events"),
        ("http://localhost:8080", "http://localhost:8080/api/events"),
        ("http://[::1]:8080/api/events", "http://[::1]:8080/api/events"),
    ],
    ids=["topic-endpoint", "host-only-gets-path", "trailing-slash", "loopback-http", "localhost-http", "ipv6-loopback"],
)
def test_topic_endpoint_accepts_https_and_loopback_http(endpoint: str, expected: str) -> None:
    """Topic endpoints are used as given, with /api/events added when only the host is given."""
    assert topic_endpoint(endpoint) == expected


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("http://guard.westeurope-1.eventgrid.azure.net/api/events", "plain http to a non-loopback host"),
        ("http://10.0.0.4:8080/api/events", "plain http to a non-loopback host"),
        ("ftp://127.0.0.1/api/events", "not an http"),
        ("guard.westeurope-1.eventgrid.azure.net", "not an http"),
        ("https://user:secret@guard.example.test/api/events", "no user info, query or fragment"),
        ("https://guard.example.test/api/events?aeg-sas-key=secret", "no user info, query or fragment"),
        ("https://guard.example.test:99999/api/events", "not a valid URL"),
    ],
    ids=["http-to-azure", "http-to-private-address", "ftp", "no-scheme", "user-info", "key-in-query", "bad-port"],
)
def test_topic_endpoint_rejections_name_the_endpoint_without_secrets(endpoint: str, message: str) -> None:
    """Endpoints that could leak the token or key, or are not URLs, are refused with a message naming them."""
    with pytest.raises(ValueError, match=message) as raised:
        EventGridSink(endpoint, credential=FixedTokenCredential())
    assert "secret" not in str(raised.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kinds": {"quarantined", "pushed"}}, r"unknown Event Grid event kinds \['pushed'\]"),
        ({"credential": "a-plain-string-key"}, "credential of type str"),
        ({"type_prefix": ""}, "type prefix"),
        ({"attempts": 0}, "attempts >= 1"),
    ],
    ids=["unknown-kind", "string-credential", "empty-prefix", "no-attempts"],
)
def test_invalid_options_are_refused(options: dict[str, Any], message: str) -> None:
    """Options that cannot work are refused at construction, with a message naming the bad value."""
    arguments: dict[str, Any] = {"credential": AzureKeyCredential(TOPIC_KEY), **options}
    with pytest.raises(ValueError, match=message):
        EventGridSink("https://topic.example.test/api/events", **arguments)


def test_azure_eventgrid_is_imported_on_first_publish_only() -> None:
    """Importing the module and building the sink do not import azure.eventgrid (cold starts stay cheap)."""
    script = (
        "import sys\n"
        "from azure.core.credentials import AzureKeyCredential\n"
        "from importer.adapters.sinks.eventgrid import EventGridSink\n"
        "EventGridSink('https://topic.example.test/api/events', credential=AzureKeyCredential('k'))\n"
        "print('azure.eventgrid' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


QUARANTINE_POLICY = "version: 1\ndefaults:\n  require: [linux/amd64]\n  on_violation: quarantine\n"


def test_pipeline_publishes_a_real_quarantine_to_the_topic(
    guarded: Callable[..., GuardedRegistry], builder: ImageBuilder, topic: Callable[..., TopicReceiver]
) -> None:
    """An arm64-only push to a real registry is quarantined and the pipeline's sink publishes one quarantined event."""
    receiver = topic()
    stack = guarded(QUARANTINE_POLICY)
    stack.pipeline.sinks = (*stack.pipeline.sinks, EventGridSink(receiver.endpoint, credential=FixedTokenCredential()))
    digest = push(builder, single(builder, "linux/arm64"), stack.registry.host, "team/eg", "1")
    recorded = stack.wait_for("team/eg", tag="1")
    assert recorded.result == "quarantined"
    stack.wait_until(lambda _: bool(receiver.requests))
    events = [event for request in receiver.requests for event in request.events()]
    quarantines = [event for event in events if event["type"] == "io.platformguard.image.quarantined"]
    assert len(quarantines) == 1
    [event] = quarantines
    assert event["source"] == f"/platform-guard/{stack.registry.host}"
    assert event["subject"] == f"{stack.registry.host}/team/eg:1@{digest}"
    assert event["data"]["preserved_as"] == recorded.preserved_as
    assert event["data"]["summary"]["expected"]["missing"] == ["linux/amd64"]
