"""Every route of the OpenAPI spec, called with every kind of credential, on a real server.

The subject of each request belongs to pool A (its pool, run, deployment, task run, block).
The credentials: the admin key, a viewer key, a worker key of pool A and one of pool B, a
run token of A's run and one of B's run, and none. Each cell expects 2xx where the caller's
role reaches the subject, 403 where it does not, and 401 without a credential (but at a
webhook's hook, which asks for the webhook's own secret, never a key). A request is
built afresh for each cell (new runs, pools, keys where the route changes or deletes them),
so that one cell's success does not change what the next one sees.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowyard import schemas as s
from flowyard.client import FlowyardClient
from flowyard.errors import ApiError
from flowyard.states import StateType
from tests.e2e.conftest import FAST, create_process_pool, deploy_flow
from tests.servers import running_server
from tests.waiting import wait_until

ADMIN = "admin-secret-for-the-authority-matrix-0123456789"
WHO = ("admin", "viewer", "worker_a", "worker_b", "run_a", "run_b", "none")
_names = itertools.count()


def _name(prefix: str) -> str:
    return f"{prefix}-{next(_names)}-{uuid.uuid4().hex[:4]}"


@dataclass
class Req:
    method: str
    path: str
    json: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    run: str | None = None  # the A run whose token "run_a" presents (default: the world's)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class World:
    """Pool A and pool B, each with a deployment, a run and a task run; keys and tokens."""

    admin: FlowyardClient
    flows_dir: Path
    pool_a: str
    pool_b: str
    deployment_a: s.Deployment
    run_a: str
    run_b: str
    task_a: str
    block_a: str
    keys: dict[str, str] = field(default_factory=dict)

    def later(self) -> str:
        return (datetime.now(UTC) + timedelta(days=1)).isoformat()

    def fresh_run(self) -> str:
        """A new run of A's deployment, due tomorrow (so that no claim takes it)."""
        body = s.DeploymentRunRequest(scheduled_time=datetime.now(UTC) + timedelta(days=1))
        return self.admin.run_deployment(self.deployment_a.id, body).id

    def claimed_run(self, run_id: str | None = None) -> tuple[str, str]:
        """A new run of A's deployment (or ``run_id``, due now), claimed by the admin: its
        id and claim token."""
        if run_id is None:
            body = s.DeploymentRunRequest()
            run_id = self.admin.run_deployment(self.deployment_a.id, body).id
        found: dict[str, str] = {}

        def claimed() -> bool:
            request = s.ClaimRequest(worker_name="matrix", max_runs=10, wait=1.0)
            for claim in self.admin.claim(self.pool_a, request):
                found[claim.run.id] = claim.token
            return run_id in found

        wait_until(claimed, timeout=30, message="the fresh run was not claimed")
        return run_id, found[run_id]

    def token_for(self, run_id: str) -> str:
        return self.admin.create_run_token(run_id)

    def log(self, run_id: str) -> dict[str, Any]:
        return {"flow_run_id": run_id, "message": "hi", "timestamp": datetime.now(UTC).isoformat()}


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # the route, as the OpenAPI spec names it
    allowed: frozenset[str]  # who besides the admin gets 2xx
    build: Callable[[World, str], Req]


def case(method: str, path: str, allowed: str, build: Callable[[World, str], Req]) -> Case:
    return Case(method, path, frozenset(allowed.split()) | {"admin"}, build)


def _pool_name(w: World, who: str) -> str:
    return "pa-spare" if who == "worker_a" else _name("pool")


def _new_pool(w: World) -> str:
    return create_process_pool(w.admin, _name("pool"))


def _new_queue(w: World) -> str:
    name = _name("q")
    w.admin.create_work_queue(w.pool_a, s.WorkQueueCreate(name=name))
    return name


def _new_schedule(w: World) -> str:
    body = s.ScheduleCreate(kind="interval", expression="3600", active=False)
    return w.admin.create_schedule(w.deployment_a.id, body).id


def _new_deployment(w: World) -> str:
    """A new deployment in pool A (of A's flow), to be deleted."""
    return deploy_flow(w.admin, w.pool_a, w.flows_dir, "noop", name=_name("d")).id


def _new_block(w: World) -> str:
    name = _name("b")
    w.admin.save_block("secret", name, {"value": "s3cret"})
    return name


def _automation_doc() -> dict[str, Any]:
    return {
        "name": _name("auto"),
        "trigger": {"expect": ["x"]},
        "actions": [{"type": "do-nothing"}],
    }


def _new_automation(w: World) -> str:
    return str(w.admin.request("POST", "/api/automations", json=_automation_doc())["id"])


def _replace_automation(w: World, who: str) -> Req:
    ref = _new_automation(w)
    name = w.admin.request("GET", f"/api/automations/{ref}")["name"]
    return Req("PUT", f"/api/automations/{ref}", {**_automation_doc(), "name": name})


def _event_about(run_id: str) -> dict[str, Any]:
    return {
        "event": "matrix.checked",
        "resource": {"flowyard.resource.id": f"flowyard.flow-run.{run_id}"},
    }


