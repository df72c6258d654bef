"""The API's request and response documents, shared by the orchestrator and the client."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from flowyard.states import StateType

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\- ]{0,99}$"


class _Doc(BaseModel):
    model_config = ConfigDict(from_attributes=True, extra="forbid")


# -- work pools and queues ---------------------------------------------------------------


class WorkPoolCreate(_Doc):
    name: str = Field(pattern=NAME_PATTERN)
    type: str = "process"
    description: str | None = None
    concurrency_limit: int | None = Field(default=None, ge=0)
    paused: bool = False
    base_job_template: dict[str, Any] | None = None


class WorkPoolUpdate(_Doc):
    description: str | None = None
    concurrency_limit: int | None = Field(default=None, ge=0)
    clear_concurrency_limit: bool = False
    paused: bool | None = None
    base_job_template: dict[str, Any] | None = None


class WorkPool(_Doc):
    id: str
    name: str
    type: str
    description: str | None
    concurrency_limit: int | None
    paused: bool
    base_job_template: dict[str, Any]
    status: str = "NOT_READY"
    created: datetime


FAIR_DESCRIPTION = "deployments take turns, so that one's burst does not starve another's runs"
MIN_RUN_PRIORITY, MAX_RUN_PRIORITY = -1000, 1000  # the claim script has bands for ±4096


class WorkQueueCreate(_Doc):
    name: str = Field(pattern=NAME_PATTERN)
    priority: int = Field(default=1, ge=0)
    concurrency_limit: int | None = Field(default=None, ge=0)
    paused: bool = False
    fair: bool = Field(default=False, description=FAIR_DESCRIPTION)
    description: str | None = None


class WorkQueueUpdate(_Doc):
    priority: int | None = Field(default=None, ge=0)
    concurrency_limit: int | None = Field(default=None, ge=0)
    clear_concurrency_limit: bool = False
    paused: bool | None = None
    fair: bool | None = Field(default=None, description=FAIR_DESCRIPTION)
    description: str | None = None


class WorkQueue(_Doc):
    id: str
    pool_name: str
    name: str
    priority: int
    concurrency_limit: int | None
    paused: bool
    fair: bool = False
    description: str | None = None
    ready: int = 0
    running: int = 0


# -- flows and deployments ---------------------------------------------------------------


class ScheduleCreate(_Doc):
    """A schedule: a cron, interval (seconds) or RRule expression read in an IANA time zone."""

    kind: Literal["cron", "interval", "rrule"]
    expression: str = Field(min_length=1, max_length=2000)
    timezone: str = "UTC"
    anchor_date: datetime | None = Field(
        default=None, description="intervals count from here; RRules start here"
    )
    active: bool = True
    parameters: dict[str, Any] = Field(default_factory=dict, description="parameter overrides")


class ScheduleUpdate(_Doc):
    """Pause or resume, or edit in place: any change replaces the runs not started yet."""

    active: bool | None = None
    kind: Literal["cron", "interval", "rrule"] | None = None
    expression: str | None = Field(default=None, min_length=1, max_length=2000)
    timezone: str | None = None
    anchor_date: datetime | None = None
    parameters: dict[str, Any] | None = None


class Schedule(_Doc):
    id: str
    deployment_id: str
    kind: str
    expression: str
    timezone: str
    anchor_date: datetime | None
    active: bool
    parameters: dict[str, Any]
    created: datetime
    updated: datetime
    next_times: list[datetime] = Field(
        default_factory=list, description="the next due times (UTC), when active"
    )


class GitClone(_Doc):
    """Clone a git repository (at a branch or tag) for each run; the flow runs inside it."""

    repository: str = Field(min_length=1, description="URL or path git can clone")
    branch: str | None = Field(default=None, description="branch or tag; default: the HEAD")
    access_token_secret: str | None = Field(
        default=None, description="name of a Secret block holding a token (private repos)"
    )


class SetWorkingDirectory(_Doc):
    """Run from this directory (relative: inside the code pulled so far)."""

    directory: str = Field(min_length=1)


class PullStep(_Doc):
    """One step of getting a deployment's code before its entrypoint is loaded."""

    git_clone: GitClone | None = None
    set_working_directory: SetWorkingDirectory | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> PullStep:
        given = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(given) != 1:
            names = ", ".join(type(self).model_fields)
            raise ValueError(f"a pull step is exactly one of: {names}")
        return self


