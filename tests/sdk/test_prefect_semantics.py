"""Prefect's semantics in the corners (issue 19), each checked against Prefect 3.9.1.

The expectations come from Prefect's own tests (``tests/test_flows.py``,
``tests/test_states.py``, ``tests/test_task_engine.py``) and from running the same small
programs under Prefect 3.9.1: state types, messages and exception types are Prefect's.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from flowyard import flow, task
from flowyard.exceptions import (
    CancelledRun,
    FailedRun,
    FlowRunTimeoutError,
    FlowyardError,
    MappingLengthMismatch,
    MappingMissingIterable,
    PausedRun,
    TaskRunTimeoutError,
    UnfinishedRun,
)
from flowyard.states import (
    Cancelled,
    Completed,
    Failed,
    Paused,
    Pending,
    Running,
    State,
    return_value_to_state,
)

pytestmark = pytest.mark.timeout(60)  # a hang is the bug some of these guard against


@task
def fails(message: str) -> None:
    raise ValueError(message)


@task
def succeeds() -> bool:
    return True


class TestNonFinalReturns:
    def test_a_flow_returning_a_pending_state_fails_instead_of_looping(self):
        """A flow returning Pending() ends at once (Prefect refuses RUNNING → PENDING)."""

        @flow
        def f() -> State:
            return Pending()

        state = f(return_state=True)
        assert state.is_failed()
        assert state.message == (
            "This run is in a RUNNING state and cannot transition to a PENDING state."
        )

    def test_a_task_returning_pending_ends_pending_and_its_flow_fails(self):
        """The task ends in the Pending state it returned; the flow returning that state
        fails with '1/1 states are not final.'"""
        seen: list[State] = []

        @task
        def t() -> State:
            return Pending()

        @flow
        def f() -> State:
            seen.append(t(return_state=True))
            return seen[0]

        state = f(return_state=True)
        assert seen[0].is_pending()
        assert state.is_failed() and state.message == "1/1 states are not final."
        assert state.result(raise_on_failure=False) is seen[0]

    def test_a_flow_returning_a_not_ready_future(self):
        """A future left NotReady by a failed upstream: its result() raises UnfinishedRun,
        the flow fails '1/1 states are not final.', and calling it raises ValueError."""
        errors: list[BaseException] = []

        @task
        def downstream(x: object) -> object:
            return x

        @flow
        def f():
            future = downstream.submit(fails.submit("x"))
            future.wait()
            try:
                future.result()
            except UnfinishedRun as exc:
                errors.append(exc)
            return future

        state = f(return_state=True)
        assert state.is_failed() and state.message == "1/1 states are not final."
        assert str(errors[0]) == "Run is in PENDING state, its result is not available."
        with pytest.raises(ValueError, match="Expected failed or crashed state got NotReady"):
            f()


class TestUpstreamFailures:
    def test_a_map_over_a_map_with_one_failure_runs_the_others(self):
        """Mapping over the futures of a map where one item failed: that item's run is
        NotReady and the others run (the map call itself does not fail)."""

        @task
        def inc(x: int) -> int:
            if x == 2:
                raise ValueError("two")
            return x + 1

        @task
        def double(x: int) -> int:
            return 2 * x

        @flow
        def f() -> list[State]:
            doubled = double.map(inc.map([1, 2, 3]))
            doubled.wait()
            return [future.state for future in doubled]

        states = f()
        assert [(s.name, s.type.value) for s in states] == [
            ("Completed", "COMPLETED"),
            ("NotReady", "PENDING"),
            ("Completed", "COMPLETED"),
        ]
        assert [s.result() for s in states if s.is_completed()] == [4, 8]


class TestFinalStateFromReturnedValues:
    def test_returned_task_states_are_aggregated(self):
        """Prefect's test_flow_state_reflects_returned_multiple_task_run_states."""

        @flow
        def f():
            return (
                fails("Test 1", return_state=True),
                fails("Test 2", return_state=True),
                succeeds(return_state=True),
            )

        state = f(return_state=True)
        assert state.is_failed() and state.message == "2/3 states failed."
        first, second, third = state.result(raise_on_failure=False)
        assert first.is_failed() and second.is_failed() and third.is_completed()
        with pytest.raises(ValueError, match="Test 1"):
            first.result()
        with pytest.raises(ValueError, match="Test 2"):
            second.result()
        with pytest.raises(ValueError, match="Test 1"):  # the first failure is raised
            state.result()

    def test_calling_the_flow_gives_the_returned_states_back(self):
        """Calling a flow that returned a tuple of states gives the tuple, even when one
        failed (Prefect returns the value the flow returned, futures made states)."""

        @flow
        def f():
            return fails.submit("x"), succeeds.submit()

        failed, completed = f()
        assert failed.is_failed() and completed.result() is True

    def test_a_cancelled_task_state_cancels_the_flow(self):
        """Prefect's test_flow_state_with_cancelled_tasks_has_cancelled_state."""

        @task
        def cancel() -> State:
            return Cancelled()

        @flow
        def f():
            return cancel.submit(), succeeds.submit(), fails.submit("Fail")

        state = f(return_state=True)
        assert state.is_cancelled() and state.message == "1/3 states cancelled."
        first, second, third = state.result(raise_on_failure=False)
        assert first.is_cancelled() and second.is_completed() and third.is_failed()
        with pytest.raises(CancelledRun, match="Run cancelled."):
            first.result()

    def test_a_cancelled_subflow_cancels_its_parent(self):
        """Prefect's test_flow_with_cancelled_subflow_has_cancelled_state."""

        @task
        def cancel() -> State:
            return Cancelled()

        @flow
        def child():
            return cancel.submit()

        @flow
        def parent():
            return child(return_state=True)

        state = parent(return_state=True)
        assert state.is_cancelled() and state.message == "1/1 states cancelled."

    def test_a_returned_failed_state_keeps_its_data(self):
        """Failed(message=..., data='payload'): raising gives FailedRun('payload'); not
        raising gives the data; Failed(message='m') alone gives FailedRun('m')."""

        @flow
        def f() -> State:
            return Failed(message="m", data="payload")

        state = f(return_state=True)
        assert state.is_failed() and state.message == "m"
        assert state.result(raise_on_failure=False) == "payload"
        with pytest.raises(FailedRun, match="payload"):
            f()
        error = Failed(message="m").result(raise_on_failure=False)
        assert isinstance(error, FailedRun) and str(error) == "m"

    def test_a_returned_failed_state_without_data_gives_none(self):
        """Under Prefect 3.9.1 a flow or task returning Failed(message='nope') has a
        result of None (a record is made for it); raising gives FailedRun('nope')."""

        @task
        def t() -> State:
            return Failed(message="tnope")

        @flow
        def f() -> State:
            assert t(return_state=True).result(raise_on_failure=False) is None
            return Failed(message="nope")

        state = f(return_state=True)
        assert state.is_failed() and state.result(raise_on_failure=False) is None
        with pytest.raises(FailedRun, match="nope"):
            state.result()

    def test_a_persisted_flow_returning_task_states_completes(self, tmp_path, monkeypatch):
        """With ``persist_result=True`` the returned tuple of states is persisted; under
        Prefect 3.9.1 the run completes ("All states completed.") and gives the states."""
        monkeypatch.setenv("FLOWYARD_HOME", str(tmp_path))

        @flow(persist_result=True)
        def f() -> tuple[State, State]:
            return succeeds(return_state=True), succeeds(return_state=True)

        state = f(return_state=True)
        assert state.is_completed() and state.message == "All states completed."
        assert [s.result() for s in f()] == [True, True]

    def test_return_value_to_state_aggregates_as_prefect(self):
        """Prefect's TestReturnValueToState: messages and types of each aggregate."""
        states = [Completed(message="hi"), Running(message="bye"), Pending(message="err")]
        for state in states:
            state.task_run_id = "a run"  # states of runs are aggregated; users' are kept
        result = return_value_to_state(states)
        assert result.is_failed() and result.message == "2/3 states are not final."
        assert result.result(raise_on_failure=False) == states

        done = return_value_to_state([Completed(message="hi"), Completed(message="bye")])
        assert done.is_completed() and done.message == "All states completed."
        paused = return_value_to_state([Completed(), Paused()])
        assert paused.is_paused() and paused.message == "1/2 states paused."
        with pytest.raises(PausedRun, match="Run is paused, its result is not available."):
            paused.result()
        mine = Completed(data=1)
        assert return_value_to_state(mine) is mine

    def test_unfinished_and_cancelled_state_results(self):
        """Cancelled().result() raises CancelledRun('Run cancelled.'); Pending() raises
        UnfinishedRun naming its type."""
        with pytest.raises(CancelledRun) as cancelled:
            Cancelled().result()
        assert str(cancelled.value) == "Run cancelled."
        with pytest.raises(UnfinishedRun) as unfinished:
            Pending().result()
        assert str(unfinished.value) == "Run is in PENDING state, its result is not available."