def _new_event(w: World) -> str:
    event = {**_event_about(w.run_a), "id": str(uuid.uuid4())}
    w.admin.request("POST", "/api/events", json=[event])
    return str(event["id"])


def _new_webhook(w: World) -> dict[str, Any]:
    """A new webhook (its name, path and secret)."""
    body = {"name": _name("wh"), "template": HOOK_TEMPLATE}
    return dict(w.admin.request("POST", "/api/webhooks", json=body))


HOOK_TEMPLATE = '{"event": "matrix.hooked", "resource": {"flowyard.resource.id": "matrix"}}'


def _hook(w: World, who: str) -> Req:
    """A call of a webhook with its secret: the caller's API key plays no part."""
    hook = _new_webhook(w)
    return Req("POST", hook["path"], {}, headers={"X-Flowyard-Webhook-Secret": hook["secret"]})


def _new_key(w: World) -> str:
    name = _name("k")
    w.admin.create_api_key(s.ApiKeyCreate(name=name, role="viewer"))
    return name


def _new_limit(w: World) -> str:
    tag = _name("tag")
    w.admin.set_concurrency_limit(tag, 2)
    return tag


def _background(w: World, **fields: Any) -> str:
    body = {"task_key": "matrix-task", "name": "matrix-task", **fields}
    response = w.admin.request("POST", "/api/background_task_runs", json=body)
    return str(response["id"])


def _claimed_background(w: World, **fields: Any) -> tuple[str, str]:
    run_id = _background(w, **fields)
    claim = {"task_keys": ["matrix-task"], "worker_name": "matrix", "max_runs": 50, "wait": 0}
    answer = w.admin.request("POST", "/api/background_task_runs/claim", json=claim)
    for claimed in answer["runs"]:
        if claimed["run"]["id"] == run_id:
            return run_id, claimed["token"]
    raise AssertionError("the background run was not claimed")


def _state(w: World, who: str) -> Req:
    run_id, token = w.claimed_run()
    return Req(
        "POST", f"/api/flow_runs/{run_id}/state", {"type": "RUNNING", "token": token}, run=run_id
    )


def _run_input(w: World, who: str) -> Req:
    """A claimed run of A, paused (key "1") waiting for input: reading that pause."""
    run_id, token = w.claimed_run()
    path = f"/api/flow_runs/{run_id}/state"
    w.admin.request("POST", path, json={"type": "RUNNING", "token": token})
    pause = {"key": "1", "input_schema": {"type": "object"}}
    w.admin.request("POST", path, json={"type": "PAUSED", "token": token, "pause": pause})
    return Req("GET", f"/api/flow_runs/{run_id}/input/1", run=run_id)


def _infrastructure(w: World, who: str) -> Req:
    run_id, token = w.claimed_run()
    body = {"token": token, "infrastructure_id": "pid-1"}
    return Req("POST", f"/api/flow_runs/{run_id}/infrastructure", body, run=run_id)


def _report_background(w: World, who: str) -> Req:
    run_id, token = _claimed_background(w)
    return Req(
        "POST", f"/api/background_task_runs/{run_id}/state", {"state": "RUNNING", "token": token}
    )


def _variable_name() -> str:
    return f"var_{uuid.uuid4().hex[:12]}"


def _new_variable(w: World) -> str:
    name = _variable_name()
    w.admin.create_variable(s.VariableCreate(name=name, value={"n": 1}))
    return name


def _task_record(w: World) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "flow_run_id": w.run_a,
        "name": "t",
        "task_key": "t",
        "state": "COMPLETED",
    }


def _result(w: World, who: str) -> Req:
    ref = {
        "storage": {"type": "local-file-system"},
        "key": "k",
        "location": "/tmp/x",
        "serializer": "json",
    }
    return Req("PUT", f"/api/flow_runs/{w.run_a}/result", ref)


def _artifact(w: World, key: str | None = None) -> str:
    """A new artifact of A's run (its key a fresh one unless ``key`` is given)."""
    body = {"type": "progress", "data": 10, "key": key or _name("art"), "flow_run_id": w.run_a}
    return str(w.admin.request("POST", "/api/artifacts", json=body)["id"])


def _artifact_key(w: World) -> str:
    key = _name("art")
    _artifact(w, key)
    return key


def _new_artifact(w: World, who: str) -> Req:
    body = {"type": "markdown", "data": "# hi", "flow_run_id": w.run_a, "task_run_id": w.task_a}
    return Req("POST", "/api/artifacts", body)


def _slots(action: str) -> Callable[[World, str], Req]:
    def build(w: World, who: str) -> Req:
        tag, holder = _new_limit(w), _name("holder")
        body = {"tags": [tag], "holder": holder, "lease_seconds": 60}
        if action != "acquire":  # the caller's own slot, taken first with its credential
            _call(w, who, Req("POST", "/api/concurrency_limits/acquire", body))
        return Req("POST", f"/api/concurrency_limits/{action}", body)

    return build


