"""``pause_flow_run``: a flow run waits, in its process, until someone resumes it.

The run moves Running → Paused (its claim token says it is the run's own engine), then
polls its state: ``flowyard flow-run resume ID`` (or ``resume_flow_run``) moves it back
to Running and the flow carries on; a cancellation ends it Cancelled; ``timeout`` seconds
without either fail it with ``FlowPauseTimeout``. The process stays alive and keeps
heartbeating, so the run keeps its claim and its concurrency slots while it waits.

As in Prefect, each pause has a key (by default its position among the pauses of the
attempt: "1", "2", …): a flow retry that reaches a pause it already went through does not
pause again.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from flowyard.errors import FlowPauseTimeout, FlowyardError
from flowyard.sdk.context import FlowRunContext, get_flow_run_context
from flowyard.sdk.logs import get_run_logger
from flowyard.sdk.termination import RunCancelled
from flowyard.states import Paused, Running, StateType

FIRST_POLL_SECONDS = 0.2
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
    Needs an API: with none, nothing could resume the run.
    """
    if wait_for_input is not None:
        raise NotImplementedError("pause_flow_run(wait_for_input=...) is not supported yet")
    if timeout < 0:
        raise ValueError(f"'timeout' must be a non-negative number, got {timeout}")
    context = get_flow_run_context()
    if context is None:
        raise RuntimeError("Flow runs can only be paused from within a flow run.")
    if _in_event_loop():
        return asyncio.to_thread(_pause, context, timeout, poll_interval, key)
    _pause(context, timeout, poll_interval, key)
    return None


def resume_flow_run(flow_run_id: str, run_input: dict[str, Any] | None = None) -> None:
    """Resume a paused flow run (through the API named by ``FLOWYARD_API_URL``)."""
    from flowyard.sdk.api import required_client

    if run_input is not None:
        raise NotImplementedError("resume_flow_run(run_input=...) is not supported yet")
    required_client("resuming a flow run needs").resume_flow_run(str(flow_run_id))


def _pause(context: FlowRunContext, timeout: float, poll_interval: float, key: str | None) -> None:
    recorder = context.recorder
    if recorder is None:
        raise RuntimeError(
            "pausing a flow run needs a Flowyard API (FLOWYARD_API_URL): nothing could resume "
            "it otherwise"
        )
    attempt = context.run_count
    context.pause_calls[attempt] = context.pause_calls.get(attempt, 0) + 1
    key = key or str(context.pause_calls[attempt])
    logger = get_run_logger()
    if key in context.paused_keys:
        logger.info("Not pausing again: pause %r was passed in an earlier attempt", key)
        return
    answer = recorder.propose(Paused(message=f"paused (key {key!r}) for up to {timeout:g} s"))
    if answer is None or not answer.accepted:
        why = "the API could not be reached" if answer is None else answer.reason
        raise RuntimeError(f"Flow run cannot be paused: {why}")
    context.paused_keys.add(key)
    logger.info("Pausing flow, execution will continue when this flow run is resumed.")
    if _wait_for_resume(context, timeout, poll_interval):
        logger.info("Resuming flow run execution!")
        return
    resumed = recorder.propose(Running(message="the pause timed out"))  # leave Paused to fail
    if resumed is not None and not resumed.accepted:
        if resumed.state.type is StateType.RUNNING:  # resumed in the meantime
            logger.info("Resuming flow run execution!")
            return
        if resumed.state.type in STOPPING:
            raise _cancelled()
    raise FlowPauseTimeout("Flow run was paused and never resumed.")


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
