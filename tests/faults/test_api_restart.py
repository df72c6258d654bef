"""The API restarted mid-run: engines and workers ride it out, nothing is lost or doubled."""

from __future__ import annotations

import os
import textwrap
import threading
import time

import redis

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess, WorkerProcess
from flowyard.pools import ManagedRedis, keys
from flowyard.states import StateType
from tests.e2e.conftest import FAST, create_process_pool, deploy_flow
from tests.waiting import wait_until


def _leases_expired(redis_url: str, pool: str, count: int) -> bool:
    """Every one of the ``count`` leases of the pool is past its expiry."""
    client = redis.Redis.from_url(redis_url)
    try:
        leases = client.zrange(keys.leases(pool), 0, -1, withscores=True)
    finally:
        client.close()
    return len(leases) == count and all(expiry < time.time() for _, expiry in leases)


FLOWS = textwrap.dedent(
    """
    import os
    import time
    from pathlib import Path

    from flowyard import flow, get_run_logger


    def _wait_for(path: Path) -> None:
        deadline = time.monotonic() + 120
        while not path.exists():
            assert time.monotonic() < deadline, f"{path} never appeared"
            time.sleep(0.05)


    @flow(name="outlives-api")
    def outlives_api(folder: str) -> None:
        logger = get_run_logger()
        run_id = os.environ["FLOWYARD_FLOW_RUN_ID"]
        Path(folder, run_id + ".started").write_text("")
        _wait_for(Path(folder, "api-down"))
        logger.info("logged while the API was down")
        _wait_for(Path(folder, "api-back"))
        with open(Path(folder, run_id), "a") as marker:
            marker.write("ran\\n")


    @flow(name="ends-while-api-down")
    def ends_while_api_down(folder: str) -> None:
        run_id = os.environ["FLOWYARD_FLOW_RUN_ID"]
        Path(folder, run_id + ".pid").write_text(str(os.getpid()))
        _wait_for(Path(folder, "api-down"))
        get_run_logger().info("finished while the API was down")
        with open(Path(folder, run_id), "a") as marker:
            marker.write("ran\\n")
    """
)

OUTAGE_SECONDS = 45.0
"""Longer than an engine's client retries (10 s) and log flush (30 s) put together."""


def test_runs_complete_across_an_api_restart(tmp_path):
    """Three runs in flight when the API stops and comes back (same store, same Redis):
    all end Completed, each ran once, none was Crashed on the way, and the log lines
    written while the API was down arrive."""
    managed = ManagedRedis(workdir=tmp_path / "redis").start()
    env = {**FAST, "FLOWYARD_REDIS_URL": managed.url}
    server = ServerProcess(tmp_path / "home", env=env)
    worker = None
    try:
        server.wait_ready()
        api = server.client()
        pool = create_process_pool(api, "restarts")
        flows, folder = tmp_path / "flows", tmp_path / "markers"
        flows.mkdir()
        folder.mkdir()
        (flows / "flows.py").write_text(FLOWS)
        dep = deploy_flow(api, pool, flows, "outlives_api", parameters={"folder": str(folder)})
        run_ids = [api.run_deployment(dep.id, s.DeploymentRunRequest()).id for _ in range(3)]
        worker = WorkerProcess(server.url, pool, tmp_path, "--limit", "4", env=FAST)
        wait_until(lambda: all((folder / f"{r}.started").exists() for r in run_ids), timeout=60)
        server.stop()
        (folder / "api-down").write_text("")
        # down for longer than a lease: no heartbeat reached the API meanwhile
        wait_until(lambda: _leases_expired(managed.url, pool, len(run_ids)), timeout=60)
        server = ServerProcess(tmp_path / "home", port=server.port, env=env)
        server.wait_ready()
        (folder / "api-back").write_text("")
        api = server.client()
        wait_until(
            lambda: all(api.read_flow_run(r).state.type is StateType.COMPLETED for r in run_ids),
            timeout=120,
        )
        for run_id in run_ids:
            assert (folder / run_id).read_text() == "ran\n"
            names = [st.name for st in api.read_flow_run_history(run_id).states]
            assert "Crashed" not in names, names
            wait_until(
                lambda run_id=run_id: any(
                    "logged while the API was down" in line.message
                    for line in api.read_logs(run_id)
                ),
                timeout=60,
            )
        api.close()
    finally:
        if worker is not None:
            worker.stop()
        server.stop()
        managed.stop()


def test_runs_that_end_during_a_long_api_outage_wait_and_report_completed(tmp_path):
    """Runs whose flows end while the API is down for longer than any client retry: each
    engine stays alive, heartbeating and holding its logs and final state, until the API
    is back; then every run is Completed. With crash retries on, a run wrongly taken for
    crashed would run again: none did."""
    managed = ManagedRedis(workdir=tmp_path / "redis").start()
    env = {**FAST, "FLOWYARD_REDIS_URL": managed.url}
    server = ServerProcess(tmp_path / "home", env=env)
    worker = None
    try:
        server.wait_ready()
        api = server.client()
        pool = create_process_pool(api, "long-outage")
        flows, folder = tmp_path / "flows", tmp_path / "markers"
        flows.mkdir()
        folder.mkdir()
        (flows / "flows.py").write_text(FLOWS)
        dep = deploy_flow(
            api, pool, flows, "ends_while_api_down", parameters={"folder": str(folder)},
            crash_retries=1,
        )  # fmt: skip
        run_ids = [api.run_deployment(dep.id, s.DeploymentRunRequest()).id for _ in range(2)]
        worker = WorkerProcess(server.url, pool, tmp_path, "--limit", "4", env=FAST)
        wait_until(lambda: all((folder / f"{r}.pid").exists() for r in run_ids), timeout=60)
        server.stop()
        (folder / "api-down").write_text("")
        wait_until(lambda: all((folder / r).exists() for r in run_ids), timeout=60)
        threading.Event().wait(OUTAGE_SECONDS)  # the fault's length, not a wait for a result
        pids = [int((folder / f"{r}.pid").read_text()) for r in run_ids]
        assert all(_alive(pid) for pid in pids), "an engine gave up while the API was down"
        server = ServerProcess(tmp_path / "home", port=server.port, env=env)
        server.wait_ready()
        api = server.client()
        wait_until(
            lambda: all(api.read_flow_run(r).state.type is StateType.COMPLETED for r in run_ids),
            timeout=120,
        )
        for run_id in run_ids:
            assert (folder / run_id).read_text() == "ran\n"
            names = [st.name for st in api.read_flow_run_history(run_id).states]
            assert "Crashed" not in names, names
            messages = [line.message for line in api.read_logs(run_id)]
            assert "finished while the API was down" in messages
        wait_until(lambda: api.read_work_queue(pool, "default").running == 0, timeout=30)
        api.close()
    finally:
        if worker is not None:
            worker.stop()
        server.stop()
        managed.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
