"""Who may publish artifacts, on a real server with API keys: an engine's run token
publishes its own run's (and only while the run lasts); nobody else's key or token does."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from flowyard import schemas as s
from flowyard.artifacts import create_progress_artifact, update_progress_artifact
from flowyard.cli.processes import ServerProcess, WorkerProcess
from flowyard.client import FlowyardClient
from flowyard.schemas import artifacts as a
from flowyard.sdk.context import TaskRunContext, task_run_scope
from tests.e2e.conftest import FAST, create_process_pool, deploy_flow
from tests.helpers.artifact_flows import FLOWS
from tests.helpers.locked_server import ADMIN
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def locked(locked_server: ServerProcess) -> ServerProcess:
    """This module's server requiring API keys (tests/orchestrator/conftest.py)."""
    return locked_server


@pytest.fixture(scope="module")
def admin(locked: ServerProcess) -> Iterator[FlowyardClient]:
    with FlowyardClient(locked.url, ADMIN) as client:
        yield client


@pytest.fixture(scope="module")
def deployment(admin: FlowyardClient, tmp_path_factory: pytest.TempPathFactory) -> s.Deployment:
    folder = tmp_path_factory.mktemp("reporting")
    (folder / "flows.py").write_text(textwrap.dedent(FLOWS))
    create_process_pool(admin, "reports")
    return deploy_flow(admin, "reports", folder, "reporting")


def _later_run(admin: FlowyardClient, deployment: s.Deployment) -> str:
    body = s.DeploymentRunRequest(
        parameters={"rows": 1, "key": "never-run"},
        scheduled_time=datetime.now(UTC) + timedelta(days=1),
    )
    return admin.run_deployment(deployment.id, body).id


def _task_run(admin: FlowyardClient, flow_run_id: str) -> str:
    """A task run of ``flow_run_id``, recorded as the SDK records one; its id."""
    task_run_id = str(uuid.uuid4())
    record = {"id": task_run_id, "flow_run_id": flow_run_id, "name": "t", "task_key": "t",
              "state": "RUNNING"}  # fmt: skip
    assert admin.upsert_task_runs([record]).upserted == 1
    return task_run_id


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_an_engine_publishes_through_its_run_token(
    locked: ServerProcess, admin: FlowyardClient, deployment: s.Deployment, tmp_path: Path
):
    """A worker with a pool-scoped key runs the flow; its engine's run token stores the
    run's five artifacts."""
    key = f"locked-{uuid.uuid4().hex[:8]}"
    worker_key = admin.create_api_key(s.ApiKeyCreate(name=f"w-{key}", pools=["reports"])).key
    worker = WorkerProcess(
        locked.url, "reports", tmp_path, env={**FAST, "FLOWYARD_API_KEY": worker_key}
    )
    try:
        body = {"parameters": {"rows": 2, "key": key}}
        run_id = admin.request("POST", f"/api/deployments/{deployment.id}/runs", json=body)["id"]

        def final() -> str | None:
            state = admin.read_flow_run(run_id).state.type
            return state.value if state.is_terminal else None

        assert wait_until(final, timeout=90, message="the run did not end") == "COMPLETED"
    finally:
        worker.stop(timeout=30)
    published = admin.list_artifacts(flow_run_id=run_id).artifacts
    assert len(published) == 5
    assert admin.read_artifact_history(key).latest.flow_run_id == run_id


def test_a_token_of_a_final_run_publishes_nothing(
    locked: ServerProcess, admin: FlowyardClient, deployment: s.Deployment
):
    """A token minted while its run lasted is read-only once the run is final."""
    run_id = _later_run(admin, deployment)
    token = admin.create_run_token(run_id)
    admin.cancel_flow_run(run_id)
    late = {"type": "markdown", "data": "late", "flow_run_id": run_id}
    refused = httpx.post(f"{locked.url}/api/artifacts", json=late, headers=_bearer(token))
    assert refused.status_code == 403 and "its run is final" in refused.json()["detail"]
    assert admin.list_artifacts(flow_run_id=run_id).artifacts == []


