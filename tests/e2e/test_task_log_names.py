"""A deployed run's task logs name their task run, as a script run prints them."""

from __future__ import annotations

import json

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


def test_flow_run_logs_json_and_ls_times_with_their_zone(server, api, deploy, start_worker):
    """``flow-run logs --json`` gives the logs as JSON (task lines with their task run id);
    ``flow-run ls`` writes its times in UTC, saying so."""
    dep = deploy("noop", parameters={"n": 2})
    run = api.run_deployment(dep.id, s.DeploymentRunRequest())
    start_worker()
    wait_until(lambda: api.read_flow_run(run.id).state.type is StateType.COMPLETED, timeout=60)
    logs = run_cli(server, "flow-run", "logs", run.id[:8], "--json")
    assert logs.returncode == 0, logs.stderr
    entries = json.loads(logs.stdout)
    assert [e["id"] for e in entries] == [log.id for log in api.read_logs(run.id)]
    assert any(e["task_run_id"] for e in entries)
    assert all(e["flow_run_id"] == run.id for e in entries)
    both = run_cli(server, "flow-run", "logs", run.id, "--json", "--follow")
    assert both.returncode == 2 and "without --follow" in both.stderr
    listed = run_cli(server, "flow-run", "ls", "--pool", dep.pool_name)
    [row] = [line for line in listed.stdout.splitlines() if run.id in line]
    assert row.count(" UTC") == 1, row
