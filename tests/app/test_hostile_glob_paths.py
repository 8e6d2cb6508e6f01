"""A policy glob that made the old regex matcher backtrack for hours, met by a long repository name for real: through
the event path (a push to a guarded registry, decided by the local host's worker) and through `check`.

The policy's rule is `*a*a*a*a*a*a*a*a*a*a*b` (it requires linux/arm64); the pushed repository is 120 `a`s, which the
rule does not match, so the defaults (linux/amd64) decide and an amd64 image is compliant. Before the linear matcher
the worker never got past choosing the rule, and `check` never returned.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from importer.entry.cli import main
from testbed.images import ImageBuilder, single
from testbed.push import push
from testbed.stack import GuardedRegistry

HOSTILE_GLOB = "*a" * 10 + "*b"
REPOSITORY = "a" * 120
POLICY = f"""\
version: 1
defaults:
  require: [linux/amd64]
  on_violation: alert
rules:
  - repositories: ["{HOSTILE_GLOB}"]
    require: [linux/arm64]
"""


@pytest.mark.timeout(120)
def test_a_backtracking_glob_decides_events_and_checks_in_seconds(
    guarded: Callable[..., GuardedRegistry], builder: ImageBuilder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The push is recorded compliant by the defaults within the usual wait, and `check` agrees at once."""
    stack = guarded(POLICY)
    digest = push(builder, single(builder, "linux/amd64"), stack.registry.host, REPOSITORY, "1.0")

    outcome = stack.wait_for(REPOSITORY, tag="1.0", timeout=20)
    assert (outcome.result, outcome.digest, outcome.required) == ("compliant", digest, ("linux/amd64",))

    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(POLICY)
    capsys.readouterr()
    started = time.monotonic()
    code = main(["check", f"{stack.registry.host}/{REPOSITORY}:1.0", "--policy", str(policy_file), "--json"])
    assert time.monotonic() - started < 10
    verdict = json.loads(capsys.readouterr().out)
    assert (code, verdict["verdict"], verdict["required"]) == (0, "compliant", ["linux/amd64"])
