"""The API's request and response documents, shared by the orchestrator and the client.

Request documents carry the API's bounds (the annotated types below), so that the OpenAPI
spec shows them and a request beyond them is refused with 422 naming the field: names are
plain identifiers, labels and texts printable Unicode of bounded length, integers within
declared ranges, and documents of arbitrary user JSON at most ``MAX_JSON_DEPTH`` deep.
Response documents stay lax, and stored JSON too deep to serialize is cut (``StoredJson``),
so that nothing stored can make a read fail.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    model_validator,
)

from flowyard.states import StateType

NAME_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9_.\- ]{0,98}[A-Za-z0-9_.\-])?$"
MAX_JSON_DEPTH = 32
MAX_LABEL_LENGTH = 200
MAX_LONG_LABEL_LENGTH = 4000
MAX_STATE_NAME_LENGTH = 50
MAX_TAGS = 100
MAX_TEXT_LENGTH = 100_000
MAX_LOG_MESSAGE_LENGTH = 1_000_000
MAX_LIST_ITEMS = 1000  # logs per request, task-run records per bulk request, tags, ...
MAX_COUNT = 1_000_000  # concurrency limits, run counts
# what a label may not hold: controls (category Cc), bidi overrides and isolates, surrogates
_REFUSED_IN_LABELS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # no store keeps NUL; lone surrogates


def _refuse(pattern: re.Pattern[str], text: str) -> str:
    found = pattern.search(text)
    if found:
        raise ValueError(f"contains the character U+{ord(found.group()):04X}, which is not allowed")
    return text


def _printable(text: str) -> str:
    """A label or name: no control, bidi-override or surrogate characters, no edge spaces."""
    _refuse(_REFUSED_IN_LABELS, text)
    if text != text.strip():
        raise ValueError("starts or ends with white space")
    return text


def storable_label(text: str, max_length: int = MAX_LABEL_LENGTH) -> str:
    """``text`` made a label the API takes: refused characters replaced (U+FFFD), white space
    at the ends trimmed, cut in the middle (``…``, keeping its end, such as a run's
    number) to ``max_length``; ``unnamed`` when nothing is left."""
    text = _REFUSED_IN_LABELS.sub("\ufffd", text).strip()
    if len(text) > max_length:
        tail = min(20, max_length // 4)
        text = text[: max_length - 1 - tail].rstrip() + "…" + text[len(text) - tail :].lstrip()
    return text or "unnamed"


def storable_tags(tags: Any) -> list[str]:
    """Tags the API takes: each a ``storable_label`` (empty ones dropped), sorted, without
    repeats, at most ``MAX_TAGS``."""
    return sorted({storable_label(str(tag)) for tag in tags if str(tag).strip()})[:MAX_TAGS]


def _storable(value: Any) -> Any:
    """Free text with NUL and lone surrogates replaced (U+FFFD), which no store can keep.

    Replaced, not refused: messages come from tracebacks and programs' output, and a run's
    final state must not be lost to a stray byte in its message."""
    return _UNSTORABLE.sub("\ufffd", value) if isinstance(value, str) else value


def _cut_text(value: Any) -> Any:
    """``_storable`` text, cut to ``MAX_TEXT_LENGTH`` characters (a note says so)."""
    value = _storable(value)
    if isinstance(value, str) and len(value) > MAX_TEXT_LENGTH:
        note = f"… (cut to {MAX_TEXT_LENGTH} characters)"
        return value[: MAX_TEXT_LENGTH - len(note)] + note
    return value


def _json_shape(value: Any) -> tuple[int, bool]:
    """How deep ``value`` nests (a scalar is 0, ``{}`` is 1), and whether it holds a number
    JSON cannot carry (NaN, infinities); without recursing."""
    deepest, odd, stack = 0, False, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(node, float) and not math.isfinite(node):
            odd = True
    return deepest, odd


def _bounded_json(value: Any) -> Any:
    depth, odd = _json_shape(value)
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    if odd:
        raise ValueError("holds a number JSON cannot carry (NaN or an infinity)")
    return value


def _cut_json(value: Any, depth: int = 1) -> Any:
    """``value`` with what lies deeper than ``MAX_JSON_DEPTH`` replaced by a note, and NaN and
    infinities by their names.

    Rows stored before the bounds existed may hold either, and neither can be serialized."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if not isinstance(value, dict | list):
        return value
    if depth > MAX_JSON_DEPTH:
        return f"<cut: nested deeper than {MAX_JSON_DEPTH} levels>"
    if isinstance(value, dict):
        return {key: _cut_json(item, depth + 1) for key, item in value.items()}
    return [_cut_json(item, depth + 1) for item in value]