def test_a_run_token_publishes_for_its_own_run_only(
    locked: ServerProcess, admin: FlowyardClient, deployment: s.Deployment
):
    """A's token creates and updates A's artifacts; B's run, B's task run under A's id,
    B's artifact and the listing are all refused (403)."""
    mine, other = _later_run(admin, deployment), _later_run(admin, deployment)
    their_task = _task_run(admin, other)
    theirs = admin.create_artifact(a.ArtifactCreate(type="progress", data=1, flow_run_id=other))
    token = admin.create_run_token(mine)
    with httpx.Client(base_url=locked.url, headers=_bearer(token)) as http:
        own_body = {"type": "progress", "data": 5, "flow_run_id": mine}
        made = http.post("/api/artifacts", json=own_body)
        assert made.status_code == 201, made.text
        own = made.json()["id"]
        assert http.patch(f"/api/artifacts/{own}", json={"data": 60}).status_code == 200
        assert http.get(f"/api/artifacts/{own}").json()["data"] == 60
        refused = [
            http.post("/api/artifacts", json={**own_body, "flow_run_id": other}),
            http.post("/api/artifacts", json={"type": "markdown", "data": "x"}),
            http.post(
                "/api/artifacts",
                json={"type": "markdown", "data": "x", "flow_run_id": mine,
                      "task_run_id": their_task},
            ),
            http.patch(f"/api/artifacts/{theirs.id}", json={"data": 99}),
            http.get(f"/api/artifacts/{theirs.id}"),
            http.get("/api/artifacts"),
            http.delete(f"/api/artifacts/{own}"),
        ]  # fmt: skip
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert "its own flow run" in refused[0].json()["detail"]
    assert admin.read_artifact(theirs.id).data == 1
    assert admin.list_artifacts(flow_run_id=other).artifacts == [theirs]


def test_worker_keys_publish_for_background_task_runs_only(
    locked: ServerProcess,
    admin: FlowyardClient,
    deployment: s.Deployment,
    monkeypatch: pytest.MonkeyPatch,
):
    """A task worker's key publishes (through the SDK, as a background task does) and
    updates a background task run's artifacts; a flow run's, even of its own pool, are
    refused, as are a viewer's writes; the viewer reads."""
    run_id = _later_run(admin, deployment)
    flow_task = _task_run(admin, run_id)
    background = admin.request(
        "POST", "/api/background_task_runs", json={"task_key": "bg", "name": "bg"}
    )["id"]
    suffix = uuid.uuid4().hex[:6]
    worker = admin.create_api_key(s.ApiKeyCreate(name=f"w-{suffix}", pools=["reports"])).key
    viewer = admin.create_api_key(s.ApiKeyCreate(name=f"v-{suffix}", role="viewer")).key
    monkeypatch.setenv("FLOWYARD_API_URL", locked.url)
    monkeypatch.setenv("FLOWYARD_API_KEY", worker)
    with task_run_scope(TaskRunContext(task_run_id=background, task_run_name="bg")):
        made = create_progress_artifact(10, key=f"bg-{suffix}")
        update_progress_artifact(made, 70)
    stored = admin.read_artifact(str(made))
    assert (stored.task_run_id, stored.flow_run_id, stored.data) == (background, None, 70)
    for body in (
        {"type": "markdown", "data": "x", "flow_run_id": run_id},
        {"type": "markdown", "data": "x", "flow_run_id": run_id, "task_run_id": flow_task},
        {"type": "markdown", "data": "x", "task_run_id": flow_task},
    ):
        answer = httpx.post(f"{locked.url}/api/artifacts", json=body, headers=_bearer(worker))
        assert answer.status_code == 403
        assert "only publish artifacts of background task runs" in answer.json()["detail"]
    token = admin.create_run_token(run_id)
    for key in (viewer, token):
        body = {"type": "markdown", "data": "x", "task_run_id": background}
        answer = httpx.post(f"{locked.url}/api/artifacts", json=body, headers=_bearer(key))
        assert answer.status_code == 403
    assert httpx.get(f"{locked.url}/api/artifacts", headers=_bearer(viewer)).status_code == 200
    assert admin.list_artifacts(flow_run_id=run_id).artifacts == []
    assert [x.id for x in admin.list_artifacts(task_run_id=background).artifacts] == [str(made)]
