"""Outcomes to Application Insights through azure-monitor-opentelemetry, exported to a local ingestion endpoint.

configure_azure_monitor sets process-wide OpenTelemetry providers and instruments libraries, so the real setup runs in
a child process: it gets `IngestionEndpoint=http://127.0.0.1:PORT/` in its connection string, emits outcomes, flushes
and exits without the exit-time flush. The SDK's own calls home (statsbeat, SDK stats, the OneSettings control plane,
the VM metadata resource detector) are switched off by their documented environment variables, and an audit hook in
the child refuses any connection or name lookup that is not loopback. The ingestion endpoint is Azure-only, so the
envelope tests are contract tests of the documented Track API: POST /v2.1/track (or /v2/track), a JSON array of
envelopes (gzip allowed), answered with `{"itemsReceived", "itemsAccepted", "errors"}`.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from importer.adapters.sinks.telemetry import (
    DIMENSIONS,
    TelemetryError,
    configure_telemetry,
    custom_dimensions,
    parse_connection_string,
    trace_message,
)
from importer.core.outcome import OUTCOME_FIELDS, Outcome
from testbed.http_server import LocalHttpServer, QuietRequestHandler

REPO_ROOT = Path(__file__).resolve().parents[2]
QUERIES = REPO_ROOT / "docs" / "queries.md"
INSTRUMENTATION_KEY = "00000000-0000-4000-8000-00000000c0de"
OTHER_KEY = "00000000-0000-4000-8000-00000000beef"

CHILD = r"""
import json, logging, os, sys
from importer.core.reference import is_loopback_host

refused = []

def stay_on_this_machine(event, args):
    # Refuse every connection and name lookup that would leave the machine; the test asserts there were none.
    host = None
    if event == "socket.connect" and isinstance(args[1], tuple):
        host = args[1][0]
    elif event == "socket.getaddrinfo" and args[0] is not None:
        host = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
    if host is not None and not is_loopback_host(host):
        refused.append(f"{event} {host}")
        raise ConnectionRefusedError(f"test refuses {event} to {host}")

sys.addaudithook(stay_on_this_machine)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="ROOT %(name)s %(message)s")

from importer.core.outcome import Outcome
from importer.adapters.sinks.telemetry import TelemetryError, configure_telemetry

connection_string, other_connection_string = sys.argv[1], sys.argv[2]
sink = configure_telemetry(connection_string)
for line in sys.stdin:
    sink.emit(Outcome.from_dict(json.loads(line)))
flushed = sink.flush(15)
same_again = configure_telemetry(connection_string) is not None
try:
    configure_telemetry(other_connection_string)
    other = "accepted"
except TelemetryError as error:
    other = str(error)
