"""The whole local path for end-to-end tests: a real registry whose notifications go to a running local host.

    with GuardedRegistry(tmp_path, policy_text) as stack:
        digest = push(builder, image, stack.registry.host, "team/app", "1")
        outcome = stack.wait_for("team/app", tag="1")       # the outcome the pipeline recorded for that push

Registry → notification (bearer token) → local host (intake) → SQLite queue → worker threads → pipeline → SQLite
ledger, all on 127.0.0.1.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from importer.adapters.ledger.sqlite import SqliteLedger
from importer.app.settings import Settings
from importer.core.events.model import DELETE_EVENT_REASON
from importer.core.outcome import Outcome
from importer.core.policy import parse_policy
from importer.entry.composition import pipeline_for, queue_for
from importer.entry.serve import QueuedHost
from testbed.registry import LocalRegistry

WEBHOOK_TOKEN = "test-webhook-token-0123456789"


class GuardedRegistry:
    """A registry guarded by a local host; both stopped on exit."""

    def __init__(
        self,
        root: Path,
        policy_text: str | None = None,
        *,
        extra_registries: tuple[str, ...] = (),
        threads: int = 4,
        **settings: Any,
    ) -> None:
        """`settings` are further Settings fields (loop_limit, alert_webhook_url, …)."""
        self.root = Path(root)
        self.registry = LocalRegistry(self.root / "registry", token=WEBHOOK_TOKEN)
        if policy_text:
            settings["policy"] = parse_policy(policy_text, source="test-policy.yaml")
        self.settings = Settings(
            registries=(self.registry.host, *extra_registries),
            ledger_path=self.root / "ledger.db",
            webhook_token=WEBHOOK_TOKEN,
            **settings,
        )
        self.ledger = SqliteLedger(self.settings.ledger_path)
        self.pipeline = pipeline_for(self.settings, ledger=self.ledger)
        self.service = QueuedHost(self.pipeline, queue_for(self.settings), webhook_token=WEBHOOK_TOKEN, port=0,
                                  threads=threads)
        self.api = self.service.api
        self.host = self.service.host

    def start(self) -> "GuardedRegistry":
        self.service.start()
        self.registry.notify_url = f"{self.host.url}/api/registry-events"
        self.registry.start()
        return self

    def stop(self) -> None:
        self.registry.stop()
        self.service.stop()
        self.ledger.close()

    def __enter__(self) -> "GuardedRegistry":
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def outcomes(self) -> list[Outcome]:
        """Every recorded outcome, oldest first."""
        return list(reversed(self.ledger.outcomes(limit=100_000)))

    def wait_until(self, condition: Callable[[list[Outcome]], bool], *, timeout: float = 15.0) -> list[Outcome]:
        deadline = time.monotonic() + timeout
        while True:
            outcomes = self.outcomes()
            if condition(outcomes):
                return outcomes
            if time.monotonic() > deadline:
                summary = "\n".join(f"  {o.result} {o.reference} {o.reason or o.error}" for o in outcomes)
                raise AssertionError(f"condition not met within {timeout} s; outcomes so far:\n{summary}")
            time.sleep(0.05)

    def wait_for(self, repository: str, *, tag: str | None, timeout: float = 15.0) -> Outcome:
        """The outcome of the push of `repository:tag` (tag None: the first untagged push outcome)."""

        def found(outcomes: list[Outcome]) -> bool:
            return any(is_push_of(o, repository, tag) for o in outcomes)

        outcomes = self.wait_until(found, timeout=timeout)
        return next(o for o in outcomes if is_push_of(o, repository, tag))


def is_push_of(outcome: Outcome, repository: str, tag: str | None) -> bool:
    """Whether an outcome is of a push to `repository:tag`; a delete event's outcome (a quarantine deleting
    the tag it moved, say) names the same tag and may be recorded before the push's own outcome."""
    return outcome.repository == repository and outcome.tag == tag and outcome.reason != DELETE_EVENT_REASON
