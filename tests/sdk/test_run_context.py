"""``flowyard.context``: Prefect's ``get_run_context()`` and ``*RunContext.get()``."""

from __future__ import annotations

import pytest

from flowyard import flow, task
from flowyard.context import FlowRunContext, TaskRunContext, get_run_context
from flowyard.errors import InvalidInput
from flowyard.exceptions import MissingContextError, ParameterTypeError
from flowyard.runtime import flow_run, task_run


@task
def where_am_i() -> tuple[str, str | None, str, bool]:
    ctx = get_run_context()
    assert isinstance(ctx, TaskRunContext)
    outer = FlowRunContext.get()
    assert outer is not None
    return ctx.task_run.name, ctx.task_run.id, outer.flow_run.id, ctx.task_run.id == task_run.id


@flow(flow_run_name="ctx-run")
def context_flow() -> dict[str, object]:
    ctx = get_run_context()
    assert isinstance(ctx, FlowRunContext) and TaskRunContext.get() is None
    called = where_am_i()
    submitted = where_am_i.submit()
    return {
        "flow": (ctx.flow_run.id, ctx.flow_run.name, ctx.flow.name, flow_run.id),
        "called": called,
        "submitted": submitted.result(),
        "submitted_id": submitted.task_run_id,
    }


def test_get_run_context_is_the_task_run_inside_a_task_and_the_flow_run_outside():
    seen = context_flow()
    flow_id, flow_name, flow_fn_name, runtime_id = seen["flow"]
    assert (flow_name, flow_fn_name, runtime_id) == ("ctx-run", "context-flow", flow_id)
    name, task_run_id, parent_id, same_as_runtime = seen["called"]
    assert (name, parent_id, same_as_runtime) == ("where_am_i-0", flow_id, True)
    name, task_run_id, parent_id, same_as_runtime = seen["submitted"]
    assert (name, parent_id, same_as_runtime) == ("where_am_i-1", flow_id, True)
    assert task_run_id == seen["submitted_id"] is not None


def test_outside_any_run_get_run_context_raises_and_get_returns_none():
    with pytest.raises(MissingContextError, match="No run context"):
        get_run_context()
    assert FlowRunContext.get() is None and TaskRunContext.get() is None


def test_a_wrong_parameter_type_raises_prefects_parameter_type_error():
    """Prefect users catch ``ParameterTypeError``; it is also our ``InvalidInput``."""

    @flow
    def typed(n: int) -> int:
        return n

    with pytest.raises(ParameterTypeError, match="'n'") as info:
        typed("not a number")
    assert isinstance(info.value, InvalidInput)
