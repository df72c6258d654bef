"""``FlowyardClient``: typed calls to the API, documents in and out as pydantic models.

Requests go through ``ApiTransport`` (errors translated, transient failures retried by
policy). A POST that the API treats as idempotent (heartbeats, upserts) says so
(``idempotent=True``), so that it may be sent again after a connection broke mid-request;
any other POST is sent again only when it surely took no effect (``retries.may_replay``).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from flowyard import schemas as s
from flowyard.client.bodies import json_bytes
from flowyard.client.retries import IDEMPOTENCY_KEY
from flowyard.client.transport import ApiTransport, api_path
from flowyard.errors import ApiError, ApiUnavailable

if TYPE_CHECKING:  # imported by the calls that use them: a CLI command loads what it needs
    from collections.abc import Sequence

    from flowyard.events.schemas import Event, EventFollow, EventPage
    from flowyard.schemas import artifacts as a
    from flowyard.schemas import automations as au

M = TypeVar("M", bound=BaseModel)
_path = api_path


_RUN_IDS = TypeAdapter(list[str])


def _bulk_runs_path(ref: str) -> str:
    return _path("deployments") + "/" + quote(ref, safe="") + "/runs/bulk"


def _schedules_path(ref: str, schedule_id: str | None = None) -> str:
    path = _path("deployments") + "/" + quote(ref, safe="") + "/schedules"
    return path if schedule_id is None else path + "/" + quote(schedule_id, safe="")


class FlowyardClient(ApiTransport):
    """A synchronous client: one typed method per API call (the transport: ``ApiTransport``)."""

    def _get(self, model: type[M], path: str, **kw: Any) -> M:
        return s.read(model, self.request("GET", path, **kw))

    def _list(self, model: type[M], path: str, **kw: Any) -> list[M]:
        return s.read_list(model, self.request("GET", path, **kw))

    def _send_doc(
        self, method: str, model: type[M], path: str, body: BaseModel, *, idempotent: bool = False
    ) -> M:
        document = body.model_dump(mode="json")
        return s.read(model, self.request(method, path, json=document, idempotent=idempotent))

    # -- work pools and queues -----------------------------------------------------------

    def create_work_pool(self, body: s.WorkPoolCreate) -> s.WorkPool:
        return self._send_doc("POST", s.WorkPool, _path("work_pools"), body)

    def read_work_pool(self, name: str) -> s.WorkPool:
        return self._get(s.WorkPool, _path("work_pools", name))

    def list_work_pools(self) -> list[s.WorkPool]:
        return self._list(s.WorkPool, _path("work_pools"))

    def update_work_pool(self, name: str, body: s.WorkPoolUpdate) -> s.WorkPool:
        return self._send_doc("PATCH", s.WorkPool, _path("work_pools", name), body)

    def delete_work_pool(self, name: str) -> None:
        self.request("DELETE", _path("work_pools", name))

    def create_work_queue(self, pool: str, body: s.WorkQueueCreate) -> s.WorkQueue:
        return self._send_doc("POST", s.WorkQueue, _path("work_pools", pool, "queues"), body)

    def read_work_queue(self, pool: str, name: str) -> s.WorkQueue:
        return self._get(s.WorkQueue, _path("work_pools", pool, "queues", name))

    def list_work_queues(self, pool: str) -> list[s.WorkQueue]:
        return self._list(s.WorkQueue, _path("work_pools", pool, "queues"))

    def update_work_queue(self, pool: str, name: str, body: s.WorkQueueUpdate) -> s.WorkQueue:
        return self._send_doc("PATCH", s.WorkQueue, _path("work_pools", pool, "queues", name), body)

    def delete_work_queue(self, pool: str, name: str) -> None:
        self.request("DELETE", _path("work_pools", pool, "queues", name))

    # -- deployments ---------------------------------------------------------------------

    def create_deployment(self, body: s.DeploymentCreate) -> s.Deployment:
        """Create, or update in place, the deployment named ``flow_name/name``."""
        return self._send_doc("POST", s.Deployment, _path("deployments"), body, idempotent=True)

    def read_deployment(self, ref: str) -> s.Deployment:
        """Read a deployment by id or by ``flow name/deployment name``."""
        return self._get(s.Deployment, _path("deployments") + "/" + quote(ref, safe=""))

    def list_deployments(self) -> list[s.Deployment]:
        return self._list(s.Deployment, _path("deployments"))

    def list_schedules(self, ref: str) -> list[s.Schedule]:
        return self._list(s.Schedule, _schedules_path(ref))

    def create_schedule(self, ref: str, body: s.ScheduleCreate) -> s.Schedule:
        return self._send_doc("POST", s.Schedule, _schedules_path(ref), body)

    def set_schedule_active(self, ref: str, schedule_id: str, active: bool) -> s.Schedule:
        """Pause (``active=False``: its future runs are deleted) or resume a schedule."""
        return self.update_schedule(ref, schedule_id, s.ScheduleUpdate(active=active))

    def update_schedule(self, ref: str, schedule_id: str, body: s.ScheduleUpdate) -> s.Schedule:
        """Change the fields set in ``body``; the runs not started yet are replaced."""
        changes = body.model_dump(mode="json", exclude_unset=True)
        return s.read(
            s.Schedule, self.request("PATCH", _schedules_path(ref, schedule_id), json=changes)
        )

    def set_deployment_paused(self, ref: str, paused: bool) -> s.Deployment:
        action = "pause" if paused else "resume"
        path = _path("deployments") + "/" + quote(ref, safe="") + "/" + action
        return s.read(s.Deployment, self.request("POST", path, idempotent=True))

    def delete_deployment(self, ref: str) -> None:
        self.request("DELETE", _path("deployments") + "/" + quote(ref, safe=""))

    def delete_schedule(self, ref: str, schedule_id: str) -> None:
        self.request("DELETE", _schedules_path(ref, schedule_id))

    def run_deployment(self, ref: str, body: s.DeploymentRunRequest) -> s.FlowRun:
        path = _path("deployments") + "/" + quote(ref, safe="") + "/runs"
        return self._send_doc("POST", s.FlowRun, path, body)

    def run_deployment_bulk(self, ref: str, body: s.DeploymentRunBulk) -> list[s.FlowRun]:
        """``body.count`` alike runs (at most ``s.MAX_BULK_RUNS``), in one transaction."""
        data = self.request("POST", _bulk_runs_path(ref), json=body.model_dump(mode="json"))
        return s.read_list(s.FlowRun, data)

    def run_deployment_bulk_ids(self, ref: str, body: s.DeploymentRunBulk) -> list[str]:
        """``run_deployment_bulk`` answered with the new runs' ids only (no documents to
        encode, send and read: the lean call for many runs)."""
        path = _bulk_runs_path(ref) + "?ids_only=true"
        return _RUN_IDS.validate_python(
            self.request("POST", path, json=body.model_dump(mode="json"))
        )

    # -- flow runs -----------------------------------------------------------------------

    def create_flow_run(self, body: s.FlowRunCreate) -> s.FlowRun:
        return self._send_doc("POST", s.FlowRun, _path("flow_runs"), body)

    def read_flow_run(self, ref: str) -> s.FlowRun:
        """Read a flow run by its id or a unique prefix of it."""
        return self._get(s.FlowRun, _path("flow_runs", ref))

    def read_flow_run_history(self, ref: str) -> s.FlowRunHistory:
        return self._get(s.FlowRunHistory, _path("flow_runs", ref, "history"))

    def list_flow_runs(
        self,
        *,
        state: str | None = None,
        pool: str | None = None,
        deployment_id: str | None = None,
        tags: Sequence[str] = (),
        any_tags: Sequence[str] = (),
        limit: int = 50,
        **more: str | Sequence[str],
    ) -> list[s.FlowRun]:
        """Runs matching every filter given: ``tags`` all of them, ``any_tags`` one at least;
        ``more`` are other query parameters of ``GET /api/flow_runs`` (``flow``, ``name``,
        ``order``, ``id`` as a list …)."""
        params = {"state": state, "pool": pool, "deployment_id": deployment_id, "limit": limit}
        query: dict[str, Any] = {k: v for k, v in params.items() if v is not None}
        if tags:
            query["tag"] = list(tags)
        if any_tags:
            query["any_tag"] = list(any_tags)
        query.update({k: v if isinstance(v, str) else list(v) for k, v in more.items() if v})
        return self._list(s.FlowRun, _path("flow_runs"), params=query)

    def set_flow_run_state(self, run_id: str, body: s.StateChange) -> s.StateChangeResult:
        return self._send_doc(
            "POST", s.StateChangeResult, _path("flow_runs", run_id, "state"), body
        )

    def cancel_flow_run(self, ref: str) -> s.FlowRun:
        return s.read(s.FlowRun, self.request("POST", _path("flow_runs", ref, "cancel")))

    def resume_flow_run(self, ref: str, run_input: dict[str, Any] | None = None) -> s.FlowRun:
        """Resume a paused or suspended run; ``run_input`` answers a pause waiting for input."""
        path = _path("flow_runs", ref, "resume")
        if run_input is None:
            return s.read(s.FlowRun, self.request("POST", path))
        return self._send_doc("POST", s.FlowRun, path, s.ResumeRequest(run_input=run_input))

    def suspend_flow_run(self, ref: str, request: s.SuspendRequest) -> s.StateChangeResult:
        """Suspend a Running run from outside it; the answer says whether it was."""
        path = _path("flow_runs", ref, "suspend")
        return self._send_doc("POST", s.StateChangeResult, path, request)

    def create_flow_run_input(self, ref: str, body: s.FlowRunInputCreate) -> None:
        """Send a run a message (``send_input``)."""
        self.request("POST", _path("flow_runs", ref, "messages"), json=body.model_dump(mode="json"))

    def filter_flow_run_input(self, ref: str, body: s.FlowRunInputFilter) -> list[s.FlowRunInput]:
        """A run's messages under a key prefix, oldest first, but the keys excluded."""
        path = _path("flow_runs", ref, "messages", "filter")
        document = body.model_dump(mode="json")
        return s.read_list(
            s.FlowRunInput, self.request("POST", path, json=document, idempotent=True)
        )

    def read_run_input(self, ref: str, key: str) -> s.RunInput:
        """A pause of the run (by its key): its input schema and the input it was resumed with."""
        return self._get(s.RunInput, _path("flow_runs", ref, "input", key))

    def run_heartbeat(
        self, run_id: str, token: str | None, interval_seconds: float | None = None
    ) -> s.RunHeartbeatAck:
        """A run's heartbeat: the engine's (with its claim token; the answer says whether
        to stop), or a direct call's (no token; its beat interval)."""
        body = s.RunHeartbeat(token=token, interval_seconds=interval_seconds)
        path = _path("flow_runs", run_id, "heartbeat")
        return self._send_doc("POST", s.RunHeartbeatAck, path, body, idempotent=True)

    def report_infrastructure(self, run_id: str, body: s.InfrastructureReport) -> None:
        path = _path("flow_runs", run_id, "infrastructure")
        self.request("POST", path, json=body.model_dump(), idempotent=True)

    def create_run_token(self, run_id: str, *, ttl_seconds: float | None = None) -> str:
        """A short-lived token that acts for this run only, for infrastructure we hand it to."""
        body = {"ttl_seconds": ttl_seconds} if ttl_seconds else {}
        path = _path("flow_runs", run_id, "token")  # another token is as good: idempotent
        data = self.request("POST", path, json=body, idempotent=True)
        return str(data["token"])

    # -- tag concurrency limits ------------------------------------------------------------

    def set_concurrency_limit(
        self, tag: str, limit: int, slot_decay_per_second: float | None = None, active: bool = True
    ) -> s.ConcurrencyLimit:
        body = s.ConcurrencyLimitCreate(
            tag=tag, limit=limit, slot_decay_per_second=slot_decay_per_second, active=active
        )
        path = _path("concurrency_limits")  # an upsert by tag
        return self._send_doc("POST", s.ConcurrencyLimit, path, body, idempotent=True)

    def list_concurrency_limits(self) -> list[s.ConcurrencyLimit]:
        return self._list(s.ConcurrencyLimit, _path("concurrency_limits"))

    def read_concurrency_limit(self, tag: str) -> s.ConcurrencyLimit:
        return self._get(s.ConcurrencyLimit, _path("concurrency_limits", tag))

    def delete_concurrency_limit(self, tag: str) -> None:
        self.request("DELETE", _path("concurrency_limits", tag))

    def task_slots(self, action: str, body: s.SlotsRequest) -> s.SlotsResponse:
        """``acquire``, ``renew`` or ``release`` a slot of each limited tag."""
        path = _path("concurrency_limits", action)
        return self._send_doc("POST", s.SlotsResponse, path, body)

    def concurrency_limit_holders(self, tag: str) -> list[s.SlotHolder]:
        """Who holds slots of a tag's limit now."""
        return self._list(s.SlotHolder, _path("concurrency_limits", tag, "holders"))

    def reset_concurrency_limit(self, tag: str, body: s.SlotsReset) -> int:
        """Free slots of a tag's limit whoever holds them (admin); how many were freed."""
        path = _path("concurrency_limits", tag, "reset")
        return self._send_doc("POST", s.SlotsFreed, path, body).freed

    # -- variables -----------------------------------------------------------------------

    def create_variable(self, body: s.VariableCreate) -> s.Variable:
        return self._send_doc("POST", s.Variable, _path("variables"), body)

    def read_variable(self, name: str) -> s.Variable | None:
        """The variable, or None when there is none of that name."""
        try:
            return self._get(s.Variable, _path("variables", name))
        except ApiError as exc:
            if exc.status_code == 404:
                return None
            raise

    def list_variables(
        self, *, name_prefix: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[s.Variable]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if name_prefix:
            params["name_prefix"] = name_prefix
        return self._list(s.Variable, _path("variables"), params=params)

    def update_variable(self, name: str, body: s.VariableUpdate) -> s.Variable:
        """Change the fields ``body`` was given (a value given as None sets it to null)."""
        document = body.model_dump(mode="json", exclude_unset=True)
        return s.read(s.Variable, self.request("PATCH", _path("variables", name), json=document))

    def delete_variable(self, name: str) -> None:
        self.request("DELETE", _path("variables", name))

    # -- workers -------------------------------------------------------------------------

    def claim(self, pool: str, body: s.ClaimRequest) -> list[s.ClaimedRun]:
        """Long-poll for up to ``max_runs`` runs; waits at most ``body.wait`` seconds.

        Each claim carries its own idempotency key, so that when it is sent again (the
        connection broke before the answer came) the API answers with the runs it already
        handed out for it instead of handing out more."""
        data = self.request(
            "POST",
            _path("work_pools", pool, "claim"),
            json=body.model_dump(mode="json"),
            headers={IDEMPOTENCY_KEY: uuid.uuid4().hex},
            timeout=body.wait + 30.0,
        )
        return s.read(s.ClaimResponse, data).runs

    def worker_heartbeat(self, pool: str, body: s.WorkerHeartbeat) -> s.HeartbeatResponse:
        path = _path("work_pools", pool, "workers", "heartbeat")
        return self._send_doc("POST", s.HeartbeatResponse, path, body, idempotent=True)

    def worker_goodbye(self, pool: str, body: s.WorkerHeartbeat, timeout: float = 5.0) -> None:
        """A stopping worker's last beat: one attempt, no retries, so that an API that is
        down never holds up the worker's exit (it marks the worker offline later)."""
        path = _path("work_pools", pool, "workers", "heartbeat")
        try:
            self._send("POST", path, timeout=timeout, json=body.model_dump(mode="json"))
        except httpx.HTTPError as exc:  # a read error, say: as unavailable as refused
            raise ApiUnavailable(f"cannot reach the Flowyard API at {self.api_url}: {exc}") from exc

    def list_workers(self, pool: str | None = None) -> list[s.Worker]:
        params = {"pool": pool} if pool else {}
        return self._list(s.Worker, _path("workers"), params=params)

    # -- task runs and logs --------------------------------------------------------------

    def set_task_run_state(self, task_run_id: str, body: s.TaskRunUpdate) -> s.TaskRun:
        return self._send_doc("POST", s.TaskRun, _path("task_runs", task_run_id, "state"), body)

    def list_task_runs(self, flow_run_id: str) -> list[s.TaskRun]:
        return self._list(s.TaskRun, _path("flow_runs", flow_run_id, "task_runs"))

    def upsert_task_runs(self, records: list[dict[str, Any]]) -> s.TaskRunUpsertResult:
        """Create or update task runs by id; ``records`` are ``TaskRunRecord`` documents as
        JSON. Idempotent, so a batch whose answer was lost is simply sent again."""
        data = self._post_json(_path("task_runs", "bulk"), records, idempotent=True)
        return s.read(s.TaskRunUpsertResult, data)

    def read_task_run(self, task_run_id: str) -> s.TaskRun:
        return self._get(s.TaskRun, _path("task_runs", task_run_id))

    # -- background task runs ------------------------------------------------------------

    def create_background_task_run(self, body: s.BackgroundTaskRunCreate) -> s.TaskRun:
        return self._send_doc("POST", s.TaskRun, _path("background_task_runs"), body)

    def claim_background_task_runs(self, body: s.TaskWorkerClaim) -> list[s.ClaimedTaskRun]:
        """Long-polls up to ``body.wait`` seconds for a run of the worker's tasks."""
        raw = self.request(
            "POST",
            _path("background_task_runs", "claim"),
            json=body.model_dump(mode="json"),
            timeout=body.wait + 30.0,
        )
        return s.read(s.TaskWorkerClaimed, raw).runs

    def task_worker_heartbeat(self, body: s.TaskWorkerHeartbeat) -> list[str]:
        path = _path("background_task_runs", "heartbeat")
        return self._send_doc("POST", s.TaskWorkerHeartbeatAck, path, body, idempotent=True).held

    def report_background_task_run(self, run_id: str, body: s.BackgroundStateReport) -> s.TaskRun:
        path = _path("background_task_runs", run_id, "state")
        return self._send_doc("POST", s.TaskRun, path, body)

    def wait_background_task_run(self, run_id: str, timeout: float = 0.0) -> s.TaskRun:
        """The run once final, or as it is after ``timeout`` seconds (long-polled)."""
        path = _path("background_task_runs", run_id, "wait")
        return self._get(s.TaskRun, path, params={"timeout": timeout}, timeout=timeout + 30.0)

    def read_flow_run_graph(self, ref: str) -> s.FlowRunGraph:
        """The flow run's task runs and subflow runs, and which fed which."""
        return self._get(s.FlowRunGraph, _path("flow_runs", ref, "graph"))

    def set_flow_run_result(self, run_id: str, result: s.ResultRef) -> None:
        """Record where the flow run's persisted return value is."""
        self.request("PUT", _path("flow_runs", run_id, "result"), json=result.model_dump())

    def create_logs(self, logs: list[s.LogCreate]) -> None:
        if logs:
            self._post_json(_path("logs"), [log.model_dump(mode="json") for log in logs])

    def _post_json(self, path: str, document: Any, *, idempotent: bool = False) -> Any:
        """POST ``document`` encoded as the shippers measure it (``bodies.json_bytes``)."""
        headers = {"content-type": "application/json"}
        content = json_bytes(document)
        return self.request("POST", path, content=content, headers=headers, idempotent=idempotent)

    def read_logs(self, flow_run_id: str, *, after_id: int = 0, limit: int = 1000) -> list[s.Log]:
        params = {"after_id": after_id, "limit": limit}
        return self._list(s.Log, _path("flow_runs", flow_run_id, "logs"), params=params)

    # -- API keys ------------------------------------------------------------------------

    def create_api_key(self, body: s.ApiKeyCreate) -> s.ApiKeyCreated:
        return self._send_doc("POST", s.ApiKeyCreated, _path("api_keys"), body)

    def list_api_keys(self) -> list[s.ApiKey]:
        return self._list(s.ApiKey, _path("api_keys"))

    def revoke_api_key(self, name: str) -> None:
        self.request("DELETE", _path("api_keys", name))

    # -- incoming webhooks ---------------------------------------------------------------

    def create_webhook(self, body: s.WebhookCreate) -> s.WebhookCreated:
        """Make a webhook; the answer holds its secret, which is never shown again."""
        return self._send_doc("POST", s.WebhookCreated, _path("webhooks"), body)

    def list_webhooks(self) -> list[s.Webhook]:
        return self._list(s.Webhook, _path("webhooks"))

    def read_webhook(self, name: str) -> s.Webhook:
        return self._get(s.Webhook, _path("webhooks", name))

    def update_webhook(self, name: str, body: s.WebhookUpdate) -> s.Webhook:
        document = body.model_dump(mode="json", exclude_none=True)
        return s.read(s.Webhook, self.request("PATCH", _path("webhooks", name), json=document))

    def rotate_webhook_secret(self, name: str) -> s.WebhookCreated:
        """A new secret for the webhook (shown this once); the old one stops working."""
        raw = self.request("POST", _path("webhooks", name, "rotate-secret"))
        return s.read(s.WebhookCreated, raw)

    def delete_webhook(self, name: str) -> None:
        self.request("DELETE", _path("webhooks", name))

    # -- events --------------------------------------------------------------------------

    def emit_events(self, batch: list[Event]) -> int:
        """Store events (a retry of an event already stored is skipped); how many were new."""
        body = [event.model_dump(mode="json") for event in batch]
        return int(self.request("POST", _path("events"), json=body, idempotent=True)["stored"])

    def list_events(self, *, cursor: str | None = None, **filters: Any) -> EventPage:
        """One page of events; ``filters`` are the query parameters of ``GET /api/events``."""
        from flowyard.events.schemas import EventPage

        params = {k: v for k, v in {**filters, "cursor": cursor}.items() if v not in (None, [])}
        return s.read(EventPage, self.request("GET", _path("events"), params=params))

    def follow_events(
        self, after: str | int | None, *, wait: float = 5.0, **filters: Any
    ) -> EventFollow:
        """Events stored after ``after`` (the last answer's cursor, or a position; None: from
        now on), waiting up to ``wait``."""
        from flowyard.events.schemas import EventFollow

        params = {k: v for k, v in {**filters, "after": after}.items() if v not in (None, [])}
        params["wait"] = wait
        raw = self.request("GET", _path("events", "follow"), params=params, timeout=wait + 30)
        return s.read(EventFollow, raw)

    def read_event(self, event_id: str) -> Event:
        from flowyard.events.schemas import Event

        return s.read(Event, self.request("GET", _path("events", event_id)))

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/api/health")
        return result

    # -- blocks --------------------------------------------------------------------------

    def list_block_types(self) -> list[s.BlockType]:
        return self._list(s.BlockType, _path("block_types"))

    def list_blocks(self, block_type: str | None = None) -> list[s.BlockDocument]:
        params = {"type": block_type} if block_type else {}
        return self._list(s.BlockDocument, _path("blocks"), params=params)

    def read_block(
        self, block_type: str, name: str, *, include_secrets: bool = False
    ) -> s.BlockDocument:
        """Read ``TYPE/NAME``; secrets come in clear only with ``include_secrets``."""
        params = {"include_secrets": "true"} if include_secrets else {}
        return self._get(s.BlockDocument, _path("blocks", block_type, name), params=params)

    def save_block(
        self, block_type: str, name: str, data: dict[str, Any], *, overwrite: bool = True
    ) -> s.BlockDocument:
        """Create ``TYPE/NAME`` (or replace it, with ``overwrite``); the answer is masked."""
        if overwrite:
            body: BaseModel = s.BlockSave(data=data)
            return self._send_doc("PUT", s.BlockDocument, _path("blocks", block_type, name), body)
        body = s.BlockCreate(type=block_type, name=name, data=data)
        return self._send_doc("POST", s.BlockDocument, _path("blocks"), body)

    def delete_block(self, block_type: str, name: str) -> None:
        self.request("DELETE", _path("blocks", block_type, name))

    # -- artifacts -----------------------------------------------------------------------

    def create_artifact(self, body: a.ArtifactCreate) -> a.Artifact:
        from flowyard.schemas import artifacts as a

        return self._send_doc("POST", a.Artifact, _path("artifacts"), body)

    def update_artifact(self, artifact_id: str, body: a.ArtifactUpdate) -> a.Artifact:
        from flowyard.schemas import artifacts as a

        return self._send_doc("PATCH", a.Artifact, _path("artifacts", artifact_id), body)

    def read_artifact(self, artifact_id: str) -> a.Artifact:
        from flowyard.schemas import artifacts as a

        return self._get(a.Artifact, _path("artifacts", artifact_id))

    def list_artifacts(
        self, *, cursor: str | None = None, limit: int = 50, **filters: str | None
    ) -> a.ArtifactPage:
        """A page of artifacts, newest first; ``filters``: key, flow_run_id, task_run_id, type."""
        from flowyard.schemas import artifacts as a

        params = {name: value for name, value in filters.items() if value is not None}
        params |= {"limit": str(limit), **({"cursor": cursor} if cursor else {})}
        return self._get(a.ArtifactPage, _path("artifacts"), params=params)

    def read_artifact_history(
        self, key: str, *, cursor: str | None = None, limit: int = 50
    ) -> a.ArtifactHistory:
        from flowyard.schemas import artifacts as a

        params = {"limit": str(limit), **({"cursor": cursor} if cursor else {})}
        return self._get(a.ArtifactHistory, _path("artifacts", "keys", key), params=params)

    def delete_artifact(self, artifact_id: str) -> None:
        self.request("DELETE", _path("artifacts", artifact_id))

    def delete_artifact_key(self, key: str) -> None:
        """Delete every version of ``key``."""
        self.request("DELETE", _path("artifacts", "keys", key))

    # -- automations ---------------------------------------------------------------------

    def create_automation(self, body: au.AutomationCreate) -> au.Automation:
        from flowyard.schemas import automations as au

        return self._send_doc("POST", au.Automation, _path("automations"), body)

    def list_automations(
        self, *, deployment_id: str | None = None, limit: int = 200, offset: int = 0
    ) -> list[au.Automation]:
        from flowyard.schemas import automations as au

        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if deployment_id is not None:
            params["deployment_id"] = deployment_id
        return self._list(au.Automation, _path("automations"), params=params)

    def read_automation(self, ref: str) -> au.Automation:
        """An automation by id or name."""
        from flowyard.schemas import automations as au

        return self._get(au.Automation, _path("automations", ref))

    def replace_automation(self, ref: str, body: au.AutomationCreate) -> au.Automation:
        from flowyard.schemas import automations as au

        return self._send_doc("PUT", au.Automation, _path("automations", ref), body)

    def set_automation_enabled(self, ref: str, enabled: bool) -> au.Automation:
        """Resume (``enabled``) or pause an automation."""
        from flowyard.schemas import automations as au

        body = au.AutomationPatch(enabled=enabled)
        return self._send_doc("PATCH", au.Automation, _path("automations", ref), body)

    def delete_automation(self, ref: str) -> None:
        self.request("DELETE", _path("automations", ref))

    def list_automation_firings(self, ref: str, *, limit: int = 20) -> list[au.Firing]:
        """The automation's latest firings, newest first, with their actions' outcomes."""
        from flowyard.schemas import automations as au

        path = _path("automations", ref) + "/firings"
        return self._list(au.Firing, path, params={"limit": limit})

    def set_deployment_triggers(self, ref: str, triggers: list[Any]) -> list[au.Automation]:
        """Give deployment ``ref`` exactly these triggers (``DeploymentTrigger`` documents
        or dicts); an empty list removes them."""
        from flowyard.schemas import automations as au

        body = [t.model_dump(mode="json") if isinstance(t, BaseModel) else t for t in triggers]
        path = _path("deployments") + "/" + quote(ref, safe="") + "/triggers"
        raw = self.request("PUT", path, json=body)
        return s.read_list(au.Automation, raw)
