"""``@flow`` outside the engine: local runs that record nothing."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from flowyard import flow, get_run_logger, task
from flowyard.sdk import Flow, get_flow_run_context

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "etl.py"


class TestFlowDecorator:
    def test_bare_decorator_keeps_the_function_identity(self):
        """``@flow`` keeps __name__, __doc__ and .fn; the name uses hyphens like Prefect."""

        @flow
        def my_etl_flow(x: int) -> int:
            """Adds one."""
            return x + 1

        assert isinstance(my_etl_flow, Flow)
        assert my_etl_flow.name == "my-etl-flow"
        assert my_etl_flow.__name__ == "my_etl_flow"
        assert my_etl_flow.__doc__ == "Adds one."
        assert my_etl_flow.description == "Adds one."
        assert my_etl_flow.fn(1) == 2

    def test_options(self):
        """``@flow(...)`` records name, description, version, retries and log_prints."""

        @flow(name="ETL Pipeline", description="d", version="1.2", retries=2, log_prints=True)
        def etl() -> None:
            return None

        assert (etl.name, etl.description, etl.version) == ("ETL Pipeline", "d", "1.2")
        assert (etl.retries, etl.log_prints) == (2, True)

    def test_parameters_property_is_the_json_schema(self):
        """A flow exposes its parameter schema for deployments."""

        @flow
        def f(n: int, label: str = "x") -> None:
            return None

        assert f.parameters["required"] == ["n"]
        assert set(f.parameters["properties"]) == {"n", "label"}

    def test_async_functions_become_async_flows(self):
        """An ``async def`` flow is awaited; its result comes back through the coroutine."""

        @flow
        async def f(x: int) -> int:
            return x * 2

        assert f.is_async and asyncio.run(f(21)) == 42


class TestLocalRun:
    def test_call_returns_the_result(self):
        """Calling a flow runs it in-process and returns its value."""

        @flow
        def add(a: int, b: int = 2) -> int:
            return a + b

        assert add(1) == 3
        assert add(1, b=5) == 6

    def test_a_run_context_exists_only_during_the_call(self):
        """Inside the call there is a flow run context; after it there is none."""
        seen = []

        @flow
        def f() -> None:
            seen.append(get_flow_run_context())

        f()
        assert seen[0] is not None and seen[0].client is None
        assert get_flow_run_context() is None

    def test_logs_go_to_stderr(self, capsys):
        """Run logger records of a local run are written to stderr, labelled by the run."""

        @flow
        def f() -> None:
            get_run_logger().info("hello local")

        f()
        captured = capsys.readouterr()
        assert "hello local" in captured.err and "Flow run '" in captured.err
        assert captured.out == ""

    def test_exceptions_propagate(self):
        """A flow's exception reaches the caller unchanged."""

        @flow
        def f() -> None:
            raise KeyError("nope")

        with pytest.raises(KeyError, match="nope"):
            f()

    def test_retries_rerun_the_flow(self):
        """A flow with retries reruns its body after a failure, waiting retry_delay_seconds."""
        calls, sleeps = [], []

        def body() -> str:
            calls.append(1)
            if len(calls) < 3:
                raise RuntimeError("flaky")
            return "ok"

        f = Flow(body, retries=2, retry_delay_seconds=4, sleep=sleeps.append)
        assert f() == "ok"
        assert (len(calls), sleeps) == (3, [4, 4])

    def test_a_nested_flow_is_a_child_flow_run(self):
        """A flow called in a flow run is its own run, linked to a task run of the parent."""
        seen = []

        @flow
        def child() -> None:
            seen.append(get_flow_run_context())

        @flow
        def parent() -> None:
            seen.append(get_flow_run_context())
            child()

        parent()
        parent_run, child_run = seen
        assert child_run is not parent_run and child_run.flow_run_id != parent_run.flow_run_id
        assert child_run.parent_task_run_id is not None

    def test_log_prints_sends_print_to_the_run_logger(self, capsys):
        """With log_prints=True, print() inside the flow becomes a log record (stderr here)."""

        @task
        def shout() -> None:
            print("from a task")

        @flow(log_prints=True)
        def f() -> None:
            print("from the flow")
            shout()

        f()
        print("after")
        captured = capsys.readouterr()
        assert (
            "from the flow" in captured.err and "Task run 'shout-0' - from a task" in captured.err
        )
        assert captured.out == "after\n"


class TestQuickStart:
    def test_example_runs_as_a_plain_script(self):
        """``python examples/etl.py`` needs no API: it prints the loaded data and logs to stderr."""
        done = subprocess.run(
            [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == "Loading data: [10, 20, 30, 40, 50]\n"
        assert "Task run 'load_data-0' - Finished in state Completed()" in done.stderr

    def test_import_flowyard_is_light(self):
        """``import flowyard`` loads no server libraries."""
        probe = "import flowyard, sys; print(sorted(m for m in sys.modules))"
        done = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
        )
        for heavy in ("fastapi", "sqlalchemy", "redis", "uvicorn"):
            assert f"'{heavy}'" not in done.stdout
