"""A claim sent again with its idempotency key gets the runs it was already given, from a
real server, instead of more runs or none."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess
from flowyard.client import FlowyardClient
from flowyard.client.transport import ApiTransport, api_path
from flowyard.errors import ApiError
from tests.servers import running_server
from tests.waiting import wait_until

POOL = "replays"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("home")) as process:
        yield process


def _due_runs(api: FlowyardClient, folder: Path, count: int) -> set[str]:
    """``count`` runs due now in the pool ``POOL`` (made on first use)."""
    if not any(pool.name == POOL for pool in api.list_work_pools()):
        api.create_work_pool(s.WorkPoolCreate(name=POOL, base_job_template={}))
    deployment = api.create_deployment(
        s.DeploymentCreate(
            name="d", flow_name="f", entrypoint="flows.py:f", path=str(folder), pool_name=POOL
        )
    )
    return {api.run_deployment(deployment.id, s.DeploymentRunRequest()).id for _ in range(count)}


def _claim(api: ApiTransport, key: str, worker: str = "w1") -> list[dict[str, Any]]:
    body = {"worker_name": worker, "max_runs": 2, "wait": 0}
    answer = api.request(
        "POST", api_path("work_pools", POOL, "claim"), json=body, headers={"Idempotency-Key": key}
    )
    return answer["runs"]


def test_a_claim_sent_again_gets_the_same_runs(server, tmp_path):
    """The same key twice: the same runs with the same claim tokens, still Pending; a
    claim with another key gets none of them."""
    with server.client() as api, ApiTransport(server.url) as raw:
        made = _due_runs(api, tmp_path, 2)
        first = wait_until(lambda: _claim(raw, "key-1"), timeout=20, message="a claim wins runs")
        again = _claim(raw, "key-1")
        assert {r["run"]["id"] for r in first} <= made
        assert [(r["run"]["id"], r["token"]) for r in again] == [
            (r["run"]["id"], r["token"]) for r in first
        ]
        assert {r["run"]["state"]["type"] for r in again} == {"PENDING"}
        other = {r["run"]["id"] for r in _claim(raw, "key-2")}
        assert not other & {r["run"]["id"] for r in first}


def test_a_replay_gives_nothing_the_run_has_left(server, tmp_path):
    """Once a run claimed under a key has moved on (here: Cancelled), the key's replay no
    longer hands it out; another worker's replay of the key gets nothing either."""
    with server.client() as api, ApiTransport(server.url) as raw:
        _due_runs(api, tmp_path, 1)
        first = wait_until(lambda: _claim(raw, "key-3"), timeout=20, message="a claim wins runs")
        assert _claim(raw, "key-3", worker="someone-else") == []
        for claimed in first:
            api.cancel_flow_run(claimed["run"]["id"])
        assert _claim(raw, "key-3") == []


def test_the_client_gives_each_claim_its_own_key(server, tmp_path):
    """Two claims of ``FlowyardClient`` are two requests: the second gets new runs."""
    with server.client() as api:
        made = _due_runs(api, tmp_path, 2)
        body = s.ClaimRequest(worker_name="w2", max_runs=1)
        first = wait_until(lambda: api.claim(POOL, body), timeout=20, message="a claim wins")
        second = wait_until(lambda: api.claim(POOL, body), timeout=20, message="another wins")
        assert {first[0].run.id, second[0].run.id} <= made
        assert first[0].run.id != second[0].run.id


@pytest.mark.parametrize("key", ["", "x" * 101, "no spaces", "{braces}"])
def test_a_malformed_key_is_refused_naming_the_header(server, key):
    """An idempotency key is 1-100 letters, digits and ``_.:-``: else 422 naming it."""
    with ApiTransport(server.url) as raw:
        with pytest.raises(ApiError) as info:
            _claim(raw, key)
    assert info.value.status_code == 422
    assert "Idempotency-Key" in info.value.message
