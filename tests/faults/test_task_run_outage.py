"""The API goes away in the middle of a flow called from a script, then comes back."""

from __future__ import annotations

from datetime import UTC, datetime

from flowyard import flow, task
from flowyard.cli.processes import ServerProcess
from flowyard.pools import ManagedRedis
from flowyard.runtime import flow_run
from flowyard.sdk.context import get_flow_run_context
from flowyard.states import StateType
from tests.waiting import wait_until


def test_task_run_records_made_during_an_outage_arrive_when_the_api_is_back(tmp_path, monkeypatch):
    """Tasks run on unaffected while the API is down; the records made meanwhile are kept,
    retried, and arrive once the API is back (same store), with the times they happened."""
    redis = ManagedRedis(workdir=tmp_path / "redis").start()
    env = {"FLOWYARD_REDIS_URL": redis.url}
    servers = [ServerProcess(tmp_path / "home", env=env)]
    marks: dict[str, datetime] = {}

    @task
    def step(i: int) -> int:
        return i * 10

    @task
    def stop_api() -> None:
        servers[-1].stop()

    @task
    def restart_api() -> None:
        reporter = get_flow_run_context().reporter
        wait_until(lambda: reporter.failed_batches > 0, timeout=60)  # a batch met the outage
        marks["restart"] = datetime.now(UTC)
        servers.append(ServerProcess(tmp_path / "home", port=servers[0].port, env=env))
        servers[-1].wait_ready()

    @flow(name="outage")
    def outage() -> tuple[str, list[int]]:
        values = [step(i) for i in range(5)]
        stop_api()
        values += [step(i) for i in range(5, 10)]
        restart_api()
        values += [step(i) for i in range(10, 15)]
        return flow_run.id, values

    try:
        servers[0].wait_ready()
        monkeypatch.setenv("FLOWYARD_API_URL", servers[0].url)
        run_id, values = outage()
        assert values == [i * 10 for i in range(15)]
        with servers[-1].client() as api:
            assert api.read_flow_run(run_id).state.type is StateType.COMPLETED
            task_runs = {t.name: t for t in api.list_task_runs(run_id)}
    finally:
        for server in servers:
            server.stop()
        redis.stop()
    steps = [f"step-{i}" for i in range(15)]
    assert set(task_runs) == {*steps, "stop_api-0", "restart_api-0"}
    assert all(task_runs[name].state_type is StateType.COMPLETED for name in task_runs)
    during = [task_runs[f"step-{i}"] for i in range(5, 10)]
    assert all(t.end_time is not None and t.end_time < marks["restart"] for t in during)