CASES = [
    # pools and queues
    case("GET", "/api/work_pools", "viewer", lambda w, who: Req("GET", "/api/work_pools")),
    case("POST", "/api/work_pools", "worker_a",
         lambda w, who: Req("POST", "/api/work_pools", {"name": _pool_name(w, who), "type": "process"})),
    case("GET", "/api/work_pools/{name}", "viewer worker_a", lambda w, who: Req("GET", f"/api/work_pools/{w.pool_a}")),
    case("PATCH", "/api/work_pools/{name}", "",
         lambda w, who: Req("PATCH", f"/api/work_pools/{w.pool_a}", {"description": "matrix"})),
    case("DELETE", "/api/work_pools/{name}", "", lambda w, who: Req("DELETE", f"/api/work_pools/{_new_pool(w)}")),
    case("POST", "/api/work_pools/{pool_name}/queues", "",
         lambda w, who: Req("POST", f"/api/work_pools/{w.pool_a}/queues", {"name": _name("q")})),
    case("GET", "/api/work_pools/{pool_name}/queues", "viewer worker_a",
         lambda w, who: Req("GET", f"/api/work_pools/{w.pool_a}/queues")),
    case("GET", "/api/work_pools/{pool_name}/queues/{name}", "viewer worker_a",
         lambda w, who: Req("GET", f"/api/work_pools/{w.pool_a}/queues/default")),
    case("PATCH", "/api/work_pools/{pool_name}/queues/{name}", "",
         lambda w, who: Req("PATCH", f"/api/work_pools/{w.pool_a}/queues/default", {"description": "m"})),
    case("DELETE", "/api/work_pools/{pool_name}/queues/{name}", "",
         lambda w, who: Req("DELETE", f"/api/work_pools/{w.pool_a}/queues/{_new_queue(w)}")),
    case("POST", "/api/work_pools/{pool_name}/claim", "worker_a",
         lambda w, who: Req("POST", f"/api/work_pools/{w.pool_a}/claim", {"worker_name": "m", "wait": 0})),
    case("POST", "/api/work_pools/{pool_name}/workers/heartbeat", "worker_a",
         lambda w, who: Req("POST", f"/api/work_pools/{w.pool_a}/workers/heartbeat", {"worker_name": "m"})),
    case("GET", "/api/workers", "viewer worker_a", lambda w, who: Req("GET", "/api/workers", params={"pool": w.pool_a})),
    # deployments and schedules
    case("GET", "/api/deployments", "viewer", lambda w, who: Req("GET", "/api/deployments")),
    case("POST", "/api/deployments", "", lambda w, who: Req("POST", "/api/deployments", {
        "name": _name("d"), "flow_name": "noop", "entrypoint": "flows.py:noop",
        "path": str(w.flows_dir), "pool_name": w.pool_a})),
    case("GET", "/api/deployments/{ref}", "viewer worker_a run_a",
         lambda w, who: Req("GET", f"/api/deployments/{w.deployment_a.id}")),
    case("DELETE", "/api/deployments/{ref}", "",
         lambda w, who: Req("DELETE", f"/api/deployments/{_new_deployment(w)}")),
    case("PATCH", "/api/deployments/{ref}", "",
         lambda w, who: Req("PATCH", f"/api/deployments/{w.deployment_a.id}", {"description": "patched"})),
    case("POST", "/api/deployments/{ref}/pause", "", lambda w, who: Req("POST", f"/api/deployments/{w.deployment_a.id}/pause")),
    case("POST", "/api/deployments/{ref}/resume", "", lambda w, who: Req("POST", f"/api/deployments/{w.deployment_a.id}/resume")),
    case("POST", "/api/deployments/{ref}/runs", "",
         lambda w, who: Req("POST", f"/api/deployments/{w.deployment_a.id}/runs", {"scheduled_time": w.later()})),
    case("POST", "/api/deployments/{ref}/runs/bulk", "",
         lambda w, who: Req("POST", f"/api/deployments/{w.deployment_a.id}/runs/bulk", {"count": 2, "scheduled_time": w.later()})),
    case("GET", "/api/deployments/{ref}/schedules", "viewer",
         lambda w, who: Req("GET", f"/api/deployments/{w.deployment_a.id}/schedules")),
    case("POST", "/api/deployments/{ref}/schedules", "",
         lambda w, who: Req("POST", f"/api/deployments/{w.deployment_a.id}/schedules",
                            {"kind": "interval", "expression": "3600", "active": False})),
    case("PATCH", "/api/deployments/{ref}/schedules/{schedule_id}", "",
         lambda w, who: Req("PATCH", f"/api/deployments/{w.deployment_a.id}/schedules/{_new_schedule(w)}",
                            {"active": False})),
    case("DELETE", "/api/deployments/{ref}/schedules/{schedule_id}", "",
         lambda w, who: Req("DELETE", f"/api/deployments/{w.deployment_a.id}/schedules/{_new_schedule(w)}")),
    case("PUT", "/api/deployments/{ref}/triggers", "",
         lambda w, who: Req("PUT", f"/api/deployments/{w.deployment_a.id}/triggers", [])),
    # automations
    case("POST", "/api/automations", "", lambda w, who: Req("POST", "/api/automations", _automation_doc())),
    case("GET", "/api/automations", "viewer", lambda w, who: Req("GET", "/api/automations")),
    case("GET", "/api/automations/{ref}", "viewer", lambda w, who: Req("GET", f"/api/automations/{_new_automation(w)}")),
    case("PUT", "/api/automations/{ref}", "", _replace_automation),
    case("PATCH", "/api/automations/{ref}", "",
         lambda w, who: Req("PATCH", f"/api/automations/{_new_automation(w)}", {"enabled": False})),
    case("DELETE", "/api/automations/{ref}", "", lambda w, who: Req("DELETE", f"/api/automations/{_new_automation(w)}")),
    case("GET", "/api/automations/{ref}/firings", "viewer",
         lambda w, who: Req("GET", f"/api/automations/{_new_automation(w)}/firings")),
    # flow runs
    case("POST", "/api/flow_runs", "run_a",
         lambda w, who: Req("POST", "/api/flow_runs", {"flow_name": "child", "parent_task_run_id": w.task_a})),
    case("GET", "/api/flow_runs", "viewer worker_a",
         lambda w, who: Req("GET", "/api/flow_runs", params={"pool": w.pool_a})),
    *[
        case("GET", f"/api/flow_runs/{{ref}}{tail}", "viewer worker_a run_a",
             lambda w, who, tail=tail: Req("GET", f"/api/flow_runs/{w.run_a}{tail}"))
        for tail in ("", "/history", "/graph", "/task_runs", "/logs")
    ],
    case("POST", "/api/flow_runs/{ref}/state", "worker_a run_a", _state),
    case("POST", "/api/flow_runs/{ref}/heartbeat", "worker_a run_a",
         lambda w, who: Req("POST", f"/api/flow_runs/{w.run_a}/heartbeat", {})),
    case("POST", "/api/flow_runs/{ref}/infrastructure", "worker_a run_a", _infrastructure),
    case("PUT", "/api/flow_runs/{ref}/result", "run_a", _result),
    case("POST", "/api/flow_runs/{ref}/token", "worker_a", lambda w, who: Req("POST", f"/api/flow_runs/{w.run_a}/token")),
    case("POST", "/api/flow_runs/{ref}/cancel", "", lambda w, who: Req("POST", f"/api/flow_runs/{w.fresh_run()}/cancel")),
    case("POST", "/api/flow_runs/{ref}/suspend", "run_a",  # answered "not running": 200
         lambda w, who: Req("POST", f"/api/flow_runs/{w.run_a}/suspend", {"key": "k"})),
    case("POST", "/api/flow_runs/{ref}/resume", "",
         lambda w, who: Req("POST", f"/api/flow_runs/{w.run_a}/resume")),
    case("GET", "/api/flow_runs/{ref}/input/{key}", "viewer run_a", _run_input),
    case("POST", "/api/flow_runs/{ref}/messages", "run_a",
         lambda w, who: Req("POST", f"/api/flow_runs/{w.run_a}/messages",
                            {"key": _name("message"), "value": {"n": 1}})),
    case("POST", "/api/flow_runs/{ref}/messages/filter", "viewer run_a",
         lambda w, who: Req("POST", f"/api/flow_runs/{w.run_a}/messages/filter", {"prefix": "message"})),
    # task runs and logs
    case("POST", "/api/task_runs/bulk", "worker_a run_a", lambda w, who: Req("POST", "/api/task_runs/bulk", [_task_record(w)])),
    case("GET", "/api/task_runs/{task_run_id}", "viewer worker_a run_a",
         lambda w, who: Req("GET", f"/api/task_runs/{w.task_a}")),
    case("POST", "/api/task_runs/{task_run_id}/state", "worker_a run_a",
         lambda w, who: Req("POST", f"/api/task_runs/{w.task_a}/state", {"state": "RUNNING"})),
    case("POST", "/api/logs", "worker_a run_a", lambda w, who: Req("POST", "/api/logs", [w.log(w.run_a)])),
    # artifacts: a run token publishes its run's; viewers read
    case("POST", "/api/artifacts", "run_a", _new_artifact),
    case("GET", "/api/artifacts", "viewer", lambda w, who: Req("GET", "/api/artifacts")),
    case("GET", "/api/artifacts/{artifact_id}", "viewer run_a",
         lambda w, who: Req("GET", f"/api/artifacts/{_artifact(w)}")),
    case("PATCH", "/api/artifacts/{artifact_id}", "run_a",
         lambda w, who: Req("PATCH", f"/api/artifacts/{_artifact(w)}", {"data": 50})),
    case("DELETE", "/api/artifacts/{artifact_id}", "",
         lambda w, who: Req("DELETE", f"/api/artifacts/{_artifact(w)}")),
    case("GET", "/api/artifacts/keys/{key}", "viewer",
         lambda w, who: Req("GET", f"/api/artifacts/keys/{_artifact_key(w)}")),
    case("DELETE", "/api/artifacts/keys/{key}", "",
         lambda w, who: Req("DELETE", f"/api/artifacts/keys/{_artifact_key(w)}")),
    # variables: operators write them, viewers and flows read them
    case("POST", "/api/variables", "",
         lambda w, who: Req("POST", "/api/variables", {"name": _variable_name(), "value": 1})),
    case("GET", "/api/variables", "viewer run_a run_b",
         lambda w, who: Req("GET", "/api/variables")),
    case("GET", "/api/variables/{name}", "viewer run_a run_b",
         lambda w, who: Req("GET", f"/api/variables/{_new_variable(w)}")),
    case("PATCH", "/api/variables/{name}", "",
         lambda w, who: Req("PATCH", f"/api/variables/{_new_variable(w)}", {"value": [2]})),
    case("DELETE", "/api/variables/{name}", "",
         lambda w, who: Req("DELETE", f"/api/variables/{_new_variable(w)}")),
    # background task runs: served by any worker key
    case("POST", "/api/background_task_runs", "worker_a worker_b",
         lambda w, who: Req("POST", "/api/background_task_runs", {"task_key": "matrix-other", "name": "t"})),
    case("POST", "/api/background_task_runs/claim", "worker_a worker_b",
         lambda w, who: Req("POST", "/api/background_task_runs/claim",
                            {"task_keys": ["nothing-here"], "worker_name": "m", "wait": 0})),
    case("POST", "/api/background_task_runs/heartbeat", "worker_a worker_b",
         lambda w, who: Req("POST", "/api/background_task_runs/heartbeat", {"worker_name": "m"})),
    case("POST", "/api/background_task_runs/{run_id}/state", "worker_a worker_b", _report_background),
    case("GET", "/api/background_task_runs/{run_id}/wait", "viewer worker_a worker_b",
         lambda w, who: Req("GET", f"/api/background_task_runs/{_background(w)}/wait", params={"timeout": 0})),
    # blocks
    case("GET", "/api/block_types", "viewer worker_a worker_b run_a run_b", lambda w, who: Req("GET", "/api/block_types")),
    case("GET", "/api/blocks", "viewer", lambda w, who: Req("GET", "/api/blocks")),
    case("POST", "/api/blocks", "",
         lambda w, who: Req("POST", "/api/blocks", {"type": "secret", "name": _name("b"), "data": {"value": "x"}})),
    case("GET", "/api/blocks/{slug}/{name}", "viewer worker_a run_a",
         lambda w, who: Req("GET", f"/api/blocks/secret/{w.block_a}")),
    case("PUT", "/api/blocks/{slug}/{name}", "",
         lambda w, who: Req("PUT", f"/api/blocks/secret/{w.block_a}", {"data": {"value": "s3cret"}})),
    case("DELETE", "/api/blocks/{slug}/{name}", "", lambda w, who: Req("DELETE", f"/api/blocks/secret/{_new_block(w)}")),
    # tag concurrency limits
    case("GET", "/api/concurrency_limits", "viewer", lambda w, who: Req("GET", "/api/concurrency_limits")),
    case("POST", "/api/concurrency_limits", "",
         lambda w, who: Req("POST", "/api/concurrency_limits", {"tag": _name("tag"), "limit": 3})),
    case("GET", "/api/concurrency_limits/{tag}", "viewer", lambda w, who: Req("GET", f"/api/concurrency_limits/{_new_limit(w)}")),
    case("DELETE", "/api/concurrency_limits/{tag}", "",
         lambda w, who: Req("DELETE", f"/api/concurrency_limits/{_new_limit(w)}")),
    *[
        case("POST", f"/api/concurrency_limits/{action}", "worker_a worker_b run_a run_b", _slots(action))
        for action in ("acquire", "renew", "release")
    ],
    case("GET", "/api/concurrency_limits/{tag}/holders", "viewer",
         lambda w, who: Req("GET", f"/api/concurrency_limits/{_new_limit(w)}/holders")),
    case("POST", "/api/concurrency_limits/{tag}/reset", "",
         lambda w, who: Req("POST", f"/api/concurrency_limits/{_new_limit(w)}/reset", {})),
    # events: a run token emits about its own run; reading is for viewers
    case("POST", "/api/events", "run_a", lambda w, who: Req("POST", "/api/events", [_event_about(w.run_a)])),
    case("GET", "/api/events", "viewer", lambda w, who: Req("GET", "/api/events", params={"limit": 5})),
    case("GET", "/api/events/follow", "viewer",
         lambda w, who: Req("GET", "/api/events/follow", params={"after": 0, "wait": 0})),
    case("GET", "/api/events/{event_id}", "viewer", lambda w, who: Req("GET", f"/api/events/{_new_event(w)}")),
    # incoming webhooks: viewers read them; the hook asks no API key, its secret decides
    case("GET", "/api/webhooks", "viewer", lambda w, who: Req("GET", "/api/webhooks")),
    case("POST", "/api/webhooks", "",
         lambda w, who: Req("POST", "/api/webhooks", {"name": _name("wh"), "template": HOOK_TEMPLATE})),
    case("GET", "/api/webhooks/{name}", "viewer", lambda w, who: Req("GET", f"/api/webhooks/{_new_webhook(w)['name']}")),
    case("PATCH", "/api/webhooks/{name}", "",
         lambda w, who: Req("PATCH", f"/api/webhooks/{_new_webhook(w)['name']}", {"enabled": False})),
    case("DELETE", "/api/webhooks/{name}", "", lambda w, who: Req("DELETE", f"/api/webhooks/{_new_webhook(w)['name']}")),
    case("POST", "/api/webhooks/{name}/rotate-secret", "",
         lambda w, who: Req("POST", f"/api/webhooks/{_new_webhook(w)['name']}/rotate-secret")),
    case("POST", "/hooks/{slug}", "viewer worker_a worker_b run_a run_b none", _hook),
    # the server itself
    case("GET", "/api/api_keys", "viewer", lambda w, who: Req("GET", "/api/api_keys")),
    case("POST", "/api/api_keys", "", lambda w, who: Req("POST", "/api/api_keys", {"name": _name("k"), "role": "viewer"})),
    case("DELETE", "/api/api_keys/{name}", "", lambda w, who: Req("DELETE", f"/api/api_keys/{_new_key(w)}")),
    case("GET", "/api/health", "viewer worker_a worker_b run_a run_b", lambda w, who: Req("GET", "/api/health")),
    case("GET", "/health", "viewer worker_a worker_b run_a run_b none", lambda w, who: Req("GET", "/health")),
    case("GET", "/metrics", "viewer", lambda w, who: Req("GET", "/metrics")),
]  # fmt: skip

