"""The SDK retry settings derived from the named policies: the numbers the clients configured before there was one."""

from __future__ import annotations

import pytest

from importer.adapters.retrying import azure_retry_options, urllib3_retry
from importer.core.retry import ACR_IMPORT_RETRY, EVENTGRID_RETRY, LEDGER_RETRY, WEBHOOK_RETRY, RetryPolicy

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