class DeploymentCreate(_Doc):
    name: str = Field(pattern=NAME_PATTERN)
    flow_name: str = Field(min_length=1, max_length=200)
    entrypoint: str = Field(description="path/to/file.py:function, relative to `path`")
    path: str | None = Field(default=None, description="working directory the flow runs in")
    pool_name: str
    queue_name: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    parameter_schema: dict[str, Any] | None = None
    job_variables: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    description: str | None = None
    version: str | None = None
    catch_up: Literal["all", "latest", "skip"] = Field(
        default="all",
        description="scheduled runs that did not start in time: run all, only the latest, "
        "or skip them",
    )
    late_after_seconds: float | None = Field(
        default=None, ge=0, description="grace period before a run is Late; default: server's"
    )
    crash_retries: int = Field(
        default=0, ge=0, le=100, description="a Crashed run is scheduled again this many times"
    )
    concurrency_limit: int | None = Field(
        default=None, ge=0, description="at most this many runs of it at once (None: no limit)"
    )
    collision_strategy: Literal["enqueue", "cancel-new"] = Field(
        default="enqueue",
        description="a run due while the limit is reached waits (enqueue) or is cancelled",
    )
    pull_steps: list[PullStep] = Field(
        default_factory=list, description="how a run gets the code, in order (default: `path`)"
    )
    priority: int = Field(
        default=0,
        ge=MIN_RUN_PRIORITY,
        le=MAX_RUN_PRIORITY,
        description="its runs' priority within their queue; lower first",
    )
    schedules: list[ScheduleCreate] | None = Field(
        default=None, description="replaces the deployment's schedules; omit to keep them"
    )


class Deployment(_Doc):
    id: str
    name: str
    flow_id: str
    flow_name: str
    entrypoint: str
    path: str | None
    pool_name: str
    queue_name: str
    parameters: dict[str, Any]
    parameter_schema: dict[str, Any] | None
    job_variables: dict[str, Any]
    tags: list[str]
    description: str | None
    version: str | None
    paused: bool = False
    catch_up: str = "all"
    late_after_seconds: float | None = None
    crash_retries: int = 0
    concurrency_limit: int | None = None
    collision_strategy: str = "enqueue"
    pull_steps: list[PullStep] = Field(default_factory=list)
    priority: int = 0
    created: datetime
    updated: datetime


class DeploymentRunRequest(_Doc):
    parameters: dict[str, Any] = Field(default_factory=dict)
    job_variables: dict[str, Any] = Field(default_factory=dict)
    scheduled_time: datetime | None = None
    name: str | None = None
    priority: int | None = Field(
        default=None,
        ge=MIN_RUN_PRIORITY,
        le=MAX_RUN_PRIORITY,
        description="within its queue, lower is claimed first; default: the deployment's",
    )


# -- flow runs ---------------------------------------------------------------------------


class StateDoc(_Doc):
    type: StateType
    name: str
    message: str | None = None
    timestamp: datetime


class StateChange(_Doc):
    """A request to move a run; ``token`` is the claim token for worker and engine moves."""

    type: StateType
    message: str | None = None
    token: str | None = None
    force: bool = False
    scheduled_time: datetime | None = None
    """For Running → Scheduled (a flow's retry in-process): when the next attempt starts."""


class StateChangeResult(_Doc):
    accepted: bool
    state: StateDoc
    reason: str | None = None


class FlowRunCreate(_Doc):
    """An ad-hoc run without a deployment (the SDK's local runs report these)."""

    flow_name: str
    name: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    parent_task_run_id: str | None = None
    state: StateType = StateType.RUNNING
    heartbeat_seconds: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        description="the caller heartbeats the run this often; one not heard of for three "
        "beats is Crashed (its process died)",
    )


