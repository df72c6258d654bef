"""``task.map(..., deferred=True)``, as Prefect 3.9.1's: one background run per item, for a
task worker, and their futures (a real server; a task worker in a thread of this process)."""

from __future__ import annotations

import threading

import pytest
from tests.sdk.conftest import task_worker_thread

from flowyard import flow, task, unmapped
from flowyard.exceptions import MappingLengthMismatch, MappingMissingIterable
from flowyard.futures import PrefectDistributedFuture, PrefectFutureList


@task
def add(a: int, b: int) -> int:
    if a < 0:
        raise ValueError(f"negative {a}")
    return a + b


@task
def where(x: int) -> str:
    return threading.current_thread().name


@pytest.fixture(scope="module")
def worker(server):
    with task_worker_thread(server, add, where, limit=5) as worker:
        yield worker


def test_outside_a_flow_each_item_is_a_background_run(api, worker):
    """Outside any flow: a PrefectFutureList of PrefectDistributedFutures whose results are
    the items' (``unmapped`` kept whole), positionally or by keyword."""
    futures = add.map([1, 2, 3], unmapped(10), deferred=True)
    assert type(futures) is PrefectFutureList
    assert [type(f) for f in futures] == [PrefectDistributedFuture] * 3
    assert len({f.task_run_id for f in futures}) == 3
    assert futures.result(timeout=60) == [11, 12, 13]
    assert add.map(a=[5, 6], b=unmapped(1), deferred=True).result(timeout=60) == [6, 7]
    assert [api.read_task_run(f.task_run_id).task_key for f in futures] == [add.task_key] * 3


def test_a_failed_item_fails_alone(api, worker):
    """``return_state=True`` waits and gives each run's state; a failed item's future
    raises its exception, the others complete (a non-iterable argument is static)."""
    states = add.map([1, -1], 1, deferred=True, return_state=True)
    assert [(s.type.value, s.name) for s in states] == [
        ("COMPLETED", "Completed"),
        ("FAILED", "Failed"),
    ]
    futures = add.map([1, -2], [0, 0], deferred=True)
    futures.wait(timeout=60)
    assert [f.state.type.value for f in futures] == ["COMPLETED", "FAILED"]
    with pytest.raises(ValueError, match="^negative -2$"):
        futures.result(timeout=60)


def test_mapping_errors_are_prefects(api):
    """Different lengths or no iterable: Prefect's exceptions and messages."""
    with pytest.raises(MappingLengthMismatch) as mismatch:
        add.map([1, 2], [1], deferred=True)
    assert str(mismatch.value) == (
        "Received iterable parameters with different lengths. Parameters for map must all "
        "be the same length. Got lengths: {'a': 2, 'b': 1}"
    )
    with pytest.raises(MappingMissingIterable) as missing:
        add.map(1, 2, deferred=True)
    assert str(missing.value) == (
        "No iterable parameters were received. Parameters for map must include at least "
        "one iterable. Parameters: {'a': 1, 'b': 2}"
    )


def test_in_a_flow_the_runs_go_to_the_task_worker(api, worker):
    """Inside a flow too, deferred runs are background runs that a task worker runs (in
    its threads), not the flow's task runner."""

    @flow
    def parent() -> tuple[list[int], list[str]]:
        futures = add.map([1, 2], unmapped(100), deferred=True)
        assert [type(f) for f in futures] == [PrefectDistributedFuture] * 2
        return futures.result(timeout=60), where.map([1, 2], deferred=True).result(timeout=60)

    sums, threads = parent()
    assert sums == [101, 102]
    assert all(name.startswith("task-run") for name in threads), threads