EXCEPTIONS = {
    # a run can be resumed only while Paused, which only its engine can make it: authority
    # is shown by the 409 (the state), against 403 for everyone else
    ("POST", "/api/flow_runs/{ref}/resume"): 409,
}


def _credential(w: World, who: str, req: Req) -> str | None:
    if who == "none":
        return None
    if who == "run_a":
        return w.token_for(req.run or w.run_a)
    return w.keys[who]


def _call(w: World, who: str, req: Req) -> httpx.Response:
    key = _credential(w, who, req)
    headers = {**req.headers, **({"Authorization": f"Bearer {key}"} if key else {})}
    return httpx.request(
        req.method,
        w.admin.api_url + req.path,
        json=req.json,
        params=req.params,
        headers=headers,
        timeout=30,
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, flows_dir: Path) -> Iterator[World]:
    env = {**FAST, "FLOWYARD_API_KEY": ADMIN}
    with (
        running_server(tmp_path_factory.mktemp("matrix"), env) as server,
        FlowyardClient(server.url, ADMIN) as admin,
    ):
        yield _make_world(admin, flows_dir)


def _make_world(admin: FlowyardClient, flows_dir: Path) -> World:
    pool_a, pool_b = create_process_pool(admin, "pa"), create_process_pool(admin, "pb")
    block = "a-secret"
    admin.save_block("secret", block, {"value": "s3cret"})
    variables = {"env": {"TOKEN": "{{ block.secret/a-secret.value }}"}}
    deployment_a = deploy_flow(admin, pool_a, flows_dir, "noop", name="a", job_variables=variables)
    deployment_b = deploy_flow(admin, pool_b, flows_dir, "noop", name="b")
    later = s.DeploymentRunRequest(scheduled_time=datetime.now(UTC) + timedelta(days=1))
    run_a = admin.run_deployment(deployment_a.id, later).id
    run_b = admin.run_deployment(deployment_b.id, later).id
    task_a = str(uuid.uuid4())
    record = {"id": task_a, "flow_run_id": run_a, "name": "t", "task_key": "t", "state": "RUNNING"}
    assert admin.upsert_task_runs([record]).upserted == 1
    world = World(admin, flows_dir, pool_a, pool_b, deployment_a, run_a, run_b, task_a, block)
    world.keys = {
        "admin": ADMIN,
        "viewer": admin.create_api_key(s.ApiKeyCreate(name="viewer", role="viewer")).key,
        "worker_a": admin.create_api_key(s.ApiKeyCreate(name="wa", pools=["pa", "pa-spare"])).key,
        "worker_b": admin.create_api_key(s.ApiKeyCreate(name="wb", pools=["pb"])).key,
        "run_b": admin.create_run_token(run_b),
    }
    return world


