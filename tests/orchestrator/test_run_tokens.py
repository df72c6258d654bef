"""Run-scoped tokens: signing and expiry (pure), and what they reach on a real server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess
from flowyard.client import FlowyardClient
from flowyard.errors import ApiError
from flowyard.orchestrator import run_tokens as tokens
from tests.e2e.conftest import FAST, create_process_pool
from tests.helpers.locked_server import ADMIN
from tests.servers import running_server
from tests.waiting import wait_until

KEY = tokens.signing_key(b"server secret")


class TestSigning:
    def test_a_token_names_its_run_until_it_expires(self):
        """A minted token verifies to its run and expiry, and stops verifying at the expiry."""
        token = tokens.mint(KEY, "run-1", now=1000.0, ttl_seconds=60)
        assert token.startswith("fyrt_")
        assert tokens.verify(KEY, token, now=1059.0) == tokens.RunClaims("run-1", 1060.0)
        with pytest.raises(tokens.InvalidRunToken, match="expired"):
            tokens.verify(KEY, token, now=1060.0)

    def test_a_forged_or_altered_token_is_refused(self):
        """Another server's key, an edited run id, or garbage: the signature does not match."""
        token = tokens.mint(KEY, "run-1", now=1000.0, ttl_seconds=60)
        other = tokens.signing_key(b"another secret")
        body, signature = token[len(tokens.PREFIX) :].split(".")
        forged_body = tokens.mint(KEY, "run-2", now=1000.0, ttl_seconds=60).split(".")[0]
        for bad in (
            tokens.mint(other, "run-1", now=1000.0, ttl_seconds=60),
            f"{forged_body}.{signature}",
            token + "x",
            "fyrt_garbage",
        ):
            with pytest.raises(tokens.InvalidRunToken, match="signature"):
                tokens.verify(KEY, bad, now=1001.0)
        with pytest.raises(tokens.InvalidRunToken, match="not a run token"):
            tokens.verify(KEY, "fy_an_api_key", now=1001.0)

    def test_the_signing_key_is_derived_not_the_secret(self):
        """The key is bound to its purpose: neither the server secret nor shared with it."""
        assert KEY != b"server secret" and len(KEY) == 32
        assert tokens.signing_key(b"server secret") == KEY

    def test_lifetimes_default_and_are_capped(self):
        """No lifetime gives the default; a long one is capped; zero is refused."""
        assert tokens.clamp_ttl(None) == tokens.DEFAULT_TTL_SECONDS
        assert tokens.clamp_ttl(10 * 24 * 3600) == tokens.MAX_TTL_SECONDS
        with pytest.raises(ValueError, match="positive"):
            tokens.clamp_ttl(0)


# -- against a real server --------------------------------------------------------------------


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _log(run_id: str) -> dict[str, object]:
    now = datetime.now(UTC).isoformat()
    return {"flow_run_id": run_id, "message": "hi", "timestamp": now}


def test_a_run_token_acts_for_its_run_only(locked_server: ServerProcess, two_runs):
    """With API keys on, a run token reads and reports for its run; any other run is 403."""
    mine, other, deployment_id = two_runs
    with FlowyardClient(locked_server.url, ADMIN) as admin:
        token = admin.create_run_token(mine)
    base, headers = locked_server.url, _bearer(token)
    with httpx.Client(base_url=base, headers=headers) as http:
        assert http.get(f"/api/flow_runs/{mine}").status_code == 200
        assert (
            http.post(f"/api/flow_runs/{mine}/state", json={"type": "RUNNING"}).status_code == 200
        )
        assert http.post("/api/logs", json=[_log(mine)]).status_code == 201
        assert http.get(f"/api/deployments/{deployment_id}").status_code == 200
        task = {"id": str(uuid.uuid4()), "flow_run_id": mine, "name": "t", "task_key": "t",
                "state": "RUNNING"}  # fmt: skip
        assert http.post("/api/task_runs/bulk", json=[task]).status_code == 200
        child = {"flow_name": "child", "parent_task_run_id": task["id"]}
        child_run = http.post("/api/flow_runs", json=child)
        assert child_run.status_code == 201
        assert http.get(f"/api/flow_runs/{child_run.json()['id']}").status_code == 200
        refused = [
            http.get(f"/api/flow_runs/{other}"),
            http.post(f"/api/flow_runs/{other}/state", json={"type": "CANCELLED"}),
            http.post(f"/api/flow_runs/{other}/heartbeat", json={"token": "x"}),
            http.post("/api/logs", json=[_log(mine), _log(other)]),
            http.post("/api/task_runs/bulk", json=[{**task, "flow_run_id": other}]),
            http.post("/api/flow_runs", json={"flow_name": "orphan"}),
            http.get("/api/flow_runs"),
            http.post(f"/api/flow_runs/{mine}/token"),
            http.post(f"/api/flow_runs/{mine}/cancel"),
            http.get("/api/work_pools/tokens"),
        ]
        assert [r.status_code for r in refused] == [403] * len(refused)
        assert "its own flow run" in refused[0].json()["detail"]
    with FlowyardClient(locked_server.url, ADMIN) as admin:
        assert admin.read_flow_run(other).state.type.value == "SCHEDULED"


