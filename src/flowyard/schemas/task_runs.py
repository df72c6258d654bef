"""Task runs, as the engine records them, and background task runs with their task workers."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    SerializerFunctionWrapHandler,
    StrictInt,
    model_serializer,
)

from flowyard.schemas.base import (
    MAX_LIST_ITEMS,
    MAX_STATE_NAME_LENGTH,
    Count,
    Doc,
    Float,
    Id,
    JsonObject,
    Label,
    LongLabel,
    StoredJson,
    Tags,
    Text,
    Time,
)
from flowyard.states import StateType


class TaskRunInput(Doc):
    """An upstream run whose result (or future, or state) fed a task run's input."""

    input_type: Literal["task_run"] = "task_run"
    id: Label


MAX_RESULT_JSON = 4096  # characters of a JSON result recorded with its reference


def _json_text(text: str) -> str:
    """JSON text that every store keeps (no NUL, no lone surrogates)."""
    if any(ch == "\x00" or "\ud800" <= ch <= "\udfff" for ch in text):
        raise ValueError("holds a character no store keeps (NUL or a lone surrogate)")
    json.loads(text)  # a ValueError is a 422 naming the field
    return text


ResultJson = Annotated[str, Field(max_length=MAX_RESULT_JSON), AfterValidator(_json_text)]


class ResultRef(Doc):
    """Where a persisted result lives: enough for another process to read it back."""

    storage: JsonObject = Field(
        description="how to rebuild the storage: its block type (`type`) and fields"
    )
    key: LongLabel = Field(description="the record's key in that storage")
    location: LongLabel = Field(description="a path or URL, for people")
    serializer: Label
    value_json: ResultJson | None = Field(
        default=None,
        description="the result as JSON text, for people (the UI shows it), when it was "
        f"serialized as JSON in at most {MAX_RESULT_JSON} characters; readers load the "
        "result from its storage",
    )

    @model_serializer(mode="wrap")
    def _without_absent_value(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        """No ``value_json: null``: a reference without one is stored and sent as before.
        (Unannotated, so that the JSON schema stays the model's.)"""
        data: dict[str, Any] = handler(self)
        if data.get("value_json") is None:
            data.pop("value_json", None)
        return data


TaskInputs = Annotated[dict[str, list[TaskRunInput]], Field(max_length=MAX_LIST_ITEMS)]


class TaskRunCreate(Doc):
    id: Id | None = None
    flow_run_id: Id
    name: Label
    task_key: Label
    state: StateType = StateType.RUNNING
    parameters: JsonObject = Field(default_factory=dict)
    tags: Tags = Field(default_factory=list)
    task_version: Label | None = None
    task_inputs: TaskInputs = Field(default_factory=dict)


class TaskRunUpdate(Doc):
    state: StateType
    message: Text | None = None
    state_name: Annotated[Label, Field(max_length=MAX_STATE_NAME_LENGTH)] | None = None
    run_count: Count | None = None
    cache_key: LongLabel | None = None
    result: ResultRef | None = None


class _TaskRunDetails(Doc):
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


class TaskRunUpsertResult(Doc):
    upserted: int
    unknown_flow_runs: list[str] = Field(
        default_factory=list, description="records of these flow runs were not stored"
    )


class TaskRun(_TaskRunDetails):
    id: str
    flow_run_id: str | None = Field(description="None for a background task run (Task.delay)")
    caller_flow_run_id: str | None = Field(
        default=None, description="a background task run's: the flow run that made it"
    )
    name: str
    task_key: str
    state_type: StateType
    message: str | None
    start_time: datetime | None
    end_time: datetime | None
    created: datetime


class BackgroundTaskRunCreate(Doc):
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
    caller_flow_run_id: Id | None = Field(
        default=None, description="the flow run making it (its logs go to that run)"
    )


class TaskWorkerClaim(Doc):
    """Claim up to ``max_runs`` Scheduled background runs of these tasks, waiting for one."""

    task_keys: list[Label] = Field(min_length=1, max_length=MAX_LIST_ITEMS)
    worker_name: Label
    max_runs: StrictInt = Field(1, ge=1, le=1000)
    wait: Float = Field(0.0, ge=0.0, le=60.0, description="seconds to wait for a run")


class ClaimedTaskRun(Doc):
    run: TaskRun
    token: str = Field(description="the claim; every later report of the run must carry it")
    parameters_ref: ResultRef | None = None


class TaskWorkerClaimed(Doc):
    runs: list[ClaimedTaskRun] = Field(default_factory=list)


class HeldTaskRun(Doc):
    id: Label
    token: LongLabel


class TaskWorkerHeartbeat(Doc):
    worker_name: Label
    runs: list[HeldTaskRun] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)


class TaskWorkerHeartbeatAck(Doc):
    held: list[str] = Field(description="the runs whose claim this worker still holds")


class BackgroundStateReport(TaskRunUpdate):
    """A task worker's report of a claimed run; refused (409) when its claim was taken back."""

    token: LongLabel


TaskRunBatch = Annotated[list[TaskRunRecord], Field(max_length=MAX_LIST_ITEMS)]
"""The body of ``POST /api/task_runs/bulk``."""
