"""``flowyard.runtime``: facts about the current run, read where they are needed.

``flow_run.id``, ``flow_run.name``, ``flow_run.parameters``, ``flow_run.scheduled_start_time``,
``flow_run.parent_flow_run_id``, ``flow_run.root_flow_run_id``, ``flow_run.ui_url``, ...,
``task_run.id``, ``task_run.name``, ``deployment.id``, ``deployment.name`` and
``deployment.parameters``; outside a run they are None (empty dicts for parameters).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from flowyard.sdk.context import get_flow_run_context, get_task_run_context


class FlowRunView:
    """The current flow run."""

    @property
    def id(self) -> str | None:
        context = get_flow_run_context()
        return context.flow_run_id if context else None

    @property
    def name(self) -> str | None:
        context = get_flow_run_context()
        return context.flow_run_name if context else None

    @property
    def flow_name(self) -> str | None:
        context = get_flow_run_context()
        return context.flow.name if context and context.flow else None

    @property
    def parameters(self) -> dict[str, Any]:
        context = get_flow_run_context()
        return dict(context.parameters) if context else {}

    @property
    def scheduled_start_time(self) -> datetime | None:
        context = get_flow_run_context()
        return context.scheduled_start_time if context else None

    @property
    def parent_task_run_id(self) -> str | None:
        context = get_flow_run_context()
        return context.parent_task_run_id if context else None

    @property
    def parent_flow_run_id(self) -> str | None:
        context = get_flow_run_context()
        return context.parent_flow_run_id if context else None

    @property
    def root_flow_run_id(self) -> str | None:
        """The outermost flow run's id: this run's own when it is not a subflow."""
        context = get_flow_run_context()
        return (context.root_flow_run_id or context.flow_run_id) if context else None

    @property
    def parent_deployment_id(self) -> str | None:
        context = get_flow_run_context()
        return context.parent_deployment_id if context else None

    @property
    def flow_version(self) -> str | None:
        context = get_flow_run_context()
        return getattr(context.flow, "version", None) if context else None

    @property
    def job_variables(self) -> dict[str, Any] | None:
        """The job variables the deployed run was created with (None outside one)."""
        context = get_flow_run_context()
        return context.job_variables if context else None

    @property
    def api_url(self) -> str | None:
        return _url(self.id, "/api/flow_runs/")

    @property
    def ui_url(self) -> str | None:
        return _url(self.id, "/ui/runs/")

    @property
    def run_count(self) -> int:
        context = get_flow_run_context()
        return context.run_count if context else 0

    @property
    def tags(self) -> list[str]:
        context = get_flow_run_context()
        return sorted(context.tags) if context else []


class TaskRunView:
    """The current task run."""

    @property
    def id(self) -> str | None:
        context = get_task_run_context()
        return context.task_run_id if context else None

    @property
    def name(self) -> str | None:
        context = get_task_run_context()
        return context.task_run_name if context else None

    @property
    def task_name(self) -> str | None:
        context = get_task_run_context()
        return context.task.name if context and context.task else None

    @property
    def parameters(self) -> dict[str, Any]:
        context = get_task_run_context()
        return dict(context.parameters) if context else {}

    @property
    def run_count(self) -> int:
        context = get_task_run_context()
        return context.run_count if context else 0

    @property
    def api_url(self) -> str | None:
        return _url(self.id, "/api/task_runs/")

    @property
    def ui_url(self) -> str | None:
        """None: a task run has no page of its own in Flowyard's UI (its flow run's has it)."""
        return None

    @property
    def tags(self) -> list[str]:
        context = get_task_run_context()
        return sorted(context.tags) if context else []


class DeploymentView:
    """The deployment the current flow run came from (None for direct calls)."""

    @property
    def id(self) -> str | None:
        context = get_flow_run_context()
        return context.deployment_id if context else None

    @property
    def name(self) -> str | None:
        context = get_flow_run_context()
        return context.deployment_name if context else None

    @property
    def parameters(self) -> dict[str, Any]:
        context = get_flow_run_context()
        return dict(context.deployment_parameters) if context else {}


def _url(run_id: str | None, path: str) -> str | None:
    """``run_id``'s address on the API in ``FLOWYARD_API_URL``; None without either."""
    base = os.environ.get("FLOWYARD_API_URL", "").rstrip("/")
    return f"{base}{path}{run_id}" if run_id and base else None


flow_run = FlowRunView()
task_run = TaskRunView()
deployment = DeploymentView()
