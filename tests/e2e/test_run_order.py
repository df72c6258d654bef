"""Per-run priority and fair queues end to end: CLI and API, a real worker, real runs."""

from __future__ import annotations

import json

from click.testing import CliRunner

from flowyard import schemas as s
from flowyard.cli.main import cli
from flowyard.states import StateType
from tests.waiting import wait_until


def _start_order(api, run_ids: list[str]) -> list[str]:
    """The runs, by the time each became Running."""

    def started(run_id: str) -> float:
        states = api.read_flow_run_history(run_id).states
        return next(st.timestamp for st in states if st.type is StateType.RUNNING).timestamp()

    return sorted(run_ids, key=started)


def _wait_completed(api, run_ids: list[str]) -> None:
    wait_until(
        lambda: all(api.read_flow_run(r).state.type is StateType.COMPLETED for r in run_ids),
        timeout=180,
    )


def _cli(server, *args: str) -> str:
    result = CliRunner().invoke(cli, list(args), env={"FLOWYARD_API_URL": server.url})
    assert result.exit_code == 0, result.output
    return result.output


def test_deployment_run_priority_jumps_the_backlog(api, server, deploy, start_worker):
    """`deployment run --priority -5` is started before runs created earlier; the default
    comes from the deployment (`deploy --priority`), and a bad priority is refused."""
    plain = deploy("noop")
    background = deploy("noop", name="background", priority=10)
    assert background.priority == 10
    later = api.run_deployment(background.id, s.DeploymentRunRequest())
    backlog = [api.run_deployment(plain.id, s.DeploymentRunRequest()).id for _ in range(4)]
    output = _cli(server, "deployment", "run", plain.id, "--priority", "-5", "--json")
    urgent = json.loads(output)
    assert urgent["priority"] == -5 and later.priority == 10
    refused = CliRunner().invoke(
        cli,
        ["deployment", "run", plain.id, "--priority", "5000"],
        env={"FLOWYARD_API_URL": server.url},
    )
    assert refused.exit_code != 0 and "5000" in refused.output

    start_worker("--limit", "1")
    runs = [urgent["id"], *backlog, later.id]
    _wait_completed(api, runs)
    order = _start_order(api, runs)
    assert order[0] == urgent["id"]
    assert order[-1] == later.id  # priority 10 waits behind the default 0


def test_a_fair_queue_serves_a_small_deployment_within_a_burst(
    api, server, pool, deploy, start_worker
):
    """Ten runs of one deployment, then two of another, in a queue made fair with the CLI:
    the second deployment's runs start before the burst is through."""
    _cli(server, "work-queue", "create", "shared", "--pool", pool)
    _cli(server, "work-queue", "set-fair", "shared", "on", "--pool", pool)
    shown = json.loads(_cli(server, "work-queue", "inspect", "shared", "--pool", pool, "--json"))
    assert shown["fair"] is True
    burst = deploy("noop", name="burst", queue_name="shared")
    small = deploy("noop", name="small", queue_name="shared")
    burst_runs = [api.run_deployment(burst.id, s.DeploymentRunRequest()).id for _ in range(10)]
    worker = start_worker("--limit", "1")
    first = burst_runs[0]
    wait_until(lambda: api.read_flow_run(first).state.type is not StateType.SCHEDULED, timeout=60)
    small_runs = [api.run_deployment(small.id, s.DeploymentRunRequest()).id for _ in range(2)]
    _wait_completed(api, burst_runs + small_runs)
    order = _start_order(api, burst_runs + small_runs)
    # with first come first served they would be the last two; taking turns, both start
    # within the first few (how many burst runs the worker had claimed before they came
    # depends on timing, so allow for a few)
    assert max(order.index(r) for r in small_runs) <= 6, order
    assert worker.alive()
