"""Running one flow run inside its infrastructure.

1. read the run; move it to Running with the claim token (refused → exit, flow not run);
2. read its deployment, load the entrypoint, validate the parameters, run the flow with
   task runs recorded and logs shipped;
3. flush the logs, then report the flow's final state (Completed, Failed or Crashed).

Exit codes: ``0`` once a terminal state was reported (or Running was refused),
``1`` when the API could not be read or a state could not be reported — the worker
then marks the run Crashed.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Iterator
from pathlib import Path

import structlog

from flowyard.client import FlowyardClient
from flowyard.client.log_shipper import LogShipper
from flowyard.errors import EntrypointError, FlowyardError
from flowyard.schemas import Deployment, FlowRun, StateChange
from flowyard.sdk import ApiReporter, FlowRunContext, run_flow, validate_parameters
from flowyard.sdk.context import flow_run_scope
from flowyard.sdk.logs import get_run_logger
from flowyard.settings import Settings
from flowyard.states import StateType

from .entrypoint import load_flow
from .heartbeat import RunHeartbeat
from .pull_steps import pulled_code

log = structlog.get_logger()

EXIT_OK = 0
EXIT_REPORT_FAILED = 1


def run_flow_run(
    flow_run_id: str,
    settings: Settings,
    *,
    token: str | None,
    log_flush_timeout: float = 30.0,
) -> int:
    """Run one flow run to a terminal state; returns the process exit code."""
    log_ = log.bind(run_id=flow_run_id)
    with FlowyardClient.from_settings(settings) as client:
        try:
            run = client.read_flow_run(flow_run_id)
            result = client.set_flow_run_state(
                run.id, StateChange(type=StateType.RUNNING, token=token)
            )
        except FlowyardError as exc:
            log_.error("flow_run_start_failed", error=str(exc))
            return EXIT_REPORT_FAILED
        if not result.accepted:
            log_.warning("flow_run_refused", reason=result.reason, state=result.state.type)
            return EXIT_OK
        log_.info("flow_run_started", flow=run.flow_name)
        heartbeat = None
        if token is not None:
            interval = settings.run_heartbeat_seconds
            heartbeat = RunHeartbeat(client, run.id, token, interval).start()
        try:
            outcome = _execute(client, run, log_flush_timeout)
        finally:
            if heartbeat is not None:
                heartbeat.stop()
        return _report(client, run.id, outcome.model_copy(update={"token": token}))


def _execute(client: FlowyardClient, run: FlowRun, log_flush_timeout: float) -> StateChange:
    """Run the flow with logs shipped; the terminal state to report (logs flushed)."""
    shipper = LogShipper(client).start()
    context = FlowRunContext(
        flow_run_id=run.id,
        flow_run_name=run.name,
        reporter=ApiReporter(client),
        client=client,
        shipper=shipper,
        scheduled_start_time=run.scheduled_time,
    )
    try:
        return _run_flow(client, run, context)
    finally:
        if not shipper.close(log_flush_timeout):
            log.error("logs_not_delivered", run_id=run.id, pending=shipper.pending)


def _run_flow(client: FlowyardClient, run: FlowRun, context: FlowRunContext) -> StateChange:
    try:
        deployment = _read_deployment(client, run)
        start_dir = Path(deployment.path) if deployment.path else None
        with (
            pulled_code(deployment.pull_steps, start_dir, client) as base_dir,
            _working_dir(base_dir),
        ):
            flow = load_flow(deployment.entrypoint, base_dir)
            parameters = validate_parameters(flow.fn, {**deployment.parameters, **run.parameters})
            context.deployment_id, context.deployment_name = deployment.id, deployment.name
            context.deployment_parameters = dict(deployment.parameters)
            state = run_flow(flow, context, parameters)
    except Exception as exc:
        message = failure_message(exc)
        _log_failure(context, message, exc)
        return StateChange(type=StateType.FAILED, message=message)
    if state.is_completed():
        return StateChange(type=StateType.COMPLETED)
    log.error("flow_run_failed", run_id=context.flow_run_id, error=state.message)
    return StateChange(type=state.type, message=(state.message or state.name)[:500])


def _read_deployment(client: FlowyardClient, run: FlowRun) -> Deployment:
    if run.deployment_id is None:
        raise EntrypointError("the flow run has no deployment, so no entrypoint to run")
    return client.read_deployment(run.deployment_id)


@contextlib.contextmanager
def _working_dir(path: Path | None) -> Iterator[None]:
    """Run in the deployment's directory (and come back, for in-process callers)."""
    if path is None:
        yield
        return
    if not path.is_dir():
        raise EntrypointError(f"the deployment's path {str(path)!r} is not a directory")
    with contextlib.chdir(path):
        yield


def failure_message(exc: BaseException) -> str:
    """The one-line message of a Failed state."""
    if isinstance(exc, FlowyardError):
        text = str(exc)
    else:
        text = f"Flow run encountered an exception {type(exc).__name__}: {exc}"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first[:500]


def _log_failure(context: FlowRunContext, message: str, exc: BaseException) -> None:
    """The message and the whole traceback (causes included) into the run's logs."""
    trace = "".join(traceback.format_exception(exc)).rstrip()
    with flow_run_scope(context):
        get_run_logger().error("Finished in state Failed(%r)\n%s", message, trace)
    log.error("flow_run_failed", run_id=context.flow_run_id, error=message)


def _report(client: FlowyardClient, run_id: str, change: StateChange) -> int:
    log_ = log.bind(run_id=run_id, state=change.type)
    try:
        result = client.set_flow_run_state(run_id, change)
    except FlowyardError as exc:
        log_.error("state_report_failed", error=str(exc))
        return EXIT_REPORT_FAILED
    if result.accepted:
        log_.info("flow_run_finished")
    else:
        log_.warning("state_report_refused", reason=result.reason, now=result.state.type)
    return EXIT_OK