def test_every_route_is_in_the_matrix(world: World):
    """The matrix covers the whole published API, no more and no less."""
    spec = httpx.get(world.admin.api_url + "/openapi.json", timeout=60).json()  # loaded CI
    routes = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert {(c.method, c.path) for c in CASES} == routes


def test_every_credential_reaches_exactly_what_its_role_allows(world: World):
    """2xx where the role reaches the subject, 403 where it does not, 401 with no key."""
    wrong = []
    for each, who in itertools.product(CASES, WHO):
        req = each.build(world, who)
        got = _call(world, who, req).status_code
        if who == "none" and "none" not in each.allowed:
            expected = {401}
        elif who in each.allowed:
            special = EXCEPTIONS.get((each.method, each.path))
            expected = {special} if special else set(range(200, 300))
        else:
            expected = {403}
        if got not in expected:
            wrong.append(f"{who:8} {each.method} {req.path} -> {got}")
    print(f"route x credential matrix: {len(CASES)} routes x {len(WHO)} credentials "
          f"= {len(CASES) * len(WHO)} cells, {len(wrong)} unexpected")  # fmt: skip
    assert not wrong, "\n".join(wrong)


# -- what the matrix's cells do not show --------------------------------------------------


def _as(w: World, who: str, method: str, path: str, **kw: Any) -> httpx.Response:
    key = w.keys[who] if who in w.keys else who
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.request(method, w.admin.api_url + path, headers=headers, timeout=30, **kw)


