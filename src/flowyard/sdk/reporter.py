"""Reporters: where a flow run's task runs are recorded.

A local run (``python my_flow.py`` with no server) records nothing; a run recorded
through the API (the engine's, or a direct call while a server is configured) records
task runs there. Reporting is bookkeeping: an API failure is logged to stderr and never
fails the user's task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import structlog

from flowyard.errors import FlowyardError

if TYPE_CHECKING:
    from flowyard.client import FlowyardClient
    from flowyard.schemas import TaskRunCreate, TaskRunUpdate

log = structlog.get_logger()


class Reporter(Protocol):
    """Records the life of task runs."""

    records: bool
    """False when nothing is recorded, so callers may skip building the documents."""

    def start_task_run(self, body: TaskRunCreate) -> str | None:
        """Record a new task run; returns its id, or None when it could not be recorded."""
        ...

    def finish_task_run(self, task_run_id: str, body: TaskRunUpdate) -> None:
        """Record a task run's final state."""
        ...


class LocalReporter:
    """Records nothing: the ids chosen by the SDK are the ids."""

    records = False

    def start_task_run(self, body: TaskRunCreate) -> str | None:
        return body.id

    def finish_task_run(self, task_run_id: str, body: TaskRunUpdate) -> None:
        return None


class ApiReporter:
    """Records task runs through the Flowyard API."""

    records = True

    def __init__(self, client: FlowyardClient) -> None:
        self._client = client

    def start_task_run(self, body: TaskRunCreate) -> str | None:
        try:
            return self._client.create_task_run(body).id
        except FlowyardError as exc:
            log.warning("task_run_report_failed", task_run=body.name, error=str(exc))
            return None

    def finish_task_run(self, task_run_id: str, body: TaskRunUpdate) -> None:
        try:
            self._client.set_task_run_state(task_run_id, body)
        except FlowyardError as exc:
            log.warning("task_run_report_failed", task_run_id=task_run_id, error=str(exc))
