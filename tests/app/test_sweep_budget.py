"""The sweep timer's budget and resume points (importer/entry/sweep_timer.py, importer/app/sweep/resume.py).

One deadline per timer run, for every registry and listing included; what a run does not reach is logged, kept in
the ledger, and swept first by the next run, which starts after the registry where this one ran out of time.

Two real distribution registries, each seeded with 8 repositories of 3 tags (2 compliant, 1 violation: `alerted`
in record mode), each behind a FaultProxy that delays every manifest GET by SLOW_SECONDS, so that a sweep takes a
known minimum of time and a small budget is sure to run out inside the first registry. The proxies' request logs
show what was listed and in which order. Deadlines are checked with generous tolerances only: nothing here measures
speed.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from importer.adapters.ledger.sqlite import SqliteLedger
from importer.app.pipeline import Pipeline
from importer.app.settings import load_settings
from importer.app.sweep import (
    REGISTRY_ORDER,
    RegistrySweep,
    SweepReport,
    next_registry_order,
    registry_order,
    resume_order,
)
from importer.app.sweep.handoff import PipelineHandoff
from importer.app.sweep.model import ListedTag
from importer.core.decide import Verdict
from importer.core.words import counted
from importer.entry.composition import registry_directory_for
from importer.entry.runtime import Runtime
from importer.entry.sweep_timer import TIMER_BUDGET_SECONDS, TIMER_MARGIN_SECONDS, run_scheduled_sweep
from testbed.faults import FaultProxy
from testbed.images import ImageBuilder, single
from testbed.registry import LocalRegistry
from tests.app.test_sweep import _tag_all

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
REPOSITORIES = [f"team/app-{number:02d}" for number in range(8)]
TAGS_PER_REGISTRY = 3 * len(REPOSITORIES)
SLOW_SECONDS = 0.1  # added to every manifest GET: a registry takes at least 24 × 0.1 s / 2 workers = 1.2 s to sweep
TINY_BUDGET = 0.6  # well inside the first registry
TOLERANCE = 3.0  # in-flight tags finishing, resume points written: a fraction of a second; generous for slow CI
POLICY = """\
version: 1
defaults:
  require: [linux/amd64]
  on_violation: quarantine
"""


# -- the budget against host.json ----------------------------------------------------------------------------


def _seconds(timespan: str) -> float:
    """host.json's `hh:mm:ss` as seconds."""
    hours, minutes, seconds = (float(part) for part in timespan.split(":"))
    return hours * 3600 + minutes * 60 + seconds


def test_budget_and_margin_stay_under_the_function_timeout() -> None:
    """The run's budget plus the margin left for work in flight is below host.json's functionTimeout, with room
    for the host's own start."""
    timeout = _seconds(json.loads((ROOT / "host.json").read_text())["functionTimeout"])
    assert timeout == 300
    assert TIMER_BUDGET_SECONDS + TIMER_MARGIN_SECONDS < timeout
    assert TIMER_MARGIN_SECONDS >= 4 * 10  # a registry request that keeps timing out: 4 attempts of 10 s


# -- two slow registries and the timer -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Slow:
    """A seeded registry behind a proxy that slows its manifest GETs; `host` is the proxy's."""

    proxy: FaultProxy

    @property
    def host(self) -> str:
        return self.proxy.host

    def requests(self, since: int = 0) -> list[str]:
        return [f"{request.method} {request.path}" for request in self.proxy.history()[since:]]

    def tag_listings(self, since: int = 0) -> list[str]:
        """The repositories whose tags were listed, in the order the requests came."""
        found = (re.match(r"GET /v2/(.+)/tags/list", request) for request in self.requests(since))
        return list(dict.fromkeys(match.group(1) for match in found if match))


def _seed(builder: ImageBuilder, host: str) -> None:
    """REPOSITORIES × (t0, t1 on one amd64 image; t2 an arm64 image)."""
    for repository in REPOSITORIES:
        _tag_all(builder, single(builder, "linux/amd64", seed=f"{host} {repository}"), host, repository, ["t0", "t1"])
        _tag_all(builder, single(builder, "linux/arm64", seed=f"{host} {repository} arm"), host, repository, ["t2"])