class TestAsyncHooksAndRetries:
    def test_async_hooks_of_a_sync_flow_and_task_are_awaited(self):
        """Async on_running/on_completion/on_failure hooks run to their end."""
        done: list[str] = []

        async def note(what: str) -> None:
            await asyncio.sleep(0)  # noqa: TID251 - the hook under test awaits
            done.append(what)

        async def task_failed(task, run, state) -> None:
            await note(f"task failed: {state.message}")

        async def flow_running(flow, run, state) -> None:
            await note("flow running")

        async def flow_completed(flow, run, state) -> None:
            await note("flow completed")

        @task(on_failure=[task_failed])
        def t() -> None:
            raise ValueError("x")

        @flow(on_running=[flow_running], on_completion=[flow_completed])
        def f() -> int:
            t(return_state=True)
            return 1

        assert f() == 1
        assert done == [
            "flow running",
            "task failed: Task run encountered an exception ValueError: x",
            "flow completed",
        ]

    def test_async_hooks_of_an_async_flow_are_awaited(self):
        """In an async flow (a running event loop) an async on_failure hook runs too."""
        done: list[str] = []

        async def flow_failed(flow, run, state) -> None:
            await asyncio.sleep(0)  # noqa: TID251 - the hook under test awaits
            done.append(state.message)

        @flow(on_failure=[flow_failed])
        async def f() -> None:
            raise RuntimeError("down")

        state = asyncio.run(f(return_state=True))
        assert state.is_failed()
        assert done == ["Flow run encountered an exception RuntimeError: down"]

    def test_an_async_retry_condition_is_awaited(self):
        """An async retry_condition_fn that says no stops retries (its coroutine is not
        taken as true)."""
        calls: list[int] = []

        async def never(task, run, state) -> bool:
            return False

        @task(retries=3, retry_condition_fn=never)
        def flaky() -> None:
            calls.append(1)
            raise ValueError("permanent")

        assert flaky(return_state=True).is_failed() and len(calls) == 1

    def test_a_task_returning_failed_is_retried_when_the_condition_allows(self):
        """Prefect's engine retries a task that returns Failed(...) like one that raised;
        retry_condition_fn sees the returned state."""
        calls: list[int] = []
        seen: list[str | None] = []

        async def allow(task, run, state) -> bool:
            seen.append(state.message)
            return True

        @task(retries=2, retry_condition_fn=allow)
        def flaky() -> object:
            calls.append(1)
            return Failed(message="not yet") if len(calls) < 3 else "done"

        state = flaky(return_state=True)
        assert state.is_completed() and state.result() == "done"
        assert len(calls) == 3 and seen == ["not yet", "not yet"]

    def test_a_task_returning_failed_without_retries_left_ends_in_it(self):
        """When the retries are spent the returned Failed state is the task's final one."""
        calls: list[int] = []

        @task(retries=1)
        def flaky() -> State:
            calls.append(1)
            return Failed(message="still no")

        state = flaky(return_state=True)
        assert state.is_failed() and state.message == "still no" and len(calls) == 2


