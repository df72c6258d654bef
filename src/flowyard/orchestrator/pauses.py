"""Pauses, suspensions and run input, as Prefect's orchestration rules have them.

A run keeps its pauses in one JSON column (``FlowRun.pauses``): the keys that fired,
the pause under way, and the input each pause was resumed with. A pause whose key
fired before is refused and the run carries on (a suspended run, started again from
the top, passes the suspend it went through); a suspension needs a deployment (a
worker must start the run again) and a run that is not a subflow.

A suspended run lets go of its claim: its process exits, its lease and slots go
back to the pool. Resuming it schedules it again (``Resuming``); resuming a pause
moves it back to Running for its waiting process. A pause waiting for input is
resumed only with input that satisfies the schema its flow sent.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
from sqlalchemy.orm import Session

from flowyard import schemas as s
from flowyard.errors import Conflict, InvalidInput, NotFound
from flowyard.orchestrator import runs
from flowyard.orchestrator.transitions import Decision
from flowyard.schemas.pauses import ALREADY_FIRED
from flowyard.states import SUSPENDED, StateType
from flowyard.store import models as m

RESUMING = "Resuming"
MAX_PAUSES = 1000  # keys a run remembers: a flow pausing more often is refused


def is_suspended(run: m.FlowRun) -> bool:
    """A suspended run: Paused with no process behind it (nor a claim)."""
    return run.state_type is StateType.PAUSED and run.state_name == SUSPENDED


def verb(request: s.PauseRequest) -> str:
    return "suspend" if request.reschedule else "pause"


def refusal(run: m.FlowRun, request: s.PauseRequest) -> Decision | None:
    """Why this Running → Paused proposal is refused (None: it may go ahead)."""
    word = verb(request)
    if run.state_type is not StateType.RUNNING:
        return Decision(False, f"Cannot {word} flows that are not currently running.")
    keys = _record(run)["keys"]
    if request.key in keys:
        return Decision(False, ALREADY_FIRED.format(verb=word))
    if len(keys) >= MAX_PAUSES:
        return Decision(False, f"Cannot {word} a flow run more than {MAX_PAUSES} times.")
    if request.reschedule and run.parent_task_run_id is not None:
        return Decision(False, f"Cannot {word} subflows.")
    if request.reschedule and run.deployment_id is None:
        return Decision(False, f"Cannot {word} flows without a deployment.")
    return None


def pause(
    session: Session, run: m.FlowRun, request: s.StateChange, now: datetime
) -> tuple[Decision, runs.QueueEffect | None]:
    """Apply a Running → Paused proposal that carries its pause's details."""
    assert request.pause is not None
    return _paused(session, run, request.pause, now, request.message, token=request.token)


def suspend_from_outside(
    session: Session, run: m.FlowRun, request: s.SuspendRequest, now: datetime
) -> tuple[Decision, runs.QueueEffect | None]:
    """Suspend a Running run for a caller outside its process (who holds no claim token:
    the route's authority decided who may). The run's engine learns of it from its next
    heartbeat and leaves at its flow's next task call, or when the flow ends."""
    pause_ = s.PauseRequest(**request.model_dump(), reschedule=True)
    message = f"suspended from outside the run (key {request.key!r})"
    return _paused(session, run, pause_, now, message, outside=True)


def _paused(
    session: Session,
    run: m.FlowRun,
    request: s.PauseRequest,
    now: datetime,
    message: str | None,
    *,
    token: str | None = None,
    outside: bool = False,
) -> tuple[Decision, runs.QueueEffect | None]:
    refused = refusal(run, request)
    if refused is not None:
        return refused, None
    suspending = request.reschedule
    decision, effect = runs.set_state(
        session, run, StateType.PAUSED, now=now, message=message, token=token,
        name=SUSPENDED if suspending else None, force=outside,  # refusal() checked the move
    )  # fmt: skip
    if not decision.accepted:
        return decision, effect
    record = _record(run)
    timeout = request.timeout_seconds
    record["keys"].append(request.key)
    record["current"] = {
        "key": request.key,
        "reschedule": suspending,
        "timeout": (now + timedelta(seconds=timeout)).isoformat() if timeout else None,
        "input_schema": request.input_schema,
        "description": request.description,
    }
    run.pauses = record
    if suspending:  # the process exits: its claim, lease and slots go back
        run.claim_token = None
        effect = runs.released(run)
    return decision, effect


