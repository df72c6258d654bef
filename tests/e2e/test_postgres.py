"""The server on PostgreSQL (FLOWYARD_DATABASE_URL), as in production."""

from __future__ import annotations

import pytest

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess, WorkerProcess
from flowyard.states import StateType
from tests.e2e.conftest import FAST, create_process_pool, deploy_flow
from tests.postgres import fresh_database
from tests.waiting import wait_until


@pytest.mark.postgres
def test_quick_start_on_postgresql(postgres_server, tmp_path, flows_dir):
    """Migrations apply to PostgreSQL and a flow run completes through a worker."""
    url = fresh_database(postgres_server, "flowyard_e2e")
    server = ServerProcess(tmp_path / "home", env={**FAST, "FLOWYARD_DATABASE_URL": url})
    worker = None
    try:
        server.wait_ready()
        with server.client() as api:
            dep = deploy_flow(api, create_process_pool(api, "pg"), flows_dir, "noop")
            runs = [api.run_deployment(dep.id, s.DeploymentRunRequest()) for _ in range(5)]
            worker = WorkerProcess(server.url, "pg", tmp_path, "--limit", "2", env=FAST)
            wait_until(
                lambda: all(
                    api.read_flow_run(r.id).state.type is StateType.COMPLETED for r in runs
                ),
                timeout=120,
                interval=0.2,
            )
            history = api.read_flow_run_history(runs[0].id).states
            assert [st.type for st in history][-1] is StateType.COMPLETED
            assert api.list_task_runs(runs[0].id)[0].state_type is StateType.COMPLETED
    finally:
        if worker is not None:
            worker.stop()
        server.stop()


@pytest.mark.postgres
def test_background_task_runs_on_postgresql(postgres_server, tmp_path):
    """Migration 0010 on PostgreSQL: a task run with no flow run is created, claimed,
    reported, set Scheduled again through the API (a locked read) and claimed again."""
    url = fresh_database(postgres_server, "flowyard_bg")
    server = ServerProcess(tmp_path / "home", env={**FAST, "FLOWYARD_DATABASE_URL": url})
    try:
        server.wait_ready()
        with server.client() as api:
            run = api.create_background_task_run(
                s.BackgroundTaskRunCreate(task_key="pg.add", name="add-pg")
            )
            claim = s.TaskWorkerClaim(task_keys=["pg.add"], worker_name="w", wait=5)
            [claimed] = api.claim_background_task_runs(claim)
            assert claimed.run.id == run.id and claimed.run.flow_run_id is None
            done = s.BackgroundStateReport(token=claimed.token, state=StateType.COMPLETED)
            api.report_background_task_run(run.id, done)
            assert api.read_task_run(run.id).state_type is StateType.COMPLETED
            again = api.set_task_run_state(run.id, s.TaskRunUpdate(state=StateType.SCHEDULED))
            assert again.state_type is StateType.SCHEDULED  # set through the API, queued
            [reclaimed] = api.claim_background_task_runs(claim)
            assert reclaimed.run.id == run.id and reclaimed.token != claimed.token
    finally:
        server.stop()
