"""The Metrics port that counts nothing: the default wherever no one scrapes (the CLI, tests, `work` on its own).

    metrics = NoMetrics()
    metrics.emit(outcome); metrics.message_settled("retry", attempts=2)   # both do nothing
"""

from __future__ import annotations

from importer.core.outcome import Outcome
from importer.ports.metrics import RegistryRequestObserver


class NoMetrics:
    """Metrics that go nowhere; costs one method call per hook."""

    def emit(self, outcome: Outcome) -> None:
        return None

    def message_settled(self, settle: str, *, attempts: int) -> None:
        return None

    def registry_observer(self, registry: str) -> RegistryRequestObserver:
        return _NoRequests()


class _NoRequests:
    def request_sent(self, method: str, error_class: str | None) -> None:
        return None