class FlowRun(_Doc):
    id: str
    name: str
    flow_id: str
    flow_name: str
    deployment_id: str | None
    deployment_name: str | None
    pool_name: str | None
    queue_name: str | None
    parameters: dict[str, Any]
    job_variables: dict[str, Any]
    state: StateDoc
    scheduled_time: datetime
    start_time: datetime | None
    end_time: datetime | None
    worker_name: str | None
    infrastructure_id: str | None
    created: datetime
    priority: int = 0
    parent_task_run_id: str | None = None
    result: ResultRef | None = Field(default=None, description="the persisted return value")


class FlowRunHistory(_Doc):
    run: FlowRun
    states: list[StateDoc]


# -- claims and workers ------------------------------------------------------------------


class ClaimRequest(_Doc):
    worker_name: str
    max_runs: int = Field(default=1, ge=1, le=1000)
    queues: list[str] | None = None
    prefetch_seconds: float = Field(default=0.0, ge=0, le=3600)
    wait: float = Field(default=0.0, ge=0, le=60, description="seconds to long-poll for a run")


class ClaimedRun(_Doc):
    """What a worker needs to launch one run."""

    run: FlowRun
    token: str
    deployment: Deployment | None
    base_job_template: dict[str, Any]
    run_token: str | None = Field(
        default=None,
        description="what the run's engine authenticates with (never the worker's key); "
        "set when the server has API keys",
    )


class ClaimResponse(_Doc):
    runs: list[ClaimedRun]


class WorkerHeartbeat(_Doc):
    worker_name: str
    type: str = "process"
    run_ids: list[str] = Field(default_factory=list)


class HeartbeatResponse(_Doc):
    held: list[str]
    cancelling: list[str]


class Worker(_Doc):
    id: str
    name: str
    pool_name: str
    type: str
    status: str
    last_heartbeat: datetime


class RunHeartbeat(_Doc):
    """A sign of life for a running flow run: the engine's, with its claim token, or (no
    token) that of the process that called a flow directly, with its beat interval."""

    token: str | None = None
    interval_seconds: float | None = Field(default=None, gt=0, le=3600)


class RunHeartbeatAck(_Doc):
    """What the engine learns from a heartbeat: the run's state, and whether to stop."""

    state: StateType
    stop: bool
    run_token: str | None = Field(
        default=None, description="a fresh run token, when the caller's is past half its life"
    )


class InfrastructureReport(_Doc):
    token: str
    infrastructure_id: str


# -- task runs and logs ------------------------------------------------------------------


class TaskRunInput(_Doc):
    """An upstream run whose result (or future, or state) fed a task run's input."""

    input_type: Literal["task_run"] = "task_run"
    id: str


class ResultRef(_Doc):
    """Where a persisted result lives: enough for another process to read it back."""

    storage: dict[str, Any] = Field(
        description="how to rebuild the storage: its block type (`type`) and fields"
    )
    key: str = Field(description="the record's key in that storage")
    location: str = Field(description="a path or URL, for people")
    serializer: str


class TaskRunCreate(_Doc):
    id: str | None = None
    flow_run_id: str
    name: str
    task_key: str
    state: StateType = StateType.RUNNING
    parameters: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    task_version: str | None = None
    task_inputs: dict[str, list[TaskRunInput]] = Field(default_factory=dict)


class TaskRunUpdate(_Doc):
    state: StateType
    message: str | None = None
    state_name: str | None = None
    run_count: int | None = None
    cache_key: str | None = None
    result: ResultRef | None = None


class _TaskRunDetails(_Doc):
    """What a task run's record and its document share beyond the name and the state."""

    state_name: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    task_version: str | None = None
    task_inputs: dict[str, list[TaskRunInput]] = Field(default_factory=dict)
    cache_key: str | None = None
    run_count: int = 0
    result: ResultRef | None = None


