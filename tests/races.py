"""Racing workers against a ledger: start them together, collect what each won, check every id was won once."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any


def race_processes(worker: Callable[..., None], argument_sets: Sequence[tuple[Any, ...]], *, timeout: float) -> list[Any]:
    """Run `worker(*arguments, ready, start, results)` in one spawned process per argument set, released together.

    The worker signals `ready` once set up, waits for `start`, and puts what it won on `results`.
    """
    context = multiprocessing.get_context("spawn")
    ready = context.Semaphore(0)
    start = context.Event()
    results = context.Queue()
    processes = [context.Process(target=worker, args=(*arguments, ready, start, results)) for arguments in argument_sets]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            assert ready.acquire(timeout=timeout), "a worker process did not get ready in time"
        start.set()
        won = [results.get(timeout=timeout) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    assert [process.exitcode for process in processes] == [0] * len(processes)
    return won


def assert_each_won_once(won: Iterable[Iterable[str]], ids: Sequence[str]) -> None:
    """Between all workers, every id was won, and by exactly one of them."""
    wins = Counter(event_id for ids_won in won for event_id in ids_won)
    assert sorted(wins) == sorted(ids)
    assert set(wins.values()) == {1}