class TestMappingErrors:
    def test_lengths_that_differ(self):
        """MappingLengthMismatch, still a ValueError and a FlowyardError."""

        @task
        def add(a: int, b: int) -> int:
            return a + b

        @flow
        def f() -> None:
            add.map([1, 2], [1])

        with pytest.raises(MappingLengthMismatch, match="different lengths") as raised:
            f()
        assert isinstance(raised.value, ValueError) and isinstance(raised.value, FlowyardError)
        assert "Got lengths: {'a': 2, 'b': 1}" in str(raised.value)  # named, as Prefect's

    def test_no_iterable(self):
        """MappingMissingIterable when every argument is static."""

        @task
        def add(a: int, b: int) -> int:
            return a + b

        @flow
        def f() -> None:
            add.map(1, 2)

        with pytest.raises(MappingMissingIterable, match="No iterable parameters"):
            f()


class TestTimeouts:
    def test_a_task_past_its_timeout_is_timed_out(self):
        """TimedOut (type Failed) with Prefect's message; its result raises
        TaskRunTimeoutError, a TimeoutError."""
        release = threading.Event()

        @task(timeout_seconds=0.1)
        def slow() -> None:
            release.wait(10)

        state = slow(return_state=True)
        release.set()
        assert state.is_failed() and state.name == "TimedOut"
        assert state.message == "Task run exceeded timeout of 0.1 second(s)"
        with pytest.raises(TaskRunTimeoutError):
            state.result()
        assert issubclass(TaskRunTimeoutError, TimeoutError)

    def test_the_users_own_timeout_error_also_times_out(self):
        """A TimeoutError raised by the task's code ends it TimedOut too."""

        @task
        def mine() -> None:
            raise TimeoutError("mine")

        state = mine(return_state=True)
        assert state.name == "TimedOut" and state.is_failed()
        assert state.message == "Task run failed due to timeout: TimeoutError('mine')"

    def test_a_timed_out_task_is_retried(self):
        """A timeout counts as a failure for retries, as in Prefect."""
        calls: list[int] = []

        @task(timeout_seconds=0.5, retries=1)
        def once_slow() -> int:
            calls.append(1)
            if len(calls) == 1:
                threading.Event().wait(2)  # noqa: TID251 - the task's work, timed out
            return len(calls)

        assert once_slow() == 2

    def test_a_flow_past_its_timeout(self):
        """An async flow past timeout_seconds: TimedOut, FlowRunTimeoutError raised."""

        @flow(timeout_seconds=0.1)
        async def slow() -> None:
            await asyncio.Event().wait()

        state = asyncio.run(slow(return_state=True))
        assert state.is_failed() and state.name == "TimedOut"
        assert state.message == "Flow run exceeded timeout of 0.1 second(s)"
        with pytest.raises(FlowRunTimeoutError):
            state.result()

    def test_a_generator_task_past_its_timeout(self):
        """Prefect's ``test_task_engine.py::TestGenerators::test_generator_timeout``: the
        values before the deadline arrive, then TaskRunTimeoutError."""
        release = threading.Event()

        @task(timeout_seconds=0.2)
        def values() -> Iterator[int]:
            yield 1
            release.wait(10)
            yield 2

        seen: list[int] = []
        with pytest.raises(TaskRunTimeoutError, match="exceeded timeout of 0.2 second"):
            for value in values():
                seen.append(value)
        release.set()
        assert seen == [1]

    def test_a_generator_flows_timeout_counts_the_callers_time_too(self):
        """Under Prefect 3.9.1 the timeout spans the caller's loop: a caller slower than
        ``timeout_seconds`` between values times the run out (Flowyard raises at the next
        value; Prefect interrupts the caller's own code)."""
        late = threading.Event()

        @flow(timeout_seconds=0.2)
        def values() -> Iterator[int]:
            yield 1
            yield 2

        seen: list[int] = []
        with pytest.raises(FlowRunTimeoutError):
            for value in values():
                seen.append(value)
                late.wait(0.4)  # noqa: TID251 - the caller's own slow work, past the deadline
        assert seen == [1]
        state = values(return_state=True)  # drained at once: well within the deadline
        assert state.is_completed() and state.result() == [1, 2]


