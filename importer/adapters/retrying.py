"""Retry settings for the SDKs that run their own retry loops, derived from a RetryPolicy (importer.core.retry).

    TableServiceClient(endpoint, credential=credential, **azure_retry_options(LEDGER_RETRY))
    urllib3.PoolManager(retries=urllib3_retry(WEBHOOK_RETRY, status_forcelist=(429, 503)))

azure-core (Table Storage, ARM, Event Grid) and urllib3 (the webhook) take retries = attempts - 1, backoff factor =
base_delay and backoff max = max_delay from the policy, so the numbers live in the policy alone. Both loops retry the
first failure at once, then wait base_delay * 2 ** (n - 1) before retry n, without jitter: a policy's multiplier and
jitter apply to the loops we run ourselves (importer.core.retry.retry_call) only. urllib3 honours Retry-After as the
policy says (capped at max_retry_after); azure-core always honours it, without a cap.

The Storage Queue SDK (azure-storage-queue) runs a loop of its own (retries on connection errors, timeouts, 408 and
5xx but 501/505; Storage throttles with 503): `storage_retry_policy` hands it a policy object whose wait before retry
n is exactly policy.delay(n), jitter included; it does not read Retry-After.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from importer.core.retry import RetryPolicy

if TYPE_CHECKING:
    import urllib3
    from azure.storage.queue import ExponentialRetry


def azure_retry_options(policy: RetryPolicy) -> dict[str, Any]:
    """azure-core's retry keywords (client or per-call options) for `policy`."""
    return {
        "retry_total": policy.retries,
        "retry_backoff_factor": policy.base_delay,
        "retry_backoff_max": policy.max_delay,
    }


def urllib3_retry(policy: RetryPolicy, **options: Any) -> urllib3.Retry:
    """A urllib3.Retry for `policy`; `options` adds what the policy does not say (statuses, methods…)."""
    import urllib3

    return urllib3.Retry(
        total=policy.retries,
        backoff_factor=policy.base_delay,
        backoff_max=policy.max_delay,
        respect_retry_after_header=policy.honour_retry_after,
        retry_after_max=policy.max_retry_after,  # type: ignore[arg-type]  # urllib3 compares it, a float is fine
        **options,
    )


def storage_retry_policy(policy: RetryPolicy) -> ExponentialRetry:
    """The Storage SDK's `retry_policy` for `policy`: attempts - 1 retries of any kind, waiting policy.delay(n)."""
    import random

    from azure.storage.queue import ExponentialRetry

    class PolicyRetry(ExponentialRetry):
        def get_backoff_time(self, settings: dict[str, Any]) -> float:
            return policy.delay(max(int(settings["count"]), 1), random_fraction=random.random())

    retries = policy.retries
    return PolicyRetry(retry_total=retries, retry_connect=retries, retry_read=retries, retry_status=retries)
