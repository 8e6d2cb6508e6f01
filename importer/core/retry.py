"""Retry policy: how many attempts, how long to wait between them; the named policies; a runner that applies one.

    REGISTRY_RETRY.backoff(2)                                          # 0.4: the wait before retry 2, before jitter
    REGISTRY_RETRY.delay(2, random_fraction=0.5)                       # 0.3: equal jitter, half fixed, half drawn
    REGISTRY_RETRY.delay(1, random_fraction=0.5, retry_after=90.0)     # 30.0: Retry-After, capped
    retry_call(send, policy=REGISTRY_RETRY, is_retryable=transient, sleep=time.sleep, random_fraction=random.random)
    HttpTransport(retry=REGISTRY_RETRY.replace(attempts=6))            # every client takes a `retry` policy

Pure: no clock and no randomness of its own. The caller passes `sleep` and `random_fraction` (adapters pass
`time.sleep` and `random.random`, tests pass recorders), so delays are computed and checked without waiting.

The wait before retry n (n = 1 after the first failed attempt, at most attempts - 1):
    backoff = min(max_delay, base_delay * multiplier ** (n - 1))
    jitter "none": backoff   "full": backoff * f   "equal": backoff / 2 + backoff / 2 * f     (f in [0, 1], per retry)
    a Retry-After of r seconds, when honoured: max(that, min(r, max_retry_after))

Clients whose retries an SDK runs (azure-core for Table Storage, ARM and Event Grid; urllib3 for the webhook) take
their numbers from a policy too, see importer.adapters.retrying: retries = attempts - 1, backoff factor =
base_delay, backoff max = max_delay. Those loops retry the first failure at once, then wait base_delay * 2 ** (n - 1)
before retry n, with no jitter; azure-core honours Retry-After without a cap, urllib3 caps it at max_retry_after.
The Storage Queue SDK's loop is the exception: it waits exactly policy.delay(n) before retry n, jitter included.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

T = TypeVar("T")

Jitter = Literal["none", "full", "equal"]
JITTERS: tuple[Jitter, ...] = ("none", "full", "equal")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often to try an operation and how long to wait before each retry (see the module docstring)."""

    attempts: int  # tries in all, the first included: 1 means no retry
    base_delay: float  # seconds before the first retry, before jitter
    multiplier: float = 2.0  # each later backoff is this many times the one before
    max_delay: float = 120.0  # cap on the backoff (azure-core's and urllib3's default)
    jitter: Jitter = "none"
    honour_retry_after: bool = True  # wait at least what a Retry-After asks, up to max_retry_after
    max_retry_after: float = math.inf

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int) or self.attempts < 1:
            raise ValueError(f"RetryPolicy: attempts must be a whole number of at least 1, got {self.attempts!r}")
        if self.jitter not in JITTERS:
            raise ValueError(f"RetryPolicy: jitter must be one of {', '.join(JITTERS)}, got {self.jitter!r}")
        if not self.multiplier >= 1:  # also refuses NaN
            raise ValueError(f"RetryPolicy: multiplier must be at least 1, got {self.multiplier!r}")
        for name in ("base_delay", "max_delay", "max_retry_after"):
            value = getattr(self, name)
            if not value >= 0:  # also refuses NaN
                raise ValueError(f"RetryPolicy: {name} must not be negative, got {value!r}")

    @property
    def retries(self) -> int:
        """Retries after the first attempt: what SDKs call `total`."""
        return self.attempts - 1

    def replace(self, **changes: Any) -> RetryPolicy:
        """This policy with the given fields changed; a None value leaves that field as it is."""
        return dataclasses.replace(self, **{name: value for name, value in changes.items() if value is not None})

    def backoff(self, retry: int) -> float:
        """The wait before retry number `retry` (1-based), before jitter and Retry-After: capped at max_delay."""
        if retry < 1:
            raise ValueError(f"RetryPolicy: retries are numbered from 1, got {retry}")
        if self.base_delay == 0:
            return 0.0
        try:
            grown = self.base_delay * self.multiplier ** (retry - 1)
        except OverflowError:
            grown = math.inf
        return min(self.max_delay, grown)

    def delay(self, retry: int, *, random_fraction: float, retry_after: float | None = None) -> float:
        """The wait before retry number `retry`: backoff with jitter drawn from `random_fraction` (0 to 1), then
        at least the Retry-After (capped at max_retry_after) when the policy honours it and one was given."""
        if not 0 <= random_fraction <= 1:
            raise ValueError(f"RetryPolicy: random_fraction must be between 0 and 1, got {random_fraction!r}")
        backoff = self.backoff(retry)
        if self.jitter == "full":
            wait = backoff * random_fraction
        elif self.jitter == "equal":
            wait = backoff / 2 + backoff / 2 * random_fraction
        else:
            wait = backoff
        if self.honour_retry_after and retry_after is not None:
            wait = max(wait, min(max(retry_after, 0.0), self.max_retry_after))
        return wait

    def schedule(self) -> tuple[float, ...]:
        """The backoffs before each retry, in order (attempts - 1 of them), before jitter."""
        return tuple(self.backoff(retry) for retry in range(1, self.attempts))