class TestSubflowsOnParentRetry:
    """Prefect's ``test_flows.py::TestFlowRetries``: what a retried parent does with a
    subflow of its failed attempt."""

    def test_a_completed_persisted_child_is_not_run_again(self, tmp_path, monkeypatch):
        """``test_flow_retry_with_error_in_flow_and_one_successful_child_flow``."""
        monkeypatch.setenv("FLOWYARD_HOME", str(tmp_path))
        runs = {"child": 0, "parent": 0}

        @flow(persist_result=True)
        def child() -> str:
            runs["child"] += 1
            return f"hello {runs['child']}"

        @flow(retries=1)
        def parent() -> str:
            runs["parent"] += 1
            value = child()
            if runs["parent"] == 1:
                raise ValueError("first attempt")
            return value

        assert parent() == "hello 1"
        assert runs == {"child": 1, "parent": 2}

    def test_a_child_that_persists_nothing_runs_again(self):
        """Under Prefect 3.9.1 a child without ``persist_result`` runs on each attempt."""
        runs = {"child": 0, "parent": 0}

        @flow
        def child() -> int:
            runs["child"] += 1
            return runs["child"]

        @flow(retries=1)
        def parent() -> int:
            runs["parent"] += 1
            value = child()
            if runs["parent"] == 1:
                raise ValueError("first attempt")
            return value

        assert parent() == 2
        assert runs == {"child": 2, "parent": 2}

    def test_a_failed_child_runs_again(self, tmp_path, monkeypatch):
        """``test_flow_retry_with_no_error_in_flow_and_one_failed_child_flow``."""
        monkeypatch.setenv("FLOWYARD_HOME", str(tmp_path))
        runs = {"child": 0, "parent": 0}

        @flow(persist_result=True)
        def child() -> str:
            runs["child"] += 1
            if runs["parent"] == 1:
                raise ValueError("child fails once")
            return "hello"

        @flow(retries=1)
        def parent() -> str:
            runs["parent"] += 1
            return child()

        assert parent() == "hello"
        assert runs == {"child": 2, "parent": 2}


