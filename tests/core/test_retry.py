"""Tables of cases for importer.core.retry: backoff, caps, jitter bounds, Retry-After, attempts, and the runner.

Nothing here waits: the runner is handed a recording `sleep` and a scripted `random_fraction`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from importer.core.retry import (
    ACR_IMPORT_RETRY,
    CONCURRENT_WRITE_RETRY,
    EVENTGRID_RETRY,
    LEDGER_RETRY,
    QUEUE_RETRY,
    REGISTRY_RETRY,
    WEBHOOK_RETRY,
    RetryPolicy,
    retry_call,
)

# --- delay: backoff, jitter, caps and Retry-After ---------------------------------------------------------------------

FLAT = RetryPolicy(attempts=5, base_delay=1.0)  # no jitter: 1, 2, 4, 8
FULL = RetryPolicy(attempts=5, base_delay=1.0, jitter="full")
EQUAL = RetryPolicy(attempts=5, base_delay=1.0, jitter="equal")


@dataclass(frozen=True)
class DelayCase:
    policy: RetryPolicy
    retry: int
    fraction: float
    expected: float
    retry_after: float | None = None


DELAY_CASES = {
    "no-jitter-first-retry-is-base": DelayCase(FLAT, 1, 0.7, 1.0),
    "no-jitter-grows-by-multiplier": DelayCase(FLAT, 3, 0.7, 4.0),
    "multiplier-three": DelayCase(RetryPolicy(attempts=4, base_delay=0.5, multiplier=3.0), 3, 0.0, 4.5),
    "multiplier-one-is-constant": DelayCase(RetryPolicy(attempts=9, base_delay=0.3, multiplier=1.0), 8, 0.0, 0.3),
    "max-delay-caps-backoff": DelayCase(RetryPolicy(attempts=20, base_delay=1.0, max_delay=5.0), 10, 0.0, 5.0),
    "max-delay-caps-before-jitter": DelayCase(
        RetryPolicy(attempts=20, base_delay=1.0, max_delay=5.0, jitter="equal"), 10, 1.0, 5.0
    ),
    "huge-retry-number-does-not-overflow": DelayCase(RetryPolicy(attempts=5000, base_delay=1.0), 4000, 0.0, 120.0),
    "zero-base-delay-never-waits": DelayCase(RetryPolicy(attempts=3, base_delay=0.0, jitter="equal"), 2, 1.0, 0.0),
    "full-jitter-at-zero-waits-nothing": DelayCase(FULL, 2, 0.0, 0.0),
    "full-jitter-scales-backoff": DelayCase(FULL, 2, 0.25, 0.5),
    "full-jitter-at-one-is-backoff": DelayCase(FULL, 3, 1.0, 4.0),
    "equal-jitter-at-zero-is-half": DelayCase(EQUAL, 2, 0.0, 1.0),
    "equal-jitter-midway": DelayCase(EQUAL, 2, 0.5, 1.5),
    "equal-jitter-at-one-is-backoff": DelayCase(EQUAL, 2, 1.0, 2.0),
    "retry-after-longer-than-backoff-wins": DelayCase(FLAT, 1, 0.0, 7.0, retry_after=7.0),
    "retry-after-shorter-than-backoff-is-a-floor-only": DelayCase(FLAT, 3, 0.0, 4.0, retry_after=0.5),
    "retry-after-floors-full-jitter": DelayCase(FULL, 1, 0.0, 0.75, retry_after=0.75),
    "retry-after-uncapped-by-default": DelayCase(FLAT, 1, 0.0, 3600.0, retry_after=3600.0),
    "retry-after-capped": DelayCase(
        RetryPolicy(attempts=3, base_delay=1.0, max_retry_after=30.0), 1, 0.0, 30.0, retry_after=120.0
    ),
    "retry-after-cap-is-not-a-backoff-cap": DelayCase(
        RetryPolicy(attempts=9, base_delay=1.0, max_retry_after=2.0), 6, 0.0, 32.0, retry_after=120.0
    ),
    "retry-after-negative-counts-as-zero": DelayCase(FLAT, 1, 0.0, 1.0, retry_after=-5.0),
    "retry-after-ignored-when-not-honoured": DelayCase(
        RetryPolicy(attempts=3, base_delay=1.0, honour_retry_after=False), 1, 0.0, 1.0, retry_after=60.0
    ),
    "registry-equal-jitter-low": DelayCase(REGISTRY_RETRY, 1, 0.0, 0.1),
    "registry-equal-jitter-high": DelayCase(REGISTRY_RETRY, 3, 1.0, 0.8),
    "registry-retry-after-capped-at-30s": DelayCase(REGISTRY_RETRY, 1, 0.5, 30.0, retry_after=90.0),
    "registry-retry-after-below-cap": DelayCase(REGISTRY_RETRY, 2, 0.5, 3.0, retry_after=3.0),
    "concurrent-write-ignores-retry-after": DelayCase(CONCURRENT_WRITE_RETRY, 1, 0.9, 0.05, retry_after=5.0),
    "concurrent-write-third-retry-capped": DelayCase(CONCURRENT_WRITE_RETRY, 3, 0.0, 0.15),
}


@pytest.mark.parametrize("case", DELAY_CASES.values(), ids=DELAY_CASES.keys())
def test_delay(case: DelayCase) -> None:
    """The wait before a retry: backoff from base and multiplier, capped, jittered, floored by Retry-After."""
    delay = case.policy.delay(case.retry, random_fraction=case.fraction, retry_after=case.retry_after)
    assert delay == pytest.approx(case.expected)


SCHEDULE_CASES = {
    "single-attempt-has-no-retries": (RetryPolicy(attempts=1, base_delay=1.0), ()),
    "registry": (REGISTRY_RETRY, (0.2, 0.4, 0.8)),
    "ledger": (LEDGER_RETRY, (0.4, 0.8, 1.6)),
    "acr-import": (ACR_IMPORT_RETRY, (0.8, 1.6, 3.2, 6.4)),
    "queue": (QUEUE_RETRY, (0.2, 0.4, 0.8)),
    "eventgrid": (EVENTGRID_RETRY, (0.2, 0.4)),
    "webhook": (WEBHOOK_RETRY, (0.2, 0.4)),
    "concurrent-write-linear-as-before": (CONCURRENT_WRITE_RETRY, (0.05, 0.10, 0.15)),
    "capped-tail": (RetryPolicy(attempts=6, base_delay=1.0, max_delay=3.0), (1.0, 2.0, 3.0, 3.0, 3.0)),
}


@pytest.mark.parametrize(("policy", "expected"), SCHEDULE_CASES.values(), ids=SCHEDULE_CASES.keys())
def test_schedule_has_one_backoff_per_retry(policy: RetryPolicy, expected: tuple[float, ...]) -> None:
    """attempts - 1 backoffs, in order; the named policies keep the numbers the clients had."""
    assert policy.schedule() == pytest.approx(expected)
    assert len(policy.schedule()) == policy.retries == policy.attempts - 1


JITTER_BOUNDS = {
    "none-is-exactly-the-backoff": ("none", 1.0, 1.0),
    "full-is-between-zero-and-the-backoff": ("full", 0.0, 1.0),
    "equal-is-between-half-and-the-backoff": ("equal", 0.5, 1.0),
}


@pytest.mark.parametrize(("jitter", "low", "high"), JITTER_BOUNDS.values(), ids=JITTER_BOUNDS.keys())
@pytest.mark.parametrize("retry", [1, 2, 5])
def test_jitter_stays_within_its_bounds(jitter: str, low: float, high: float, retry: int) -> None:
    """Whatever fraction is drawn (the ends included), the delay stays within the jitter's share of the backoff."""
    policy = RetryPolicy(attempts=6, base_delay=0.3, jitter=jitter)  # type: ignore[arg-type]
    backoff = policy.backoff(retry)
    draws = random.Random(f"{jitter}-{retry}")
    fractions = [0.0, 1.0, *(draws.random() for _ in range(500))]
    delays = [policy.delay(retry, random_fraction=fraction) for fraction in fractions]
    assert all(low * backoff <= delay <= high * backoff for delay in delays)
    if jitter != "none":  # the draw is actually used: the spread covers most of the range
        assert max(delays) - min(delays) == pytest.approx((high - low) * backoff)


