"""Task options: timeouts, names, tags, hooks, submit/map concurrency, wait_for, allow_failure."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from flowyard import allow_failure, flow, runtime, tags, task, unmapped
from flowyard.errors import UnfinishedRun
from flowyard.futures import as_completed, wait
from flowyard.states import State


def overlap(spans: list[tuple[float, float]]) -> bool:
    """True when some two spans (start, end) overlap in time."""
    spans = sorted(spans)
    return any(b_start < a_end for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False))


class TestTimeout:
    def test_a_slow_task_fails_with_timeout_error(self):
        """timeout_seconds fails the run with TimeoutError named in the message, without waiting."""
        release = threading.Event()

        @task(timeout_seconds=0.05)
        def slow() -> None:
            release.wait(10)

        @flow
        def f():
            return slow(return_state=True)

        started = time.monotonic()
        state = f(return_state=True)
        release.set()
        state = state.result(raise_on_failure=False)  # the task's state: the flow returned it
        assert (
            state.is_failed() and state.name == "TimedOut" and "exceeded timeout" in state.message
        )
        assert "exceeded timeout of 0.05 second(s)" in state.message
        assert time.monotonic() - started < 5

    def test_an_async_task_times_out(self):
        """An async task past its timeout fails with TimeoutError."""

        @task(timeout_seconds=0.05)
        async def slow() -> None:
            await asyncio.Event().wait()

        @flow
        async def f():
            return await slow(return_state=True)

        state = asyncio.run(f(return_state=True))
        state = state.result(raise_on_failure=False)  # the task's state: the flow returned it
        assert (
            state.is_failed() and state.name == "TimedOut" and "exceeded timeout" in state.message
        )


class TestNamesAndTags:
    def test_task_run_name_template_and_tags(self):
        """task_run_name formats with the arguments; tags come from the task and `with tags`."""

        @task(task_run_name="fetch-{city}", tags=["io"])
        def fetch(city: str) -> tuple[str | None, list[str]]:
            return runtime.task_run.name, runtime.task_run.tags

        @flow
        def f():
            with tags("nightly"):
                return fetch("paris")

        assert f() == ("fetch-paris", ["io", "nightly"])


class TestHooks:
    def test_completion_and_failure_hooks_and_a_raising_hook(self, capsys):
        """Hooks get (task, task_run, state); a raising hook is logged and changes nothing."""
        seen: list[tuple[str, str, str]] = []

        def record(t, run, state) -> None:
            seen.append((t.name, run.name, state.name))

        def broken(t, run, state) -> None:
            raise RuntimeError("hook bug")

        @task(on_completion=[broken, record])
        def ok() -> int:
            return 1

        @task(on_failure=[record])
        def bad() -> None:
            raise ValueError("x")

        @flow
        def f() -> None:
            ok()
            bad(return_state=True)

        assert f(return_state=True).is_completed()
        assert seen == [("ok", "ok-0", "Completed"), ("bad", "bad-0", "Failed")]
        err = capsys.readouterr().err
        assert "An error was encountered while running hook 'broken'" in err
        assert "RuntimeError: hook bug" in err


class TestSubmitAndMap:
    def test_map_runs_concurrently_with_unmapped(self):
        """map() gives one run per element, in order; unmapped is passed whole; runs overlap."""
        gate = threading.Barrier(4, timeout=10)
        spans: list[tuple[float, float]] = []

        @task
        def scale(x: int, factor: int) -> int:
            start = time.monotonic()
            gate.wait()
            spans.append((start, time.monotonic()))
            return x * factor

        @flow
        def f() -> list[int]:
            return scale.map([1, 2, 3, 4], unmapped(10)).result()

        assert f() == [10, 20, 30, 40]
        assert overlap(spans)

    def test_wait_for_orders_runs_and_an_upstream_failure_stops_them(self):
        """wait_for holds a run until its upstream is done; a failed upstream leaves it NotReady."""
        order: list[str] = []

        @task
        def first() -> None:
            order.append("first")
            raise ValueError("upstream broke")

        @task
        def second() -> None:
            order.append("second")

        futures = []

        @flow
        def f() -> None:
            a = first.submit()
            futures.append(a)
            futures.append(second.submit(wait_for=[a]))
            second.submit(wait_for=[allow_failure(a)]).wait()

        f()
        upstream, state = futures[0], futures[1].state
        assert order == ["first", "second"]
        assert state.is_pending() and state.name == "NotReady"
        assert state.message == (  # Prefect's words: the upstream's id
            f"Upstream task run '{upstream.task_run_id}' did not reach a 'COMPLETED' state."
        )
        with pytest.raises(UnfinishedRun, match="Run is in PENDING state, its result is not"):
            state.result()  # as in Prefect 3.9.1

    def test_allow_failure_passes_the_exception_as_input(self):
        """A failed upstream wrapped in allow_failure arrives as its exception."""

        @task
        def bad() -> int:
            raise KeyError("gone")

        @task
        def describe(value: object) -> str:
            return type(value).__name__

        @flow
        def f() -> str:
            return describe(allow_failure(bad.submit()))

        assert f() == "KeyError"

    def test_wait_and_as_completed(self):
        """wait() splits done from not done; as_completed yields every future once."""
        release = threading.Event()

        @task
        def held(n: int) -> int:
            if n == 0:
                release.wait(10)
            return n

        @flow
        def f() -> list[int]:
            futures = [held.submit(n) for n in range(3)]
            done, not_done = wait(futures[1:], timeout=10)
            assert len(done) == 2 and not not_done
            assert not futures[0].done()
            release.set()
            return sorted(fut.result() for fut in as_completed(futures, timeout=10))

        assert f() == [0, 1, 2]


class TestAsync:
    def test_async_tasks_run_on_the_flow_event_loop(self):
        """Awaited async tasks share the flow's loop; gathered ones overlap."""
        spans: list[tuple[float, float]] = []
        loops: set[int] = set()

        @task
        async def io(n: int) -> int:
            loops.add(id(asyncio.get_running_loop()))
            start = time.monotonic()
            await asyncio.sleep(0.05)  # noqa: TID251 - the task's own work, to overlap
            spans.append((start, time.monotonic()))
            return n

        @flow
        async def f() -> list[int]:
            loops.add(id(asyncio.get_running_loop()))
            return list(await asyncio.gather(io(1), io(2), io(3)))

        assert asyncio.run(f()) == [1, 2, 3]
        assert len(loops) == 1 and overlap(spans)

    def test_async_task_submitted_from_a_sync_flow(self):
        """An async task can be submitted from a sync flow; its result comes back."""

        @task
        async def double(n: int) -> int:
            return n * 2

        @flow
        def f() -> int:
            return double.submit(4).result()

        assert f() == 8