def _stored_json(value: Any) -> Any:
    depth, odd = _json_shape(value)
    return _cut_json(value) if depth > MAX_JSON_DEPTH or odd else value


def _datetime_text(value: Any) -> Any:
    """Times come as ISO 8601 text: a bare number (in JSON, or as text in a query string)
    is refused, not read as a Unix time."""
    if isinstance(value, int | float) or (
        isinstance(value, str) and _NUMBER.fullmatch(value.strip())
    ):
        raise ValueError("a date-time is ISO 8601 text, not a number")
    return value


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


Name = Annotated[str, Field(pattern=NAME_PATTERN, min_length=1, max_length=100)]
"""An identifier: letters, digits, ``_.-`` and inner spaces, at most 100 characters."""
Label = Annotated[str, Field(min_length=1, max_length=MAX_LABEL_LENGTH), AfterValidator(_printable)]
"""A name people choose freely (flows, task runs, tags, workers): printable, trimmed."""
Text = Annotated[str, BeforeValidator(_cut_text)]
"""Free text (descriptions, state messages): never refused, but made storable and cut to
``MAX_TEXT_LENGTH``."""
LogMessage = Annotated[str, Field(max_length=MAX_LOG_MESSAGE_LENGTH), BeforeValidator(_storable)]
"""A log line: made storable; longer than ``MAX_LOG_MESSAGE_LENGTH``, refused (the SDK cuts)."""
JsonObject = Annotated[dict[str, Any], AfterValidator(_bounded_json)]
"""Arbitrary user JSON (parameters, job variables, block data), bounded in depth."""
StoredJson = Annotated[dict[str, Any], AfterValidator(_stored_json)]
"""User JSON as read back from the store: cut rather than failing the read."""
Bool = StrictBool
Count = Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)]
Float = StrictFloat
Time = Annotated[datetime, BeforeValidator(_datetime_text)]
Tags = Annotated[list[Label], Field(max_length=MAX_TAGS)]
LongLabel = Annotated[
    str, Field(min_length=1, max_length=MAX_LONG_LABEL_LENGTH), AfterValidator(_printable)
]
"""A label that may be long: paths, URLs, entrypoints, tokens, keys."""
Id = Annotated[Label, Field(max_length=36)]
"""The id of a stored record (the store keeps 36 characters: a UUID)."""
Kind = Annotated[Name, Field(max_length=50)]
"""A type's or state's short name (the store keeps 50 characters)."""
BlockRef = Annotated[
    str, Field(pattern=r"^[a-z0-9][a-z0-9\-]{0,99}/[A-Za-z0-9][A-Za-z0-9_\-]{0,199}$")
]
"""A saved block, ``TYPE/NAME``."""


class _Doc(BaseModel):
    # built on first use: a CLI command pays only for the documents it reads (build_all)
    model_config = ConfigDict(
        from_attributes=True, extra="forbid", allow_inf_nan=False, defer_build=True
    )


def build_all() -> None:
    """Build every document's validator now, and defer no more: the server does this before
    FastAPI wraps the documents in its adapters (which would otherwise defer too, and warn)."""
    pending: list[type[_Doc]] = [_Doc]
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        model.model_config["defer_build"] = False  # each class has its own config dict
        if model is not _Doc:
            model.model_rebuild(force=True)


# -- work pools and queues ---------------------------------------------------------------


class WorkPoolCreate(_Doc):
    name: Name
    type: Kind = "process"
    description: Text | None = None
    concurrency_limit: Count | None = None
    paused: Bool = False
    base_job_template: JsonObject | None = None


class WorkPoolUpdate(_Doc):
    description: Text | None = None
    concurrency_limit: Count | None = None
    clear_concurrency_limit: Bool = False
    paused: Bool | None = None
    base_job_template: JsonObject | None = None


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
MAX_QUEUE_PRIORITY = 1_000_000


class WorkQueueCreate(_Doc):
    name: Name
    priority: StrictInt = Field(default=1, ge=0, le=MAX_QUEUE_PRIORITY)
    concurrency_limit: Count | None = None
    paused: Bool = False
    fair: Bool = Field(default=False, description=FAIR_DESCRIPTION)
    description: Text | None = None