class TaskRunRecord(_TaskRunDetails):
    """Everything known about a task run, upserted by id (``POST /api/task_runs/bulk``).

    The SDK chooses the id and the times; a record replaces the previous one of its id,
    except that a task run in a final state does not go back to a non-final one.
    """

    id: str
    flow_run_id: str
    name: str
    task_key: str
    state: StateType
    message: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None


class TaskRunUpsertResult(_Doc):
    upserted: int
    unknown_flow_runs: list[str] = Field(
        default_factory=list, description="records of these flow runs were not stored"
    )


class TaskRun(_TaskRunDetails):
    id: str
    flow_run_id: str | None = Field(description="None for a background task run (Task.delay)")
    name: str
    task_key: str
    state_type: StateType
    message: str | None
    start_time: datetime | None
    end_time: datetime | None
    created: datetime


class BackgroundTaskRunCreate(_Doc):
    """A background task run (``Task.delay``): Scheduled until a task worker claims it."""

    task_key: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=200)
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="a summary for people; the values are in storage"
    )
    parameters_ref: ResultRef | None = Field(
        None, description="the stored parameters (and wait_for), read by the task worker"
    )
    tags: list[str] = Field(default_factory=list)
    task_version: str | None = None
    task_inputs: dict[str, list[TaskRunInput]] = Field(default_factory=dict)


class TaskWorkerClaim(_Doc):
    """Claim up to ``max_runs`` Scheduled background runs of these tasks, waiting for one."""

    task_keys: list[str] = Field(min_length=1)
    worker_name: str = Field(min_length=1, max_length=200)
    max_runs: int = Field(1, ge=1, le=1000)
    wait: float = Field(0.0, ge=0.0, le=60.0, description="seconds to wait for a run")


class ClaimedTaskRun(_Doc):
    run: TaskRun
    token: str = Field(description="the claim; every later report of the run must carry it")
    parameters_ref: ResultRef | None = None


class TaskWorkerClaimed(_Doc):
    runs: list[ClaimedTaskRun] = Field(default_factory=list)


class HeldTaskRun(_Doc):
    id: str
    token: str


class TaskWorkerHeartbeat(_Doc):
    worker_name: str = Field(min_length=1, max_length=200)
    runs: list[HeldTaskRun] = Field(default_factory=list)


class TaskWorkerHeartbeatAck(_Doc):
    held: list[str] = Field(description="the runs whose claim this worker still holds")


class BackgroundStateReport(TaskRunUpdate):
    """A task worker's report of a claimed run; refused (409) when its claim was taken back."""

    token: str


class GraphNode(_Doc):
    """A task run, or a child flow run (which stands in for the task run of its call)."""

    id: str
    name: str
    kind: Literal["task-run", "flow-run"]
    state_type: StateType
    state_name: str | None = None
    start_time: datetime | None
    end_time: datetime | None
    tags: list[str] = Field(default_factory=list)


class GraphEdge(_Doc):
    """``upstream``'s result fed ``downstream``'s input ``parameter`` (or its ``wait_for``)."""

    upstream: str
    downstream: str
    parameter: str


class FlowRunGraph(_Doc):
    flow_run_id: str
    nodes: list[GraphNode]
    edges: list[GraphEdge]


class LogCreate(_Doc):
    flow_run_id: str
    task_run_id: str | None = None
    level: int = 20
    message: str
    timestamp: datetime
    source: str = "engine"


class Log(LogCreate):
    id: int


class ErrorDoc(_Doc):
    detail: str


# -- blocks ------------------------------------------------------------------------------

BLOCK_NAME = r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,99}$"


class BlockType(_Doc):
    slug: str
    name: str
    description: str | None
    secret_fields: list[str]
    fields_schema: dict[str, Any]


class BlockCreate(_Doc):
    type: str
    name: str = Field(pattern=BLOCK_NAME)
    data: dict[str, Any] = Field(default_factory=dict)


