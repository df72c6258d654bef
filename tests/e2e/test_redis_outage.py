"""Redis goes away mid-flight: the API says 503, nothing is lost, work resumes when it is back."""

from __future__ import annotations

import httpx

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess, WorkerProcess
from flowyard.pools import ManagedRedis
from flowyard.states import StateType
from tests.e2e.conftest import FAST, create_process_pool, deploy_flow
from tests.waiting import wait_until


def test_outage_answers_503_and_loses_no_run(tmp_path, flows_dir):
    """Runs created while Redis is down are kept in the store and run once Redis returns."""
    redis = ManagedRedis(workdir=tmp_path / "redis").start()
    port = redis.port
    server = ServerProcess(tmp_path / "home", env={**FAST, "FLOWYARD_REDIS_URL": redis.url})
    worker = None
    try:
        server.wait_ready()
        api = server.client(retry_seconds=0)
        dep = deploy_flow(api, create_process_pool(api, "outage"), flows_dir, "noop")
        before = api.run_deployment(dep.id, s.DeploymentRunRequest())
        redis.stop()

        health = httpx.get(f"{server.url}/api/health")
        assert health.status_code == 503
        assert "Redis" in health.json()["detail"] and "Traceback" not in health.text
        claim = httpx.post(f"{server.url}/api/work_pools/outage/claim", json={"worker_name": "w"})
        assert claim.status_code == 503

        during = api.run_deployment(dep.id, s.DeploymentRunRequest())
        assert during.state.type is StateType.SCHEDULED

        worker = WorkerProcess(server.url, "outage", tmp_path, env=FAST)
        redis = ManagedRedis(port=port, workdir=tmp_path / "redis2").start()

        def finished():
            states = {api.read_flow_run(r.id).state.type for r in (before, during)}
            return states if states == {StateType.COMPLETED} else None

        wait_until(
            finished, timeout=120, interval=0.2, message="runs did not complete after the outage"
        )
        api.close()
    finally:
        if worker is not None:
            worker.stop()
        server.stop()
        redis.stop()
