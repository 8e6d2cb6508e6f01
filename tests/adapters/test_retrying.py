"""The SDK retry settings derived from the named policies: the numbers the clients configured before there was one."""

from __future__ import annotations

import pytest

from importer.adapters.retrying import azure_retry_options, storage_retry_policy, urllib3_retry
from importer.core.retry import (
    ACR_IMPORT_RETRY,
    EVENTGRID_RETRY,
    LEDGER_RETRY,
    QUEUE_RETRY,
    WEBHOOK_RETRY,
    RetryPolicy,
)

AZURE_CASES = {
    "ledger": (LEDGER_RETRY, {"retry_total": 3, "retry_backoff_factor": 0.4, "retry_backoff_max": 5.0}),
    "acr-import": (ACR_IMPORT_RETRY, {"retry_total": 4, "retry_backoff_factor": 0.8, "retry_backoff_max": 120.0}),
    "eventgrid": (EVENTGRID_RETRY, {"retry_total": 2, "retry_backoff_factor": 0.2, "retry_backoff_max": 2.0}),
    "single-attempt-means-no-retry": (
        RetryPolicy(attempts=1, base_delay=1.0), {"retry_total": 0, "retry_backoff_factor": 1.0, "retry_backoff_max": 120.0}
    ),
}


@pytest.mark.parametrize(("policy", "expected"), AZURE_CASES.values(), ids=AZURE_CASES.keys())
def test_azure_retry_options(policy: RetryPolicy, expected: dict[str, float]) -> None:
    assert azure_retry_options(policy) == expected


def test_urllib3_retry_for_the_webhook() -> None:
    """Two retries, factor 0.2, Retry-After honoured up to 30 s; the caller's options are passed through."""
    retry = urllib3_retry(WEBHOOK_RETRY, status_forcelist=(429, 503), raise_on_status=False)
    assert (retry.total, retry.backoff_factor, retry.backoff_max) == (2, 0.2, 120.0)
    assert (retry.respect_retry_after_header, retry.retry_after_max) == (True, 30.0)
    assert (retry.status_forcelist, retry.raise_on_status) == ((429, 503), False)


def test_urllib3_retry_ignores_retry_after_when_the_policy_does() -> None:
    retry = urllib3_retry(RetryPolicy(attempts=2, base_delay=0.1, honour_retry_after=False))
    assert retry.respect_retry_after_header is False


STORAGE_WAITS = {  # retry number → the wait the Storage SDK's loop takes for QUEUE_RETRY, with equal jitter
    "first-retry": (1, (0.1, 0.2)),
    "second-retry": (2, (0.2, 0.4)),
    "third-retry": (3, (0.4, 0.8)),
}


@pytest.mark.parametrize(("retry", "bounds"), STORAGE_WAITS.values(), ids=STORAGE_WAITS.keys())
def test_storage_retry_policy_waits_as_the_policy_says(retry: int, bounds: tuple[float, float]) -> None:
    """The Storage SDK's loop gets attempts - 1 retries of every kind and waits policy.delay(n) before retry n."""
    policy = storage_retry_policy(QUEUE_RETRY)
    assert (policy.total_retries, policy.connect_retries, policy.read_retries, policy.status_retries) == (3, 3, 3, 3)
    waits = [policy.get_backoff_time({"count": retry}) for _ in range(50)]
    assert bounds[0] <= min(waits) <= max(waits) <= bounds[1]
