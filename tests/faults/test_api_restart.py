"""The API restarted mid-run: engines and workers ride it out, nothing is lost or doubled."""

from __future__ import annotations

import os
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
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


class Outage:
    """A server (with its own Redis), a process pool with a worker and a deployment of one
    of the flows above; ``stop_api`` and ``restart_api`` make the outage."""

    def __init__(self, tmp_path: Path, function: str, **deployment: object) -> None:
        self.tmp_path = tmp_path
        self.redis = ManagedRedis(workdir=tmp_path / "redis").start()
        self.env = {**FAST, "FLOWYARD_REDIS_URL": self.redis.url}
        self.server = ServerProcess(tmp_path / "home", env=self.env)
        self.worker: WorkerProcess | None = None
        self.server.wait_ready()
        self.api = self.server.client()
        self.pool = create_process_pool(self.api, "outage")
        flows, self.folder = tmp_path / "flows", tmp_path / "markers"
        flows.mkdir()
        self.folder.mkdir()
        (flows / "flows.py").write_text(FLOWS)
        parameters = {"folder": str(self.folder)}
        self.deployment = deploy_flow(
            self.api, self.pool, flows, function, parameters=parameters, **deployment
        )

    def start(self, runs: int) -> list[str]:
        """``runs`` runs of the deployment, and a worker for them."""
        request = s.DeploymentRunRequest()
        run_ids = [self.api.run_deployment(self.deployment.id, request).id for _ in range(runs)]
        self.worker = WorkerProcess(
            self.server.url, self.pool, self.tmp_path, "--limit", "4", env=FAST
        )
        return run_ids

    def stop_api(self) -> None:
        self.api.close()
        self.server.stop()
        (self.folder / "api-down").write_text("")

    def restart_api(self) -> None:
        """The same store, Redis and port: only the API process is new."""
        self.server = ServerProcess(self.tmp_path / "home", port=self.server.port, env=self.env)
        self.server.wait_ready()
        self.api = self.server.client()

    def all_completed(self, run_ids: list[str]) -> None:
        """Every run Completed, having run once, never Crashed on the way."""
        api = self.api
        wait_until(
            lambda: all(api.read_flow_run(r).state.type is StateType.COMPLETED for r in run_ids),
            timeout=120,
        )
        for run_id in run_ids:
            assert (self.folder / run_id).read_text() == "ran\n"
            names = [st.name for st in api.read_flow_run_history(run_id).states]
            assert "Crashed" not in names, names
        wait_until(lambda: api.read_work_queue(self.pool, "default").running == 0, timeout=30)

    def close(self) -> None:
        self.api.close()
        if self.worker is not None:
            self.worker.stop()
        self.server.stop()
        self.redis.stop()


@pytest.fixture
def outage(tmp_path: Path) -> Iterator[Callable[..., Outage]]:
    made: list[Outage] = []

    def make(function: str, **deployment: object) -> Outage:
        made.append(Outage(tmp_path, function, **deployment))
        return made[-1]

    yield make
    for rig in made:
        rig.close()


def test_runs_complete_across_an_api_restart(outage):
    """Three runs in flight when the API stops and comes back (same store, same Redis):
    all end Completed, each ran once, none was Crashed on the way, and the log lines
    written while the API was down arrive."""
    rig = outage("outlives_api")
    run_ids = rig.start(3)
    wait_until(lambda: all((rig.folder / f"{r}.started").exists() for r in run_ids), timeout=60)
    rig.stop_api()
    # down for longer than a lease: no heartbeat reached the API meanwhile
    wait_until(lambda: _leases_expired(rig.redis.url, rig.pool, len(run_ids)), timeout=60)
    rig.restart_api()
    (rig.folder / "api-back").write_text("")
    rig.all_completed(run_ids)
    for run_id in run_ids:
        wait_until(
            lambda run_id=run_id: any(
                "logged while the API was down" in line.message
                for line in rig.api.read_logs(run_id)
            ),
            timeout=60,
        )


def test_runs_that_end_during_a_long_api_outage_wait_and_report_completed(outage):
    """Runs whose flows end while the API is down for longer than any client retry: each
    engine stays alive, heartbeating and holding its logs and final state, until the API
    is back; then every run is Completed. With crash retries on, a run wrongly taken for
    crashed would run again: none did."""
    rig = outage("ends_while_api_down", crash_retries=1)
    run_ids = rig.start(2)
    wait_until(lambda: all((rig.folder / f"{r}.pid").exists() for r in run_ids), timeout=60)
    rig.stop_api()
    wait_until(lambda: all((rig.folder / r).exists() for r in run_ids), timeout=60)
    threading.Event().wait(OUTAGE_SECONDS)  # noqa: TID251 - the fault's length
    pids = [int((rig.folder / f"{r}.pid").read_text()) for r in run_ids]
    assert all(_alive(pid) for pid in pids), "an engine gave up while the API was down"
    rig.restart_api()
    rig.all_completed(run_ids)
    for run_id in run_ids:
        messages = [line.message for line in rig.api.read_logs(run_id)]
        assert "finished while the API was down" in messages


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