class TestFlowWaitFor:
    """A flow call's ``wait_for=`` (Prefect's ``FlowRunEngine._wait_for_dependencies``);
    the outcomes were printed by the same program under Prefect 3.9.1."""

    def test_a_subflow_runs_after_its_upstreams_and_not_when_one_failed(self):
        """Completed upstreams: the subflow runs. A failed one: the subflow never starts
        (no on_running, no on_failure), ends Pending named NotReady, its call raises
        UnfinishedRun, and the parent still completes."""
        events: list[str] = []

        @task
        def up() -> None:
            events.append("up")

        @flow(
            on_running=[lambda f, r, s: events.append("child-on_running")],
            on_failure=[lambda f, r, s: events.append("child-on_failure")],
        )
        def child(x: int) -> int:
            events.append(f"child-{x}")
            return x * 10

        @flow
        def parent() -> tuple[int, State, str, str | None]:
            ran = child(2, wait_for=[up.submit()])
            broken = fails.submit("upstream broke")
            skipped = child(3, wait_for=[broken], return_state=True)
            with pytest.raises(UnfinishedRun) as raised:
                child(4, wait_for=[broken])
            return ran, skipped, str(raised.value), broken.task_run_id

        state = parent(return_state=True)
        ran, skipped, raised, broken_id = state.result()
        assert state.is_completed() and ran == 20
        assert (skipped.type.value, skipped.name) == ("PENDING", "NotReady")
        assert skipped.message == (
            f"Upstream task run '{broken_id}' did not reach a 'COMPLETED' state."
        )  # Prefect's words: the upstream's id
        assert raised == "Run is in PENDING state, its result is not available."
        assert events == ["up", "child-on_running", "child-2"]

    def test_states_count_as_upstreams_also_for_a_flow_called_alone(self):
        """A completed state lets the flow run; a failed one leaves it NotReady."""

        @flow
        def child(x: int) -> int:
            return x * 10

        assert child(6, wait_for=[Completed(data=1)]) == 60
        state = child(7, wait_for=[Failed(message="m")], return_state=True)
        assert state.is_pending() and state.name == "NotReady"
        assert state.message == "Upstream task run 'None' did not reach a 'COMPLETED' state."

    def test_an_async_subflows_timeout_starts_after_its_upstreams(self):
        """``test_subflow_timeout_waits_until_execution_starts``: upstreams that take
        1.5 s in all do not eat the subflow's 1 s timeout."""
        completed: list[bool] = []

        @flow(timeout_seconds=1)
        async def downstream_flow() -> None:
            completed.append(True)

        @task
        async def sleep_task(n: float) -> None:
            await asyncio.sleep(n)  # noqa: TID251 - the upstream work whose time is measured

        @flow
        async def my_flow() -> None:
            upstream_sleepers = sleep_task.map([0.5, 1.0])
            await downstream_flow(wait_for=upstream_sleepers)

        state = asyncio.run(my_flow(return_state=True))
        assert state.is_completed() and completed == [True]

    def test_a_not_ready_subflow_is_recorded_pending_not_running(self, api):
        """Through the API the subflow's run is recorded Pending (it never started), so no
        Running run is left without a process; the parent completes."""

        @flow
        def child() -> None:
            raise AssertionError("must not run")

        @flow
        def parent() -> str | None:
            return child(wait_for=[fails.submit("upstream broke")], return_state=True).flow_run_id

        state = parent(return_state=True)
        child_run = api.read_flow_run(state.result())
        assert state.is_completed() and child_run.state.type.value == "PENDING"
