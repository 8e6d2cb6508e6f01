"""The CloudEvents route answers alike on the Functions host and on the local host: one implementation.

ACR can deliver CloudEvents 1.0 through an Event Grid subscription with a webhook destination, which first sends the
abuse-protection handshake (OPTIONS with WebHook-Request-Origin) and then POSTs the events. function_app.py declares
`cloudevents` (POST, OPTIONS) and the local host (`python -m importer serve`, run here as a process) serves
/api/cloudevents; both hand the request to importer/entry/http_api.py. Each request below goes to both — the Functions
function object called as the host calls it, the local host over HTTP — and the answers must be the same: status, the
headers the route sets, and the JSON body. Both are intake hosts (a queue behind them: Azurite's Storage queue for the
Functions runtime, the local SQLite queue for serve), so a CloudEvent is admitted the same way; the one posted comes
from a registry neither guards, so it is rejected on intake, before any registry or worker is involved.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import azure.functions as func
import pytest

import importer.entry.runtime
from importer.app.settings import Settings
from importer.entry.runtime import Runtime
from testbed.azurite import Azurite
from testbed.registry import free_port

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "events"
TOKEN = "parity-token-0123456789abcdef"
GUARDED = "registry.example:5000"  # the CloudEvent comes from contosoregistry.azurecr.io: not guarded here
CLOUDEVENT = (DATA / "cloudevents-image-pushed.json").read_bytes()
ROUTE_HEADERS = ("Content-Type", "WebHook-Allowed-Origin", "WebHook-Allowed-Rate", "WWW-Authenticate", "Allow",
                 "Retry-After")


def _cloudevents_function() -> Callable[[func.HttpRequest], func.HttpResponse]:
    """The `cloudevents` function of a fresh import of function_app.py (get_functions runs once per FunctionApp, and
    test_entrypoints.py takes the imported module's)."""
    spec = importlib.util.spec_from_file_location("function_app_for_parity", ROOT / "function_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return next(f.get_user_function() for f in module.app.get_functions() if f.get_function_name() == "cloudevents")


CLOUDEVENTS_FUNCTION = _cloudevents_function()


@dataclass(frozen=True)
class Case:
    method: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    status: int = 200


BEARER = {"Authorization": f"Bearer {TOKEN}"}
CE_JSON = {"Content-Type": "application/cloudevents+json"}
CASES = {
    "handshake": Case("OPTIONS", {"WebHook-Request-Origin": "eventgrid.azure.net"}),
    "handshake-with-rate": Case("OPTIONS", {"WebHook-Request-Origin": "eventgrid.azure.net",
                                            "WebHook-Request-Rate": "120"}),
    "handshake-without-origin": Case("OPTIONS", status=400),
    "no-token": Case("POST", CE_JSON, CLOUDEVENT, 401),
    "wrong-token": Case("POST", {**CE_JSON, "Authorization": "Bearer not-the-token-at-all"}, CLOUDEVENT, 401),
    "token-as-functions-key": Case("POST", {**CE_JSON, "x-functions-key": TOKEN}, CLOUDEVENT, 202),
    "not-json": Case("POST", {**CE_JSON, **BEARER}, b"{not json", 400),
    "not-a-cloudevent": Case("POST", {**CE_JSON, **BEARER}, b'{"hello": "world"}', 400),
    "unguarded-registry": Case("POST", {**CE_JSON, **BEARER}, CLOUDEVENT, 202),
}
# Not compared: a body over MAX_BODY_BYTES. Both refuse it with 413, but the local host answers from Content-Length
# and closes the connection without reading the body (importer/entry/serve.py), which a client still sending sees
# as a broken pipe; the Functions host hands the whole body over (tests/entry/test_entrypoints.py,
# test_http_trigger_refuses_a_body_over_the_limit).


@pytest.fixture(scope="module")
def local_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m importer serve` as a process (its SQLite queue and ledger), answering on a free port."""
    folder = tmp_path_factory.mktemp("serve")
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_GUARD_")}
    environment.update(PLATFORM_GUARD_REGISTRIES=GUARDED, PLATFORM_GUARD_WEBHOOK_TOKEN=TOKEN,
                       PLATFORM_GUARD_LEDGER=str(folder / "ledger.db"))
    process = subprocess.Popen([sys.executable, "-m", "importer", "serve", "--port", str(port), "--workers", "0",
                                "--threads", "1"], cwd=ROOT, env=environment, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/health", timeout=1):
                    break
            except OSError:
                assert process.poll() is None, process.stderr.read() if process.stderr else "serve exited"
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
        assert "Traceback" not in stderr, stderr


@pytest.fixture(scope="module")
def functions_runtime(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """The Functions app's process-wide runtime with the same settings, its queue on Azurite."""
    folder = tmp_path_factory.mktemp("functions")
    runtime = Runtime.from_settings(Settings(
        registries=(GUARDED,), webhook_token=TOKEN, ledger_path=folder / "ledger.db",
        queue_connection_string=azurite.connection_string, queue_name=f"q-{uuid.uuid4().hex[:16]}"))
    importer.entry.runtime.reset(runtime)
    try:
        yield runtime
    finally:
        importer.entry.runtime.reset(None)
        runtime.pipeline.ledger.close()
        if runtime.queue is not None:
            runtime.queue.close()


def answer_of_local_host(url: str, case: Case) -> tuple[int, dict[str, str | None], object]:
    request = urllib.request.Request(f"{url}/api/cloudevents", data=case.body if case.method == "POST" else None,
                                     headers=case.headers, method=case.method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, headers, body = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, headers, body = error.code, error.headers, error.read()
    return status, {name: headers.get(name) for name in ROUTE_HEADERS}, json.loads(body) if body else None


def answer_of_functions(case: Case) -> tuple[int, dict[str, str | None], object]:
    response = CLOUDEVENTS_FUNCTION(func.HttpRequest(case.method, "http://localhost:7071/api/cloudevents",
                                                     headers=case.headers, params={}, body=case.body))
    body = response.get_body()
    return (response.status_code, {name: response.headers.get(name) for name in ROUTE_HEADERS},
            json.loads(body) if body else None)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_the_functions_route_answers_as_the_local_host_does(
    local_host: str, functions_runtime: Runtime, case: Case
) -> None:
    """Same status, same route headers, same JSON body, from the Functions function and from `serve`."""
    on_functions = answer_of_functions(case)
    on_local_host = answer_of_local_host(local_host, case)
    assert on_functions[0] == case.status, on_functions
    assert on_functions == on_local_host


def test_the_cloudevent_from_an_unguarded_registry_is_rejected_on_intake(functions_runtime: Runtime) -> None:
    """What both answered for it: nothing queued, one `rejected` outcome recorded at once, naming the registry."""
    _, _, answer = answer_of_functions(CASES["unguarded-registry"])
    event_id = json.loads(CLOUDEVENT)["id"]
    assert isinstance(answer, dict) and answer["queued"] == []
    assert [(o["event_id"], o["result"]) for o in answer["outcomes"]] == [(event_id, "rejected")]
    assert "contosoregistry" in answer["outcomes"][0]["reason"]