@pytest.fixture
def slow_pair(tmp_path: Path) -> Iterator[tuple[Slow, Slow]]:
    with LocalRegistry(tmp_path / "first") as first, LocalRegistry(tmp_path / "second") as second:
        builder = ImageBuilder(tmp_path / "layout")
        for registry in (first, second):
            _seed(builder, registry.host)
        proxies = [FaultProxy(registry.host, rate=1.0, faults=("slow",), slow_seconds=SLOW_SECONDS,
                              match=r"^GET /v2/.+/manifests/") for registry in (first, second)]
        with proxies[0], proxies[1]:
            yield Slow(proxies[0]), Slow(proxies[1])


def _runtime(tmp_path: Path, pair: tuple[Slow, Slow], *, parallel: int) -> Runtime:
    return Runtime.from_settings(load_settings({
        "PLATFORM_GUARD_REGISTRIES": ",".join(registry.host for registry in pair),
        "PLATFORM_GUARD_POLICY": POLICY,
        "PLATFORM_GUARD_LEDGER": str(tmp_path / "ledger.db"),
        "PLATFORM_GUARD_SWEEP_PARALLEL": str(parallel),
    }))


def _timed_run(runtime: Runtime, budget_seconds: float) -> tuple[list[SweepReport], float]:
    started = time.monotonic()
    try:
        reports = run_scheduled_sweep(runtime, budget_seconds=budget_seconds)
    finally:
        elapsed = time.monotonic() - started
    return reports, elapsed


def _run_summary(caplog: pytest.LogCaptureFixture) -> dict[str, object]:
    [line] = [record.getMessage() for record in caplog.records if record.getMessage().startswith("sweep run finished")]
    return json.loads(line.split(": ", 1)[1])