class BlockSave(_Doc):
    """The body of ``PUT /api/blocks/{type}/{name}``: create or replace."""

    data: dict[str, Any] = Field(default_factory=dict)


class BlockDocument(_Doc):
    """A block as the API returns it: secrets masked unless asked for explicitly."""

    id: str
    type: str
    name: str
    data: dict[str, Any]
    secret_fields: list[str]
    created: datetime
    updated: datetime

    @property
    def ref(self) -> str:
        return f"{self.type}/{self.name}"


# -- API keys ----------------------------------------------------------------------------


class ApiKeyCreate(_Doc):
    name: str = Field(pattern=NAME_PATTERN)
    role: Literal["admin", "viewer", "worker"] = "worker"
    pools: list[str] = Field(default_factory=list, description="worker keys: pools it may serve")


class ApiKey(_Doc):
    name: str
    role: str
    pools: list[str]
    prefix: str
    created: datetime
    revoked: datetime | None


class ApiKeyCreated(ApiKey):
    key: str = Field(description="the secret, shown this once")


# -- tag concurrency limits ---------------------------------------------------------------


class ConcurrencyLimitCreate(_Doc):
    """At most ``limit`` task runs tagged ``tag`` at once, everywhere (0 blocks them all).

    ``slot_decay_per_second`` lets ``rate_limit(tag)`` use it: at most ``limit`` callers at
    once, then that many a second. An inactive limit limits nothing.
    """

    tag: str = Field(min_length=1, max_length=200)
    limit: int = Field(ge=0)
    slot_decay_per_second: float | None = Field(default=None, gt=0, le=1_000_000)
    active: bool = True


class ConcurrencyLimit(_Doc):
    tag: str
    limit: int
    slot_decay_per_second: float | None = None
    active: bool = True
    active_slots: int
    created: datetime
    updated: datetime


MAX_SLOT_LEASE_SECONDS = 300.0
"""The longest lease of a tag concurrency slot: holders renew while they run (every third
of the lease), so a holder that dies frees its slots within this time."""


class SlotsRequest(_Doc):
    """Take, renew or give back ``occupy`` slots of each limited tag, for ``holder`` (a
    task run, or a ``concurrency(...)`` block). The slots belong to the caller as well:
    only the key or run token that took them (or an admin, with ``reset``) frees them."""

    tags: list[str] = Field(max_length=100)
    holder: str = Field(min_length=1, max_length=200)
    lease_seconds: float = Field(
        default=60.0,
        gt=0,
        le=MAX_SLOT_LEASE_SECONDS,
        description="How long the slots stay taken unless renewed (at most 300 s).",
    )
    occupy: int = Field(default=1, ge=1, le=1000)
    mode: Literal["concurrency", "rate_limit"] = Field(
        default="concurrency",
        description="rate_limit: the slots are not held but decay (limits with a slot decay)",
    )


class SlotsResponse(_Doc):
    acquired: bool
    limited_tags: list[str] = Field(description="the tags of the request that have a limit")
    full_tag: str | None = Field(default=None, description="a tag whose limit is reached")
    retry_after: float | None = Field(
        default=None, description="seconds until decaying slots of the full tag make room"
    )
    owner: str | None = Field(
        default=None,
        description="who the slots belong to: 'run:ID', 'worker:KEY NAME', 'admin' or 'local'",
    )


class SlotHolder(_Doc):
    """A holder of slots of one tag: whose they are, how many, until when unless renewed."""

    owner: str
    holder: str
    slots: int
    lease_expires: datetime


class SlotsReset(_Doc):
    """Which slots of a tag an admin frees: all (held and decaying), or an owner's, or
    one holder of an owner."""

    owner: str | None = Field(default=None, min_length=1, max_length=300)
    holder: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _holder_needs_owner(self) -> SlotsReset:
        if self.holder is not None and self.owner is None:
            raise ValueError("a holder is named within its owner: give the owner too")
        return self


class SlotsFreed(_Doc):
    freed: int = Field(description="how many slots were freed")
