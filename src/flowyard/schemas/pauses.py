"""Pauses and suspensions of flow runs, and the typed input a person resumes them with."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StrictInt

from flowyard.schemas.base import Bool, Doc, Float, JsonObject, Label

MAX_RUN_INPUT_BYTES = 64 * 1024
"""The largest input schema, and the largest input, one pause takes (as JSON)."""

MAX_DESCRIPTION_CHARS = 10_000
"""The longest description (markdown, shown above the input form) one pause takes."""

ALREADY_FIRED = "This {verb} has already fired."
"""The API's reason for refusing a pause whose key fired before: the run carries on."""


def _small(value: dict[str, Any]) -> dict[str, Any]:
    size = len(json.dumps(value, separators=(",", ":")).encode())
    if size > MAX_RUN_INPUT_BYTES:
        raise ValueError(f"is {size} bytes of JSON; at most {MAX_RUN_INPUT_BYTES} are taken")
    return value


RunInputJson = Annotated[JsonObject, AfterValidator(_small)]


class SuspendRequest(Doc):
    """``POST /api/flow_runs/{id}/suspend``: suspend a Running run from outside it
    (``suspend_flow_run(flow_run_id=...)``)."""

    key: Label
    timeout_seconds: Annotated[Float, Field(ge=0, le=10 * 365 * 86400)] | None = None
    input_schema: RunInputJson | None = Field(
        default=None, description="the JSON schema a resume's run_input must satisfy"
    )
    description: Annotated[str, Field(max_length=MAX_DESCRIPTION_CHARS)] | None = Field(
        default=None, description="what the input is for (markdown: the UI shows it)"
    )


class PauseRequest(SuspendRequest):
    """What a Running → Paused proposal says about its pause (``pause_flow_run`` and
    ``suspend_flow_run`` send it with the state)."""

    reschedule: Bool = Field(
        default=False,
        description="a suspension: the run's process exits, and a resume schedules it again",
    )


class ResumeRequest(Doc):
    """``POST /api/flow_runs/{id}/resume``'s optional body."""

    run_input: RunInputJson | None = Field(
        default=None, description="for a run waiting for input: checked against its schema"
    )


class RunInput(Doc):
    """One pause of a flow run, and the input it was resumed with (None: not yet)."""

    key: str
    reschedule: bool
    timeout: datetime | None = None
    input_schema: dict[str, Any] | None = None
    description: str | None = None
    run_input: dict[str, Any] | None = None


MAX_INPUTS_PER_RUN = 1000
"""Messages one flow run keeps (``send_input``); a run with as many refuses more."""


class FlowRunInputCreate(Doc):
    """``POST /api/flow_runs/{id}/messages``: a message for the run (``send_input``)."""

    key: Label
    value: RunInputJson
    sender: Label | None = Field(
        default=None, description="who sent it: 'flowyard.flow-run.<id>' from a flow run"
    )


class FlowRunInputFilter(Doc):
    """``POST /api/flow_runs/{id}/messages/filter``: the run's messages whose key starts with
    ``prefix``, oldest first, but those already read (``exclude_keys``)."""

    prefix: Label
    limit: Annotated[StrictInt, Field(ge=1, le=100)] = 1
    exclude_keys: Annotated[list[Label], Field(max_length=MAX_INPUTS_PER_RUN)] = []


class FlowRunInput(Doc):
    """One message sent to a flow run."""

    flow_run_id: str
    key: str
    value: dict[str, Any]
    sender: str | None = None
    created: datetime
