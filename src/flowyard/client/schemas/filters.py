"""Filter objects of ``read_flow_runs``, as ``prefect.client.schemas.filters``.

Only the fields Flowyard's API can filter flow runs by are declared; any other field
Prefect has (``start_time``, ``parent_flow_run_id`` …) is kept, and ``read_flow_runs``
refuses it by name (``flowyard.client.run_filters``) rather than ignoring it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

__all__ = [
    "DeploymentFilter",
    "DeploymentFilterId",
    "DeploymentFilterName",
    "FlowFilter",
    "FlowFilterName",
    "FlowRunFilter",
    "FlowRunFilterDeploymentId",
    "FlowRunFilterId",
    "FlowRunFilterName",
    "FlowRunFilterState",
    "FlowRunFilterStateType",
    "FlowRunFilterTags",
    "WorkPoolFilter",
    "WorkPoolFilterName",
]


class PrefectFilter(BaseModel):
    """A filter of Prefect's shape; fields not declared are kept, to be refused by name."""

    model_config = ConfigDict(extra="allow")

    operator: Literal["and_", "or_"] = "and_"


class FlowRunFilterId(PrefectFilter):
    any_: list[Any] | None = None


class FlowRunFilterName(PrefectFilter):
    any_: list[str] | None = None
    like_: str | None = None


class FlowRunFilterStateType(PrefectFilter):
    any_: list[Any] | None = None
    not_any_: list[Any] | None = None


class FlowRunFilterState(PrefectFilter):
    type: FlowRunFilterStateType | None = None


class FlowRunFilterTags(PrefectFilter):
    all_: list[str] | None = None
    any_: list[str] | None = None


class FlowRunFilterDeploymentId(PrefectFilter):
    any_: list[Any] | None = None


class FlowRunFilter(PrefectFilter):
    id: FlowRunFilterId | None = None
    name: FlowRunFilterName | None = None
    tags: FlowRunFilterTags | None = None
    deployment_id: FlowRunFilterDeploymentId | None = None
    state: FlowRunFilterState | None = None


class FlowFilterName(PrefectFilter):
    any_: list[str] | None = None


class FlowFilter(PrefectFilter):
    name: FlowFilterName | None = None


class DeploymentFilterId(PrefectFilter):
    any_: list[Any] | None = None


class DeploymentFilterName(PrefectFilter):
    any_: list[str] | None = None


class DeploymentFilter(PrefectFilter):
    id: DeploymentFilterId | None = None
    name: DeploymentFilterName | None = None


class WorkPoolFilterName(PrefectFilter):
    any_: list[str] | None = None


class WorkPoolFilter(PrefectFilter):
    name: WorkPoolFilterName | None = None
