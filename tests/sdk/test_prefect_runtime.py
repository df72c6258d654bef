"""``flowyard.runtime`` and what reads it, as Prefect 3.9.1's (issue 19).

The expectations come from Prefect's ``tests/runtime/test_flow_run.py``,
``tests/runtime/test_task_run.py`` and ``tests/test_flows.py``, and from running the same
programs under Prefect 3.9.1.
"""

from __future__ import annotations

from typing import Any

import pytest

from flowyard import flow, runtime, task

pytestmark = pytest.mark.timeout(60)


def _flow_run_name() -> str:
    return f"fr-{runtime.flow_run.flow_name}-{runtime.flow_run.parameters.get('x')}"


def _task_run_name() -> str:
    task_run, flow_run = runtime.task_run, runtime.flow_run
    return f"tr-{task_run.task_name}-{task_run.parameters.get('y')}-{flow_run.parameters.get('x')}"


@task(task_run_name=_task_run_name)
def named_task(y: int) -> str | None:
    return runtime.task_run.name


@flow(flow_run_name=_flow_run_name)
def named_flow(x: int) -> tuple[str | None, str | None, str | None]:
    plain = named_task(3)
    optioned = named_task.with_options(task_run_name=_task_run_name)(4)
    return runtime.flow_run.name, plain, optioned


class TestCallableRunNames:
    """Prefect's ``test_flows.py::TestFlowRunName::test_flow_run_name_from_callable_...``
    and ``test_tasks.py::TestTaskRunName``: a callable name reads ``runtime``."""

    def test_a_callable_flow_run_name_and_task_run_name_see_the_runtime(self):
        assert named_flow(7) == ("fr-named-flow-7", "tr-named_task-3-7", "tr-named_task-4-7")

    def test_they_still_see_it_after_with_options(self):
        renamed = named_flow.with_options(name="other", flow_run_name=_flow_run_name)
        assert renamed(8)[0] == "fr-other-8"

    def test_a_name_that_is_not_a_string_is_refused_as_prefect_does(self):
        """``TestFlowRunName::test_sets_run_name_with_function_not_returning_string`` and
        ``test_invalid_runtime_run_name``: TypeError from the flow call. A task's name
        error fails its run (Flowyard's early failures), with Prefect's message."""

        @flow(flow_run_name=lambda: None)
        def unnamed() -> None:
            pass

        with pytest.raises(TypeError, match="returned type NoneType but a string is required"):
            unnamed()
        unnamed.flow_run_name = 3
        with pytest.raises(TypeError, match="Expected string or callable for 'flow_run_name'"):
            unnamed()

        @task(task_run_name=lambda: None)
        def unnamed_task() -> None:
            pass

        @flow
        def calls() -> str | None:
            return unnamed_task(return_state=True).message

        assert "for 'task_run_name' returned type NoneType" in (calls() or "")


@flow
def child_lineage() -> tuple[str | None, str | None, str | None]:
    flow_run = runtime.flow_run
    return flow_run.id, flow_run.parent_flow_run_id, flow_run.root_flow_run_id


@flow
def middle_lineage() -> Any:
    return child_lineage(), runtime.flow_run.id


@flow
def root_lineage() -> Any:
    (grandchild, middle_id), own = middle_lineage(), runtime.flow_run
    return grandchild, middle_id, own.id, own.parent_flow_run_id, own.root_flow_run_id


class TestFlowRunLineage:
    """Prefect's ``tests/runtime/test_flow_run.py::TestParentFlowRunId`` and
    ``TestRootFlowRunId``."""

    def test_a_subflow_knows_its_parent_and_the_root(self):
        grandchild, middle_id, root_id, root_parent, root_root = root_lineage()
        grandchild_id, grandchild_parent, grandchild_root = grandchild
        assert grandchild_parent == middle_id != root_id
        assert grandchild_root == root_id == root_root
        assert root_parent is None
        assert len({grandchild_id, middle_id, root_id}) == 3

    def test_outside_a_run_they_are_none(self):
        flow_run = runtime.flow_run
        assert (flow_run.parent_flow_run_id, flow_run.root_flow_run_id) == (None, None)
        assert (flow_run.api_url, flow_run.ui_url, flow_run.job_variables) == (None, None, None)
        assert runtime.task_run.api_url is None


class TestRuntimeAttributes:
    """Prefect's ``tests/runtime/test_flow_run.py`` ``TestFlowVersion``-style checks and
    ``TestParentDeploymentId::test_parent_deployment_id_is_empty_when_not_set``."""

    def test_the_flow_version_and_no_parent_deployment(self):
        @flow(version="1.2")
        def f() -> tuple[str | None, str | None]:
            return runtime.flow_run.flow_version, runtime.flow_run.parent_deployment_id

        assert f() == ("1.2", None)


class TestVariadicParameters:
    """Prefect's ``test_flows.py::test_call_with_variadic_args`` / ``..._keyword_args``;
    under Prefect 3.9.1 the named parameters are coerced, ``*args``/``**kwargs`` are not."""

    def test_named_parameters_are_coerced_and_variadic_ones_kept(self):
        @flow
        def f(a: int, *args: int, **kwargs: int) -> Any:
            return a, args, kwargs

        assert f("1", "2", "3", x="4") == (1, ("2", "3"), {"x": "4"})

    def test_a_keyword_only_parameter_beside_kwargs_is_coerced(self):
        @flow
        def f(a: Any, *, b: int = 3, **kw: Any) -> Any:
            return a, b, kw

        assert f(1, b="5", c=2) == (1, 5, {"c": 2})

    def test_a_bad_named_value_beside_args_fails_the_run_naming_it(self):
        @flow
        def f(a: int, *args: Any) -> Any:
            return a

        state = f("x", 1, return_state=True)
        assert state.is_failed() and "'a'" in state.message

    def test_variadic_only_flows_take_anything(self):
        @flow
        def f(*foo: Any, bar: Any) -> Any:
            return foo, bar

        assert f(1, 2, 3, bar=4) == ((1, 2, 3), 4)


class TestResultStorageKeys:
    """Prefect's ``tests/results/test_task_results.py``
    (``test_task_result_parameter_formatted_storage_key``,
    ``test_task_result_flow_run_formatted_storage_key``) and ``test_flow_results.py::
    test_flow_version_result_storage_key``: the template reads the runtime."""

    def test_templates_are_formatted_with_the_parameters_and_the_runtime(
        self, tmp_path, monkeypatch
    ):
        monkeypatch.setenv("FLOWYARD_HOME", str(tmp_path))

        @task(result_storage_key="{parameters[x]}-{parameters[y]}-{task_run.task_name}")
        def bar(x: int = 1, y: str = "test") -> int:
            return 1

        @task(result_storage_key="{flow_run.flow_name}__bar", persist_result=True)
        def by_flow() -> int:
            return 2

        @task(result_storage_key="{flowyard.runtime.flow_run.flow_version}")
        def by_version() -> int:
            return 3

        @flow(version="special")
        def foo() -> None:
            bar(y="foo")
            by_flow()
            by_version()

        foo()
        written = sorted(p.name for p in (tmp_path / "storage").iterdir())
        assert written == ["1-foo-bar", "foo__bar", "special"]
