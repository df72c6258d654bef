"""``pause_flow_run`` and ``suspend_flow_run``: a flow run waits until someone resumes it.

Pausing, the run moves Running → Paused (its claim token says it is the run's own engine),
then polls its state: ``flowyard flow-run resume ID`` (or ``resume_flow_run``) moves it
back to Running and the flow carries on; a cancellation ends it Cancelled; ``timeout``
seconds without either fail it with ``FlowPauseTimeout``. The process stays alive and
keeps heartbeating, so the run keeps its claim and its concurrency slots while it waits.

Suspending, the run moves Running → Paused (named ``Suspended``) and its process exits
(``Pause`` is raised through the flow): it holds no infrastructure, claim or slot. A
resume schedules it again; a worker starts it from the top, task results come back from
their persisted results and caches, and the suspend it went through lets it carry on.

As in Prefect, each pause has a key (by default its position among the pauses of the
attempt: "1", "2", …) that the API remembers: a flow that reaches a pause it already
went through (a retry, a resumed suspension) does not pause again. With
``wait_for_input=T`` the flow sends T's JSON schema with its pause; the API takes only
input that satisfies it, and the call returns it as a T.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from flowyard.errors import FlowPauseTimeout, FlowyardError, Pause
from flowyard.sdk.context import FlowRunContext, get_flow_run_context, get_task_run_context
from flowyard.sdk.logs import get_run_logger
from flowyard.sdk.termination import RunCancelled
from flowyard.states import Paused, Running, State, StateType, Suspended

FIRST_POLL_SECONDS = 0.2
SUSPENDING = "Suspending flow run, execution will be rescheduled when this flow run is resumed."
STOPPING = (StateType.CANCELLING, StateType.CANCELLED)


def pause_flow_run(
    wait_for_input: Any = None,
    timeout: float = 3600,
    poll_interval: float = 10,
    key: str | None = None,
) -> Any:
    """Pause the current flow run until it is resumed (``flowyard flow-run resume ID``).

    Blocks this flow's code (task runs already submitted go on); in an ``async`` flow,
    ``await`` it. Raises ``FlowPauseTimeout`` when not resumed within ``timeout`` seconds.
    With ``wait_for_input=T`` (a ``RunInput`` or pydantic model, or a type pydantic
    knows), returns the T the run was resumed with. Needs an API: with none, nothing
    could resume the run.
    """
    if timeout < 0:
        raise ValueError(f"'timeout' must be a non-negative number, got {timeout}")
    context = get_flow_run_context()
    if context is None:
        raise RuntimeError("Flow runs can only be paused from within a flow run.")
    if _in_event_loop():
        return asyncio.to_thread(_pause, context, wait_for_input, timeout, poll_interval, key)
    return _pause(context, wait_for_input, timeout, poll_interval, key)


def suspend_flow_run(
    wait_for_input: Any = None,
    flow_run_id: str | None = None,
    timeout: float | None = None,
    key: str | None = None,
) -> Any:
    """Suspend the current flow run: it stops here and its process exits; once resumed
    (``flowyard flow-run resume ID``), a worker starts it again from the top, and this
    call returns (with ``wait_for_input=T``, the T it was resumed with).

    Needs a deployment (a worker must start the run again) and a flow run that is not a
    subflow. ``timeout``: seconds after which the run can no longer be resumed (it is
    Failed then). Persist the results of tasks that must not run twice.

    With ``flow_run_id``, suspends that run from outside it (from a script, or another
    flow) and returns None: its process leaves at its flow's next task call. Needs an
    API key that may change that run (an admin's; a run's own token only for itself).
    """
    if timeout is not None and timeout < 0:
        raise ValueError(f"'timeout' must be a non-negative number, got {timeout}")
    if flow_run_id is not None:
        return _suspend_other(str(flow_run_id), wait_for_input, timeout, key)
    if get_task_run_context() is not None:
        raise RuntimeError("Cannot suspend task runs.")
    context = get_flow_run_context()
    if context is None:
        raise RuntimeError("Flow runs can only be suspended from within a flow run.")
    if _in_event_loop():
        return asyncio.to_thread(_suspend, context, wait_for_input, timeout, key)
    return _suspend(context, wait_for_input, timeout, key)


def resume_flow_run(flow_run_id: str, run_input: dict[str, Any] | None = None) -> None:
    """Resume a paused or suspended flow run (through the API named by
    ``FLOWYARD_API_URL``); ``run_input`` answers a run waiting for input."""
    from flowyard.sdk.api import required_client

    client = required_client("resuming a flow run needs")
    client.resume_flow_run(str(flow_run_id), run_input=run_input)


def _pause(
    context: FlowRunContext,
    wanted: Any,
    timeout: float,
    poll_interval: float,
    key: str | None,
) -> Any:
    from flowyard.schemas.pauses import ALREADY_FIRED, PauseRequest
    from flowyard.sdk.run_input import input_model

    recorder = _recorder(context, "pausing")
    key = _key(context, key)
    logger = get_run_logger()
    if key in context.paused_keys:
        logger.info("Not pausing again: pause %r was passed in an earlier attempt", key)
        return _input(context, wanted, key)
    model = input_model(wanted) if wanted is not None else None
    request = PauseRequest(
        key=key, timeout_seconds=timeout, **_wanted(model)
    )  # fmt: skip
    answer = recorder.propose(
        Paused(message=f"paused (key {key!r}) for up to {timeout:g} s"), request
    )
    if answer is None:
        raise RuntimeError("Flow run cannot be paused: the API could not be reached")
    if not answer.accepted:
        if answer.reason == ALREADY_FIRED.format(verb="pause"):
            return _input(context, wanted, key)
        raise RuntimeError(f"Flow run cannot be paused: {answer.reason}")
    context.paused_keys.add(key)
    logger.info("Pausing flow, execution will continue when this flow run is resumed.")
    if _wait_for_resume(context, timeout, poll_interval):
        logger.info("Resuming flow run execution!")
        return _input(context, wanted, key)
    resumed = recorder.propose(Running(message="the pause timed out"))  # leave Paused to fail
    if resumed is not None and not resumed.accepted:
        if resumed.state.type is StateType.RUNNING:  # resumed in the meantime
            logger.info("Resuming flow run execution!")
            return _input(context, wanted, key)
        if resumed.state.type in STOPPING:
            raise _cancelled()
    raise FlowPauseTimeout("Flow run was paused and never resumed.")


def _suspend(context: FlowRunContext, wanted: Any, timeout: float | None, key: str | None) -> Any:
    from flowyard.schemas.pauses import ALREADY_FIRED, PauseRequest
    from flowyard.sdk.run_input import input_model

    recorder = _recorder(context, "suspending")
    key = _key(context, key)
    model = input_model(wanted) if wanted is not None else None
    request = PauseRequest(key=key, reschedule=True, timeout_seconds=timeout, **_wanted(model))
    suspended = Suspended(message=f"suspended (key {key!r})")
    answer = recorder.propose(suspended, request)
    if answer is None:
        raise RuntimeError("Flow run cannot be suspended: the API could not be reached")
    if not answer.accepted:
        if answer.reason == ALREADY_FIRED.format(verb="suspend"):  # resumed: carry on
            return _input(context, wanted, key)
        raise RuntimeError(f"Flow run cannot be suspended: {answer.reason}")
    get_run_logger().info(SUSPENDING)
    raise Pause(state=suspended)


def _suspend_other(flow_run_id: str, wanted: Any, timeout: float | None, key: str | None) -> None:
    """As Prefect's: a random key (the other run's own pause counter is not ours to
    advance); a refusal raises, except a key that fired before (the run went through it)."""
    from flowyard.schemas.pauses import ALREADY_FIRED, SuspendRequest
    from flowyard.sdk.api import required_client
    from flowyard.sdk.run_input import input_model

    model = input_model(wanted) if wanted is not None else None
    request = SuspendRequest(
        key=key or str(uuid.uuid4()), timeout_seconds=timeout, **_wanted(model)
    )
    client = required_client("suspending a flow run needs")
    answer = client.suspend_flow_run(flow_run_id, request)
    if not answer.accepted and answer.reason != ALREADY_FIRED.format(verb="suspend"):
        raise RuntimeError(f"Flow run cannot be suspended: {answer.reason}")


# Runs of this process suspended from outside (by the id of the outermost run in it): the heartbeat
# learns of it, and the flow leaves at its next task call (``leave_if_suspended``).
_suspended_from_outside: dict[str, State[Any]] = {}


def suspended_from_outside(flow_run_id: str) -> None:
    """Called by the engine's heartbeat: the API says ``flow_run_id`` was suspended."""
    _suspended_from_outside.setdefault(flow_run_id, Suspended(message="suspended from outside"))


