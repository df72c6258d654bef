"""Automations end to end, on real servers: state changes fire them, RQ runs their
actions, and an API restart or a second replica neither loses nor repeats a firing.

A *canary* automation fires on every matching event: once it has seen the last event of a
test, the evaluator has evaluated everything before it, so what did not fire by then
never will (no sleeping to wait for a non-event)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess
from flowyard.states import StateType
from tests.blocks.notify.receivers import HttpReceiver
from tests.e2e.conftest import FAST, create_process_pool, deploy_flow
from tests.postgres import fresh_database
from tests.servers import running_server
from tests.waiting import wait_until

FAILED = "flowyard.flow-run.Failed"
NOTHING = [{"type": "do-nothing"}]


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


def each(expect: str) -> dict[str, Any]:
    """A trigger firing on every ``expect`` event (one window per resource)."""
    return {"expect": [expect], "for_each": ["flowyard.resource.id"]}


def canary(server: ServerProcess, expect: str) -> None:
    """An automation firing on every ``expect`` event (see the module's docstring)."""
    automate(server, name="canary", trigger=each(expect), actions=NOTHING)


def canary_saw(server: ServerProcess, count: int) -> None:
    wait_until(lambda: len(firings(server, "canary")) >= count, timeout=30)


def move(server: ServerProcess, deployment_id: str, count: int, state: StateType) -> list[str]:
    """``count`` new runs of the deployment moved to ``state`` (as an operator would)."""
    ids = []
    with server.client() as api:
        for _ in range(count):
            run = api.run_deployment(deployment_id, s.DeploymentRunRequest())
            api.set_flow_run_state(run.id, s.StateChange(type=state, force=True))
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


def test_three_failures_notify_once_across_a_restart(tmp_path, flows_dir, redis_server, receiver):
    """Two failures, a restart of the API, a third failure: one notification, whose text
    names the run; two more failures in the same window: still one."""
    env = {**FAST, "FLOWYARD_REDIS_URL": redis_server.url}
    home = tmp_path / "home"
    with running_server(home, env) as server, server.client() as api:
        dep = deploy_flow(api, create_process_pool(api, "auto"), flows_dir, "noop")
        api.save_block("slack-webhook", "ops", {"url": receiver.url + "/slack"})
        action = {"type": "send-notification", "block": "slack-webhook/ops"}
        automate(server, **three_failures(dep.id, [action]))
        canary(server, FAILED)
        move(server, dep.id, 2, StateType.FAILED)
        canary_saw(server, 2)
    with running_server(home, env) as server:
        (third,) = move(server, dep.id, 1, StateType.FAILED)
        wait_until(lambda: len(receiver.requests) == 1, timeout=30)
        move(server, dep.id, 2, StateType.FAILED)
        canary_saw(server, 5)
        (firing,) = firings(server, "three-failures")
        wait_until(
            lambda: firings(server, "three-failures")[0]["actions"][0]["status"] == "succeeded"
        )
        assert firing["triggering_event"]["resource"]["flowyard.resource.id"] == (
            f"flowyard.flow-run.{third}"
        )
        with server.client() as api:
            name = api.read_flow_run(third).name
    assert len(receiver.requests) == 1
    text = receiver.requests[0].json["text"]
    assert name in text and "is Failed" in text


def test_a_run_still_running_past_the_window_fires_a_proactive_trigger(server, api, pool, deploy):
    """Running, then nothing for 2 s: fired; Running then Completed within 2 s: not."""
    dep = deploy("noop", name="proactive")
    automate(server, name="stuck", trigger={
        "posture": "Proactive", "after": ["flowyard.flow-run.Running"],
        "expect": ["flowyard.flow-run.Completed", "flowyard.flow-run.Failed"],
        "match_related": {"flowyard.resource.id": f"flowyard.deployment.{dep.id}"},
        "for_each": ["flowyard.resource.id"], "within": 2,
    }, actions=NOTHING)  # fmt: skip
    quick = api.run_deployment(dep.id, s.DeploymentRunRequest())
    api.set_flow_run_state(quick.id, s.StateChange(type=StateType.RUNNING, force=True))
    (stuck,) = move(server, dep.id, 1, StateType.RUNNING)
    api.set_flow_run_state(quick.id, s.StateChange(type=StateType.COMPLETED, force=True))
    wait_until(lambda: firings(server, "stuck"), timeout=30)
    # the quick run's window ended first: had it fired, it would be here by now
    assert [f["labels"] for f in firings(server, "stuck")] == [
        {"flowyard.resource.id": f"flowyard.flow-run.{stuck}"}
    ]


def test_an_action_on_a_deleted_deployment_is_an_error_on_the_automation(server, api, pool, deploy):
    """The action fails at once with a clear error, recorded and evented; the evaluator
    goes on (a second automation on the same event still fires and acts)."""
    target = deploy("noop", name="doomed")
    automate(server, name="runs-doomed", trigger={"expect": ["shop.restock"]},
             actions=[{"type": "run-deployment", "deployment": target.id}])  # fmt: skip
    automate(server, name="still-here", trigger={"expect": ["shop.restock"]}, actions=NOTHING)
    api.delete_deployment(target.id)
    httpx.post(f"{server.url}/api/events", json=[
        {"event": "shop.restock", "resource": {"flowyard.resource.id": "shop.item.1"}}
    ]).raise_for_status()  # fmt: skip

    def failed() -> dict[str, Any] | None:
        found = firings(server, "runs-doomed")
        return (
            found[0]["actions"][0]
            if found and found[0]["actions"][0]["status"] == "failed"
            else None
        )

    action = wait_until(failed, timeout=30)
    assert action["attempts"] == 1 and "not found" in action["error"]
    wait_until(
        lambda: [f["actions"][0]["status"] for f in firings(server, "still-here")] == ["succeeded"]
    )
    page = api.list_events(event=["flowyard.automation.action.failed"])
    assert any("not found" in e.payload["error"] for e in page.events)


def action_statuses(server: ServerProcess, automation: str) -> list[str]:
    return [a["status"] for f in firings(server, automation) for a in f["actions"]]


@pytest.mark.postgres
def test_two_replicas_fire_and_act_once_per_firing(
    postgres_server, redis_server, tmp_path, flows_dir, receiver
):
    """Two API replicas on one PostgreSQL and one Redis; runs fail through both: each
    failure notifies exactly once (one evaluator leads; actions run on either)."""
    url = fresh_database(postgres_server, "flowyard_replicas")
    env = {**FAST, "FLOWYARD_REDIS_URL": redis_server.url, "FLOWYARD_DATABASE_URL": url,
           "FLOWYARD_SECRET_KEY": Fernet.generate_key().decode()}  # replicas share one  # fmt: skip
    notify = {
        "type": "send-notification",
        "block": "slack-webhook/ops",
        "body": "{{ flow_run.id }}",
    }
    with running_server(tmp_path / "a", env) as one, running_server(tmp_path / "b", env) as two:
        with one.client() as api:
            dep = deploy_flow(api, create_process_pool(api, "replicas"), flows_dir, "noop")
            api.save_block("slack-webhook", "ops", {"url": receiver.url + "/slack"})
        automate(one, name="each-failure", trigger=each(FAILED), actions=[notify])
        canary(two, FAILED)
        failed = []
        for _ in range(5):
            failed += move(one, dep.id, 1, StateType.FAILED) + move(
                two, dep.id, 1, StateType.FAILED
            )
        canary_saw(one, 10)
        wait_until(lambda: action_statuses(two, "each-failure") == ["succeeded"] * 10, timeout=60)
    notified = sorted(r.json["text"].rsplit("\n", 1)[-1] for r in receiver.requests)
    assert notified == sorted(failed)


WEBHOOK_TEMPLATE = """{
  "event": "shop.restock.requested",
  "resource": {"flowyard.resource.id": {{ ("shop.item." ~ body.item) | tojson }}},
  "payload": {"n": {{ body.n | tojson }}}
}"""


def test_a_webhook_request_runs_a_deployment_with_parameters_from_its_body(
    server, api, pool, deploy
):
    """POST /hooks/{slug} with the secret → an event → an automation runs the deployment
    with ``n`` from the body (an int, as the flow's parameter wants); a bad secret is a
    401 and runs nothing."""
    dep = deploy("noop", name="restock")
    created = httpx.post(f"{server.url}/api/webhooks",
                         json={"name": "restock", "template": WEBHOOK_TEMPLATE})  # fmt: skip
    assert created.status_code == 201, created.text
    hook = created.json()
    automate(server, name="restock-runs", trigger={"expect": ["shop.restock.requested"]},
             actions=[{"type": "run-deployment", "deployment": dep.id,
                       "parameters": {"n": "{{ event.payload.n }}"}}])  # fmt: skip
    url = server.url + hook["path"]
    refused = httpx.post(url, json={"item": "x", "n": 1},
                         headers={"X-Flowyard-Webhook-Secret": "not-the-secret"})  # fmt: skip
    assert refused.status_code == 401
    accepted = httpx.post(url, json={"item": "bolt", "n": 7},
                          headers={"X-Flowyard-Webhook-Secret": hook["secret"]})  # fmt: skip
    assert accepted.status_code == 202, accepted.text
    runs = wait_until(lambda: api.list_flow_runs(deployment_id=dep.id), timeout=30)
    assert [r.parameters for r in runs] == [{"n": 7}]
    assert len(firings(server, "restock-runs")) == 1
