"""The Prefect-compatible public surface: names, call forms and the options added for it."""

from __future__ import annotations

import importlib

import pytest

from flowyard import flow, task
from flowyard.sdk.hook_lists import HookList
from flowyard.states import State

SURFACE = {
    "flowyard": ["flow", "task", "get_run_logger", "unmapped", "allow_failure", "tags"],
    "flowyard.tasks": ["task_input_hash", "exponential_backoff"],
    "flowyard.cache_policies": ["INPUTS", "TASK_SOURCE", "NONE", "DEFAULT", "NO_CACHE"],
    "flowyard.states": [
        "Completed", "Failed", "Cancelled", "Crashed", "Pending", "Running", "Scheduled",
        "Late", "AwaitingRetry", "Retrying", "State",
    ],
    "flowyard.futures": ["wait", "as_completed"],
    "flowyard.runtime": ["flow_run", "task_run", "deployment"],
    "flowyard.task_runners": ["ThreadPoolTaskRunner", "ConcurrentTaskRunner"],
    "flowyard.utilities.annotations": ["quote", "opaque", "unmapped", "allow_failure"],
    "flowyard.logging": ["get_run_logger"],
    "flowyard.concurrency.sync": ["concurrency"],
    "flowyard.concurrency.asyncio": ["concurrency"],
    "flowyard.context": ["get_run_context", "FlowRunContext", "TaskRunContext", "tags"],
    "flowyard.artifacts": [
        "create_markdown_artifact", "create_table_artifact", "create_link_artifact",
        "create_progress_artifact", "update_progress_artifact", "create_image_artifact",
        "acreate_markdown_artifact", "acreate_table_artifact", "acreate_link_artifact",
        "acreate_progress_artifact", "aupdate_progress_artifact", "acreate_image_artifact",
    ],
    "flowyard.exceptions": [
        "MissingContextError", "MissingResult", "ParameterTypeError", "UpstreamTaskError",
    ],
}  # fmt: skip


@pytest.mark.parametrize(("module", "names"), SURFACE.items())
def test_every_name_of_the_surface_imports(module, names):
    """Each module Prefect users import from exists with Prefect's names."""
    loaded = importlib.import_module(module)
    assert [n for n in names if not hasattr(loaded, n)] == []


class TestCallForms:
    def test_decorators_as_function_calls(self):
        """flow(name=...)(fn) and task(fn) work as calls, not only as decorators."""

        def double(x: int) -> int:
            return 2 * x

        doubling = task(double)
        pipeline = flow(name="doubler")(lambda x: doubling(x))
        assert pipeline.name == "doubler" and pipeline(4) == 8
        assert doubling.fn is double

    def test_hooks_added_by_decorator_survive_with_options(self):
        """@t.on_failure adds to a HookList that with_options copies."""
        seen: list[str] = []

        @task
        def boom() -> None:
            raise ValueError("boom")

        @boom.on_failure
        def note(tsk, run, state: State) -> None:
            seen.append(state.name)

        assert isinstance(boom.on_failure, HookList)
        renamed = boom.with_options(name="renamed")
        assert renamed(return_state=True).is_failed() and seen == ["Failed"]

    def test_on_running_hooks_run_on_every_attempt(self):
        """A task's on_running hook runs once per attempt, seeing Running then Retrying."""
        names: list[str] = []

        def record(tsk, run, state: State) -> None:
            names.append(state.name)

        @task(retries=2, on_running=[record])
        def flaky() -> int:
            if len(names) < 3:
                raise RuntimeError("not yet")
            return 1

        assert flaky() == 1
        assert names == ["Running", "Retrying", "Retrying"]

    def test_a_flows_on_running_hooks_run_on_every_attempt(self):
        """As Prefect 3.9 does: a flow retried twice calls its on_running hook three times,
        each seeing the Running state of that attempt."""
        seen: list[tuple[str, int]] = []

        def record(flw, run, state: State) -> None:
            seen.append((state.name, run.run_count))

        @flow(retries=2, on_running=[record])
        def flaky() -> int:
            if len(seen) < 3:
                raise RuntimeError("not yet")
            return 1

        assert flaky() == 1
        assert seen == [("Running", 1), ("Running", 2), ("Running", 3)]

    def test_a_flow_returning_a_mix_of_values_and_states_completes(self):
        """Only a collection made entirely of states decides the flow's state, as in Prefect."""

        @task
        def bad() -> None:
            raise ValueError("meh")

        @flow
        def mixed():
            return "bar", bad(return_state=True)

        label, state = mixed()
        assert label == "bar" and state.is_failed()

    def test_persist_result_false_turns_a_cache_policy_off(self):
        """An explicit persist_result=False means no cache, whatever the policy."""
        from flowyard.cache_policies import INPUTS

        assert task(cache_policy=INPUTS, persist_result=False)(abs).effective_cache_policy is None
        assert task(persist_result=True)(abs).effective_cache_policy is not None
        assert task(abs).effective_cache_policy is None