def leave_if_suspended() -> None:
    """Raise ``Pause`` in a flow whose run was suspended from outside (as Prefect's
    ``raise_if_flow_run_suspension_requested``): the process exits and the run, Paused in
    the API already, starts again from the top once resumed. Task runs under way finish."""
    context = get_flow_run_context()
    if context is None or get_task_run_context() is not None:
        return  # inside a task run: its flow leaves at its own next call
    state = _suspended_from_outside.get(context.local_root_flow_run_id or context.flow_run_id)
    if state is not None:
        get_run_logger().info(SUSPENDING)
        raise Pause(state=state)


def _recorder(context: FlowRunContext, doing: str) -> Any:
    if context.recorder is None:
        raise RuntimeError(
            f"{doing} a flow run needs a Flowyard API (FLOWYARD_API_URL): nothing could "
            "resume it otherwise"
        )
    return context.recorder


def _key(context: FlowRunContext, key: str | None) -> str:
    attempt = context.run_count
    context.pause_calls[attempt] = context.pause_calls.get(attempt, 0) + 1
    return key or str(context.pause_calls[attempt])


def _wanted(model: Any) -> dict[str, Any]:
    """A pause's ``input_schema`` and ``description`` (what ``RunInput.with_initial_data(
    description=...)`` says the input is for) for ``model`` (None: no input wanted)."""
    from flowyard.sdk.run_input import input_schema

    if model is None:
        return {"input_schema": None, "description": None}
    found = getattr(model, "_description_text", None)
    described = found if isinstance(found, str) else None
    return {"input_schema": input_schema(model), "description": described}