def test_secrets_go_only_to_workers_whose_pools_refer_to_them(world: World):
    """Pool A's deployment refers to the block: A's worker reads its secret in clear; B's
    worker, a viewer asking for secrets, and A's worker for a block nothing refers to: 403."""
    path = f"/api/blocks/secret/{world.block_a}"
    revealed = _as(world, "worker_a", "GET", path, params={"include_secrets": "true"})
    assert revealed.status_code == 200 and revealed.json()["data"]["value"] == "s3cret"
    unrelated = _new_block(world)
    refused = [
        _as(world, "worker_b", "GET", path, params={"include_secrets": "true"}),
        _as(world, "viewer", "GET", path, params={"include_secrets": "true"}),
        _as(world, "worker_a", "GET", f"/api/blocks/secret/{unrelated}"),
        _as(world, "worker_a", "GET", "/api/blocks"),
    ]
    assert [r.status_code for r in refused] == [403] * 4
    masked = _as(world, "viewer", "GET", path)
    assert masked.status_code == 200 and "s3cret" not in masked.text


def test_a_worker_key_reads_its_pools_workers_and_runs_and_no_others(world: World):
    """What adopting or settling a dead worker's work needs: pool A's key lists A's workers
    and runs (only A's); B's, or every pool's at once, are refused."""
    beat = {"worker_name": "matrix-reader"}
    assert _as(world, "worker_a", "POST", f"/api/work_pools/{world.pool_a}/workers/heartbeat",
               json=beat).status_code < 300  # fmt: skip
    for path in ("/api/workers", "/api/flow_runs"):
        mine = _as(world, "worker_a", "GET", path, params={"pool": world.pool_a})
        assert mine.status_code == 200 and mine.json(), path
        refused = [
            _as(world, "worker_a", "GET", path, params={"pool": world.pool_b}),
            _as(world, "worker_a", "GET", path),
            _as(world, "worker_b", "GET", path, params={"pool": world.pool_a}),
        ]
        assert [r.status_code for r in refused] == [403] * 3, path
    runs = _as(world, "worker_a", "GET", "/api/flow_runs", params={"pool": world.pool_a}).json()
    assert world.run_a in {r["id"] for r in runs} and world.run_b not in {r["id"] for r in runs}
    workers = _as(world, "worker_a", "GET", "/api/workers", params={"pool": world.pool_a}).json()
    assert "matrix-reader" in {w["name"] for w in workers}
    gone = _as(world, "worker_a", "GET", f"/api/flow_runs/{uuid.uuid4()}")
    assert gone.status_code == 404  # the Job's run was deleted: the worker cleans up
    others = [f"/api/flow_runs/{world.run_b}", f"/api/flow_runs/{world.run_b[:8]}"]
    assert [_as(world, "worker_a", "GET", p).status_code for p in others] == [403, 403]