def test_the_running_answer_holds_the_run_and_its_deployment(
    locked_server: ServerProcess, two_runs
):
    """Asked ``with_run``, an accepted Running answers the run and its deployment as a run
    token reads them; a refused change answers neither."""
    with FlowyardClient(locked_server.url, ADMIN) as admin:
        [claimed] = admin.claim("tokens", s.ClaimRequest(worker_name="w", max_runs=1))
    deployment_id = claimed.run.deployment_id
    mine, running = claimed.run.id, {"type": "RUNNING", "token": claimed.token, "with_run": True}
    assert claimed.run_token is not None
    with httpx.Client(base_url=locked_server.url, headers=_bearer(claimed.run_token)) as http:
        state = f"/api/flow_runs/{mine}/state"
        answer = http.post(state, json=running).json()
        assert answer["accepted"] is True
        assert answer["run"] == http.get(f"/api/flow_runs/{mine}").json()
        assert answer["run"]["state"]["type"] == "RUNNING"
        assert answer["deployment"] == http.get(f"/api/deployments/{deployment_id}").json()
        refused = http.post(state, json={"type": "PENDING", "with_run": True}).json()
        assert refused["accepted"] is False
        assert (refused["run"], refused["deployment"]) == (None, None)


def test_forged_and_expired_tokens_are_401(locked_server: ServerProcess, two_runs):
    """A token that fails its signature, or has expired, is refused as unauthenticated."""
    mine, _, _ = two_runs
    with FlowyardClient(locked_server.url, ADMIN) as admin:
        short = admin.create_run_token(mine, ttl_seconds=1)
    forged = short[:-3] + ("AAA" if not short.endswith("AAA") else "BBB")
    url = f"{locked_server.url}/api/flow_runs/{mine}"
    assert httpx.get(url, headers=_bearer(forged)).status_code == 401
    wait_until(
        lambda: httpx.get(url, headers=_bearer(short)).status_code == 401,
        timeout=30,
        interval=0.2,
        message="the one-second token still worked",
    )
    assert "expired" in httpx.get(url, headers=_bearer(short)).json()["detail"]


def test_worker_keys_mint_tokens_for_their_pools_only(locked_server: ServerProcess, two_runs):
    """A worker key mints for runs of its pools; another pool's worker key gets 403."""
    mine, _, _ = two_runs
    with FlowyardClient(locked_server.url, ADMIN) as admin:
        ours = admin.create_api_key(
            s.ApiKeyCreate(name=f"w-{uuid.uuid4().hex[:6]}", pools=["tokens"])
        )
        theirs = admin.create_api_key(
            s.ApiKeyCreate(name=f"x-{uuid.uuid4().hex[:6]}", pools=["gpu"])
        )
    with FlowyardClient(locked_server.url, ours.key) as worker:
        assert worker.create_run_token(mine).startswith("fyrt_")
    with (
        FlowyardClient(locked_server.url, theirs.key) as worker,
        pytest.raises(ApiError) as refused,
    ):
        worker.create_run_token(mine)
    assert refused.value.status_code == 403


def test_tokens_are_minted_without_api_keys_too(tmp_path: Path):
    """A server without keys still mints tokens (not needed there, so a worker need not care)."""
    with running_server(tmp_path / "open", FAST) as server:
        with server.client() as api:
            create_process_pool(api, "open")
            dep = api.create_deployment(
                s.DeploymentCreate(
                    name="d", flow_name="f", entrypoint="flows.py:f", pool_name="open"
                )
            )
            run = api.run_deployment(dep.id, s.DeploymentRunRequest())
            token = api.create_run_token(run.id)
        assert token.startswith("fyrt_")
        response = httpx.get(f"{server.url}/api/flow_runs/{run.id}", headers=_bearer(token))
        assert response.status_code == 200
