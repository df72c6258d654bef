"""Running one flow run inside its infrastructure.

1. move the run to Running with the claim token (refused → exit, flow not run); the
   answer holds the run and its deployment;
2. load the deployment's entrypoint, validate the parameters, run the flow with
   task runs recorded and logs shipped; a flow's retries wait here, the run AwaitingRetry;
3. flush the logs, then report the flow's final state (Completed, Failed or Crashed);
   a suspended flow (``suspend_flow_run``) is Paused in the API already: the process
   exits, and a resume schedules the run again.
   When the API is away at that point, the engine keeps trying, for up to
   ``final_report_seconds``, still heartbeating: a run that ended is never taken for
   crashed (and run again by its crash retries) because the API was down when it ended.

With ``handle_sigterm`` (``python -m flowyard.engine``), SIGTERM stops the flow (see
``flowyard.sdk.termination``): its hooks run, a cancelled run is reported Cancelled, and
the process ends at once; other stops are reported by the worker, which knows why.

Exit codes: ``0`` once the API kept the terminal state reported (or the run was
suspended): the worker has nothing left to do and reads nothing; ``4`` when Running or
the final state was refused, or the API kept another state (a crash retried): the worker
reads the run to settle it; ``1`` when the API could not be read or a state could not be
reported — the worker then marks the run Crashed — and ``143`` after a SIGTERM that was
not a cancellation.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import structlog
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential_jitter

from flowyard.client import FlowyardClient, is_transient
from flowyard.client.log_shipper import LogShipper
from flowyard.errors import EntrypointError, FlowyardError, Pause
from flowyard.schemas import Deployment, FlowRun, RunLineage, StateChange, StateChangeResult
from flowyard.sdk import ApiReporter, FlowRunContext, validate_parameters
from flowyard.sdk.context import flow_run_scope
from flowyard.sdk.flow_engine import FlowRunEngine
from flowyard.sdk.flow_recorder import FlowRunRecorder
from flowyard.sdk.logs import get_run_logger
from flowyard.sdk.sources import load_flow
from flowyard.sdk.termination import SigtermRaises, TerminationSignal, terminated_state
from flowyard.settings import Settings
from flowyard.sources.pull_steps import pulled_code
from flowyard.states import Crashed, Failed, Paused, State, StateType

from .heartbeat import RunHeartbeat

log = structlog.get_logger()

EXIT_OK = 0
EXIT_REPORT_FAILED = 1
EXIT_UNSETTLED = 4
EXIT_TERMINATED = 128 + signal.SIGTERM
TERMINATION_FLUSH_SECONDS = 5.0


def run_flow_run(
    flow_run_id: str,
    settings: Settings,
    *,
    token: str | None,
    handle_sigterm: bool = False,
) -> int:
    """Run one flow run to a terminal state; returns the process exit code."""
    log_ = log.bind(run_id=flow_run_id)
    with FlowyardClient.from_settings(settings) as client:
        try:
            result = client.set_flow_run_state(
                flow_run_id, StateChange(type=StateType.RUNNING, token=token, with_run=True)
            )
            if not result.accepted:
                log_.warning("flow_run_refused", reason=result.reason, state=result.state.type)
                return EXIT_UNSETTLED
            run, deployment = _started(client, flow_run_id, result)
            lineage = result.lineage or RunLineage()
        except FlowyardError as exc:
            log_.error("flow_run_start_failed", error=str(exc))
            return EXIT_REPORT_FAILED
        log_.info("flow_run_started", flow=run.flow_name)
        recorder = FlowRunRecorder(client, run.id, token)
        shipper = LogShipper(client).start()
        stopping = SigtermRaises(recorder.being_cancelled, _ExitAfterStop(recorder, shipper))
        heartbeat = None
        if token is not None:
            interval = settings.run_heartbeat_seconds
            graceful = stopping.request if handle_sigterm else None
            heartbeat = RunHeartbeat(client, run.id, token, interval, stop_gracefully=graceful)
            heartbeat.start()
        patience = settings.final_report_seconds
        try:
            with stopping if handle_sigterm else contextlib.nullcontext():
                context = _context(client, run, lineage, shipper, patience)
                state = _run_flow(client, run, deployment, context, recorder)
        except BaseException:
            _stop(heartbeat)
            _close_logs(shipper, run.id, TERMINATION_FLUSH_SECONDS)
            raise
        try:  # the heartbeat goes on while the logs and the final state wait for the API
            _close_logs(shipper, run.id, patience)
            if state.is_paused():  # suspended: recorded already; resumed, it runs again
                log_.info("flow_run_suspended")
                return EXIT_OK
            return _report(recorder, state, patience)
        finally:
            _stop(heartbeat)


def _stop(heartbeat: RunHeartbeat | None) -> None:
    if heartbeat is not None:
        heartbeat.stop()


def _close_logs(shipper: LogShipper, run_id: str, timeout: float) -> None:
    if not shipper.close(timeout):
        log.error("logs_not_delivered", run_id=run_id, pending=shipper.pending)


def _context(
    client: FlowyardClient,
    run: FlowRun,
    lineage: RunLineage,
    shipper: LogShipper,
    patience: float,
) -> FlowRunContext:
    return FlowRunContext(
        flow_run_id=run.id,
        flow_run_name=run.name,
        parent_task_run_id=run.parent_task_run_id,
        parent_flow_run_id=lineage.parent_flow_run_id,
        root_flow_run_id=lineage.root_flow_run_id,
        parent_deployment_id=lineage.parent_deployment_id,
        reporter=ApiReporter(client, flush_seconds=patience),
        client=client,
        shipper=shipper,
        echo_logs=False,  # the worker ships this process's output as the run's logs
        scheduled_start_time=run.scheduled_time,
        job_variables=dict(run.job_variables),
    )


def _started(
    client: FlowyardClient, flow_run_id: str, result: StateChangeResult
) -> tuple[FlowRun, Deployment | None]:
    """The run now Running and its deployment, from the answer (one without them, from a
    server older than ``with_run``: they are read)."""
    if result.run is None:
        run = client.read_flow_run(flow_run_id)
        deployment = client.read_deployment(run.deployment_id) if run.deployment_id else None
        return run, deployment
    return result.run, result.deployment


def _run_flow(
    client: FlowyardClient,
    run: FlowRun,
    deployment: Deployment | None,
    context: FlowRunContext,
    recorder: FlowRunRecorder,
) -> State[Any]:
    """The flow's final state; failures before it runs are Failed, with the reason."""
    engine: FlowRunEngine | None = None
    try:
        if deployment is None:
            raise EntrypointError("the flow run has no deployment, so no entrypoint to run")
        start_dir = Path(deployment.path) if deployment.path else None
        with (
            pulled_code(deployment.pull_steps, start_dir, client) as base_dir,
            _working_dir(base_dir),
        ):
            flow = load_flow(deployment.entrypoint, base_dir)
            parameters = validate_parameters(flow.fn, {**deployment.parameters, **run.parameters})
            context.deployment_id, context.deployment_name = deployment.id, deployment.name
            context.deployment_parameters = dict(deployment.parameters)
            # the run's tags (its deployment's among them); its task runs carry them too
            context.tags = frozenset(run.tags or deployment.tags)
            engine = FlowRunEngine(flow, (), parameters, context=context, recorder=recorder)
            state = engine.run()
    except TerminationSignal as exc:
        exc.settle(terminated_state(exc))  # stopped outside the flow's attempts: no hooks ran
        raise
    except Pause as exc:  # suspended: the API has the run Paused; this process leaves
        return exc.state if isinstance(exc.state, State) else Paused(name="Suspended")
    except Exception as exc:
        message = failure_message(exc)
        _log_failure(context, message, exc)
        return Failed(message=message)
    except BaseException as exc:  # KeyboardInterrupt, SystemExit: the flow engine ran on_crashed
        if engine is not None and engine.state.is_final():
            return engine.state
        return Crashed(message=f"Execution was interrupted: {type(exc).__name__}")
    if not state.is_completed():
        log.error("flow_run_failed", run_id=context.flow_run_id, error=state.message)
    return state