def test_a_worker_key_makes_the_calls_of_orphan_settlement(world: World):
    """The client calls the Docker worker's orphan settlement and the Kubernetes worker's
    adoption make, with pool A's key: list A's workers, read a run (a gone one is a 404,
    which means "clean up"), report the run of an unwatched container Crashed."""
    run_id, token = world.claimed_run()
    world.admin.set_flow_run_state(run_id, s.StateChange(type="RUNNING", token=token))  # type: ignore[arg-type]
    with FlowyardClient(world.admin.api_url, world.keys["worker_a"]) as worker:
        assert all(w.pool_name == world.pool_a for w in worker.list_workers(world.pool_a))
        assert worker.read_flow_run(run_id).state.type.value == "RUNNING"
        with pytest.raises(ApiError) as gone:
            worker.read_flow_run(str(uuid.uuid4()))
        assert gone.value.status_code == 404
        crash = s.StateChange(type="CRASHED", message="its container exited unwatched")  # type: ignore[arg-type]
        worker.set_flow_run_state(run_id, crash)
        with pytest.raises(ApiError) as other:
            worker.list_workers(world.pool_b)
        assert other.value.status_code == 403
    assert world.admin.read_flow_run(run_id).state.type.value == "CRASHED"


def test_a_run_token_cannot_touch_another_runs_task_runs(world: World):
    """Records or logs that name run B's task run under run A are refused; B's task run is
    left as it was."""
    task_b = {**_task_record(world), "flow_run_id": world.run_b, "name": "b-task"}
    assert world.admin.upsert_task_runs([task_b]).upserted == 1
    token_a = world.token_for(world.run_a)
    overwrite = {**_task_record(world), "id": task_b["id"], "name": "hijacked"}
    log = {**world.log(world.run_a), "task_run_id": task_b["id"]}
    assert _as(world, token_a, "POST", "/api/task_runs/bulk", json=[overwrite]).status_code == 403
    assert _as(world, token_a, "POST", "/api/logs", json=[log]).status_code == 403
    assert world.admin.read_task_run(task_b["id"]).name == "b-task"