def test_a_tiny_budget_stops_the_run_logs_what_it_left_and_the_next_run_starts_there(
    slow_pair: tuple[Slow, Slow], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A run over two registries with a budget well inside the first stops within the budget (plus in-flight work),
    never lists the second, logs what it did not reach and keeps it; the next run starts with the second registry,
    then sweeps the first starting with exactly the repositories kept, and with a full budget finishes everything."""
    first, second = slow_pair
    caplog.set_level(logging.INFO, logger="platform_guard.sweep")
    runtime = _runtime(tmp_path, slow_pair, parallel=2)
    try:
        reports, elapsed = _timed_run(runtime, TINY_BUDGET)
        ledger = runtime.pipeline.ledger
        assert elapsed < TINY_BUDGET + TOLERANCE
        [cut, untouched] = reports
        assert (cut.registry, untouched.registry) == (first.host, second.host)
        assert cut.out_of_time and cut.catalog_complete and cut.not_reached and cut.items
        assert set(cut.not_reached) < set(REPOSITORIES)
        judged = {(item.repository, item.tag) for item in cut.items}
        for repository in set(REPOSITORIES) - set(cut.not_reached):  # reached means every tag judged
            assert {(repository, tag) for tag in ("t0", "t1", "t2")} <= judged, repository
        assert len(cut.items) + cut.not_swept < TAGS_PER_REGISTRY  # the rest was not even listed
        assert (untouched.catalog_complete, untouched.items, untouched.registry_requests) == (False, (), 0)
        assert second.requests() == []

        assert ledger.sweep_resume(first.host) == list(cut.not_reached)
        assert ledger.sweep_resume(second.host) == []
        assert ledger.sweep_resume(REGISTRY_ORDER) == [second.host, first.host]
        summary = _run_summary(caplog)
        assert summary["registries_not_listed"] == [second.host]
        assert summary["registries_out_of_time"] == [first.host, second.host]
        assert summary["repositories_not_reached"] == len(cut.not_reached)
        assert summary["tags_not_judged"] == cut.not_swept
        not_reached = counted(len(cut.not_reached), "repository")
        assert any(f"of {first.host} ran out of time: {not_reached} not reached" in message
                   for message in caplog.messages)
    finally:
        runtime.pipeline.ledger.close()

    resume = list(cut.not_reached)
    before_first, before_second = len(first.proxy.history()), len(second.proxy.history())
    caplog.clear()
    runtime = _runtime(tmp_path, slow_pair, parallel=1)  # one worker: the listing order is the sweep's order
    try:
        reports, _ = _timed_run(runtime, TIMER_BUDGET_SECONDS)
        ledger = runtime.pipeline.ledger
        assert [report.registry for report in reports] == [second.host, first.host]
        listed = first.tag_listings(before_first)
        assert listed[: len(resume)] == resume and sorted(listed) == REPOSITORIES
        assert sorted(second.tag_listings(before_second)) == REPOSITORIES
        for report in reports:
            assert report.complete and len(report.items) == TAGS_PER_REGISTRY
            assert report.results() == {"alerted": len(REPOSITORIES), "compliant": 2 * len(REPOSITORIES)}
        assert [ledger.sweep_resume(name) for name in (first.host, second.host, REGISTRY_ORDER)] == [[], [], []]
        assert _run_summary(caplog)["repositories_not_reached"] == 0
    finally:
        runtime.pipeline.ledger.close()


@pytest.mark.parametrize("budget", [0.0, -1.0], ids=["no-budget-at-all", "budget-spent-before-the-run"])
def test_a_spent_budget_lists_nothing_and_keeps_the_resume_points(
    slow_pair: tuple[Slow, Slow], tmp_path: Path, budget: float
) -> None:
    """With the budget spent no registry is asked anything, and what the ledger keeps stays as it was."""
    first, second = slow_pair
    kept = {first.host: ["team/app-05", "team/app-06"], second.host: [], REGISTRY_ORDER: [second.host, first.host]}
    runtime = _runtime(tmp_path, slow_pair, parallel=2)
    try:
        ledger = runtime.pipeline.ledger
        for name, repositories in kept.items():
            ledger.save_sweep_resume(name, repositories, now=1.0)
        reports, elapsed = _timed_run(runtime, budget)
        assert elapsed < TOLERANCE
        assert first.requests() == [] and second.requests() == []
        assert [(report.registry, report.catalog_complete, report.items) for report in reports] == [
            (second.host, False, ()), (first.host, False, ())]
        assert (reports[1].not_reached, reports[1].repositories_not_listed) == (("team/app-05", "team/app-06"), 2)
        assert {name: ledger.sweep_resume(name) for name in kept} == kept
    finally:
        runtime.pipeline.ledger.close()


def test_a_remediation_whose_turn_comes_after_the_deadline_is_not_started(tmp_path: Path) -> None:
    """A judged violation handed off after the deadline is left for the next run: nothing done, nothing recorded."""
    ledger = SqliteLedger(tmp_path / "ledger.db")
    try:
        settings = load_settings({"PLATFORM_GUARD_REGISTRIES": "127.0.0.1:9", "PLATFORM_GUARD_POLICY": POLICY})
        pipeline = Pipeline(policy=settings.policy, ledger=ledger, registries=registry_directory_for(settings))
        handoff = PipelineHandoff("127.0.0.1:9", "s1", pipeline=pipeline, ledger=ledger, clock=lambda: "2026-01-01")
        verdict = Verdict("violation", "quarantine", ("linux/arm64",), ("linux/amd64",), ("linux/amd64",), (), (),
                          "missing linux/amd64")
        entry = ListedTag("team/app", "1.0")
        assert handoff.hand_off(entry, "sha256:" + "a" * 64, "2026-01-01", None, verdict,
                                deadline=time.monotonic() - 1) is None
        assert ledger.outcomes() == []
    finally:
        ledger.close()


# -- the orders, pure ----------------------------------------------------------------------------------------

LETTERS = list("abcdef")
RESUME_ORDERS = {  # (resume point, repositories listed) → the order they are swept in
    "no-resume-point-is-name-order": (([], ["c", "a", "b"]), ["a", "b", "c"]),
    "resume-first-then-on-after-its-last-wrapping-round": ((["c", "d"], LETTERS), ["c", "d", "e", "f", "a", "b"]),
    "a-resume-point-cut-short-goes-on-where-it-was-cut": ((["b"], LETTERS), ["b", "c", "d", "e", "f", "a"]),
    "the-resume-points-own-order-is-kept": ((["e", "a"], LETTERS), ["e", "a", "b", "c", "d", "f"]),
    "deleted-repositories-are-dropped": ((["x", "b"], ["a", "b", "c"]), ["b", "c", "a"]),
    "a-deleted-last-still-marks-where-to-go-on": ((["c2"], ["a", "c", "d"]), ["d", "a", "c"]),
    "repeated-names-once": ((["b", "b"], ["a", "b", "b"]), ["b", "a"]),
}


@pytest.mark.parametrize("case, expected", RESUME_ORDERS.values(), ids=RESUME_ORDERS.keys())
def test_resume_order(case: tuple[list[str], list[str]], expected: list[str]) -> None:
    """The resume point first, then the other repositories in name order from after its last name, wrapping round."""
    assert resume_order(*case) == expected


def _swept(host: str, state: str) -> RegistrySweep:
    """A registry's part of a run: `done`, `out` (time ran out in it), `late` (no time at all) or `failed`."""
    report = SweepReport("s", host, "record", None, "t0", "t1", 0.0, (), not_reached=("r",) if state == "out" else (),
                         catalog_complete=state != "late")
    if state == "failed":
        return RegistrySweep(host, "s", error="cannot list the repositories")
    return RegistrySweep(host, "s", report, late=state == "late")


NEXT_ORDERS = {  # states of the registries in the order swept → the order of the next run
    "all-swept-back-to-the-configured-order": ((("a", "done"), ("b", "done")), []),
    "ran-out-in-the-first-next-starts-after-it": ((("a", "out"), ("b", "late"), ("c", "late")), ["b", "c", "a"]),
    "ran-out-in-the-middle": ((("a", "done"), ("b", "out"), ("c", "late")), ["c", "a", "b"]),
    "ran-out-in-the-last-next-starts-at-the-top": ((("a", "done"), ("b", "out")), ["a", "b"]),
    "ran-out-between-two-the-untouched-one-first": ((("a", "done"), ("b", "late")), ["b", "a"]),
    "nothing-had-time-the-order-stays": ((("b", "late"), ("a", "late")), ["b", "a"]),
    "a-failed-registry-counts-as-swept": ((("a", "failed"), ("b", "done")), []),
}


@pytest.mark.parametrize("states, expected", NEXT_ORDERS.values(), ids=NEXT_ORDERS.keys())
def test_next_registry_order(states: tuple[tuple[str, str], ...], expected: list[str]) -> None:
    """The next run starts with the first registry this one gave no time to, else after the one where it ran out."""
    assert next_registry_order([_swept(host, state) for host, state in states]) == expected


REGISTRY_ORDERS = {  # (configured, saved) → the order of this run
    "nothing-saved": ((["a", "b", "c"], []), ["a", "b", "c"]),
    "saved-order-first": ((["a", "b", "c"], ["c", "a"]), ["c", "a", "b"]),
    "registries-no-longer-guarded-are-dropped": ((["a", "b"], ["x", "b"]), ["b", "a"]),
}


@pytest.mark.parametrize("case, expected", REGISTRY_ORDERS.values(), ids=REGISTRY_ORDERS.keys())
def test_registry_order(case: tuple[list[str], list[str]], expected: list[str]) -> None:
    """The saved order first, then the other configured registries as configured."""
    assert registry_order(*case) == expected


def test_progress_bar_total_grows_as_repositories_are_listed() -> None:
    """Listing and judging overlap, so the audit's bar is told the tags listed so far again and again: its total
    grows and the tags already swept stay counted."""
    import io

    from importer.app.sweep import SweepItem
    from importer.entry.progress import TagProgressBar

    shown = io.StringIO()
    bar = TagProgressBar("auditing r", stream=shown, enabled=True, width=10)
    bar.listed(2)
    bar.swept(SweepItem("r", "team/a", "1", "compliant"))
    bar.listed(4)
    bar.finish()
    assert shown.getvalue().endswith("\rauditing r [##........]  1/4 tags   25%\n")