print(json.dumps({"flushed": flushed, "refused": refused, "same_again": same_again, "other": other}), flush=True)
os._exit(0)  # no exit-time shutdown flush: whatever reached the endpoint was sent by sink.flush()
"""

QUIET_SDK_ENVIRONMENT = {
    "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
    "APPLICATIONINSIGHTS_SDKSTATS_DISABLED": "true",
    "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
    "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "otel",
}


@dataclass
class IngestionReceiver:
    """A stand-in Application Insights ingestion endpoint on 127.0.0.1 recording every posted envelope."""

    posts: list[tuple[str, dict[str, str], list[dict[str, Any]]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(QuietRequestHandler):
            def do_POST(self) -> None:
                body = self.read_body()
                if self.headers.get("Content-Encoding", "").lower() == "gzip":
                    body = gzip.decompress(body)
                envelopes = json.loads(body)
                receiver.posts.append((self.path, self.lowercase_headers(), envelopes))
                count = len(envelopes)
                self.send_json(200, {"itemsReceived": count, "itemsAccepted": count, "errors": []})

        self._http = LocalHttpServer(Handler, name="ingestion-receiver").start()

    def connection_string(self, key: str = INSTRUMENTATION_KEY) -> str:
        return f"InstrumentationKey={key};IngestionEndpoint={self._http.url}/"

    def messages(self) -> list[dict[str, Any]]:
        return [e for _, _, envelopes in self.posts for e in envelopes if e["data"]["baseType"] == "MessageData"]

    def stop(self) -> None:
        self._http.stop()


def outcome(result: str, **fields: Any) -> Outcome:
    """An outcome for a wrong-arch push to team/app:1, with `fields` changed."""
    digest = "sha256:" + "a" * 64
    values: dict[str, Any] = dict(
        event_id=f"evt-{result}",
        received_at="2026-11-26T09:00:00.123Z",
        result=result,
        registry="registry.example.test",
        reference=f"registry.example.test/team/app:1@{digest}",
        repository="team/app",
        tag="1",
        digest=digest,
        media_type="application/vnd.oci.image.index.v1+json",
        kind="index",
        platforms=("linux/arm64", "linux/arm/v7"),
        required=("linux/amd64",),
        missing=("linux/amd64",),
        verdict="violation",
        action="quarantine",
        reason="linux/amd64 is missing",
        actor="alice",
        user_agent="docker/27.3.1 go/go1.22 os/darwin arch/arm64",
        duration_ms=41.5,
        schema="eventgrid",
    )
    values.update(fields)
    return Outcome(**values)


# Every field set, so every dimension must be on the trace.
EVERY_FIELD = outcome(
    "quarantined",
    forbidden=("windows/amd64",),
    inconsistent=("linux/arm/v7",),
    new_digest="sha256:" + "b" * 64,
    preserved_as="registry.example.test/quarantine/team/app:1-aaaaaaaa",
    source="docker.io/library/app",
    error="none, but every field is set",
    no_platform=("sha256:" + "c" * 64,),
    affected_tags=("1", "latest"),
    alert="quarantined",
    attempt=2,
    referrers_copied=2,
    signatures="lost",
)
OUTCOMES = {
    "every-field-quarantined": EVERY_FIELD,
    "reimported": outcome("reimported", action="reimport", new_digest="sha256:" + "d" * 64, duration_ms=812.25,
                          source="docker.io/library/app", preserved_as="registry.example.test/quarantine/team/app:1-x"),
    "compliant-empty-lists": outcome("compliant", platforms=("linux/amd64",), missing=(), verdict="compliant",
                                     action="none", reason="offers every required platform"),
    "loopguard": outcome("alerted", action="alert", alert="loopguard", reason="loop guard: 3 remediations in 3600 s"),
    "rejected-mostly-null": Outcome(event_id="evt-rejected", received_at="2026-11-26T09:00:01.000Z", result="rejected",
                                    reason="event from 'elsewhere.example.test', which is not a configured registry"),
}


@dataclass(frozen=True, slots=True)
class ChildRun:
    """What the child process reported and what the local ingestion endpoint received from it."""

    report: dict[str, Any]
    stderr: str
    posts: list[tuple[str, dict[str, str], list[dict[str, Any]]]]
    messages: dict[str, dict[str, Any]]  # by event id


@pytest.fixture(scope="module")
def exported() -> Iterator[ChildRun]:
    """Run the real configure_telemetry in a child that emits OUTCOMES to a local ingestion endpoint."""
    receiver = IngestionReceiver()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("APPLICATIONINSIGHTS_", "OTEL_"))}
    environment.update(QUIET_SDK_ENVIRONMENT, PYTHONPATH=str(REPO_ROOT))
    try:
        result = subprocess.run(
            [sys.executable, "-c", CHILD, receiver.connection_string(), receiver.connection_string(OTHER_KEY)],
            input="".join(json.dumps(o.as_dict()) + "\n" for o in OUTCOMES.values()),
            env=environment, cwd=REPO_ROOT, capture_output=True, text=True, timeout=90,
        )
    finally:
        receiver.stop()
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    messages = {m["data"]["baseData"]["properties"].get("platform_guard_event_id", "?"): m for m in receiver.messages()}
    yield ChildRun(report, result.stderr, receiver.posts, messages)


@pytest.mark.parametrize("name", list(OUTCOMES), ids=list(OUTCOMES))
def test_contract_each_outcome_is_one_trace_with_its_fields_as_custom_dimensions(exported: ChildRun, name: str) -> None:
    """Each outcome reaches the Track API as one MessageData envelope whose properties are its custom dimensions."""
    record = OUTCOMES[name]
    envelope = exported.messages[record.event_id]
    assert envelope["name"] == "Microsoft.ApplicationInsights.Message"
    assert envelope["iKey"] == INSTRUMENTATION_KEY
    base = envelope["data"]["baseData"]
    assert base["message"] == trace_message(record)
    assert base["severityLevel"] == (3 if record.alerts else 1)
    ours = {key: value for key, value in base["properties"].items() if key.startswith("platform_guard_")}
    assert ours == {key: str(value) for key, value in custom_dimensions(record).items()}


def test_contract_every_outcome_field_is_a_dimension_when_set(exported: ChildRun) -> None:
    """An outcome with every field set carries all of DIMENSIONS, one per OUTCOME_FIELDS entry, lists as JSON."""
    properties = exported.messages[EVERY_FIELD.event_id]["data"]["baseData"]["properties"]
    assert {key for key in properties if key.startswith("platform_guard_")} == set(DIMENSIONS)
    assert len(DIMENSIONS) == len(OUTCOME_FIELDS)
    assert json.loads(properties["platform_guard_platforms"]) == ["linux/arm64", "linux/arm/v7"]
    assert json.loads(properties["platform_guard_affected_tags"]) == ["1", "latest"]
    assert float(properties["platform_guard_duration_ms"]) == 41.5


def test_contract_track_requests_use_the_documented_route(exported: ChildRun) -> None:
    """Envelopes are POSTed to /v2.1/track or /v2/track as JSON, one trace per outcome and no other traces."""
    assert exported.posts
    for path, headers, _ in exported.posts:
        assert path in ("/v2.1/track", "/v2/track")
        assert headers["content-type"].startswith("application/json")
    assert sorted(exported.messages) == sorted(o.event_id for o in OUTCOMES.values())


def test_child_flushed_stayed_local_and_did_not_echo_traces_to_the_console(exported: ChildRun) -> None:
    """flush() exported everything, nothing left the machine, and the telemetry logger does not propagate."""
    assert exported.report["flushed"] is True
    assert exported.report["refused"] == []
    assert not [line for line in exported.stderr.splitlines() if line.startswith("ROOT platform_guard.telemetry ")]


def test_configuring_again_reuses_the_same_connection_and_refuses_another(exported: ChildRun) -> None:
    """A second configure_telemetry with the same string returns a sink; another string is refused, unnamed."""
    assert exported.report["same_again"] is True
    assert "already configured" in exported.report["other"]
    assert OTHER_KEY not in exported.report["other"] and INSTRUMENTATION_KEY not in exported.report["other"]


@pytest.mark.parametrize("connection_string", [None, "", "   "], ids=["unset", "empty", "blank"])
def test_no_connection_string_means_no_telemetry(connection_string: str | None) -> None:
    """Without a connection string configure_telemetry returns None and sets nothing up."""
    assert configure_telemetry(connection_string) is None


@pytest.mark.parametrize(
    ("connection_string", "message"),
    [
        (f"IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/;Secret={OTHER_KEY}",
         "no InstrumentationKey"),
        (f"InstrumentationKey={OTHER_KEY};IngestionEndpoint=http://westeurope-5.in.applicationinsights.azure.com/",
         "IngestionEndpoint uses plain http to a non-loopback host"),
        (f"InstrumentationKey={OTHER_KEY};LiveEndpoint=http://10.1.2.3/", "LiveEndpoint uses plain http"),
        (f"InstrumentationKey={OTHER_KEY};IngestionEndpoint=ftp://127.0.0.1/", "IngestionEndpoint is not an http"),
        (f"{OTHER_KEY}", "expected Key=Value pairs"),
    ],
    ids=["no-key", "http-ingestion-to-azure", "http-live-to-private", "ftp-ingestion", "bare-key"],
)
def test_bad_connection_strings_are_refused_without_showing_them(connection_string: str, message: str) -> None:
    """Unusable connection strings raise TelemetryError naming the setting and the problem, never the value."""
    with pytest.raises(TelemetryError, match=message) as raised:
        configure_telemetry(connection_string)
    assert "APPLICATIONINSIGHTS_CONNECTION_STRING" in str(raised.value)
    assert OTHER_KEY not in str(raised.value)


def test_connection_string_parsing_keeps_every_pair() -> None:
    """Keys are matched without regard to case and spaces; empty segments (a trailing ';') are allowed."""
    pairs = parse_connection_string(
        f"InstrumentationKey={OTHER_KEY}; ingestionendpoint=https://x.in.applicationinsights.azure.com/;"
    )
    endpoint = "https://x.in.applicationinsights.azure.com/"
    assert pairs == {"instrumentationkey": OTHER_KEY, "ingestionendpoint": endpoint}


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (OUTCOMES["compliant-empty-lists"], {"platform_guard_missing": "[]", "platform_guard_forbidden": "[]",
                                             "platform_guard_platforms": '["linux/amd64"]'}),
        (OUTCOMES["reimported"], {"platform_guard_duration_ms": 812.25, "platform_guard_result": "reimported"}),
        (OUTCOMES["rejected-mostly-null"], {"platform_guard_result": "rejected", "platform_guard_platforms": "[]"}),
    ],
    ids=["empty-lists-are-json", "numbers-stay-numbers", "null-fields-absent"],
)
def test_custom_dimensions_flatten_the_record(record: Outcome, expected: dict[str, Any]) -> None:
    """Lists become JSON array strings, numbers stay numbers, null fields are left out."""
    dimensions = custom_dimensions(record)
    assert {key: dimensions[key] for key in expected} == expected
    nulls = {f"platform_guard_{name}" for name, value in record.as_dict().items() if value is None}
    assert not nulls & set(dimensions)
    assert set(dimensions) <= set(DIMENSIONS)


def test_importing_telemetry_does_not_import_the_sdk() -> None:
    """Importing importer.adapters.sinks.telemetry and configuring without a connection string import no OpenTelemetry code."""
    script = (
        "import sys\n"
        "from importer.adapters.sinks.telemetry import configure_telemetry\n"
        "assert configure_telemetry(None) is None\n"
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'azure.monitor'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


DIMENSION_REFERENCE = re.compile(r"customDimensions(?:\.([A-Za-z_]\w*)|\[\s*[\"']([^\"']+)[\"']\s*\])")


def test_queries_use_only_emitted_dimension_names_and_document_all_of_them() -> None:
    """docs/queries.md refers only to custom dimensions the code emits, and its table lists every one of them."""
    text = QUERIES.read_text(encoding="utf-8")
    referenced = {dotted or quoted for dotted, quoted in DIMENSION_REFERENCE.findall(text)}
    assert referenced, "docs/queries.md has no customDimensions reference"
    assert referenced - set(DIMENSIONS) == set()
    documented = set(re.findall(r"^\| `(platform_guard_\w+)` \|", text, flags=re.MULTILINE))
    assert documented == set(DIMENSIONS)


@pytest.mark.parametrize(
    "heading",
    ["Quarantines in the last 24 hours", "Violations by repository", "Re-import latency",
     "Who pushed wrong-arch images"],
    ids=["quarantines", "violations", "latency", "who-pushed"],
)
def test_queries_doc_has_each_query_with_kql(heading: str) -> None:
    """Each promised query has a section with a KQL block over `traces` that filters on a custom dimension."""
    text = QUERIES.read_text(encoding="utf-8")
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    kql = section.split("```kusto\n", 1)[1].split("```", 1)[0]
    assert kql.startswith("traces\n") and "customDimensions.platform_guard_" in kql
