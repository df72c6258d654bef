"""What workers send and receive: claims, heartbeats, infrastructure reports."""

from __future__ import annotations

from datetime import datetime

from pydantic import (
    Field,
    StrictInt,
)

from flowyard.schemas.base import (
    MAX_LIST_ITEMS,
    Bool,
    Doc,
    Float,
    Kind,
    Label,
    LongLabel,
    Name,
    StoredJson,
)
from flowyard.schemas.deployments import Deployment
from flowyard.schemas.flow_runs import FlowRun
from flowyard.states import StateType


class ClaimRequest(Doc):
    worker_name: Label
    max_runs: StrictInt = Field(default=1, ge=1, le=1000)
    queues: list[Name] | None = Field(default=None, max_length=MAX_LIST_ITEMS)
    prefetch_seconds: Float = Field(default=0.0, ge=0, le=3600)
    wait: Float = Field(default=0.0, ge=0, le=60, description="seconds to long-poll for a run")


class ClaimedRun(Doc):
    """What a worker needs to launch one run."""

    run: FlowRun
    token: str
    deployment: Deployment | None
    base_job_template: StoredJson
    run_token: str | None = Field(
        default=None,
        description="what the run's engine authenticates with (never the worker's key); "
        "set when the server has API keys",
    )


class ClaimResponse(Doc):
    runs: list[ClaimedRun]


class WorkerHeartbeat(Doc):
    worker_name: Label
    type: Kind = "process"
    run_ids: list[Label] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)
    stopping: Bool = False
    """The worker's last beat: it stopped gracefully, so it is offline now, not in ~30 s."""


class HeartbeatResponse(Doc):
    held: list[str]
    cancelling: list[str]


class Worker(Doc):
    id: str
    name: str
    pool_name: str
    type: str
    status: str
    last_heartbeat: datetime


class RunHeartbeat(Doc):
    """A sign of life for a running flow run: the engine's, with its claim token, or (no
    token) that of the process that called a flow directly, with its beat interval."""

    token: LongLabel | None = None
    interval_seconds: Float | None = Field(default=None, gt=0, le=3600)


class RunHeartbeatAck(Doc):
    """What the engine learns from a heartbeat: the run's state, and whether to stop."""

    state: StateType
    stop: bool
    run_token: str | None = Field(
        default=None, description="a fresh run token, when the caller's is past half its life"
    )


MAX_INFRASTRUCTURE_DETAILS = 8


class InfrastructureReport(Doc):
    token: LongLabel
    infrastructure_id: LongLabel
    details: dict[Label, LongLabel] | None = Field(
        default=None,
        max_length=MAX_INFRASTRUCTURE_DETAILS,
        description="what else identifies the infrastructure, e.g. a Lambda function's "
        "log_group and log_stream; replaces earlier details (none given: kept)",
    )
