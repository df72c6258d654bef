"""``flowyard.states``: State objects, ``return_state`` and flows that return states."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from flowyard import flow, task
from flowyard.errors import FailedRun, UnfinishedRun
from flowyard.states import (
    AwaitingRetry,
    Cancelled,
    Completed,
    Crashed,
    Failed,
    Late,
    Pending,
    Retrying,
    Running,
    Scheduled,
    State,
    StateType,
)


class TestStateObjects:
    @pytest.mark.parametrize(
        ("make", "kind", "name", "check"),
        [
            (Scheduled, StateType.SCHEDULED, "Scheduled", "is_scheduled"),
            (Late, StateType.SCHEDULED, "Late", "is_scheduled"),
            (AwaitingRetry, StateType.SCHEDULED, "AwaitingRetry", "is_scheduled"),
            (Pending, StateType.PENDING, "Pending", "is_pending"),
            (Running, StateType.RUNNING, "Running", "is_running"),
            (Retrying, StateType.RUNNING, "Retrying", "is_running"),
            (Completed, StateType.COMPLETED, "Completed", "is_completed"),
            (Failed, StateType.FAILED, "Failed", "is_failed"),
            (Cancelled, StateType.CANCELLED, "Cancelled", "is_cancelled"),
            (Crashed, StateType.CRASHED, "Crashed", "is_crashed"),
        ],
    )
    def test_constructors_give_type_name_and_predicate(self, make, kind, name, check):
        """Each constructor makes a state of its type and display name; its predicate is true."""
        state = make(message="m")
        assert (state.type, state.name, state.message) == (kind, name, "m")
        assert getattr(state, check)() is True
        assert state.is_final() is kind.is_terminal

    def test_result_of_completed_and_failed(self):
        """result() returns the data, raises a failure's exception, or returns it on request."""
        error = ValueError("bad")
        assert Completed(data=3).result() == 3
        with pytest.raises(ValueError, match="bad"):
            Failed(data=error).result()
        assert Failed(data=error).result(raise_on_failure=False) is error

    def test_result_without_exception_raises_by_kind(self):
        """A Failed state without an exception raises FailedRun; an unfinished one UnfinishedRun."""
        with pytest.raises(FailedRun, match="nope"):
            Failed(message="nope").result()
        with pytest.raises(UnfinishedRun):
            Running().result()

    def test_repr_matches_the_log_lines(self):
        """States print as in Prefect's log lines."""
        assert repr(Completed()) == "Completed()"
        assert repr(Failed(message="x")) == "Failed('x')"
        assert repr(Completed(name="Cached")) == "Cached(type=COMPLETED)"


class TestReturnState:
    def test_task_return_state(self):
        """return_state=True gives a task's final state instead of raising."""

        @task
        def boom() -> None:
            raise KeyError("k")

        @task
        def fine() -> int:
            return 1

        seen: list[State] = []

        @flow
        def f() -> None:
            seen.extend([fine(return_state=True), boom(return_state=True)])

        assert f(return_state=True).is_completed()
        ok, bad = seen
        assert ok.is_completed() and ok.result() == 1
        assert bad.is_failed() and "KeyError" in bad.message
        assert isinstance(bad.result(raise_on_failure=False), KeyError)

    def test_flow_return_state(self):
        """A failing flow called with return_state=True returns its Failed state."""

        @flow
        def f() -> None:
            raise RuntimeError("down")

        state = f(return_state=True)
        assert state.is_failed()
        assert state.message == "Flow run encountered an exception RuntimeError: down"

    def test_a_flow_returning_a_state_ends_in_it(self):
        """A flow that returns Failed(...) fails with that message, even without raising."""

        @flow
        def f() -> State:
            return Failed(message="data was stale")

        state = f(return_state=True)
        assert state.is_failed() and state.message == "data was stale"
        with pytest.raises(FailedRun, match="stale"):
            f()

    def test_a_flow_returning_failed_task_states_fails(self):
        """Returned task states decide the flow's state: one failed of two fails the flow."""

        @task
        def maybe(fail: bool) -> int:
            if fail:
                raise ValueError("x")
            return 1

        @flow
        def f() -> list[State]:
            return [maybe(False, return_state=True), maybe(True, return_state=True)]

        state = f(return_state=True)
        assert state.is_failed() and state.message == "1/2 states failed."


class TestResultInAsyncContexts:
    """``State.result()`` dispatches as Prefect 3.9.1's (``async_dispatch``): a coroutine
    where the innermost run is async, or outside runs under a running event loop."""

    def test_in_an_async_flow_result_is_a_coroutine_to_await(self):
        """Inside an async flow, a task state's, a future's state's and a made state's
        ``result()`` are awaited; ``future.result()`` stays a value (Prefect's
        ``test_async_result_returns_coroutine_with_setting``; the oracle printed
        ``coroutine True`` then the awaited values)."""

        @task
        async def add_one(x: int) -> int:
            return x + 1

        @task
        def double(x: int) -> int:
            return 2 * x

        @flow
        async def pipeline() -> list:
            seen = []
            submitted = add_one.submit(3)
            submitted.wait()
            for result in (
                (await add_one(1, return_state=True)).result(),
                double(2, return_state=True).result(),
                submitted.state.result(),
                Completed(data=5).result(),
            ):
                seen.append((inspect.isawaitable(result), await result))
            seen.append(add_one.submit(6).result())
            return seen

        assert asyncio.run(pipeline()) == [(True, 2), (True, 4), (True, 4), (True, 5), 7]

    def test_a_failed_state_raises_when_awaited(self):
        """``Failed(message=...).result()`` in an async flow gives a coroutine that raises
        ``FailedRun`` when awaited, or returns it with ``raise_on_failure=False``."""

        @flow
        async def f() -> object:
            pending = Failed(message="boom").result()
            assert inspect.isawaitable(pending)
            with pytest.raises(FailedRun, match="boom"):
                await pending
            return await Failed(message="boom").result(raise_on_failure=False)

        assert isinstance(asyncio.run(f()), FailedRun)

    def test_outside_runs_a_running_loop_decides(self):
        """After ``await flow(return_state=True)`` in plain async code the result is
        awaited (Prefect's ``test_async_result_returns_coroutine_with_setting``); with no
        loop it is the value; ``aresult()`` and ``_sync`` choose explicitly (Prefect's
        ``test_aresult``)."""

        @flow
        async def foo() -> int:
            return 1

        async def main() -> tuple:
            state = await foo(return_state=True)
            pending = state.result()
            return (
                inspect.isawaitable(pending),
                await pending,
                await state.aresult(),
                state.result(_sync=True),
            )

        assert asyncio.run(main()) == (True, 1, 1, 1)
        assert Completed(data=8).result() == 8

    def test_sync_runs_keep_values_even_under_a_loop(self):
        """A sync task inside an async flow, and a sync flow called from a coroutine,
        get values (Prefect's ``test_sync_result_does_not_raise_warning``; the oracle
        printed ``int`` for both)."""

        @task
        def in_task() -> int:
            return Completed(data=1).result()

        @flow
        async def outer() -> int:
            return in_task()

        @flow
        def sync_flow() -> int:
            return Completed(data=2).result()

        async def main() -> tuple:
            return await outer(), sync_flow()

        assert asyncio.run(main()) == (1, 2)
