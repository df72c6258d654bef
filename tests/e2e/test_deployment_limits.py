"""Deployment concurrency limits end to end: runs wait their turn, or are cancelled."""

from __future__ import annotations

import itertools

from flowyard import schemas as s
from flowyard.states import StateType
from tests.waiting import wait_until


def _intervals(api, run_ids: list[str]) -> list[tuple[float, float]]:
    """(Running, end) times of each run, from its history."""
    spans = []
    for run_id in run_ids:
        states = api.read_flow_run_history(run_id).states
        start = next(st.timestamp for st in states if st.type is StateType.RUNNING)
        end = next(st.timestamp for st in states if st.type.is_terminal)
        spans.append((start.timestamp(), end.timestamp()))
    return sorted(spans)


def test_limit_one_runs_one_at_a_time(api, deploy, start_worker, tmp_path):
    """Three runs of a deployment limited to 1, on a worker with room for 4: all complete,
    never two at once."""
    dep = deploy("sleeper", parameters={"folder": str(tmp_path), "seconds": 1}, concurrency_limit=1)
    assert dep.concurrency_limit == 1 and dep.collision_strategy == "enqueue"
    run_ids = [api.run_deployment(dep.id, s.DeploymentRunRequest()).id for _ in range(3)]
    start_worker("--limit", "4")
    wait_until(
        lambda: all(api.read_flow_run(r).state.type is StateType.COMPLETED for r in run_ids),
        timeout=120,
    )
    spans = _intervals(api, run_ids)
    assert all(prev_end <= start for (_, prev_end), (start, _) in itertools.pairwise(spans))


def test_cancel_new_cancels_a_run_due_while_the_limit_is_reached(
    api, deploy, start_worker, tmp_path
):
    """With cancel-new, a run due while another runs is Cancelled, saying why."""
    dep = deploy(
        "sleeper",
        parameters={"folder": str(tmp_path), "seconds": 60},
        concurrency_limit=1,
        collision_strategy="cancel-new",
    )
    first = api.run_deployment(dep.id, s.DeploymentRunRequest())
    start_worker("--limit", "4")
    wait_until(lambda: api.read_flow_run(first.id).state.type is StateType.RUNNING, timeout=60)
    second = api.run_deployment(dep.id, s.DeploymentRunRequest())
    cancelled = wait_until(
        lambda: (run := api.read_flow_run(second.id)).state.type is StateType.CANCELLED and run,
        timeout=60,
    )
    assert "concurrency limit" in cancelled.state.message
    assert api.read_flow_run(first.id).state.type is StateType.RUNNING
    api.cancel_flow_run(first.id)