# --- validation ------------------------------------------------------------------------------------------------------

INVALID_POLICIES = {
    "zero-attempts": ({"attempts": 0, "base_delay": 1.0}, "attempts must be a whole number of at least 1"),
    "fractional-attempts": ({"attempts": 2.5, "base_delay": 1.0}, "attempts must be a whole number"),
    "boolean-attempts": ({"attempts": True, "base_delay": 1.0}, "attempts must be a whole number"),
    "negative-base-delay": ({"attempts": 3, "base_delay": -0.1}, "base_delay must not be negative"),
    "nan-base-delay": ({"attempts": 3, "base_delay": math.nan}, "base_delay must not be negative"),
    "shrinking-multiplier": ({"attempts": 3, "base_delay": 1.0, "multiplier": 0.5}, "multiplier must be at least 1"),
    "negative-max-delay": ({"attempts": 3, "base_delay": 1.0, "max_delay": -1.0}, "max_delay must not be negative"),
    "negative-retry-after-cap": (
        {"attempts": 3, "base_delay": 1.0, "max_retry_after": -1.0}, "max_retry_after must not be negative"
    ),
    "unknown-jitter": ({"attempts": 3, "base_delay": 1.0, "jitter": "half"}, "jitter must be one of none, full, equal"),
}


@pytest.mark.parametrize(("fields", "message"), INVALID_POLICIES.values(), ids=INVALID_POLICIES.keys())
def test_invalid_policies_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**fields)  # type: ignore[arg-type]