class WorkQueueUpdate(_Doc):
    priority: StrictInt | None = Field(default=None, ge=0, le=MAX_QUEUE_PRIORITY)
    concurrency_limit: Count | None = None
    clear_concurrency_limit: Bool = False
    paused: Bool | None = None
    fair: Bool | None = Field(default=None, description=FAIR_DESCRIPTION)
    description: Text | None = None


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
    timezone: Annotated[Label, Field(max_length=100)] = "UTC"
    anchor_date: Time | None = Field(
        default=None, description="intervals count from here; RRules start here"
    )
    active: Bool = True
    parameters: JsonObject = Field(default_factory=dict, description="parameter overrides")


class ScheduleUpdate(_Doc):
    """Pause or resume, or edit in place: any change replaces the runs not started yet."""

    active: Bool | None = None
    kind: Literal["cron", "interval", "rrule"] | None = None
    expression: str | None = Field(default=None, min_length=1, max_length=2000)
    timezone: Annotated[Label, Field(max_length=100)] | None = None
    anchor_date: Time | None = None
    parameters: JsonObject | None = None


class Schedule(_Doc):
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


class GitClone(_Doc):
    """Clone a git repository (at a branch or tag) for each run; the flow runs inside it."""

    repository: LongLabel = Field(description="URL or path git can clone")
    branch: LongLabel | None = Field(default=None, description="branch or tag; default: the HEAD")
    access_token_secret: Label | None = Field(
        default=None, description="name of a Secret block holding a token (private repos)"
    )


class SetWorkingDirectory(_Doc):
    """Run from this directory (relative: inside the code pulled so far)."""

    directory: LongLabel


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


class Deployment(_Doc):
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


class DeploymentRunRequest(_Doc):
    parameters: JsonObject = Field(default_factory=dict)
    job_variables: JsonObject = Field(default_factory=dict)
    scheduled_time: Time | None = None
    name: Label | None = None
    priority: StrictInt | None = Field(
        default=None,
        ge=MIN_RUN_PRIORITY,
        le=MAX_RUN_PRIORITY,
        description="within its queue, lower is claimed first; default: the deployment's",
    )


MAX_BULK_RUNS = 1000


class DeploymentRunBulk(DeploymentRunRequest):
    """``count`` alike runs of one deployment, created in one transaction."""

    count: StrictInt = Field(ge=1, le=MAX_BULK_RUNS, description="how many runs to create")


# -- flow runs ---------------------------------------------------------------------------


class StateDoc(_Doc):
    type: StateType
    name: str
    message: str | None = None
    timestamp: datetime


class StateChange(_Doc):
    """A request to move a run; ``token`` is the claim token for worker and engine moves."""

    type: StateType
    message: Text | None = None
    token: LongLabel | None = None
    force: Bool = False
    scheduled_time: Time | None = None
    """For Running → Scheduled (a flow's retry in-process): when the next attempt starts."""


class StateChangeResult(_Doc):
    accepted: bool
    state: StateDoc
    reason: str | None = None


class FlowRunCreate(_Doc):
    """An ad-hoc run without a deployment (the SDK's local runs report these)."""

    flow_name: Label
    name: Label | None = None
    parameters: JsonObject = Field(default_factory=dict)
    parent_task_run_id: Id | None = None
    state: StateType = StateType.RUNNING
    heartbeat_seconds: Float | None = Field(
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
    parameters: StoredJson
    job_variables: StoredJson
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
    worker_name: Label
    max_runs: StrictInt = Field(default=1, ge=1, le=1000)
    queues: list[Name] | None = Field(default=None, max_length=MAX_LIST_ITEMS)
    prefetch_seconds: Float = Field(default=0.0, ge=0, le=3600)
    wait: Float = Field(default=0.0, ge=0, le=60, description="seconds to long-poll for a run")


class ClaimedRun(_Doc):
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


class ClaimResponse(_Doc):
    runs: list[ClaimedRun]


class WorkerHeartbeat(_Doc):
    worker_name: Label
    type: Kind = "process"
    run_ids: list[Label] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)
    stopping: Bool = False
    """The worker's last beat: it stopped gracefully, so it is offline now, not in ~30 s."""


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

    token: LongLabel | None = None
    interval_seconds: Float | None = Field(default=None, gt=0, le=3600)


class RunHeartbeatAck(_Doc):
    """What the engine learns from a heartbeat: the run's state, and whether to stop."""

    state: StateType
    stop: bool
    run_token: str | None = Field(
        default=None, description="a fresh run token, when the caller's is past half its life"
    )


