"""A flow run's task graph, from what its task runs recorded (pure).

Nodes are the flow run's task runs and its child flow runs. A subflow call is recorded
as a task run of the parent (its ``parent_task_run_id``); in the graph the child flow
run stands in for that task run, so edges into and out of the call meet the subflow, as
in Prefect's graph. Edges come from each task run's ``task_inputs``: upstream run →
downstream run, with the parameter the upstream fed (``wait_for`` for ordering only).
Inputs from runs outside this flow run are left out.
"""

from __future__ import annotations

from datetime import datetime

from flowyard import schemas as s


def build_graph(
    flow_run_id: str, task_runs: list[s.TaskRun], subflows: list[s.FlowRun]
) -> s.FlowRunGraph:
    """The graph of ``flow_run_id`` from its task runs and its child flow runs."""
    stand_in = {f.parent_task_run_id: f.id for f in subflows if f.parent_task_run_id}
    calls = {t.id: t for t in task_runs}
    nodes = [_task_node(t) for t in task_runs if t.id not in stand_in]
    nodes += [_subflow_node(f, calls.get(f.parent_task_run_id or "")) for f in subflows]
    nodes.sort(key=_order)
    known = {n.id for n in nodes}
    edges: dict[tuple[str, str, str], s.GraphEdge] = {}
    for task_run in task_runs:
        downstream = stand_in.get(task_run.id, task_run.id)
        for parameter, inputs in task_run.task_inputs.items():
            for upstream_input in inputs:
                upstream = stand_in.get(upstream_input.id, upstream_input.id)
                if upstream in known and upstream != downstream:
                    edge = s.GraphEdge(
                        upstream=upstream, downstream=downstream, parameter=parameter
                    )
                    edges.setdefault((upstream, downstream, parameter), edge)
    return s.FlowRunGraph(flow_run_id=flow_run_id, nodes=nodes, edges=list(edges.values()))


def _task_node(task_run: s.TaskRun) -> s.GraphNode:
    return s.GraphNode(
        id=task_run.id,
        name=task_run.name,
        kind="task-run",
        state_type=task_run.state_type,
        state_name=task_run.state_name,
        start_time=task_run.start_time,
        end_time=task_run.end_time,
        tags=task_run.tags,
    )


def _subflow_node(flow_run: s.FlowRun, call: s.TaskRun | None) -> s.GraphNode:
    return s.GraphNode(
        id=flow_run.id,
        name=flow_run.name,
        kind="flow-run",
        state_type=flow_run.state.type,
        state_name=flow_run.state.name,
        start_time=flow_run.start_time or (call.start_time if call else None),
        end_time=flow_run.end_time or (call.end_time if call else None),
        tags=call.tags if call else [],
    )


def _order(node: s.GraphNode) -> tuple[bool, datetime | None, str]:
    return (node.start_time is None, node.start_time, node.name)