def resume(
    session: Session, run: m.FlowRun, run_input: dict[str, Any] | None, now: datetime
) -> tuple[runs.QueueEffect | None, str | None]:
    """Resume a Paused run: Scheduled again when suspended, Running when its process waits.

    A run whose pause timed out is Failed instead; the second value says why it did not
    resume (for the caller to raise once that is committed)."""
    if run.state_type is not StateType.PAUSED:
        raise Conflict(f"flow run {run.id} is not paused: it is {run.state_name}")
    record = _record(run)
    current = record.get("current") or {}
    if timed_out(run, now):
        word = "suspend" if current.get("reschedule") else "pause"
        return fail_timed_out(session, run, now), (
            f"The flow run {word} has timed out and can no longer resume."
        )
    checked = _checked_input(run, current, run_input)
    if checked is not None:
        record["inputs"][current["key"]] = checked
        run.pauses = record
    if current.get("reschedule"):
        run.scheduled_time = now
        _, effect = runs.set_state(
            session, run, StateType.SCHEDULED, now=now, force=True, name=RESUMING,
            message="resumed",
        )  # fmt: skip
        return effect, None
    _, effect = runs.set_state(session, run, StateType.RUNNING, now=now, message="resumed")
    return effect, None


def timeout_of(run: m.FlowRun) -> datetime | None:
    """When the run's current pause stops being resumable (None: never)."""
    return timeout_in(run.pauses)


def timeout_in(record: dict[str, Any] | None) -> datetime | None:
    """The current pause's timeout in a run's ``pauses`` column (read without the ORM)."""
    timeout = ((record or {}).get("current") or {}).get("timeout")
    return datetime.fromisoformat(timeout).astimezone(UTC) if timeout else None


def timed_out(run: m.FlowRun, now: datetime) -> bool:
    timeout = timeout_of(run)
    return run.state_type is StateType.PAUSED and timeout is not None and timeout < now


def fail_timed_out(session: Session, run: m.FlowRun, now: datetime) -> runs.QueueEffect | None:
    """Fail a run whose pause timed out, saying whether it was paused or suspended."""
    name = "suspended" if is_suspended(run) else "paused"
    _, effect = runs.set_state(
        session, run, StateType.FAILED, now=now, force=True,
        message=f"The flow was {name} and never resumed.",
    )  # fmt: skip
    return effect


def current(run: m.FlowRun) -> s.RunInput | None:
    """The pause a Paused run is in (None: the run is not paused)."""
    key = (_record(run).get("current") or {}).get("key")
    if run.state_type is not StateType.PAUSED or not key:
        return None
    return run_input(run, key)


def run_input(run: m.FlowRun, key: str) -> s.RunInput:
    """The pause ``key`` of ``run``, and the input it was resumed with."""
    record = _record(run)
    current = record.get("current") or {}
    if key not in record["keys"]:
        raise NotFound(f"flow run {run.id} has no pause {key!r}")
    mine: dict[str, Any] = current if current.get("key") == key else {}
    return s.RunInput(
        key=key,
        reschedule=bool(mine.get("reschedule")),
        timeout=timeout_of(run) if mine else None,
        input_schema=mine.get("input_schema"),
        description=mine.get("description"),
        run_input=record["inputs"].get(key),
    )


def _checked_input(
    run: m.FlowRun, current: dict[str, Any], given: dict[str, Any] | None
) -> dict[str, Any] | None:
    schema = current.get("input_schema")
    if schema is None:
        if given is not None:
            raise InvalidInput(f"run_input: flow run {run.id} is not waiting for input")
        return None
    value = given or {}
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as exc:
        raise InvalidInput(f"run_input: Reason: {exc.message}") from None
    except (jsonschema.SchemaError, jsonschema.exceptions.RefResolutionError, RecursionError):
        raise InvalidInput("run_input: the run's input schema cannot be checked") from None
    return value


def _record(run: m.FlowRun) -> dict[str, Any]:
    record = dict(run.pauses or {})
    record["keys"] = list(record.get("keys") or [])
    record["inputs"] = dict(record.get("inputs") or {})
    return record
