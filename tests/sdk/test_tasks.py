"""``@task``: plain calls, task runs inside flows, retries and futures."""

from __future__ import annotations

import threading

import pytest

from flowyard import flow, task
from flowyard.sdk import Task, TaskFuture, get_task_run_context


def run_name() -> str:
    context = get_task_run_context()
    return context.task_run_name if context else "-"


class TestTaskDecorator:
    def test_options_and_identity(self):
        """``@task(...)`` keeps the function and records its options; names keep underscores."""

        @task(name="extract", retries=2, retry_delay_seconds=1.5, tags=["etl"])
        def extract_data() -> int:
            """Extracts."""
            return 1

        assert isinstance(extract_data, Task)
        assert (extract_data.name, extract_data.retries) == ("extract", 2)
        assert extract_data.retry_delay_seconds == 1.5 and extract_data.tags == {"etl"}
        assert extract_data.__name__ == "extract_data" and extract_data.__doc__ == "Extracts."
        assert task(extract_data.fn).name == "extract_data"

    def test_outside_a_flow_it_is_still_a_task_run(self):
        """Called outside any flow run, a task is an unrecorded task run named after the task."""

        @task(retries=1)
        def where() -> str:
            return run_name()

        assert where() == "where"


class TestTaskRuns:
    def test_each_call_is_a_numbered_task_run(self):
        """Inside a flow, calls are task runs named <task>-0, <task>-1, … per task."""

        @task
        def extract_data() -> str:
            return run_name()

        @task
        def load_data() -> str:
            return run_name()

        @flow
        def f() -> list[str]:
            return [extract_data(), extract_data(), load_data()]

        assert f() == ["extract_data-0", "extract_data-1", "load_data-0"]
        assert f() == ["extract_data-0", "extract_data-1", "load_data-0"]

    def test_a_failing_task_fails_the_flow(self):
        """A task's exception (after its retries) propagates into the flow."""

        @task
        def explode() -> None:
            raise ValueError("boom")

        @flow
        def f() -> None:
            explode()

        with pytest.raises(ValueError, match="boom"):
            f()


class TestRetries:
    def test_retries_until_success(self):
        """A task with retries is called again after failures and returns the success."""
        calls = []

        @task(retries=2)
        def flaky() -> str:
            calls.append(1)
            if len(calls) < 3:
                raise RuntimeError("flaky")
            return "ok"

        @flow
        def f() -> str:
            return flaky()

        assert f() == "ok" and len(calls) == 3

    def test_gives_up_after_the_last_retry(self):
        """After retries + 1 attempts the last exception is raised."""
        calls = []

        @task(retries=1)
        def always() -> None:
            calls.append(1)
            raise RuntimeError(f"attempt {len(calls)}")

        @flow
        def f() -> None:
            always()

        with pytest.raises(RuntimeError, match="attempt 2"):
            f()
        assert len(calls) == 2

    def test_delay_list_is_used_per_retry_and_its_last_value_repeats(self):
        """retry_delay_seconds=[1, 2] waits 1, then 2, then 2 seconds."""
        sleeps: list[float] = []

        def always() -> None:
            raise RuntimeError("no")

        t = Task(always, retries=3, retry_delay_seconds=[1, 2], sleep=sleeps.append)

        @flow
        def f() -> None:
            t()

        with pytest.raises(RuntimeError):
            f()
        assert sleeps == [1.0, 2.0, 2.0]


class TestSubmit:
    def test_submit_returns_futures_run_on_other_threads(self):
        """submit() runs the task on the flow run's pool; result() gives its value."""

        @task
        def ident(n: int) -> tuple[int, str, int]:
            return n, run_name(), threading.get_ident()

        @flow
        def f() -> list[tuple[int, str, int]]:
            futures = [ident.submit(n) for n in range(3)]
            assert all(isinstance(fut, TaskFuture) for fut in futures)
            return [fut.result(timeout=10) for fut in futures]

        results = f()
        assert [(n, name) for n, name, _ in results] == [
            (0, "ident-0"),
            (1, "ident-1"),
            (2, "ident-2"),
        ]
        assert threading.get_ident() not in {thread for _, _, thread in results}

    def test_result_reraises_and_wait_does_not(self):
        """A failed task's future re-raises on result(); wait() only waits."""

        @task
        def explode() -> None:
            raise ValueError("boom")

        @flow
        def f() -> None:
            future = explode.submit()
            future.wait(timeout=10)
            assert future.done()
            with pytest.raises(ValueError, match="boom"):
                future.result()

        f()

    def test_futures_passed_as_arguments_are_resolved(self):
        """A future given to another task arrives as its result."""

        @task
        def one() -> int:
            return 1

        @task
        def inc(n: int) -> int:
            return n + 1

        @flow
        def f() -> int:
            return inc.submit(one.submit()).result(timeout=10)

        assert f() == 2

    def test_the_flow_waits_for_unfinished_task_runs(self):
        """A flow run ends only after every submitted task run has finished."""
        started, release, finished = threading.Event(), threading.Event(), []

        @task
        def slow() -> None:
            started.set()
            release.wait(10)
            finished.append(True)

        @flow
        def f() -> None:
            slow.submit()
            assert started.wait(10)
            threading.Timer(0.05, release.set).start()

        f()
        assert finished == [True]

    def test_outside_a_flow_submit_and_map_are_refused_as_in_prefect(self):
        """Without a flow run there is no task runner: submit() and map() raise
        RuntimeError (Prefect 3.9.1's message for submit) and nothing runs, also inside a
        task called outside a flow."""
        calls: list[int] = []

        @task
        def double(n: int) -> int:
            calls.append(n)
            return 2 * n

        with pytest.raises(RuntimeError, match=r"^Unable to determine task runner to use for "
                           r"submission\. If you are submitting a task outside of a flow, "
                           r"please use `\.delay` to submit the task run for deferred "
                           r"execution\.$"):  # fmt: skip
            double.submit(4)
        with pytest.raises(RuntimeError, match="mapped task runs.*provide `deferred=True`"):
            double.map([1, 2])

        @task
        def outer() -> str:
            try:
                double.submit(5)
            except RuntimeError as exc:
                return type(exc).__name__
            return "submitted"

        assert outer() == "RuntimeError" and calls == []