class _ExitAfterStop:
    """The end of a run stopped by SIGTERM, once its hooks ran: flush the logs, report a
    cancellation (other stops are reported by the worker, which knows why), and exit now,
    abandoning task threads still busy, so the worker's grace period is not outlived."""

    def __init__(self, recorder: FlowRunRecorder, shipper: LogShipper) -> None:
        self.recorder = recorder
        self.shipper = shipper

    def __call__(self, stop: TerminationSignal, state: State[Any]) -> NoReturn:
        if not self.shipper.close(TERMINATION_FLUSH_SECONDS):
            log.error("logs_not_delivered", run_id=self.recorder.run_id)
        code = _report(self.recorder, state) if state.is_cancelled() else EXIT_TERMINATED
        log.warning("flow_run_terminated", run_id=self.recorder.run_id, state=state.type)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        if stop.reason is not None and os.getpgid(0) == os.getpid():
            os.killpg(0, signal.SIGKILL)  # stopped itself, no worker left: its children go too
        os._exit(code)


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


def _report(recorder: FlowRunRecorder, state: State[Any], patience: float = 0.0) -> int:
    """Report the final state; while the API is away, retry for up to ``patience`` s."""
    log_ = log.bind(run_id=recorder.run_id, state=state.type)
    retrying = Retrying(
        retry=retry_if_exception(is_transient),
        stop=stop_after_delay(patience),
        wait=wait_exponential_jitter(initial=0.5, max=10.0),
        before_sleep=lambda attempt: log_.warning("state_report_retrying"),
        reraise=True,
    )
    try:
        result = retrying(
            recorder.client.set_flow_run_state, recorder.run_id, recorder.change(state)
        )
    except FlowyardError as exc:
        log_.error("state_report_failed", error=str(exc))
        return EXIT_REPORT_FAILED
    if not result.accepted:
        log_.warning("state_report_refused", reason=result.reason, now=result.state.type)
        return EXIT_UNSETTLED
    log_.info("flow_run_finished", now=result.state.type)
    return EXIT_OK if result.state.type.is_terminal else EXIT_UNSETTLED
