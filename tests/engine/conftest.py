"""A real, tiny Flowyard API on loopback answering the routes the engine calls."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.helpers.http import serving_json

from flowyard import schemas as s
from flowyard.states import StateType


def _now() -> datetime:
    return datetime.now(UTC)


def _state(kind: StateType, message: str | None = None) -> s.StateDoc:
    return s.StateDoc(type=kind, name=kind.display_name, message=message, timestamp=_now())


class FakeApi:
    """The engine's side of the API, recording everything it receives."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.runs: dict[str, s.FlowRun] = {}
        self.deployments: dict[str, s.Deployment] = {}
        self.state_changes: list[s.StateChange] = []
        self.task_runs: dict[str, s.TaskRunCreate] = {}
        self.task_updates: list[tuple[str, s.TaskRunUpdate]] = []
        self.task_run_records: list[s.TaskRunRecord] = []  # as upserted, in order
        self.logs: list[s.LogCreate] = []
        self.created_runs: list[s.FlowRunCreate] = []
        self.refuse_running: str | None = None
        self.terminal_status: int | None = None
        self.refuse_final: str | None = None  # the reason a terminal state is refused with
        self.answers_with_run = True  # False: an API older than ``with_run``
        self.reads: list[str] = []  # the paths of the runs and deployments read

    def add_run(
        self,
        path: Path,
        entrypoint: str,
        parameters: dict[str, Any] | None = None,
        job_variables: dict[str, Any] | None = None,
    ) -> s.FlowRun:
        now = _now()
        deployment = s.Deployment(
            id=str(uuid.uuid4()), name="dep", flow_id="f1", flow_name="flow",
            entrypoint=entrypoint, path=str(path), pool_name="pool", queue_name="default",
            parameters={}, parameter_schema=None, job_variables={}, tags=[],
            description=None, version=None, created=now, updated=now,
        )  # fmt: skip
        run = s.FlowRun(
            id=str(uuid.uuid4()), name="brave-otter", flow_id="f1", flow_name="flow",
            deployment_id=deployment.id, deployment_name="dep", pool_name="pool",
            queue_name="default", parameters=parameters or {},
            job_variables=job_variables or {},
            state=_state(StateType.PENDING), scheduled_time=now, start_time=None,
            end_time=None, worker_name="w1", infrastructure_id=None, created=now,
        )  # fmt: skip
        self.deployments[deployment.id] = deployment
        self.runs[run.id] = run
        return run

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        with self.cond:
            assert self.cond.wait_for(predicate, timeout), "condition not met before the deadline"

    def states(self) -> list[StateType]:
        return [change.type for change in self.state_changes]

    def log_text(self) -> str:
        return "\n".join(log.message for log in self.logs)

    # -- routes ---------------------------------------------------------------------------

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        routes: list[tuple[str, str, Callable[..., tuple[int, Any]]]] = [
            ("GET", r"/api/health", lambda _: (200, {"status": "ok"})),
            ("POST", r"/api/flow_runs", self._create_run),
            ("GET", r"/api/flow_runs/([^/]+)", self._read_run),
            ("GET", r"/api/deployments/([^/]+)", self._read_deployment),
            ("POST", r"/api/flow_runs/([^/]+)/state", self._set_state),
            ("POST", r"/api/task_runs/bulk", self._upsert_task_runs),
            ("POST", r"/api/task_runs/([^/]+)/state", self._set_task_state),
            ("POST", r"/api/logs", self._create_logs),
        ]
        for verb, pattern, route in routes:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                with self.cond:
                    try:
                        return route(body, *match.groups())
                    finally:
                        self.cond.notify_all()
        return 404, {"detail": f"no route {method} {path}"}

    def _create_run(self, body: Any) -> tuple[int, Any]:
        create = s.FlowRunCreate.model_validate(body)
        self.created_runs.append(create)
        now = _now()
        run = s.FlowRun(
            id=str(uuid.uuid4()), name=create.name or f"run-{len(self.runs)}", flow_id="f1",
            flow_name=create.flow_name, deployment_id=None, deployment_name=None,
            pool_name=None, queue_name=None, parameters=create.parameters, job_variables={},
            state=_state(create.state), scheduled_time=now, start_time=now, end_time=None,
            worker_name=None, infrastructure_id=None, created=now,
        )  # fmt: skip
        self.runs[run.id] = run
        return 201, run.model_dump(mode="json")

    def _read_run(self, _: Any, run_id: str) -> tuple[int, Any]:
        self.reads.append(f"flow_runs/{run_id}")
        run = self.runs.get(run_id)
        if run is None:
            return 404, {"detail": f"flow run {run_id!r} not found"}
        return 200, run.model_dump(mode="json")

    def _read_deployment(self, _: Any, dep_id: str) -> tuple[int, Any]:
        self.reads.append(f"deployments/{dep_id}")
        return 200, self.deployments[dep_id].model_dump(mode="json")

    def _set_state(self, body: Any, run_id: str) -> tuple[int, Any]:
        change = s.StateChange.model_validate(body)
        self.state_changes.append(change)
        if change.type.is_terminal and self.terminal_status:
            return self.terminal_status, {"detail": "the store is broken"}
        run = self.runs[run_id]
        reason = self.refuse_running if change.type is StateType.RUNNING else None
        reason = self.refuse_final if change.type.is_terminal else reason
        if reason is None:
            run = run.model_copy(update={"state": _state(change.type, change.message)})
            self.runs[run_id] = run
        result = s.StateChangeResult(accepted=reason is None, state=run.state, reason=reason)
        if change.with_run and result.accepted and self.answers_with_run:
            result.run = run
            result.deployment = self.deployments.get(run.deployment_id or "")
        return 200, result.model_dump(mode="json")

    def _upsert_task_runs(self, body: Any) -> tuple[int, Any]:
        """Records seen as a create (first of an id) and an update (a state past Running)."""
        for item in body:
            record = s.TaskRunRecord.model_validate(item)
            self.task_run_records.append(record)
            if record.id not in self.task_runs:
                self.task_runs[record.id] = s.TaskRunCreate(
                    id=record.id, flow_run_id=record.flow_run_id, name=record.name,
                    task_key=record.task_key, state=record.state, parameters=record.parameters,
                )  # fmt: skip
            if record.state is not StateType.RUNNING:
                update = s.TaskRunUpdate(state=record.state, message=record.message)
                self.task_updates.append((record.id, update))
        return 200, {"upserted": len(body), "unknown_flow_runs": []}

    def _set_task_state(self, body: Any, task_run_id: str) -> tuple[int, Any]:
        update = s.TaskRunUpdate.model_validate(body)
        self.task_updates.append((task_run_id, update))
        return 200, self._task_run(task_run_id, update.state, update.message)

    def _task_run(self, task_run_id: str, state: StateType, message: str | None) -> Any:
        create = self.task_runs[task_run_id]
        doc = s.TaskRun(
            id=task_run_id, flow_run_id=create.flow_run_id, name=create.name,
            task_key=create.task_key, state_type=state, message=message,
            start_time=_now(), end_time=None, created=_now(),
        )  # fmt: skip
        return doc.model_dump(mode="json")

    def _create_logs(self, body: Any) -> tuple[int, Any]:
        self.logs.extend(s.LogCreate.model_validate(item) for item in body)
        return 204, None


@pytest.fixture
def api() -> Iterator[tuple[FakeApi, str]]:
    """A FakeApi served on a free loopback port; yields it and its URL."""
    fake = FakeApi()
    with serving_json(fake.handle) as url:
        yield fake, url
