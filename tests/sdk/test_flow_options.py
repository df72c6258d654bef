"""Flow options: run names, retries, timeouts, parameter validation, hooks, runtime, subflows."""

from __future__ import annotations

import threading

import pytest

from flowyard import flow, runtime, task
from flowyard.errors import InvalidInput
from flowyard.sdk import Flow


class TestFlowOptions:
    def test_flow_run_name_template_and_runtime(self):
        """flow_run_name formats with the parameters; runtime.flow_run exposes the run."""

        @flow(flow_run_name="etl-{date}")
        def etl(date: str) -> tuple:
            fr = runtime.flow_run
            return fr.name, fr.parameters, fr.id is not None, fr.scheduled_start_time is not None

        assert etl("2024-01-02") == ("etl-2024-01-02", {"date": "2024-01-02"}, True, True)
        assert runtime.flow_run.id is None and runtime.deployment.id is None

    def test_parameters_are_validated_before_any_task_runs(self):
        """A wrong type fails the run naming the parameter, and no task runs."""
        ran: list[int] = []

        @task
        def step() -> None:
            ran.append(1)

        @flow
        def f(n: int) -> int:
            step()
            return n

        assert f("3") == 3
        state = f("many", return_state=True)
        assert state.is_failed() and "parameter 'n'" in state.message and ran == [1]
        with pytest.raises(InvalidInput, match="parameter 'n'"):
            f("many")

    def test_parameters_may_share_names_with_engine_internals(self):
        """Parameters called fn, seconds or kind reach the flow and the task unchanged."""

        @task
        def t(fn: str, seconds: float, kind: str) -> str:
            return f"{fn}-{seconds}-{kind}"

        @flow
        def f(fn: str, seconds: float = 1.5, kind: str = "k") -> str:
            return t(fn, seconds=seconds, kind=kind)

        assert f("a") == "a-1.5-k"

    def test_validation_can_be_switched_off(self):
        """validate_parameters=False passes values through unchanged."""

        @flow(validate_parameters=False)
        def f(n: int) -> object:
            return n

        assert f("3") == "3"

    def test_retries_rerun_with_delay(self):
        """retries=2 reruns the flow body, sleeping retry_delay_seconds between attempts."""
        sleeps: list[float] = []
        attempts: list[int] = []

        def body() -> int:
            attempts.append(runtime.flow_run.run_count)
            if len(attempts) < 3:
                raise RuntimeError("flaky")
            return len(attempts)

        assert Flow(body, retries=2, retry_delay_seconds=3, sleep=sleeps.append)() == 3
        assert attempts == [1, 2, 3] and sleeps == [3, 3]

    def test_timeout_fails_the_flow(self):
        """A flow past timeout_seconds fails with TimeoutError named."""
        release = threading.Event()

        @flow(timeout_seconds=0.05)
        def f() -> None:
            release.wait(10)

        state = f(return_state=True)
        release.set()
        assert (
            state.is_failed() and state.name == "TimedOut" and "exceeded timeout" in state.message
        )

    def test_hooks_by_final_state(self, capsys):
        """on_completion and on_failure hooks run; a raising hook does not change the state."""
        seen: list[str] = []

        def note(fl, run, state) -> None:
            seen.append(f"{fl.name}:{state.name}")

        def broken(fl, run, state) -> None:
            raise RuntimeError("hook bug")

        @flow(on_completion=[broken, note])
        def good() -> int:
            return 1

        @flow(on_failure=note)
        def bad() -> None:
            raise ValueError("x")

        assert good() == 1
        assert bad(return_state=True).is_failed()
        assert seen == ["good:Completed", "bad:Failed"]
        assert "hook bug" in capsys.readouterr().err

    def test_crashed_hook_on_keyboard_interrupt(self):
        """A BaseException crashes the run: on_crashed runs and the exception propagates."""
        seen: list[str] = []

        @flow(on_crashed=lambda fl, run, state: seen.append(state.name))
        def f() -> None:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            f()
        assert seen == ["Crashed"]

    def test_log_prints(self, capsys):
        """log_prints=True turns print into log records of the run."""

        @flow(log_prints=True)
        def f() -> None:
            print("hello there")

        f()
        captured = capsys.readouterr()
        assert "hello there" in captured.err and captured.out == ""

    def test_a_subflow_can_switch_off_its_parents_log_prints(self, capsys):
        """Unset, a subflow follows its parent; ``log_prints=False`` keeps print a print."""

        @flow(log_prints=False)
        def quiet() -> None:
            print("plain print")

        @flow
        def follows() -> None:
            print("logged print")

        @flow(log_prints=True)
        def parent() -> None:
            quiet()
            follows()

        parent()
        captured = capsys.readouterr()
        assert "plain print" in captured.out and "plain print" not in captured.err
        assert "logged print" in captured.err and "logged print" not in captured.out


class TestSubflows:
    def test_a_subflow_is_linked_to_a_task_run_of_its_parent(self):
        """The child's parent_task_run_id is set; its tasks belong to the child run."""
        seen: dict[str, object] = {}

        @task
        def where() -> str | None:
            return runtime.flow_run.name

        @flow(flow_run_name="child-run")
        def child() -> str | None:
            seen["parent_task_run_id"] = runtime.flow_run.parent_task_run_id
            return where()

        @flow(flow_run_name="parent-run")
        def parent() -> tuple:
            return child(), runtime.flow_run.name

        assert parent() == ("child-run", "parent-run")
        assert seen["parent_task_run_id"] is not None

    def test_a_failed_subflow_raises_in_the_parent(self):
        """A subflow's exception reaches the parent like a task's."""

        @flow
        def child() -> None:
            raise ValueError("deep")

        @flow
        def parent() -> str:
            state = child(return_state=True)
            return state.type.value

        assert parent() == "FAILED"
