"""Hypothesis profiles for the property suite: "ci" (the default, a fixed budget) and "long" (many more examples).

"ci" runs the whole folder in well under a minute on two cores, the same examples every time (`derandomize`), with
no example database, so a CI failure reproduces anywhere. "long" draws far more examples, from a random seed each
run, and prints a reproduction blob for any failure (`@reproduce_failure`). Run it by hand, or nightly:

    PLATFORM_GUARD_FUZZ=long .venv/bin/python -m pytest -q -p no:cacheprovider tests/property
    .venv/bin/python -m pytest -q tests/property --hypothesis-profile=long     # the same, by option

The option works when pytest is pointed at this folder (its conftest is then loaded before the option is read);
the environment variable works for any run, the whole suite included. `--hypothesis-seed=N` repeats a long run.
In the long profile each test of this folder may run for an hour instead of the suite's 120 s timeout.

Fixtures here: `fuzz_directory`, a fresh directory per example for the SQLite ledger and queue (function-scoped
pytest fixtures are shared by every example of a Hypothesis test, so examples make their own).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

CI_EXAMPLES = 50
LONG_EXAMPLES = 1_500
LONG_TEST_TIMEOUT_SECONDS = 3600

_QUIET_CHECKS = (
    HealthCheck.too_slow,  # hostile inputs are big on purpose
    HealthCheck.data_too_large,
    HealthCheck.large_base_example,
    HealthCheck.filter_too_much,
)

settings.register_profile(
    "ci",
    max_examples=CI_EXAMPLES,
    deadline=None,  # `tests.property.hostile.bounded` bounds CPU time per input instead of wall time per example
    database=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=_QUIET_CHECKS,
)
settings.register_profile(
    "long",
    max_examples=LONG_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=_QUIET_CHECKS,
)
PROFILE = os.environ.get("PLATFORM_GUARD_FUZZ", "").strip() or "ci"
settings.load_profile(PROFILE)  # an unknown name fails here, naming the profiles there are


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In the long profile, give this folder's tests an hour each instead of the suite's timeout."""
    if settings.get_current_profile_name() != "long":
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.timeout(LONG_TEST_TIMEOUT_SECONDS))


@pytest.fixture(scope="session")
def fuzz_directory(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], Path]:
    """A new empty directory each call, under the session's temporary directory."""
    return lambda: tmp_path_factory.mktemp("example", numbered=True)
