"""Flow runs, their states, graphs and logs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    Field,
    StrictInt,
)

from flowyard.schemas.base import (
    MAX_LIST_ITEMS,
    Bool,
    Doc,
    Float,
    Id,
    JsonObject,
    Label,
    LogMessage,
    LongLabel,
    StoredJson,
    Tags,
    Text,
    Time,
)
from flowyard.schemas.deployments import Deployment
from flowyard.schemas.pauses import PauseRequest
from flowyard.schemas.task_runs import ResultRef
from flowyard.states import StateType


class StateDoc(Doc):
    type: StateType
    name: str
    message: str | None = None
    timestamp: datetime


class StateChange(Doc):
    """A request to move a run; ``token`` is the claim token for worker and engine moves."""

    type: StateType
    message: Text | None = None
    token: LongLabel | None = None
    force: Bool = False
    scheduled_time: Time | None = None
    """For Running → Scheduled (a flow's retry in-process): when the next attempt starts."""
    pause: PauseRequest | None = None
    """For Running → Paused: the pause's key, whether it is a suspension, its input schema."""
    with_run: Bool = False
    """For → Running: answer with the run and its deployment (the engine's start), which
    saves reading them."""


class FlowRunCreate(Doc):
    """An ad-hoc run without a deployment (the SDK's local runs report these)."""

    flow_name: Label
    name: Label | None = None
    parameters: JsonObject = Field(default_factory=dict)
    parent_task_run_id: Id | None = None
    tags: Tags = Field(default_factory=list)
    state: StateType = StateType.RUNNING
    heartbeat_seconds: Float | None = Field(
        default=None,
        gt=0,
        le=3600,
        description="the caller heartbeats the run this often; one not heard of for three "
        "beats is Crashed (its process died)",
    )


class FlowRun(Doc):
    id: str
    name: str
    flow_id: str
    flow_name: str
    deployment_id: str | None
    deployment_name: str | None
    pool_name: str | None
    queue_name: str | None
    parameters: StoredJson
    job_variables: StoredJson
    state: StateDoc
    scheduled_time: datetime
    start_time: datetime | None
    end_time: datetime | None
    worker_name: str | None
    infrastructure_id: str | None
    created: datetime
    infrastructure_details: dict[str, str] = Field(
        default_factory=dict,
        description="what its infrastructure reported beyond its id, e.g. a Lambda "
        "function's CloudWatch log group and stream",
    )
    priority: int = 0
    parent_task_run_id: str | None = None
    tags: list[str] = Field(default_factory=list)
    result: ResultRef | None = Field(default=None, description="the persisted return value")


class RunLineage(Doc):
    """Where a run sits in its tree (all None for a run that is no one's child)."""

    parent_flow_run_id: str | None = None
    root_flow_run_id: str | None = None
    parent_deployment_id: str | None = None


class StateChangeResult(Doc):
    accepted: bool
    state: StateDoc
    reason: str | None = None
    run: FlowRun | None = None
    """The run as it is now, when ``with_run`` asked for it and the change was accepted."""
    deployment: Deployment | None = None
    """The run's deployment, with ``run`` (none for a run without one)."""
    lineage: RunLineage | None = None
    """The run's parent and root, with ``run``."""


class FlowRunHistory(Doc):
    run: FlowRun
    states: list[StateDoc]


class GraphNode(Doc):
    """A task run, or a child flow run (which stands in for the task run of its call)."""

    id: str
    name: str
    kind: Literal["task-run", "flow-run"]
    state_type: StateType
    state_name: str | None = None
    start_time: datetime | None
    end_time: datetime | None
    tags: list[str] = Field(default_factory=list)


class GraphEdge(Doc):
    """``upstream``'s result fed ``downstream``'s input ``parameter`` (or its ``wait_for``)."""

    upstream: str
    downstream: str
    parameter: str


class FlowRunGraph(Doc):
    flow_run_id: str
    nodes: list[GraphNode]
    edges: list[GraphEdge]


class LogCreate(Doc):
    flow_run_id: Id
    task_run_id: Id | None = None
    level: StrictInt = Field(default=20, ge=0, le=100)
    message: LogMessage
    timestamp: Time
    source: Annotated[Label, Field(max_length=20)] = "engine"


LogBatch = Annotated[list[LogCreate], Field(max_length=MAX_LIST_ITEMS)]
"""The body of ``POST /api/logs``."""


class Log(Doc):
    id: int
    flow_run_id: str
    task_run_id: str | None = None
    level: int = 20
    message: str
    timestamp: datetime
    source: str = "engine"
