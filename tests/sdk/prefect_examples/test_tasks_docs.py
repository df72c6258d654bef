"""Prefect 3 docs, tasks and states: the "Tasks" and "States" concept pages.

Each example is the doc's code with ``prefect`` → ``flowyard`` in imports.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowyard import flow, task
from flowyard.states import Completed, Failed
from flowyard.utilities.annotations import opaque, quote


class TestTasksConcept:
    def test_log_prints_task_outside_a_flow(self, capsys):
        """A log_prints task called on its own logs its prints."""

        @task(log_prints=True)
        def explain_tasks():
            print("run any python code here!")
            print("but maybe just a little bit")

        explain_tasks()
        err = capsys.readouterr().err
        assert "run any python code here!" in err and "but maybe just a little bit" in err

    def test_calling_a_task_directly(self):
        """A task called outside a flow returns its value."""

        @task
        def add_integers(a: int, b: int) -> int:
            return a + b

        result = add_integers(1, 2)  # blocks until complete, returns 3
        assert result == 3

    def test_submitting_a_task(self):
        """submit() returns a future; result() blocks and returns the value."""

        @task
        def add_integers(a: int, b: int) -> int:
            return a + b

        results = []

        @flow
        def my_flow():
            future = add_integers.submit(1, 2)  # returns immediately
            # do other work...
            result = future.result()  # blocks until complete, returns 3
            results.append(result)

        my_flow()
        assert results == [3]

    def test_futures_in_dataclass_fields_are_resolved(self, capsys):
        """A future in a dataclass field is resolved; the copy runs __post_init__ again."""
        init_count = 0

        @dataclass
        class Pipeline:
            base_rate: float
            adjusted_rate: float = None

            def __post_init__(self):
                nonlocal init_count  # the doc's ``global``; here the test's own counter
                init_count += 1
                if self.adjusted_rate is None:
                    self.adjusted_rate = self.base_rate * 1.5

        @task
        def get_rate() -> float:
            return 100.0

        @task(log_prints=True)
        def run_pipeline(pipeline: Pipeline):
            print(f"init_count inside task = {init_count}")
            print(f"adjusted_rate = {pipeline.adjusted_rate}")

        @flow(log_prints=True)
        def my_flow():
            rate_future = get_rate.submit()
            pipeline = Pipeline(base_rate=42.0, adjusted_rate=rate_future)
            print(f"init_count before task = {init_count}")
            run_pipeline(pipeline)

        my_flow()
        err = capsys.readouterr().err
        assert "init_count before task = 1" in err
        assert "init_count inside task = 2" in err
        assert "adjusted_rate = 100.0" in err

    def test_quote_passes_the_object_unchanged(self, capsys):
        """quote(...) hands the task the very object."""
        received = []

        @dataclass
        class Pipeline:
            base_rate: float
            adjusted_rate: float = 0.0

            def __post_init__(self):
                self.adjusted_rate = self.base_rate * 1.5

        @task(log_prints=True)
        def run_pipeline(pipeline: Pipeline):
            received.append(pipeline)
            print(f"adjusted_rate = {pipeline.adjusted_rate}")

        @flow(log_prints=True)
        def my_flow():
            pipeline = Pipeline(base_rate=100.0)
            run_pipeline(quote(pipeline))
            return pipeline

        sent = my_flow()
        assert received == [sent] and received[0] is sent
        assert "adjusted_rate = 150.0" in capsys.readouterr().err

    def test_opaque_resolves_the_future_without_traversal(self, capsys):
        """opaque(future) gives the task the future's value, not a rebuilt copy."""
        built = []

        @dataclass
        class Pipeline:
            base_rate: float
            adjusted_rate: float = 0.0

            def __post_init__(self):
                self.adjusted_rate = self.base_rate * 1.5

        @task
        def build_pipeline(base_rate: float) -> Pipeline:
            pipeline = Pipeline(base_rate=base_rate)
            built.append(pipeline)
            return pipeline

        received = []

        @task(log_prints=True)
        def run_pipeline(pipeline: Pipeline):
            received.append(pipeline)
            print(f"adjusted_rate = {pipeline.adjusted_rate}")

        @flow
        def my_flow():
            future = build_pipeline.submit(100.0)
            run_pipeline.submit(opaque(future))

        my_flow()
        assert received[0] is built[0]
        assert "adjusted_rate = 150.0" in capsys.readouterr().err


class TestStatesConcept:
    def test_tasks_returning_states(self):
        """A task returning Failed fails; so does the flow."""
        states = {}

        @task
        def toggle_task(fail: bool):
            if fail:
                return Failed(message="I was instructed to fail.")
            else:
                return Completed(message="I was instructed to succeed.")

        @flow
        def example():
            # this run will be set to a `Failed` state
            state_one = toggle_task(fail=True)

            # this run will be set to a `Completed` state
            state_two = toggle_task(fail=False)

            # similarly, the flow run will fail because we return a `Failed` state
            return state_one, state_two

        state = example(return_state=True)
        states["flow"] = state
        assert state.is_failed()
        assert "I was instructed to fail." in str(state.result(raise_on_failure=False))

    def test_return_state(self):
        """return_state=True gives the task run's state, with is_completed() and result()."""

        @task
        def add_one(x):
            return x + 1

        @flow
        def my_flow():
            result = add_one(1)
            assert isinstance(result, int) and result == 2

            state = add_one(1, return_state=True)
            assert state.is_completed() is True
            assert state.result() == 2

        assert my_flow(return_state=True).is_completed()
