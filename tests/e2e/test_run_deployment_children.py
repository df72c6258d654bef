"""``run_deployment`` inside a deployed flow run, on a real server that requires keys and a
real worker holding a worker key: the flow's run token starts the deployment's run as its
child (Prefect's ``as_subflow=True``), and the two runs talk with ``send_input`` and
``respond`` as in Prefect's "send and receive input" example. Without a parent, or with
job variables of its own, the token is refused."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import httpx
import pytest

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess, WorkerProcess
from flowyard.client import FlowyardClient
from flowyard.errors import ApiError
from flowyard.states import StateType
from tests.e2e.conftest import FAST, KEYED_ADMIN, create_process_pool, deploy_flow
from tests.waiting import wait_until

FLOWS = textwrap.dedent(
    """
    from pathlib import Path

    from flowyard import flow, runtime
    from flowyard.deployments import run_deployment
    from flowyard.input import receive_input, send_input


    @flow
    def greeter(folder: str) -> None:
        for name in receive_input(str, timeout=60, poll_interval=0.2, with_metadata=True):
            name.respond(f"Hello, {name.value}!")
            parent = str(runtime.flow_run.parent_flow_run_id)
            Path(folder, runtime.flow_run.id).write_text(parent)
            return


    @flow
    def sender(child: str, folder: str) -> None:
        run = run_deployment(child, parameters={"folder": folder}, timeout=0)
        send_input("Ada", flow_run_id=run.id)
        for greeting in receive_input(str, timeout=60, poll_interval=0.2):
            Path(folder, runtime.flow_run.id).write_text(f"{run.id} {greeting}")
            return
        raise RuntimeError("no greeting came back")


    @flow
    def overrides(child: str, folder: str) -> None:
        run_deployment(child, timeout=0, job_variables={"env": {"X": "1"}})


    @flow
    def detached(child: str, folder: str) -> None:
        run_deployment(child, timeout=0, as_subflow=False)
    """
)


@pytest.fixture
def server(keyed: ServerProcess) -> ServerProcess:
    return keyed


@pytest.fixture
def admin(keyed_admin: FlowyardClient) -> FlowyardClient:
    return keyed_admin


@pytest.fixture
def deployed(server: ServerProcess, admin: FlowyardClient, tmp_path: Path):
    """The flows deployed to a fresh pool served by a worker with a worker key."""
    pool = create_process_pool(admin, f"kids-{uuid.uuid4().hex[:8]}")
    (tmp_path / "flows.py").write_text(FLOWS)
    made = {name: deploy_flow(admin, pool, tmp_path, name) for name in
            ("greeter", "sender", "overrides", "detached")}  # fmt: skip
    key = admin.create_api_key(s.ApiKeyCreate(name=f"w-{pool}", pools=[pool])).key
    worker = WorkerProcess(server.url, pool, tmp_path, "--limit", "4",
                           env={**FAST, "FLOWYARD_API_KEY": key})  # fmt: skip
    yield made
    worker.stop(timeout=30)


def _final(admin: FlowyardClient, run_id: str) -> s.FlowRun:
    wait_until(lambda: admin.read_flow_run(run_id).state.type.is_terminal, timeout=120,
               message=f"run {run_id} did not end")  # fmt: skip
    return admin.read_flow_run(run_id)


def _run(admin: FlowyardClient, deployment: s.Deployment, folder: Path) -> s.FlowRun:
    params = {"child": "greeter/greeter", "folder": str(folder)}
    body = s.DeploymentRunRequest(parameters=params)
    return _final(admin, admin.run_deployment(deployment.id, body).id)


def test_a_deployed_flow_starts_a_child_deployment_run_and_they_talk(admin, deployed, tmp_path):
    """The child's parent is the sender, and it shows in the sender's graph; the child's
    answer comes back to the sender."""
    sender = _run(admin, deployed["sender"], tmp_path)
    assert sender.state.type is StateType.COMPLETED, sender.state.message
    child_id, greeting = (tmp_path / sender.id).read_text().split(" ", 1)
    assert greeting == "Hello, Ada!"
    child = _final(admin, child_id)
    assert child.state.type is StateType.COMPLETED, child.state.message
    assert (tmp_path / child_id).read_text() == sender.id
    graph = admin.read_flow_run_graph(sender.id)
    assert [(n.id, n.kind) for n in graph.nodes] == [(child_id, "flow-run")]


def test_a_run_token_may_not_start_detached_runs_or_change_job_variables(admin, deployed, tmp_path):
    """``as_subflow=False`` and job variables of the token's choosing are an operator's:
    refused with a reason, and no run of the greeter is made."""
    before = len(admin.list_flow_runs(deployment_id=deployed["greeter"].id))
    for name in ("overrides", "detached"):
        run = _run(admin, deployed[name], tmp_path)
        assert run.state.type is StateType.FAILED
        logs = " ".join(log.message for log in admin.read_logs(run.id))
        assert "cannot POST" in logs or "only as a child" in logs, logs
    assert len(admin.list_flow_runs(deployment_id=deployed["greeter"].id)) == before


def test_a_parent_that_does_not_exist_is_refused_before_anything_is_written(admin, deployed):
    greeter = deployed["greeter"].id
    before = len(admin.list_flow_runs(deployment_id=greeter))
    body = s.DeploymentRunRequest(
        parameters={"folder": "/tmp"}, parent_task_run_id=str(uuid.uuid4())
    )
    with pytest.raises(ApiError, match="parent task run .* not found"):
        admin.run_deployment(deployed["greeter"].id, body)
    assert len(admin.list_flow_runs(deployment_id=greeter)) == before
    too_long = httpx.post(
        f"{admin.api_url}/api/deployments/{deployed['greeter'].id}/runs",
        json={"parent_task_run_id": "x" * 5000},
        headers={"Authorization": f"Bearer {KEYED_ADMIN}"},
    )
    assert too_long.status_code == 422
