"""API keys against a real server that requires them."""

from __future__ import annotations

import httpx
import pytest

from flowyard import schemas as s
from flowyard.cli.processes import WorkerProcess
from flowyard.client import FlowyardClient
from flowyard.errors import ApiError
from flowyard.states import StateType
from tests.e2e.conftest import FAST, create_process_pool, deploy_flow
from tests.helpers.cli import flowyard
from tests.servers import running_server
from tests.waiting import wait_until

ADMIN = "admin-secret-for-tests-only-0123456789"


@pytest.fixture(scope="module")
def locked_server(tmp_path_factory):
    env = {**FAST, "FLOWYARD_API_KEY": ADMIN}
    with running_server(tmp_path_factory.mktemp("locked"), env) as server:
        yield server


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_requests_without_a_valid_key_are_401(locked_server):
    """No key, a wrong key: 401 with a clear message; metrics are protected too."""
    for headers in ({}, _bearer("nope"), {"Authorization": "Basic abc"}):
        response = httpx.get(f"{locked_server.url}/api/work_pools", headers=headers)
        assert response.status_code == 401
        assert (
            response.json()["detail"] == "missing, unknown, revoked or expired API key or run token"
        )
    assert httpx.get(f"{locked_server.url}/metrics").status_code == 401
    assert httpx.get(f"{locked_server.url}/metrics", headers=_bearer(ADMIN)).status_code == 200


def test_worker_key_serves_its_pool_only_and_can_be_revoked(locked_server, tmp_path, flows_dir):
    """A pool-scoped worker key runs flows in its pool (which see a run token, never the
    worker's key), is refused elsewhere, and dies on revoke."""
    seen = tmp_path / "seen"
    seen.mkdir()
    with FlowyardClient(locked_server.url, ADMIN) as admin:
        create_process_pool(admin, "scoped")
        create_process_pool(admin, "elsewhere")
        dep = deploy_flow(
            admin, "scoped", flows_dir, "credentials", parameters={"folder": str(seen)}
        )
    created = flowyard(locked_server.url, "api-key", "create", "w1", "--pool", "scoped", key=ADMIN)
    assert created.returncode == 0, created.stderr
    worker_key = created.stdout.strip().splitlines()[-1]
    assert worker_key.startswith("fy_")
    assert "not enforced" not in created.stderr  # this server requires keys

    listed = flowyard(locked_server.url, "api-key", "ls", key=ADMIN)
    assert "w1" in listed.stdout and worker_key not in listed.stdout

    worker = WorkerProcess(
        locked_server.url, "scoped", tmp_path, env={**FAST, "FLOWYARD_API_KEY": worker_key}
    )
    try:
        with FlowyardClient(locked_server.url, ADMIN) as admin:
            run = admin.run_deployment(dep.id, s.DeploymentRunRequest())
            wait_until(
                lambda: admin.read_flow_run(run.id).state.type is StateType.COMPLETED, timeout=60
            )
    finally:
        worker.stop()
    flow_credential = (seen / run.id).read_text()
    assert flow_credential.startswith("fyrt_") and worker_key not in flow_credential

    with FlowyardClient(locked_server.url, worker_key, retry_seconds=0) as as_worker:
        with pytest.raises(ApiError) as refused:
            as_worker.claim("elsewhere", s.ClaimRequest(worker_name="w"))
        assert (
            refused.value.status_code == 403
            and "may only serve the pools scoped" in refused.value.message
        )
        with pytest.raises(ApiError) as refused:
            as_worker.run_deployment(dep.id, s.DeploymentRunRequest())
        assert refused.value.status_code == 403 and "worker key" in refused.value.message
        with pytest.raises(ApiError) as refused:
            as_worker.create_work_pool(s.WorkPoolCreate(name="not-mine"))
        assert refused.value.status_code == 403

    assert flowyard(locked_server.url, "api-key", "revoke", "w1", key=ADMIN).returncode == 0
    wait_until(
        lambda: (
            httpx.get(
                f"{locked_server.url}/api/work_pools/scoped", headers=_bearer(worker_key)
            ).status_code
            == 401
        ),
        timeout=15,
    )
    server_log = locked_server.output.read_text()
    assert worker_key not in server_log and ADMIN not in server_log


def test_a_worker_key_must_cover_every_pool_it_serves(locked_server, tmp_path):
    """A worker started on two pools with a key scoped to one stops at start with one line
    naming the pool, before it created either pool."""
    created = flowyard(locked_server.url, "api-key", "create", "w3", "--pool", "one-x7", key=ADMIN)
    key = created.stdout.strip().splitlines()[-1]
    started = flowyard(
        locked_server.url, "worker", "start", "--pool", "one-x7", "--pool", "two-x7", key=key
    )
    refusal = (
        "Error: may not serve work pool 'two-x7': API key 'w3' may only serve the pools one-x7"
    )
    assert started.returncode == 1 and started.stderr.strip() == refusal, started.stderr
    with FlowyardClient(locked_server.url, ADMIN) as admin:
        assert {"one-x7", "two-x7"}.isdisjoint(p.name for p in admin.list_work_pools())


def test_worker_key_cannot_manage_keys(locked_server):
    """Only the administrator manages keys: a worker key gets 403."""
    created = flowyard(locked_server.url, "api-key", "create", "w2", key=ADMIN)
    key = created.stdout.strip().splitlines()[-1]
    denied = flowyard(locked_server.url, "api-key", "ls", key=key)
    assert (
        denied.returncode == 1
        and "worker key" in denied.stderr
        and "Traceback" not in denied.stderr
    )


def test_a_deployed_flow_loads_only_the_blocks_its_deployment_names(
    locked_server, tmp_path, flows_dir
):
    """``blocks=["secret/declared"]`` on the deployment: its flow's Secret.load of that block
    works, of any other block is refused (403) — a flow cannot read every secret."""
    seen = tmp_path / "seen"
    seen.mkdir()
    with FlowyardClient(locked_server.url, ADMIN) as admin:
        create_process_pool(admin, "blocks-pool")
        for name in ("declared", "undeclared"):
            admin.save_block("secret", name, {"value": f"{name}-value"})
        key = admin.create_api_key(s.ApiKeyCreate(name="blocks-w", pools=["blocks-pool"])).key
        dep = deploy_flow(
            admin, "blocks-pool", flows_dir, "loads_secrets",
            parameters={"folder": str(seen)}, blocks=["secret/declared"],
        )  # fmt: skip
        worker = WorkerProcess(
            locked_server.url, "blocks-pool", tmp_path, env={**FAST, "FLOWYARD_API_KEY": key}
        )
        try:
            run = admin.run_deployment(dep.id, s.DeploymentRunRequest())
            wait_until(lambda: admin.read_flow_run(run.id).state.type.is_terminal, timeout=60)
        finally:
            worker.stop()
        assert admin.read_flow_run(run.id).state.type is StateType.COMPLETED
    declared, undeclared = (seen / run.id).read_text().split(" | ")
    assert declared == "declared=declared-value"
    assert undeclared.startswith("undeclared refused") and "its deployment names" in undeclared


def test_a_key_made_on_a_server_that_requires_none_warns_it_is_not_enforced(server):
    """``api-key create`` on a server without FLOWYARD_API_KEY prints the key and warns that
    keys are not checked until the server requires them."""
    created = flowyard(server.url, "api-key", "create", "unenforced", key="any-garbage")
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().splitlines()[-1].startswith("fy_")
    assert "keys are not enforced" in created.stderr and "FLOWYARD_API_KEY" in created.stderr
