"""Generator flows and tasks stream their values as Prefect 3's do: the run is Running
while its caller consumes them, its failure fails the run and reaches the caller, retries
yield again, and the caller's code between two values is not inside the run.

The expected orders and states below were checked against Prefect 3.9.1."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from flowyard import flow, get_run_logger, task
from flowyard.exceptions import FlowRunTimeoutError, TaskRunTimeoutError
from flowyard.runtime import task_run
from flowyard.states import State


def test_a_generator_task_hands_on_each_value_as_it_is_yielded():
    events: list[str] = []

    @task
    def produce(n: int):
        for i in range(n):
            events.append(f"yield-{i} in {task_run.name}")
            get_run_logger().info("yielding %d", i)  # the run's logger works in the body
            yield i

    @flow
    def consume() -> list[int]:
        out = []
        for value in produce(3):
            events.append(f"consume-{value} in {task_run.name}")
            out.append(value)
        return out

    assert consume() == [0, 1, 2]
    assert events == [
        "yield-0 in produce-0", "consume-0 in None",
        "yield-1 in produce-0", "consume-1 in None",
        "yield-2 in produce-0", "consume-2 in None",
    ]  # fmt: skip


def test_a_failure_mid_stream_fails_the_task_run_and_reaches_the_caller():
    finals: list[str] = []

    @task(on_failure=[lambda t, r, s: finals.append(s.type.value)])
    def broken():
        yield 1
        raise KeyError("k")

    @flow
    def consume() -> tuple[list[int], str]:
        got: list[int] = []
        with pytest.raises(KeyError):
            for value in broken():
                got.append(value)
        return got, type(broken(return_state=True)).__name__

    assert consume() == ([1], "generator")
    assert finals == ["FAILED"]


def test_a_retried_generator_task_yields_again_from_the_start():
    attempts: list[int] = []

    @task(retries=1)
    def flaky():
        attempts.append(len(attempts) + 1)
        yield "a"
        if len(attempts) == 1:
            raise ValueError("first attempt fails")
        yield "b"

    @flow
    def consume() -> list[str]:
        return list(flaky())

    assert consume() == ["a", "a", "b"] and attempts == [1, 2]


def test_a_caller_that_stops_early_completes_the_run():
    states: list[State] = []

    @task(on_completion=[lambda t, r, s: states.append(s)])
    def endless():
        i = 0
        while True:
            yield i
            i += 1

    @flow
    def first_three() -> list[int]:
        got = []
        for value in endless():
            got.append(value)
            if len(got) == 3:
                break
        return got

    assert first_three() == [0, 1, 2]
    assert [s.type.value for s in states] == ["COMPLETED"]


def test_a_submitted_generator_task_results_in_the_list_of_its_values():
    @task
    def produce(n: int):
        yield from range(n)

    @flow
    def consume() -> list[int]:
        return produce.submit(4).result()

    assert consume() == [0, 1, 2, 3]


def test_a_generator_flow_streams_and_its_state_holds_the_values():
    events: list[str] = []

    @flow
    def numbers(n: int):
        for i in range(n):
            events.append(f"yield-{i}")
            yield i

    for value in numbers(2):
        events.append(f"consume-{value}")
    assert events == ["yield-0", "consume-0", "yield-1", "consume-1"]
    state = numbers(3, return_state=True)
    assert state.is_completed() and state.result() == [0, 1, 2]


def test_a_failing_generator_flow_is_failed_not_crashed():
    @flow
    def broken():
        yield 1
        raise RuntimeError("flow body failed")

    with pytest.raises(RuntimeError, match="flow body failed"):
        list(broken())
    state = broken(return_state=True)
    assert state.is_failed() and not state.is_crashed()


async def _one_then_hang():
    yield 1
    await asyncio.Event().wait()  # never set: only the run's timeout ends it
    yield 2


class TestAsyncGenerators:
    """Async generator flows and tasks, as Prefect 3.9.1's: ``async for`` over the call,
    the failure raised to the caller, timeouts as ``TaskRunTimeoutError`` /
    ``FlowRunTimeoutError``. The same program printed the same values under Prefect."""

    def test_an_async_generator_task_hands_on_each_value_as_it_is_yielded(self):
        events: list[str] = []

        @task(on_completion=[lambda t, r, s: events.append("task-completed")])
        async def produce(n: int):
            for i in range(n):
                events.append(f"yield-{i} in {task_run.name}")
                yield i

        @flow
        async def consume() -> tuple[bool, list[int]]:
            values = produce(3)
            got = []
            async for value in values:
                events.append(f"consume-{value} in {task_run.name}")
                got.append(value)
            return inspect.isasyncgen(values), got

        assert asyncio.run(consume()) == (True, [0, 1, 2])
        assert events == [
            "yield-0 in produce-0", "consume-0 in None",
            "yield-1 in produce-0", "consume-1 in None",
            "yield-2 in produce-0", "consume-2 in None",
            "task-completed",
        ]  # fmt: skip

    def test_a_failure_or_timeout_mid_stream_reaches_the_caller(self):
        @task
        async def broken():
            yield 1
            raise KeyError("k")

        slow = task(timeout_seconds=0.5)(_one_then_hang)

        @flow
        async def consume() -> tuple[list[int], list[int]]:
            got: list[int] = []
            with pytest.raises(KeyError):
                async for value in broken():
                    got.append(value)
            slow_got: list[int] = []
            with pytest.raises(TaskRunTimeoutError):
                async for value in slow():
                    slow_got.append(value)
            return got, slow_got

        assert asyncio.run(consume()) == ([1], [1])

    def test_a_caller_that_stops_early_completes_the_run(self):
        states: list[str] = []

        @task(on_completion=[lambda t, r, s: states.append(s.type.value)])
        async def endless():
            i = 0
            while True:
                yield i
                i += 1

        @flow
        async def first_three() -> list[int]:
            got = []
            values = endless()
            async for value in values:
                got.append(value)
                if len(got) == 3:
                    break
            await values.aclose()
            return got

        assert asyncio.run(first_three()) == [0, 1, 2] and states == ["COMPLETED"]

    def test_a_submitted_async_generator_task_results_in_its_values(self):
        """Prefect 3.9.1's submit fails this run with a TypeError; Flowyard gives the list,
        as for a sync generator task (a deliberate difference, in the docs)."""

        @task
        async def produce(n: int):
            for i in range(n):
                yield i

        @flow
        def consume() -> list[int]:
            return produce.submit(3).result()

        assert consume() == [0, 1, 2]

    def test_an_async_generator_flow_streams_fails_and_times_out(self):
        @flow
        async def numbers(n: int):
            for i in range(n):
                yield i

        @flow
        async def broken():
            yield 1
            raise RuntimeError("flow body failed")

        slow = flow(timeout_seconds=0.5)(_one_then_hang)

        async def main() -> tuple[list[int], State, list[int]]:
            values = [v async for v in numbers(3)]
            state = await numbers(2, return_state=True)
            with pytest.raises(RuntimeError, match="flow body failed"):
                [v async for v in broken()]
            got: list[int] = []
            with pytest.raises(FlowRunTimeoutError):
                async for value in slow():
                    got.append(value)
            return values, state, got

        values, state, got = asyncio.run(main())
        assert values == [0, 1, 2] and got == [1]
        assert state.is_completed() and state.data == [0, 1]


def test_generator_runs_are_neither_cached_nor_persisted():
    """A cached generator task would replay nothing: its values are streamed, not kept."""
    runs: list[int] = []

    @task(persist_result=True)
    def produce(n: int):
        runs.append(n)
        yield from range(n)

    @flow
    def twice() -> tuple[list[int], list[int], list[int]]:
        return list(produce(2)), list(produce(2)), produce.submit(3).result()

    assert twice() == ([0, 1], [0, 1], [0, 1, 2]) and runs == [2, 2, 3]


def test_a_retried_async_generator_flow_yields_again_from_the_start():
    """Prefect's ``TestAsyncGenerators.test_generator_retries`` (test_flow_engine.py)."""

    @flow(retries=2)
    async def g():
        yield 1
        yield 2
        raise ValueError()

    async def main() -> list[int]:
        values: list[int] = []
        with pytest.raises(ValueError):
            async for v in g():
                values.append(v)
        return values

    assert asyncio.run(main()) == [1, 2, 1, 2, 1, 2]
