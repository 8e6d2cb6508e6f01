"""Start-up of the Functions app: a bad setting stops it when the host indexes the functions, and loses no event.

The Python worker indexes a v2 app by importing function_app.py and asking its FunctionApp for its functions
(azure_functions_worker/loader.py, index_function_app); an exception there makes the host log "Worker failed to
index functions" with the exception's message and load no function at all. So each test imports function_app in a
fresh process, as the worker does, with only the settings it names: a bad one must fail the import with a message
naming the setting (a policy error its key and line), and an event already in the queue must still be there, decided
by the app once it starts with a good setting.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from importer.app.settings import SettingsError
from importer.entry import runtime
from testbed.azurite import Azurite
from testbed.images import ImageBuilder
from testbed.push import push
from testbed.registry import LocalRegistry

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
GOOD_POLICY = "version: 1\ndefaults:\n  require: [linux/amd64]\n  on_violation: quarantine\n"
BAD_POLICY = (  # line 6: an architecture that does not exist
    "version: 1\n"
    "defaults:\n"
    "  require: [linux/amd64]\n"
    "rules:\n"
    "  - repositories: [\"team/**\"]\n"
    "    require: [linux/amd65]\n"
)
BAD_POLICY_PROBLEM = (
    "PLATFORM_GUARD_POLICY: rules[0].require[0]: 'linux/amd65' is not a known architecture (did you mean 'amd64'?) "
    "(line 6)"
)

# What the worker does at indexing: import the module, then take the functions of its FunctionApp.
INDEX = """
import importlib, json
module = importlib.import_module("function_app")
print(json.dumps(sorted(f.get_function_name() for f in module.app.get_functions())))
"""

# The app working the one message in the queue, as the host hands it over (decoded), after indexing succeeded.
WORK_ONE_MESSAGE = """
import base64, json, sys
from azure.functions.queue import QueueMessage
from azure.storage.queue import QueueClient
import function_app  # a bad setting stops here: nothing below runs, no message is received
queue = QueueClient.from_connection_string(sys.argv[1], sys.argv[2])
received = queue.receive_message(visibility_timeout=60)
function_app.registry_queue(QueueMessage(id=received.id, body=base64.b64decode(received.content),
                                         dequeue_count=received.dequeue_count, insertion_time=received.inserted_on,
                                         pop_receipt=received.pop_receipt))
queue.delete_message(received)
[outcome] = function_app.runtime.current().pipeline.ledger.outcomes(event_id=sys.argv[3])
print(outcome.result)
"""


def python(script: str, settings: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """A fresh interpreter in the app's root with only these Platform Guard settings."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_GUARD_")}
    return subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, env={**environment, **settings},
                          capture_output=True, text=True, timeout=90, check=False)


def test_a_good_policy_indexes_the_functions(tmp_path: Path) -> None:
    """With a good policy the import succeeds and the functions are declared."""
    result = python(INDEX, {"PLATFORM_GUARD_POLICY": GOOD_POLICY, "PLATFORM_GUARD_LEDGER": str(tmp_path / "l.db")})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["cloudevents", "health", "registry_events", "registry_queue"]
    assert not (tmp_path / "l.db").exists()  # start-up reads settings only: no ledger opened


def test_a_bad_policy_fails_indexing_naming_the_setting_and_the_line(tmp_path: Path) -> None:
    """A policy that does not parse stops the import: StartupError names the setting, the key and the line, says
    that no function is loaded and where the events wait; the same line goes to stderr for the host's console log."""
    result = python(INDEX, {"PLATFORM_GUARD_POLICY": BAD_POLICY, "PLATFORM_GUARD_LEDGER": str(tmp_path / "l.db")})
    assert result.returncode != 0 and result.stdout == ""
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"importer.entry.runtime.StartupError: Platform Guard cannot start: {BAD_POLICY_PROBLEM}.")
    assert "No function is loaded until this is fixed" in last and "'platform-guard-events'" in last
    assert f"error: Platform Guard cannot start: {BAD_POLICY_PROBLEM}." in result.stderr.splitlines()[0]


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"PLATFORM_GUARD_LOOP_GUARD": "three"}, "PLATFORM_GUARD_LOOP_GUARD: expected N/SECONDS"),
        ({"PLATFORM_GUARD_SWEEP_SCHEDULE": "0 3 * * *"}, "PLATFORM_GUARD_SWEEP_SCHEDULE: expected an NCRONTAB"),
        ({"PLATFORM_GUARD_POLICY_FILE": "/nonexistent/policy.yaml"}, "/nonexistent/policy.yaml"),
        ({"PLATFORM_GUARD_WEBHOOK_TOKEN": "short"}, "PLATFORM_GUARD_WEBHOOK_TOKEN: must be at least 16"),
    ],
    ids=["loop-guard", "sweep-schedule", "missing-policy-file", "short-token"],
)
def test_any_bad_setting_fails_indexing_by_name(settings: dict[str, str], problem: str, tmp_path: Path) -> None:
    """Every setting is checked at start-up, not only the policy; secrets are named, never shown."""
    result = python(INDEX, {**settings, "PLATFORM_GUARD_LEDGER": str(tmp_path / "l.db")})
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("importer.entry.runtime.StartupError: Platform Guard cannot start: ") and problem in last
    assert "short" not in result.stderr.replace("PLATFORM_GUARD_WEBHOOK_TOKEN", "")


