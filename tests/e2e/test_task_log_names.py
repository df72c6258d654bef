"""A deployed run's task logs name their task run, as a script run prints them."""

from __future__ import annotations

from flowyard import schemas as s
from flowyard.states import StateType
from tests.servers import run_cli
from tests.waiting import wait_until


def test_flow_run_logs_name_the_task_run_of_each_task_line(server, api, deploy, start_worker):
    """``flow-run logs`` prints ``Task run 'double-0' - …`` for the task's lines; the flow's
    own lines carry no task run."""
    dep = deploy("noop", parameters={"n": 2})
    run = api.run_deployment(dep.id, s.DeploymentRunRequest())
    start_worker()
    wait_until(lambda: api.read_flow_run(run.id).state.type is StateType.COMPLETED, timeout=60)
    logs = run_cli(server, "flow-run", "logs", run.id)
    assert logs.returncode == 0, logs.stderr
    lines = logs.stdout.splitlines()
    assert any("Task run 'double-0' - Finished in state Completed()" in line for line in lines)
    flow_lines = [line for line in lines if "Finished in state Completed()" in line]
    assert len(flow_lines) == 2 and sum("Task run" in line for line in flow_lines) == 1, lines