class InfrastructureReport(_Doc):
    token: LongLabel
    infrastructure_id: LongLabel


# -- task runs and logs ------------------------------------------------------------------


class TaskRunInput(_Doc):
    """An upstream run whose result (or future, or state) fed a task run's input."""

    input_type: Literal["task_run"] = "task_run"
    id: Label


class ResultRef(_Doc):
    """Where a persisted result lives: enough for another process to read it back."""

    storage: JsonObject = Field(
        description="how to rebuild the storage: its block type (`type`) and fields"
    )
    key: LongLabel = Field(description="the record's key in that storage")
    location: LongLabel = Field(description="a path or URL, for people")
    serializer: Label


TaskInputs = Annotated[dict[str, list[TaskRunInput]], Field(max_length=MAX_LIST_ITEMS)]


class TaskRunCreate(_Doc):
    id: Id | None = None
    flow_run_id: Id
    name: Label
    task_key: Label
    state: StateType = StateType.RUNNING
    parameters: JsonObject = Field(default_factory=dict)
    tags: Tags = Field(default_factory=list)
    task_version: Label | None = None
    task_inputs: TaskInputs = Field(default_factory=dict)


class TaskRunUpdate(_Doc):
    state: StateType
    message: Text | None = None
    state_name: Annotated[Label, Field(max_length=MAX_STATE_NAME_LENGTH)] | None = None
    run_count: Count | None = None
    cache_key: LongLabel | None = None
    result: ResultRef | None = None


class _TaskRunDetails(_Doc):
    """What a task run's record and its document share beyond the name and the state."""

    state_name: str | None = None
    parameters: StoredJson = Field(default_factory=dict)
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

    id: Id
    flow_run_id: Id
    name: Label
    task_key: Label
    state: StateType
    message: Text | None = None
    start_time: Time | None = None
    end_time: Time | None = None
    # the request's bounds, over the lax fields of what is read back
    state_name: Annotated[Label, Field(max_length=MAX_STATE_NAME_LENGTH)] | None = None
    parameters: JsonObject = Field(default_factory=dict)
    tags: Tags = Field(default_factory=list)
    task_version: Label | None = None
    task_inputs: TaskInputs = Field(default_factory=dict)
    cache_key: LongLabel | None = None
    run_count: Count = 0


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

    task_key: Label
    name: Label
    parameters: JsonObject = Field(
        default_factory=dict, description="a summary for people; the values are in storage"
    )
    parameters_ref: ResultRef | None = Field(
        None, description="the stored parameters (and wait_for), read by the task worker"
    )
    tags: Tags = Field(default_factory=list)
    task_version: Label | None = None
    task_inputs: TaskInputs = Field(default_factory=dict)


class TaskWorkerClaim(_Doc):
    """Claim up to ``max_runs`` Scheduled background runs of these tasks, waiting for one."""

    task_keys: list[Label] = Field(min_length=1, max_length=MAX_LIST_ITEMS)
    worker_name: Label
    max_runs: StrictInt = Field(1, ge=1, le=1000)
    wait: Float = Field(0.0, ge=0.0, le=60.0, description="seconds to wait for a run")


class ClaimedTaskRun(_Doc):
    run: TaskRun
    token: str = Field(description="the claim; every later report of the run must carry it")
    parameters_ref: ResultRef | None = None


class TaskWorkerClaimed(_Doc):
    runs: list[ClaimedTaskRun] = Field(default_factory=list)


class HeldTaskRun(_Doc):
    id: Label
    token: LongLabel


class TaskWorkerHeartbeat(_Doc):
    worker_name: Label
    runs: list[HeldTaskRun] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)


class TaskWorkerHeartbeatAck(_Doc):
    held: list[str] = Field(description="the runs whose claim this worker still holds")


class BackgroundStateReport(TaskRunUpdate):
    """A task worker's report of a claimed run; refused (409) when its claim was taken back."""

    token: LongLabel


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
    flow_run_id: Id
    task_run_id: Id | None = None
    level: StrictInt = Field(default=20, ge=0, le=100)
    message: LogMessage
    timestamp: Time
    source: Annotated[Label, Field(max_length=20)] = "engine"


