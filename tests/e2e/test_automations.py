"""Automations end to end, on real servers: state changes and webhooks fire them, RQ runs
their actions, restarts and a second replica neither lose nor repeat a firing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess
from flowyard.states import StateType
from tests.blocks.notify.receivers import HttpReceiver
from tests.e2e.conftest import FAST, create_process_pool, deploy_flow
from tests.servers import running_server
from tests.waiting import wait_until

FAILED = "flowyard.flow-run.Failed"


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    found = HttpReceiver()
    yield found
    found.close()


def automate(server: ServerProcess, **doc: Any) -> dict[str, Any]:
    response = httpx.post(f"{server.url}/api/automations", json=doc)
    assert response.status_code == 201, response.text
    return response.json()


def firings(server: ServerProcess, automation: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.url}/api/automations/{automation}/firings")
    assert response.status_code == 200, response.text
    return response.json()


def fail_runs(server: ServerProcess, deployment_id: str, count: int) -> list[str]:
    """``count`` runs of the deployment moved to Failed (as an operator would)."""
    ids = []
    with server.client() as api:
        for _ in range(count):
            run = api.run_deployment(deployment_id, s.DeploymentRunRequest())
            api.set_flow_run_state(run.id, s.StateChange(type=StateType.FAILED, force=True))
            ids.append(run.id)
    return ids


def three_failures(deployment_id: str, actions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": "three-failures",
        "trigger": {
            "expect": [FAILED],
            "match_related": {"flowyard.resource.id": f"flowyard.deployment.{deployment_id}"},
            "threshold": 3,
            "within": 600,
        },
        "actions": actions,
    }


def test_three_failures_fire_once_across_a_restart(tmp_path, flows_dir, redis_server, receiver):
    """Two failures, a restart of the API, a third failure: one notification, exactly; two
    more failures in the same window: still one."""
    env = {**FAST, "FLOWYARD_REDIS_URL": redis_server.url}
    home = tmp_path / "home"
    with running_server(home, env) as server, server.client() as api:
        dep = deploy_flow(api, create_process_pool(api, "auto"), flows_dir, "noop")
        api.save_block("slack-webhook", "ops", {"url": receiver.url + "/slack"})
        action = {"type": "send-notification", "block": "slack-webhook/ops"}
        automate(server, **three_failures(dep.id, [action]))
        fail_runs(server, dep.id, 2)
    with running_server(home, env) as server:
        last = fail_runs(server, dep.id, 1)[0]
        wait_until(lambda: len(receiver.requests) == 1, timeout=30)
        fail_runs(server, dep.id, 2)
        wait_until(lambda: len(firings(server, "three-failures")) >= 1, timeout=30)
        (firing,) = firings(server, "three-failures")
        assert firing["actions"][0]["status"] == "succeeded"
        assert firing["triggering_event"]["resource"]["flowyard.resource.id"] == (
            f"flowyard.flow-run.{last}"
        )
    assert len(receiver.requests) == 1
    assert "is Failed" in receiver.requests[0].json["text"]
