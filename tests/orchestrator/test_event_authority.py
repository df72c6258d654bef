"""Who may emit and read events: a run token emits about its own run, never as the server."""

from __future__ import annotations

import uuid

import httpx

from flowyard.client import FlowyardClient
from tests.helpers.locked_server import ADMIN


def _about(resource_id: str, name: str = "shop.checked") -> dict[str, object]:
    return {"id": str(uuid.uuid4()), "event": name,
            "resource": {"flowyard.resource.id": resource_id}}  # fmt: skip


def test_a_run_token_emits_about_its_run_or_its_own_resources_only(locked_server, two_runs):
    """Its own run and resources outside the server's namespace pass; another run, or a
    server resource such as a deployment, is 403; a server event name is 422 for anyone."""
    mine, other, deployment_id = two_runs
    with FlowyardClient(locked_server.url, ADMIN) as admin:
        token = admin.create_run_token(mine)
    headers = {"Authorization": f"Bearer {token}"}
    own = [_about(f"flowyard.flow-run.{mine}"), _about("shop.order.1")]
    with httpx.Client(base_url=locked_server.url, headers=headers) as http:
        assert http.post("/api/events", json=own).status_code == 201
        for forged in (f"flowyard.flow-run.{other}", f"flowyard.deployment.{deployment_id}"):
            assert http.post("/api/events", json=[own[1], _about(forged)]).status_code == 403
        system = _about(f"flowyard.flow-run.{mine}", "flowyard.flow-run.Completed")
        assert http.post("/api/events", json=[system]).status_code == 422
        assert http.get("/api/events").status_code == 403
    with httpx.Client(
        base_url=locked_server.url, headers={"Authorization": f"Bearer {ADMIN}"}
    ) as http:
        assert http.post("/api/events", json=[system]).status_code == 422
        stored = http.get("/api/events", params={"event": "shop.checked", "limit": 500}).json()
    ids = {e["id"] for e in stored["events"]}
    assert {e["id"] for e in own} <= ids and system["id"] not in ids
