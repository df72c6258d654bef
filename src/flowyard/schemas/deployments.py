"""Deployments, their schedules and pull steps, and requests to run them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    Field,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from flowyard.schemas.base import (
    BlockRef,
    Bool,
    Count,
    Doc,
    Float,
    Id,
    JsonObject,
    Label,
    LongLabel,
    Name,
    StoredJson,
    Tags,
    Text,
    Time,
)
from flowyard.schemas.pools import MAX_RUN_PRIORITY, MIN_RUN_PRIORITY


class ScheduleCreate(Doc):
    """A schedule: a cron, interval (seconds) or RRule expression read in an IANA time zone."""

    kind: Literal["cron", "interval", "rrule"]
    expression: str = Field(min_length=1, max_length=2000)
    timezone: Annotated[Label, Field(max_length=100)] = "UTC"
    anchor_date: Time | None = Field(
        default=None, description="intervals count from here; RRules start here"
    )
    active: Bool = True
    parameters: JsonObject = Field(default_factory=dict, description="parameter overrides")


class ScheduleUpdate(Doc):
    """Pause or resume, or edit in place: any change replaces the runs not started yet."""

    active: Bool | None = None
    kind: Literal["cron", "interval", "rrule"] | None = None
    expression: str | None = Field(default=None, min_length=1, max_length=2000)
    timezone: Annotated[Label, Field(max_length=100)] | None = None
    anchor_date: Time | None = None
    parameters: JsonObject | None = None


class Schedule(Doc):
    id: str
    deployment_id: str
    kind: str
    expression: str
    timezone: str
    anchor_date: datetime | None
    active: bool
    parameters: StoredJson
    created: datetime
    updated: datetime
    next_times: list[datetime] = Field(
        default_factory=list, description="the next due times (UTC), when active"
    )


class GitClone(Doc):
    """Clone a git repository (at a branch or tag) for each run; the flow runs inside it."""

    repository: LongLabel = Field(description="URL or path git can clone")
    branch: LongLabel | None = Field(default=None, description="branch or tag; default: the HEAD")
    access_token_secret: Label | None = Field(
        default=None, description="name of a Secret block holding a token (private repos)"
    )


class SetWorkingDirectory(Doc):
    """Run from this directory (relative: inside the code pulled so far)."""

    directory: LongLabel


class PullStep(Doc):
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


class DeploymentCreate(Doc):
    name: Name
    flow_name: Label
    entrypoint: LongLabel = Field(description="path/to/file.py:function, relative to `path`")
    path: LongLabel | None = Field(default=None, description="working directory the flow runs in")
    pool_name: Name
    queue_name: Name | None = None
    parameters: JsonObject = Field(default_factory=dict)
    parameter_schema: JsonObject | None = None
    job_variables: JsonObject = Field(default_factory=dict)
    tags: Tags = Field(default_factory=list)
    description: Text | None = None
    version: Annotated[Label, Field(max_length=100)] | None = None
    catch_up: Literal["all", "latest", "skip"] = Field(
        default="all",
        description="scheduled runs that did not start in time: run all, only the latest, "
        "or skip them",
    )
    late_after_seconds: Float | None = Field(
        default=None,
        ge=0,
        le=10**9,
        description="grace period before a run is Late; default: server's",
    )
    crash_retries: StrictInt = Field(
        default=0, ge=0, le=100, description="a Crashed run is scheduled again this many times"
    )
    concurrency_limit: Count | None = Field(
        default=None, description="at most this many runs of it at once (None: no limit)"
    )
    collision_strategy: Literal["enqueue", "cancel-new"] = Field(
        default="enqueue",
        description="a run due while the limit is reached waits (enqueue) or is cancelled",
    )
    pull_steps: list[PullStep] = Field(
        default_factory=list,
        max_length=100,
        description="how a run gets the code, in order (default: `path`)",
    )
    blocks: list[BlockRef] = Field(
        default_factory=list,
        max_length=100,
        description="blocks (TYPE/NAME) the flow's code loads by name, e.g. with "
        "`Secret.load(NAME)`: its runs' tokens may read these, secrets included, and no others "
        "beyond what its pull steps and job variables refer to",
    )
    priority: StrictInt = Field(
        default=0,
        ge=MIN_RUN_PRIORITY,
        le=MAX_RUN_PRIORITY,
        description="its runs' priority within their queue; lower first",
    )
    schedules: list[ScheduleCreate] | None = Field(
        default=None,
        max_length=100,
        description="replaces the deployment's schedules; omit to keep them",
    )


class DeploymentUpdate(Doc):
    """Change a deployment in place: its concurrency limit (at once, for the next claims) and
    its description. ``POST /api/deployments`` (the upsert) changes everything else."""

    concurrency_limit: Count | None = Field(
        default=None, description="at most this many runs of it at once"
    )
    clear_concurrency_limit: Bool = Field(default=False, description="remove the limit")
    description: Text | None = None

    @model_validator(mode="after")
    def _one_limit_change(self) -> DeploymentUpdate:
        if self.clear_concurrency_limit and self.concurrency_limit is not None:
            raise ValueError("give concurrency_limit or clear_concurrency_limit, not both")
        return self


class Deployment(Doc):
    id: str
    name: str
    flow_id: str
    flow_name: str
    entrypoint: str
    path: str | None
    pool_name: str
    queue_name: str
    parameters: StoredJson
    parameter_schema: StoredJson | None
    job_variables: StoredJson
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
    blocks: list[str] = Field(default_factory=list)
    priority: int = 0
    created: datetime
    updated: datetime


class DeploymentRunRequest(Doc):
    parameters: JsonObject = Field(default_factory=dict)
    job_variables: JsonObject = Field(default_factory=dict)
    scheduled_time: Time | None = None
    name: Label | None = None
    tags: Tags = Field(default_factory=list, description="the run's tags, besides the deployment's")
    priority: StrictInt | None = Field(
        default=None,
        ge=MIN_RUN_PRIORITY,
        le=MAX_RUN_PRIORITY,
        description="within its queue, lower is claimed first; default: the deployment's",
    )
    parent_task_run_id: Id | None = Field(
        default=None,
        description="the run is a child of this task run's flow run (run_deployment in a flow)",
    )


MAX_BULK_RUNS = 1000


class DeploymentRunBulk(DeploymentRunRequest):
    """``count`` runs of one deployment, created in one transaction: alike, or one per
    ``parameter_sets`` item (each over ``parameters``)."""

    count: StrictInt = Field(ge=1, le=MAX_BULK_RUNS, description="how many runs to create")
    parameter_sets: list[JsonObject] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_BULK_RUNS,
        description="one set per run (as many as `count`), each over `parameters`",
    )

    @field_validator("parameter_sets")
    @classmethod
    def _one_set_per_run(
        cls, sets: list[dict[str, object]] | None, info: ValidationInfo
    ) -> list[dict[str, object]] | None:
        count = info.data.get("count")
        if sets is not None and count is not None and len(sets) != count:
            raise ValueError(f"{len(sets)} parameter sets for a count of {count}: give one per run")
        return sets
