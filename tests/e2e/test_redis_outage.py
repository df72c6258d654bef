"""Redis goes away mid-flight: the API says 503, nothing is lost, work resumes when it is back."""

from __future__ import annotations

import httpx

from flowyard import schemas as s
from flowyard.cli.processes import WorkerProcess
from flowyard.states import StateType
from tests.e2e.conftest import FAST, create_process_pool, deploy_flow
from tests.helpers.redis_outage import server_on_own_redis
from tests.waiting import wait_until


def test_outage_answers_503_and_loses_no_run(tmp_path, flows_dir):
    """Runs created while Redis is down are kept in the store and run once Redis returns."""
    with (
        server_on_own_redis(tmp_path) as (server, redis, workers),
        server.client(retry_seconds=0) as api,
    ):
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

        workers.append(WorkerProcess(server.url, "outage", tmp_path, env=FAST))
        redis.start_empty()

        def finished():
            states = {api.read_flow_run(r.id).state.type for r in (before, during)}
            return states if states == {StateType.COMPLETED} else None

        wait_until(
            finished, timeout=120, interval=0.2, message="runs did not complete after the outage"
        )


def test_the_rebuild_keeps_run_priorities(tmp_path, flows_dir):
    """Runs that reach Redis only through the rebuild keep their priority within the queue."""
    with (
        server_on_own_redis(tmp_path) as (server, redis, workers),
        server.client(retry_seconds=0) as api,
    ):
        dep = deploy_flow(api, create_process_pool(api, "rebuilt"), flows_dir, "noop")
        redis.stop()
        plain = [api.run_deployment(dep.id, s.DeploymentRunRequest()).id for _ in range(3)]
        urgent = api.run_deployment(dep.id, s.DeploymentRunRequest(priority=-5)).id
        redis.start_empty()
        wait_until(
            lambda: httpx.get(f"{server.url}/api/health").status_code == 200,
            timeout=60,
            message="the API did not see Redis again",
        )
        workers.append(WorkerProcess(server.url, "rebuilt", tmp_path, "--limit", "1", env=FAST))
        runs = [urgent, *plain]
        wait_until(
            lambda: all(api.read_flow_run(r).state.type is StateType.COMPLETED for r in runs),
            timeout=120,
            message="runs did not complete after the rebuild",
        )
        started = {
            r: next(
                st.timestamp
                for st in api.read_flow_run_history(r).states
                if st.type is StateType.RUNNING
            )
            for r in runs
        }
        assert min(started, key=started.__getitem__) == urgent