def test_an_event_waits_in_the_queue_until_the_setting_is_fixed(
    azurite: Azurite, registry: LocalRegistry, builder: ImageBuilder, tmp_path: Path
) -> None:
    """An Event Grid push in the queue is not taken by an app with a bad policy; the app started with the policy
    fixed takes it on its first try and decides it."""
    from azure.storage.queue import QueueClient

    image = builder.image("linux/amd64", seed="waits")
    digest = push(builder, image, registry.host, "team/app", "1")
    event_id = f"waits-{uuid.uuid4()}"
    queue_name = f"q-{uuid.uuid4().hex[:16]}"
    event = {
        "id": event_id, "topic": registry.host, "subject": "team/app:1",
        "eventType": "Microsoft.ContainerRegistry.ImagePushed", "eventTime": "2026-12-06T00:00:00Z",
        "dataVersion": "1.0", "metadataVersion": "1",
        "data": {"id": event_id, "timestamp": "2026-12-06T00:00:00Z", "action": "push",
                 "target": {"mediaType": image.media_type, "size": image.size, "digest": digest,
                            "length": image.size, "repository": "team/app", "tag": "1"},
                 "request": {"id": "r", "host": registry.host, "method": "PUT", "useragent": "test"}},
    }  # fmt: skip
    queue = QueueClient.from_connection_string(azurite.connection_string, queue_name)
    queue.create_queue()
    try:
        queue.send_message(base64.b64encode(json.dumps(event).encode()).decode())  # as Event Grid writes it
        settings = {"PLATFORM_GUARD_REGISTRIES": registry.host, "PLATFORM_GUARD_LEDGER": str(tmp_path / "l.db"),
                    "PLATFORM_GUARD_QUEUE_CONNECTION_STRING": azurite.connection_string,
                    "PLATFORM_GUARD_QUEUE_NAME": queue_name}

        refused = python(WORK_ONE_MESSAGE, {**settings, "PLATFORM_GUARD_POLICY": BAD_POLICY},
                         azurite.connection_string, queue_name, event_id)
        assert refused.returncode != 0 and BAD_POLICY_PROBLEM in refused.stderr
        # Visible and never delivered: no try spent, nothing on its way to the poison queue.
        assert [message.dequeue_count for message in queue.peek_messages(max_messages=32)] == [0]
        assert not (tmp_path / "l.db").exists()

        fixed = python(WORK_ONE_MESSAGE, {**settings, "PLATFORM_GUARD_POLICY": GOOD_POLICY},
                       azurite.connection_string, queue_name, event_id)
        assert fixed.returncode == 0, fixed.stderr
        assert fixed.stdout.strip() == "compliant"
        assert queue.peek_messages(max_messages=32) == []
    finally:
        queue.delete_queue()
        queue.close()


def test_start_checks_the_settings_the_first_use_builds_on(tmp_path: Path) -> None:
    """runtime.start reads every setting once; the runtime is built from them on first use, and reset forgets them."""
    runtime.reset(None)
    try:
        with pytest.raises(SettingsError, match=r"PLATFORM_GUARD_POLICY: rules\[0\]\.require\[0\].*\(line 6\)"):
            runtime.start({"PLATFORM_GUARD_POLICY": BAD_POLICY})
        started = runtime.start({"PLATFORM_GUARD_POLICY": GOOD_POLICY, "PLATFORM_GUARD_LEDGER": str(tmp_path / "l.db"),
                                 "PLATFORM_GUARD_QUEUE_NAME": "started-queue"})
        assert runtime.current().settings is started
    finally:
        current = runtime.current()
        current.pipeline.ledger.close()
        runtime.reset(None)
