"""The task graph of a flow run, built from recorded task inputs (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flowyard import schemas as s
from flowyard.orchestrator.graph import build_graph
from flowyard.states import StateType

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def task_run(id: str, second: int, **inputs: list[str]) -> s.TaskRun:
    return s.TaskRun(
        id=id, flow_run_id="run", name=f"{id}-0", task_key=id, state_type=StateType.COMPLETED,
        message=None, start_time=T0 + timedelta(seconds=second), end_time=None, created=T0,
        task_inputs={p: [s.TaskRunInput(id=u) for u in ups] for p, ups in inputs.items()},
    )  # fmt: skip


def subflow(id: str, parent_task_run_id: str) -> s.FlowRun:
    state = s.StateDoc(type=StateType.FAILED, name="Failed", timestamp=T0)
    return s.FlowRun(
        id=id, name="child", flow_id="f", flow_name="child", deployment_id=None,
        deployment_name=None, pool_name=None, queue_name=None, parameters={},
        job_variables={}, state=state, scheduled_time=T0, start_time=None, end_time=None,
        worker_name=None, infrastructure_id=None, created=T0,
        parent_task_run_id=parent_task_run_id,
    )  # fmt: skip


def edges(graph: s.FlowRunGraph) -> set[tuple[str, str, str]]:
    return {(e.upstream, e.downstream, e.parameter) for e in graph.edges}


def test_edges_follow_recorded_inputs():
    """Each input names an edge upstream → downstream with its parameter."""
    runs = [
        task_run("a", 0),
        task_run("b", 1, x=["a"]),
        task_run("c", 2, y=["a", "b"], wait_for=["b"]),
    ]
    graph = build_graph("run", runs, [])
    assert edges(graph) == {
        ("a", "b", "x"),
        ("a", "c", "y"),
        ("b", "c", "y"),
        ("b", "c", "wait_for"),
    }
    assert [n.id for n in graph.nodes] == ["a", "b", "c"]


def test_a_subflow_stands_in_for_the_task_run_of_its_call():
    """Edges into and out of a subflow call meet the child flow run's node."""
    graph = build_graph(
        "run",
        [task_run("a", 0), task_run("call", 1, n=["a"]), task_run("d", 2, v=["call"])],
        [subflow("child-run", "call")],
    )
    assert edges(graph) == {("a", "child-run", "n"), ("child-run", "d", "v")}
    child = next(n for n in graph.nodes if n.id == "child-run")
    assert (child.kind, child.state_type) == ("flow-run", StateType.FAILED)
    assert child.start_time == T0 + timedelta(seconds=1)  # the call's, the child has none
    assert "call" not in {n.id for n in graph.nodes}


def test_inputs_from_outside_the_flow_run_are_left_out():
    """An upstream that is not a node of this run (another run's task) gives no edge."""
    graph = build_graph("run", [task_run("a", 0, x=["elsewhere"])], [])
    assert graph.edges == []