LogBatch = Annotated[list[LogCreate], Field(max_length=MAX_LIST_ITEMS)]
"""The body of ``POST /api/logs``."""
TaskRunBatch = Annotated[list[TaskRunRecord], Field(max_length=MAX_LIST_ITEMS)]
"""The body of ``POST /api/task_runs/bulk``."""


class Log(_Doc):
    id: int
    flow_run_id: str
    task_run_id: str | None = None
    level: int = 20
    message: str
    timestamp: datetime
    source: str = "engine"


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
    type: Kind
    name: str = Field(pattern=BLOCK_NAME)
    data: JsonObject = Field(default_factory=dict)


class BlockSave(_Doc):
    """The body of ``PUT /api/blocks/{type}/{name}``: create or replace."""

    data: JsonObject = Field(default_factory=dict)


class BlockDocument(_Doc):
    """A block as the API returns it: secrets masked unless asked for explicitly."""

    id: str
    type: str
    name: str
    data: StoredJson
    secret_fields: list[str]
    created: datetime
    updated: datetime

    @property
    def ref(self) -> str:
        return f"{self.type}/{self.name}"


# -- API keys ----------------------------------------------------------------------------


class ApiKeyCreate(_Doc):
    name: Name
    role: Literal["admin", "viewer", "worker"] = "worker"
    pools: list[Name] = Field(
        default_factory=list,
        max_length=MAX_LIST_ITEMS,
        description="worker keys: pools it may serve",
    )


class ApiKey(_Doc):
    name: str
    role: str
    pools: list[str]
    prefix: str
    created: datetime
    revoked: datetime | None


class ApiKeyCreated(ApiKey):
    key: str = Field(description="the secret, shown this once")
    enforced: bool = Field(
        default=True,
        description="false: the server requires no key (no FLOWYARD_API_KEY), so keys are "
        "not checked until it does",
    )


# -- incoming webhooks -------------------------------------------------------------------


def _template_text(text: str) -> str:
    return _refuse(_UNSTORABLE, text)


Template = Annotated[
    str, Field(min_length=1, max_length=MAX_TEXT_LENGTH), AfterValidator(_template_text)
]
"""A Jinja template (parsed by the server, which answers 422 naming the field if it fails)."""
WebhookAuth = Literal["secret", "hmac-sha256"]


class WebhookCreate(_Doc):
    """``POST /hooks/{slug}`` will turn a request into the event ``template`` renders."""

    name: Name
    template: Template = Field(description="Jinja rendering the event as JSON text")
    description: Text = ""
    auth: WebhookAuth = Field(
        default="secret",
        description="secret: the request carries the secret (X-Flowyard-Webhook-Secret or "
        "a bearer token); hmac-sha256: it is signed with it (X-Flowyard-Signature: sha256=…)",
    )
    enabled: Bool = True


class WebhookUpdate(_Doc):
    template: Template | None = None
    description: Text | None = None
    enabled: Bool | None = None


class Webhook(_Doc):
    """A webhook as the API shows it: never its secret."""

    id: str
    name: str
    path: str = Field(description="where it listens: /hooks/{slug}, under the API's URL")
    description: str
    template: str
    auth: str
    enabled: bool
    created: datetime
    updated: datetime


class WebhookCreated(Webhook):
    secret: str = Field(description="the secret, shown this once")


# -- tag concurrency limits ---------------------------------------------------------------


class ConcurrencyLimitCreate(_Doc):
    """At most ``limit`` task runs tagged ``tag`` at once, everywhere (0 blocks them all).

    ``slot_decay_per_second`` lets ``rate_limit(tag)`` use it: at most ``limit`` callers at
    once, then that many a second. An inactive limit limits nothing.
    """

    tag: Label
    limit: Count
    slot_decay_per_second: Float | None = Field(default=None, gt=0, le=1_000_000)
    active: Bool = True


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

    tags: Tags
    holder: Label
    lease_seconds: Float = Field(
        default=60.0,
        gt=0,
        le=MAX_SLOT_LEASE_SECONDS,
        description="How long the slots stay taken unless renewed (at most 300 s).",
    )
    occupy: StrictInt = Field(default=1, ge=1, le=1000)
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

    owner: Annotated[Label, Field(max_length=300)] | None = None
    holder: Label | None = None

    @model_validator(mode="after")
    def _holder_needs_owner(self) -> SlotsReset:
        if self.holder is not None and self.owner is None:
            raise ValueError("a holder is named within its owner: give the owner too")
        return self


class SlotsFreed(_Doc):
    freed: int = Field(description="how many slots were freed")
