"""Claims and worker heartbeats are served by lean handlers (api/lean_routes.py): on a real
server, their answers are the documented models' JSON, and what they decline is refused
by FastAPI exactly as before (same status, same error locations)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from flowyard import schemas as s
from flowyard.api_version import API_VERSION, HEADER
from flowyard.cli.processes import ServerProcess
from tests.servers import running_server
from tests.waiting import wait_until

POOL = "lean"
CLAIM = {"worker_name": "w", "max_runs": 5}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("home")) as process:
        with process.client() as api:
            api.create_work_pool(s.WorkPoolCreate(name=POOL, base_job_template={"job": {}}))
        yield process


@pytest.fixture
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={HEADER: API_VERSION}) as client:
        yield client


def _post(http: httpx.Client, route: str, body: Any = None, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else None
    payload = None if content is not None else body
    return http.post(f"/api/work_pools/{POOL}/{route}", json=payload, content=content,
                     headers=headers)  # fmt: skip


def _locations(answer: httpx.Response) -> list[list[Any]]:
    assert answer.status_code == 422, answer.text
    return [error["loc"] for error in answer.json()["detail"]]


def test_a_claim_answers_the_documented_document(server, http, tmp_path):
    """A claim that wins a run answers exactly the ClaimResponse's JSON (every field, no
    other), with the pool's template and the deployment the worker needs."""
    with server.client() as api:
        deployment = api.create_deployment(
            s.DeploymentCreate(name="d", flow_name="f", entrypoint="flows.py:f",
                               path=str(tmp_path), pool_name=POOL)
        )  # fmt: skip
        run = api.run_deployment(deployment.id, s.DeploymentRunRequest())

    def claimed() -> list[dict[str, Any]]:
        answer = _post(http, "claim", CLAIM, **{"Idempotency-Key": "k1"})
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/json"
        return answer.json()["runs"]

    runs = wait_until(claimed, timeout=30, message="the run is claimed")
    raw = {"runs": runs}
    assert s.ClaimResponse.model_validate(raw).model_dump(mode="json", by_alias=True) == raw
    assert [r["run"]["id"] for r in runs] == [run.id]
    assert runs[0]["deployment"]["id"] == deployment.id
    assert runs[0]["base_job_template"] == {"job": {}}
    again = _post(http, "claim", CLAIM, **{"Idempotency-Key": "k1"})
    assert [r["token"] for r in again.json()["runs"]] == [runs[0]["token"]]  # replayed

    beat = _post(http, "workers/heartbeat", {"worker_name": "w", "run_ids": [run.id]})
    assert beat.status_code == 200, beat.text
    assert beat.json() == {"held": [run.id], "cancelling": []}


@pytest.mark.parametrize(
    ("body", "headers", "where"),
    [
        ({"worker_name": "w"}, {"Idempotency-Key": "not a key!"}, ["header", "Idempotency-Key"]),
        ({"max_runs": 1}, {}, ["body", "worker_name"]),
        ({"worker_name": "w", "max_runs": "2"}, {}, ["body", "max_runs"]),
        ({"worker_name": "w", "wait": 61}, {}, ["body", "wait"]),
        (b'{"worker_name": "w"}', {"Content-Type": "text/plain"}, ["body"]),
        ([{"worker_name": "w"}], {}, ["body"]),
    ],
)
def test_a_claim_the_lean_handler_declines_is_refused_as_before(http, body, headers, where):
    """A header or body the lean handler does not take is FastAPI's 422, at the same place."""
    assert where in _locations(_post(http, "claim", body, **headers))


def test_a_heartbeat_the_lean_handler_declines_is_refused_as_before(http):
    """A heartbeat body without its worker, or not JSON at all, is FastAPI's 422."""
    assert ["body", "worker_name"] in _locations(_post(http, "workers/heartbeat", {}))
    undeclared = _post(http, "workers/heartbeat", b'{"worker_name": "w"}', **{"Content-Type": ""})
    assert undeclared.status_code == 422