class TestEarlyFailures:
    def test_a_raising_name_template_fails_the_task_run(self):
        """Errors before the body runs give a Failed state (hooks run), not an exception
        out of the engine."""
        failed: list[str] = []

        @task(task_run_name="run-{missing}", on_failure=[lambda t, r, st: failed.append(r.name)])
        def named(x: int) -> int:
            return x

        @flow
        def pipeline() -> dict[str, State]:
            return {"named": named(2, return_state=True)}

        named_state = pipeline()["named"]
        assert named_state.is_failed() and "missing" in named_state.message
        assert failed == ["named-0"]

    def test_a_raising_cache_key_fn_is_logged_and_the_task_runs(self, caplog):
        """As in Prefect 3.9.1 (``Task run ... Error encountered when computing cache
        key``): the error is logged on the task run's logger, the task runs uncached and
        completes; the oracle printed ``Completed(...) 1 []`` (no failure hook)."""
        failed: list[str] = []

        def bad_key(context, parameters):
            raise RuntimeError("no key today")

        @task(cache_key_fn=bad_key, on_failure=[lambda t, r, st: failed.append(r.name)])
        def keyed(x: int) -> int:
            return x

        @flow
        def pipeline() -> State:
            return keyed(1, return_state=True)

        state = pipeline()
        assert state.is_completed() and state.result() == 1 and failed == []
        [record] = [r for r in caplog.records if "computing cache key" in r.getMessage()]
        assert record.name == "flowyard.task_runs" and record.levelname == "ERROR"
        assert record.exc_info[0] is RuntimeError and record.task_run_name == "keyed-0"


class TestReturnState:
    def test_submit_and_map_with_return_state_give_final_states(self):
        """As in Prefect 3.9: a State from submit, a list of States from map."""

        @task
        def echo(x: int) -> int:
            if x < 0:
                raise ValueError("negative")
            return x

        @flow
        def pipeline() -> tuple[State, list[State], State]:
            return (
                echo.submit(1, return_state=True),
                echo.map([2, 3], return_state=True),
                echo.submit(-1, return_state=True),
            )

        one, many, bad = pipeline()
        assert one.is_completed() and one.result() == 1
        assert [st.result() for st in many] == [2, 3]
        assert bad.is_failed()