def test_a_run_token_only_reads_once_its_run_is_final(world: World):
    """After its run ended, a token still reads the run but writes nothing."""
    run_id = world.fresh_run()
    token = world.token_for(run_id)
    world.admin.cancel_flow_run(run_id)
    assert _as(world, token, "GET", f"/api/flow_runs/{run_id}").status_code == 200
    writes = [
        _as(world, token, "POST", "/api/logs", json=[world.log(run_id)]),
        _as(world, token, "POST", f"/api/flow_runs/{run_id}/heartbeat", json={}),
        _as(world, token, "POST", "/api/task_runs/bulk",
            json=[{**_task_record(world), "flow_run_id": run_id}]),
    ]  # fmt: skip
    assert [r.status_code for r in writes] == [403] * 3
    assert "final" in writes[0].json()["detail"]


def test_the_heartbeat_renews_a_token_past_half_its_life(world: World):
    """A token with little time left gets a fresh one, for the same run, with more time."""
    run_id, claim_token = world.claimed_run()
    short = world.admin.create_run_token(run_id, ttl_seconds=60)
    ack = _as(
        world, short, "POST", f"/api/flow_runs/{run_id}/heartbeat", json={"token": claim_token}
    )
    renewed = ack.json()["run_token"]
    assert ack.status_code == 200 and renewed and renewed != short
    assert _as(world, renewed, "GET", f"/api/flow_runs/{run_id}").status_code == 200
    fresh = world.token_for(run_id)
    again = _as(
        world, fresh, "POST", f"/api/flow_runs/{run_id}/heartbeat", json={"token": claim_token}
    )
    assert again.json()["run_token"] is None  # a fresh token is not renewed yet


def test_a_token_stops_writing_once_its_claim_is_taken_back(world: World):
    """A run sent back to Scheduled (its lease lost) is claimed anew: the old claim's token
    no longer writes for it, a token of the new claim does."""
    run_id, _ = world.claimed_run()
    old = world.token_for(run_id)
    assert _as(world, old, "POST", "/api/logs", json=[world.log(run_id)]).status_code == 201
    back = s.StateChange(type="SCHEDULED", force=True, message="lease lost (test)")  # type: ignore[arg-type]
    world.admin.set_flow_run_state(run_id, back)
    run_id, _ = world.claimed_run(run_id)
    refused = _as(world, old, "POST", "/api/logs", json=[world.log(run_id)])
    assert refused.status_code == 403 and "taken back" in refused.json()["detail"]
    new = world.token_for(run_id)
    assert _as(world, new, "POST", "/api/logs", json=[world.log(run_id)]).status_code == 201


def test_background_runs_name_their_caller_and_log_to_it_only_while_under_way(world: World):
    """A flow run's token makes background runs naming its own run, not another's; any
    task worker key writes the logs of a run under way to the flow run that made it,
    never to another run, nor once the run is final."""
    body = {"task_key": "matrix-task", "name": "called", "caller_flow_run_id": world.run_b}
    path = "/api/background_task_runs"
    assert _as(world, world.keys["run_b"], "POST", path, json=body).status_code == 201
    other = _as(
        world, world.keys["run_b"], "POST", path, json={**body, "caller_flow_run_id": world.run_a}
    )
    assert other.status_code == 403
    uncalled = _as(world, world.keys["run_b"], "POST", path, json={"task_key": "t", "name": "t"})
    assert uncalled.status_code == 403

    task_run_id, token = _claimed_background(world, caller_flow_run_id=world.run_a)
    assert world.admin.read_task_run(task_run_id).caller_flow_run_id == world.run_a
    entry = {**world.log(world.run_a), "task_run_id": task_run_id}
    assert _as(world, "worker_b", "POST", "/api/logs", json=[entry]).status_code == 201
    elsewhere = {**world.log(world.run_b), "task_run_id": task_run_id}
    assert _as(world, "worker_b", "POST", "/api/logs", json=[elsewhere]).status_code == 403
    done = {"state": "COMPLETED", "token": token}
    world.admin.request("POST", f"/api/background_task_runs/{task_run_id}/state", json=done)
    assert world.admin.read_task_run(task_run_id).state_type is StateType.COMPLETED
    assert _as(world, "worker_b", "POST", "/api/logs", json=[entry]).status_code == 403


def test_a_child_runs_token_answers_the_runs_above_it_only(world: World):
    """A child run's token sends messages to its parent (``respond()``, as Prefect's child
    runs answer the run that started them) but not to an unrelated run, and it does not
    read its parent's messages."""
    child = world.admin.create_flow_run(
        s.FlowRunCreate(flow_name="child", parent_task_run_id=world.task_a)
    )
    token = world.token_for(child.id)

    def send(run_id: str) -> httpx.Response:
        body = {"key": _name("answer"), "value": {"text": "hi"}}
        return _as(world, token, "POST", f"/api/flow_runs/{run_id}/messages", json=body)

    assert send(world.run_a).status_code == 201
    assert send(child.id).status_code == 201
    refused = send(world.run_b)
    assert refused.status_code == 403, refused.text
    read = {"prefix": "answer"}
    parents = _as(world, token, "POST", f"/api/flow_runs/{world.run_a}/messages/filter", json=read)
    assert parents.status_code == 403
    into_b = world.admin.filter_flow_run_input(world.run_b, s.FlowRunInputFilter(prefix="answer"))
    assert into_b == []
