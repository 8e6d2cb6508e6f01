"""Properties of the numeric app settings (importer.app.settings.load_settings) over hostile text.

For any text in a numeric setting: `load_settings` gives Settings whose numbers are finite and inside the range the
settings table documents, or raises SettingsError naming the setting; never another exception, never a NaN or an
infinity that silently turns a guard off (issue 12 item 10: `PLATFORM_GUARD_LOOP_GUARD=3/nan`), within the bounds
of `tests.property.hostile` for a 100,000-digit "number".
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from importer.app.settings import Settings, SettingsError, load_settings
from tests.property.hostile import bounded, hostile_text, mostly

PREFIX = "PLATFORM_GUARD_"
# Setting → (Settings fields it fills, and each one's documented range), from the table in importer/app/settings.py.
RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "LOOP_GUARD": {"loop_limit": (1, 1_000_000), "loop_window": (1, 2_592_000)},
    "EVENT_RETRY": {"event_attempts": (1, 100), "event_retry_seconds": (0.1, 300)},
    "LEASE_SECONDS": {"lease_seconds": (1, 3600)},
    "EVENT_DEADLINE_SECONDS": {"event_deadline_seconds": (1, 3600)},
    "AUTH_RETRY_SECONDS": {"auth_retry_seconds": (0, 86_400)},
    "SWEEP_PARALLEL": {"sweep_parallel": (1, 64)},
}
NUMBERISH = ("3", "0", "1", "2.5", "0.1", "3600", "1000000", "1000001", "2592000", "nan", "NaN", "inf", "-inf",
             "infinity", "1e3", "1e309", "-1", "+3", " 3", "3 ", "1_000", "0x10", "٣", "３", "3.", ".5", "0.05",
             "1" * 100_000, "", "3/4/5")


def _per_seconds(count: str, seconds: str) -> str:
    return f"{count}/{seconds}"


NUMBERS = mostly(st.sampled_from(NUMBERISH), hostile_text(), valid_share=2)
PAIRED = frozenset({"LOOP_GUARD", "EVENT_RETRY"})  # written `N/SECONDS`


def values_for(name: str) -> st.SearchStrategy[str]:
    return st.one_of(st.builds(_per_seconds, NUMBERS, NUMBERS), NUMBERS) if name in PAIRED else NUMBERS


def check_settings(outcome: Settings | Exception, name: str) -> None:
    """`name` without its prefix, as in RANGES."""
    if isinstance(outcome, SettingsError):
        assert PREFIX + name in str(outcome), f"the error does not name {PREFIX + name}: {outcome}"
        return
    assert isinstance(outcome, Settings)
    for field, (least, most) in RANGES[name].items():
        value = getattr(outcome, field)
        assert isinstance(value, int | float) and math.isfinite(value), f"{field} = {value!r}"
        assert least <= value <= most, f"{field} = {value!r}, outside {least}..{most}"


def _load(name: str, text: str) -> Callable[[], Settings]:
    return lambda: load_settings({PREFIX + name: text, "HOME": "/nonexistent"})


@pytest.mark.parametrize("name", RANGES, ids=list(RANGES))
@given(data=st.data())
def test_numeric_settings_are_in_range_or_refused_by_name(name: str, data: st.DataObject) -> None:
    text = data.draw(values_for(name), label=name)
    outcome = bounded(_load(name, text), allowed=(SettingsError,), what=name)
    check_settings(outcome, name)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        pytest.param("LOOP_GUARD", "3/nan", id="loop-guard-nan-window"),
        pytest.param("LOOP_GUARD", "3/inf", id="loop-guard-infinite-window"),
        pytest.param("LOOP_GUARD", "nan/3600", id="loop-guard-nan-count"),
        pytest.param("EVENT_RETRY", "8/nan", id="event-retry-nan-delay"),
        pytest.param("LEASE_SECONDS", "nan", id="lease-nan"),
        pytest.param("AUTH_RETRY_SECONDS", "inf", id="auth-retry-infinite"),
        pytest.param("SWEEP_PARALLEL", "1" * 100_000, id="parallel-100000-digits"),
    ],
)
def test_worst_known_numbers(name: str, text: str) -> None:
    """Issue 12 item 10 and its neighbours: each refused by name, or read as a finite number in range."""
    check_settings(bounded(_load(name, text), allowed=(SettingsError,), what=name), name)


@given(text=NUMBERS)
@example(text="nan")
def test_the_loop_guard_window_is_never_nan(text: str) -> None:
    """The window of the loop guard, alone: `3/<anything>`."""
    check_settings(bounded(_load("LOOP_GUARD", f"3/{text}"), allowed=(SettingsError,), what="LOOP_GUARD"),
                   "LOOP_GUARD")