def _no_retry_after(error: Exception) -> float | None:
    return None


def retry_call(
    operation: Callable[[], T],
    *,
    policy: RetryPolicy,
    is_retryable: Callable[[Exception], bool],
    sleep: Callable[[float], object],
    random_fraction: Callable[[], float],
    retry_after: Callable[[Exception], float | None] = _no_retry_after,
    on_retry: Callable[[Exception, int, float], object] | None = None,
) -> T:
    """Call `operation` until it returns, at most `policy.attempts` times; return what it returns.

    An exception `is_retryable` refuses propagates at once, as does the last attempt's exception: the caller
    says what giving up means. Before retry n: delay = policy.delay(n, random_fraction=random_fraction(),
    retry_after=retry_after(error)), then `on_retry(error, n, delay)` (to log), then `sleep(delay)`.
    """
    for attempt in range(1, policy.attempts + 1):
        try:
            return operation()
        except Exception as error:
            if attempt == policy.attempts or not is_retryable(error):
                raise
            delay = policy.delay(attempt, random_fraction=random_fraction(), retry_after=retry_after(error))
            if on_retry is not None:
                on_retry(error, attempt, delay)
        sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")


# --- the named policies: every retry number in the importer is here ----------------------------------------------

# Registry HTTP (HttpTransport, for OciRegistry and AcrRegistry): 429, 5xx, timeouts and broken connections.
# Waits 0.1-0.2, 0.2-0.4, 0.4-0.8 s, or the Retry-After up to 30 s.
REGISTRY_RETRY = RetryPolicy(attempts=4, base_delay=0.2, jitter="equal", max_retry_after=30.0)

# Table Storage (TableLedger, through azure-core): waits 0, 0.8, 1.6 s; Retry-After honoured by the SDK, uncapped.
LEDGER_RETRY = RetryPolicy(attempts=4, base_delay=0.4, max_delay=5.0)

# ARM importImage (AcrImporter, through azure-core): waits 0, 1.6, 3.2, 6.4 s; Retry-After as the SDK does.
ACR_IMPORT_RETRY = RetryPolicy(attempts=5, base_delay=0.8)

# Azure Storage Queues (StorageQueue): the intake answers 503 after these, so they are short. Queue calls (our waits
# in the Storage SDK's loop): 0.1-0.2, 0.2-0.4, 0.4-0.8 s; its key-lease table (azure-core): 0, 0.4, 0.8 s.
QUEUE_RETRY = RetryPolicy(attempts=4, base_delay=0.2, max_delay=2.0, jitter="equal")

# Event Grid publish (EventGridSink, through azure-core): waits 0, 0.4 s; Retry-After as the SDK does.
EVENTGRID_RETRY = RetryPolicy(attempts=3, base_delay=0.2, max_delay=2.0)

# Alert webhook POST (WebhookSink, through urllib3): waits 0, 0.4 s, or the Retry-After up to 30 s.
WEBHOOK_RETRY = RetryPolicy(attempts=3, base_delay=0.2, max_retry_after=30.0)

# A queued event whose try failed for a reason that may pass (worker, requeue): it is ready again after 2.5-5, 5-10,
# 10-20 … s, capped at 5 minutes, and fails for good after the 8th try (about 15 minutes of trying in all).
EVENT_RETRY = RetryPolicy(attempts=8, base_delay=5.0, max_delay=300.0, jitter="equal")

# A manifest PUT refused while a concurrent writer's blob is still being linked (copy engine): 0.05, 0.10, 0.15 s.
CONCURRENT_WRITE_RETRY = RetryPolicy(attempts=4, base_delay=0.05, max_delay=0.15, honour_retry_after=False)