def _input(context: FlowRunContext, wanted: Any, key: str) -> Any:
    """What the run was resumed with, as a ``wanted`` (None when it wants nothing)."""
    if wanted is None:
        return None
    from flowyard.sdk.run_input import input_model, loaded

    assert context.client is not None
    model = input_model(wanted)
    given = context.client.read_run_input(context.flow_run_id, key).run_input
    if given is None:
        raise RuntimeError(f"Flow run was resumed without the input pause {key!r} waits for")
    return loaded(model, given)


def _wait_for_resume(context: FlowRunContext, timeout: float, poll_interval: float) -> bool:
    """True once the run is Running again; False after ``timeout`` seconds. A cancelled
    run raises ``RunCancelled``, which ends it Cancelled."""
    assert context.client is not None
    deadline = time.monotonic() + timeout
    delay = min(FIRST_POLL_SECONDS, poll_interval)
    while True:
        try:
            state = context.client.read_flow_run(context.flow_run_id).state.type
        except FlowyardError as exc:
            get_run_logger().warning("Could not read the flow run's state: %s", exc)
            state = StateType.PAUSED
        if state is StateType.RUNNING:
            return True
        if state in STOPPING:
            raise _cancelled()
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(delay, left))
        delay = min(delay * 2, poll_interval)


def _cancelled() -> RunCancelled:
    return RunCancelled("cancelled by request while paused")


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