INVALID_DELAY_CALLS = {
    "retry-numbered-from-one": (0, 0.5, "numbered from 1"),
    "fraction-above-one": (1, 1.5, "random_fraction must be between 0 and 1"),
    "fraction-below-zero": (1, -0.1, "random_fraction must be between 0 and 1"),
}


@pytest.mark.parametrize(("retry", "fraction", "message"), INVALID_DELAY_CALLS.values(), ids=INVALID_DELAY_CALLS.keys())
def test_invalid_delay_arguments_are_refused(retry: int, fraction: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EQUAL.delay(retry, random_fraction=fraction)


def test_replace_changes_given_fields_and_keeps_the_rest() -> None:
    """None leaves a field as it is (the clients' optional overrides), and the result is validated again."""
    changed = REGISTRY_RETRY.replace(attempts=6, base_delay=None, max_retry_after=0.3)
    assert (changed.attempts, changed.base_delay, changed.max_retry_after, changed.jitter) == (6, 0.2, 0.3, "equal")
    assert REGISTRY_RETRY.attempts == 4  # frozen: the named policy is untouched
    assert REGISTRY_RETRY.replace() is not None and REGISTRY_RETRY.replace() == REGISTRY_RETRY
    with pytest.raises(ValueError, match="attempts"):
        REGISTRY_RETRY.replace(attempts=0)


# --- retry_call --------------------------------------------------------------------------------------------------------


class Transient(Exception):
    def __init__(self, name: str, retry_after: float | None = None) -> None:
        super().__init__(name)
        self.retry_after = retry_after


class Permanent(Exception):
    pass


Step = object  # a value to return, or an exception to raise


@dataclass(frozen=True)
class RunCase:
    policy: RetryPolicy
    script: tuple[Step, ...]
    calls: int
    sleeps: tuple[float, ...]
    returns: object = None
    raises: str | None = None  # str() of the exception expected to propagate
    fractions: tuple[float, ...] = field(default=(0.5,))


RUN_CASES = {
    "succeeds-at-once-without-sleeping": RunCase(FLAT, ("ok",), 1, (), returns="ok"),
    "retries-transient-then-succeeds": RunCase(FLAT, (Transient("a"), Transient("b"), "ok"), 3, (1.0, 2.0), "ok"),
    "gives-up-after-attempts-with-the-last-error": RunCase(
        RetryPolicy(attempts=3, base_delay=1.0), tuple(Transient(f"t{n}") for n in range(1, 6)), 3, (1.0, 2.0),
        raises="t3",
    ),
    "non-retryable-propagates-at-once": RunCase(FLAT, (Permanent("p"), "ok"), 1, (), raises="p"),
    "non-retryable-after-a-retry-stops-there": RunCase(FLAT, (Transient("t"), Permanent("p"), "ok"), 2, (1.0,),
                                                       raises="p"),
    "single-attempt-never-retries": RunCase(RetryPolicy(attempts=1, base_delay=1.0), (Transient("t"), "ok"), 1, (),
                                            raises="t"),
    "retry-after-from-the-error-is-waited": RunCase(FLAT, (Transient("t", retry_after=9.0), "ok"), 2, (9.0,), "ok"),
    "retry-after-capped-by-the-policy": RunCase(
        RetryPolicy(attempts=2, base_delay=1.0, max_retry_after=3.0), (Transient("t", 60.0), "ok"), 2, (3.0,), "ok"
    ),
    "injected-fractions-drive-the-jitter": RunCase(
        EQUAL, (Transient("a"), Transient("b"), Transient("c"), "ok"), 4, (0.5, 2.0, 3.0), "ok",
        fractions=(0.0, 1.0, 0.5),
    ),
    "registry-policy-four-attempts": RunCase(
        REGISTRY_RETRY, tuple(Transient(f"t{n}") for n in range(1, 9)), 4, (0.15, 0.3, 0.6), raises="t4"
    ),
    "concurrent-write-policy-as-before": RunCase(
        CONCURRENT_WRITE_RETRY, tuple(Transient(f"t{n}") for n in range(1, 9)), 4, (0.05, 0.10, 0.15), raises="t4"
    ),
}


@pytest.mark.parametrize("case", RUN_CASES.values(), ids=RUN_CASES.keys())
def test_retry_call(case: RunCase) -> None:
    """Attempts are bounded, waits follow the policy, non-retryable errors and the last error propagate unchanged."""
    script: Iterator[Step] = iter(case.script)
    fractions = iter(case.fractions * 10)
    calls: list[int] = []
    sleeps: list[float] = []
    retried: list[tuple[str, int, float]] = []

    def operation() -> object:
        calls.append(1)
        step = next(script)
        if isinstance(step, Exception):
            raise step
        return step

    def run() -> object:
        return retry_call(
            operation,
            policy=case.policy,
            is_retryable=lambda error: isinstance(error, Transient),
            retry_after=lambda error: error.retry_after if isinstance(error, Transient) else None,
            on_retry=lambda error, number, delay: retried.append((str(error), number, delay)),
            sleep=sleeps.append,
            random_fraction=lambda: next(fractions),
        )

    if case.raises is None:
        assert run() == case.returns
    else:
        with pytest.raises((Transient, Permanent)) as raised:
            run()
        assert str(raised.value) == case.raises
    assert len(calls) == case.calls
    assert sleeps == pytest.approx(case.sleeps)
    # on_retry sees each failure that is retried, numbered from 1, with the delay about to be slept
    assert [number for _, number, _ in retried] == list(range(1, len(case.sleeps) + 1))
    assert [delay for _, _, delay in retried] == pytest.approx(sleeps)


def test_retry_call_does_not_catch_base_exceptions() -> None:
    """KeyboardInterrupt and the like are never retried, even when the predicate would say yes."""
    attempts: list[int] = []

    def interrupted() -> None:
        attempts.append(1)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        retry_call(interrupted, policy=FLAT, is_retryable=lambda error: True, sleep=_no_sleep, random_fraction=_half)
    assert attempts == [1]


def test_retry_call_keeps_the_original_exception_object() -> None:
    """The caller gets the very exception the operation raised (its traceback and attributes intact)."""
    error = Transient("kept", retry_after=1.0)

    def failing() -> None:
        raise error

    with pytest.raises(Transient) as raised:
        retry_call(failing, policy=RetryPolicy(attempts=2, base_delay=0.0), is_retryable=lambda _: True,
                   sleep=_no_sleep, random_fraction=_half)
    assert raised.value is error


def _no_sleep(seconds: float) -> None:
    pass


def _half() -> float:
    return 0.5

