"""One flow run from parameters to final state: local, recorded through the API, or the engine's.

Three ways in: a direct call with no server (everything in-process), a direct call with
a server configured (the run, its task runs, states and logs are recorded through the
API), and the engine (the run exists already; the engine reports its states). A flow
called inside a flow run is a subflow: a task run in the parent stands for the call, and
the child flow run points at it with ``parent_task_run_id``.

Retries happen in this process: a failed attempt proposes ``AwaitingRetry`` (scheduled
for now + delay), waits, and proposes ``Running`` again; a refusal (the run is being
cancelled, or was taken away) ends the run instead. A ``TerminationSignal`` (SIGTERM in
the engine) ends it Cancelled or Crashed, with the matching hooks run.
"""

from __future__ import annotations

import asyncio
import inspect
import traceback
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from flowyard.errors import FlowyardError, InvalidInput, Pause, UpstreamTaskError
from flowyard.sdk.api import direct_run_client, jsonable
from flowyard.sdk.attempts import AttemptLoop
from flowyard.sdk.context import FlowRunContext, current_tags, flow_run_scope, get_flow_run_context
from flowyard.sdk.flow_recorder import STOPPING, FlowRunRecorder
from flowyard.sdk.flow_results import persist_flow_result
from flowyard.sdk.futures import TaskFuture, resolve
from flowyard.sdk.hooks import run_hooks
from flowyard.sdk.liveness import run_beats
from flowyard.sdk.logs import get_run_logger, log_prints_enabled
from flowyard.sdk.reporter import ApiReporter, LocalReporter
from flowyard.sdk.retries import delay_list, retry_delay
from flowyard.sdk.task_engine import checked_name, failed_state
from flowyard.sdk.task_inputs import call_inputs
from flowyard.sdk.termination import (
    CANCELLED_BY_REQUEST,
    RunCancelled,
    TerminationSignal,
    terminated_state,
    termination_under_way,
)
from flowyard.states import (
    AwaitingRetry,
    Cancelled,
    Crashed,
    Failed,
    Paused,
    Pending,
    Running,
    State,
    StateType,
    return_value_to_state,
)

if TYPE_CHECKING:
    from flowyard.client import FlowyardClient
    from flowyard.client.log_shipper import LogShipper
    from flowyard.sdk.flows import Flow

log = structlog.get_logger()

_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


class FlowRunEngine(AttemptLoop):
    """Runs one call of ``flow``; ``context`` is given when the run already exists (engine).

    The engine passes its ``recorder`` (with the claim token) for the states between
    attempts; it reports the final state itself, after the logs are flushed.
    """

    def __init__(
        self,
        flow: Flow[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        context: FlowRunContext | None = None,
        recorder: FlowRunRecorder | None = None,
        wait_for: Any = None,
    ) -> None:
        self.flow = flow
        self.wait_for = wait_for
        self.args, self.kwargs = args, kwargs
        self._call = (args, kwargs)  # as given, to link them to upstream task runs
        self.given = context
        self.parent = get_flow_run_context() if context is None else None
        self.state: State[Any] = Pending()
        self.context: FlowRunContext = context or FlowRunContext("", "")
        self.client: FlowyardClient | None = None
        self.parent_task_run_id: str | None = None
        self.recorder = recorder
        self._own_shipper: LogShipper | None = None
        self._failure: Exception | None = None
        self._returned: Any = _NOTHING  # the return value, futures replaced by their states
        self._subflow_key: str | None = None  # see _reused
        self._reuse = False

    # -- what the shared attempt loop needs ------------------------------------------------

    label = "Flow"

    def _fn(self) -> Any:
        return self.flow.fn

    def _timeout(self) -> float | None:
        return self.flow.timeout_seconds

    def _sleep(self, seconds: float) -> None:
        self.flow._sleep(seconds)

    def _scope(self) -> Any:
        return flow_run_scope(self.context)

    def _on_value(self, value: Any) -> None:
        self._returned = _states_of_futures(value)
        state = _final_state(self._returned)
        self.state = persist_flow_result(self.flow, state, self.context)

    def result(self) -> Any:
        """What calling the flow gives, as in Prefect: the value it returned (futures
        replaced by their states, so a tuple of task states even when some failed); for a
        returned state, or a run that raised, its final state's result."""
        returned, state = self._returned, self.state
        if returned is _NOTHING or isinstance(returned, State) or state.data is not returned:
            return state.result(_sync=True)
        return returned

    def _log_prints(self) -> bool:
        if self.flow.log_prints is not None:
            return self.flow.log_prints
        return self.parent is not None and log_prints_enabled()

    # -- steps -----------------------------------------------------------------------------

    def _begin(self) -> bool:
        parameters = self._parameters()
        if parameters is not None and self._reused():
            return False
        ready = parameters is None or self._upstream_ready()  # before the run is recorded
        self._open(parameters if parameters is not None else {}, starts=ready)
        if parameters is None or not ready:
            return False
        self.state = Running()
        with flow_run_scope(self.context):
            get_run_logger().info(
                "Beginning flow run %r for flow %r", self.context.flow_run_name, self.flow.name
            )
        return True

    def _upstream_ready(self) -> bool:
        """Wait for ``wait_for``; False, with the run ``NotReady``, when one of them did not
        complete (Prefect's ``_wait_for_dependencies``: no attempt, no hooks)."""
        if not self.wait_for:
            return True
        try:
            resolve(list(self.wait_for), [])
        except UpstreamTaskError as exc:
            self.state = Pending(name="NotReady", message=str(exc))
            return False
        return True

    def _reused(self) -> bool:
        """A subflow that completed with a persisted result in an earlier attempt of its
        parent is not run again: its state is taken as it was (Prefect's
        ``test_flow_retry_with_error_in_flow_and_one_successful_child_flow``)."""
        parent = self.parent
        if parent is None:
            return False
        self._subflow_key = parent.subflow_key(self.flow.name)
        earlier = parent.subflow_states.get(self._subflow_key)
        if earlier is None:
            return False
        self.state, self._reuse = earlier, True
        return True

    def _parameters(self) -> dict[str, Any] | None:
        """Bind (and validate) the call's arguments; None with a Failed state when they are bad."""
        signature = self.flow._signature
        try:
            bound = signature.bind(*self.args, **self.kwargs)
            bound.apply_defaults()
            if self.flow.should_validate_parameters and bound.arguments:
                from flowyard.sdk.parameters import validate_parameters

                kinds = {name: p.kind for name, p in signature.parameters.items()}
                named = {k: v for k, v in bound.arguments.items() if kinds[k] not in _VARIADIC}
                # as Prefect's: the named ones are coerced, ``*args``/``**kwargs`` kept as given
                bound.arguments.update(validate_parameters(self.flow.fn, named))
                self.args, self.kwargs = bound.args, bound.kwargs
            parameters = dict(bound.arguments)
        except (TypeError, InvalidInput) as exc:
            self.state = Failed(data=exc, message=f"Flow run received invalid parameters: {exc}")
            return None
        return parameters

    def _attempt_starts(self) -> bool:
        if self.state.is_final():
            return False
        if self.context.run_count and not self._propose(Running()):
            return False  # a retry the API refused: the run was settled instead
        self.context.attempt_starts()
        run_hooks(self.flow.on_running, self.flow, self.context, self.state)  # every attempt
        return True

    def _on_exception(self, exc: Exception) -> float | None:
        logger = get_run_logger()
        if isinstance(exc, RunCancelled):
            self.state = Cancelled(message=str(exc))
            self.context.cancel_task_runs()  # before the run's scope waits for them
            return None
        run_count, retries = self.context.run_count, self.flow.retries
        if run_count <= retries:
            delays = delay_list(self.flow.retry_delay_seconds, retries)
            delay = retry_delay(delays, run_count)
            logger.warning(
                "Flow run failed with exception %r - Retry %d/%d will start %s second(s) from now",
                exc, run_count, retries, round(delay, 3),
            )  # fmt: skip
            self._failure = exc
            when = datetime.now(UTC) + timedelta(seconds=delay)
            message = failed_state("Flow", exc).message
            waiting = AwaitingRetry(message=message, scheduled_time=when)
            return delay if self._propose(waiting) else None
        self.state = failed_state("Flow", exc)
        trace = "".join(traceback.format_exception(exc)).rstrip()
        logger.error("Encountered exception during execution:\n%s", trace)
        return None

    def _on_crash(self, exc: BaseException) -> None:
        """Interrupted: Cancelled or Crashed by a termination signal, Crashed by anything else."""
        if isinstance(exc, Pause):  # suspended: the run waits in the API, not here
            self.state = exc.state if isinstance(exc.state, State) else Paused(name="Suspended")
            self._finish()
            return
        stop = exc if isinstance(exc, TerminationSignal) else None
        if stop is None and isinstance(exc, asyncio.CancelledError):
            stop = termination_under_way()  # an async flow's task is cancelled on SIGTERM
        if stop is not None:
            self.state = terminated_state(stop)
        else:
            message = f"Execution was interrupted: {type(exc).__name__}"
            self.state = Crashed(data=exc, message=message)
        self._finish(settle=stop if self.given is not None else None)

    def _propose(self, state: State[Any]) -> bool:
        """Record a state between attempts; on a refusal settle the run instead (False)."""
        answer = self.recorder.propose(state) if self.recorder is not None else None
        if answer is None or answer.accepted:
            self.state = state
            return True
        if answer.state.type in STOPPING:
            self.state = Cancelled(message=CANCELLED_BY_REQUEST)
        else:
            message = f"the API refused the {state.name} state: {answer.reason}"
            self.state = Crashed(data=self._failure, message=message)
        return False

    # -- recording -------------------------------------------------------------------------

    def _open(self, parameters: dict[str, Any], *, starts: bool) -> None:
        """Build the run's context; create its record when this call owns one (Running, or
        Pending when it will not start: an upstream in ``wait_for`` did not complete)."""
        flow, parent = self.flow, self.parent
        if self.given is not None:
            self.context.flow = flow
            self.context.parameters = parameters
            self.context.task_runner = flow.task_runner
            self.context.tags = self.context.tags | current_tags()
            self.context.recorder = self.recorder
            return
        run_id = str(uuid.uuid4())
        naming = _under(parent, FlowRunContext(run_id, "", flow=flow, parameters=parameters))
        name = _template(flow.flow_run_name, parameters, naming)
        client = parent.client if parent is not None else direct_run_client()
        if parent is not None:
            self.parent_task_run_id = self._start_parent_task(parent, parameters)
        run_name = name
        tags = current_tags() | (parent.tags if parent else frozenset())
        if client is not None:
            run_id, run_name = self._create_run(client, name, parameters, run_id, tags, starts)
        shipper = parent.shipper if parent is not None else None
        if self.client is not None and shipper is None:
            from flowyard.client.log_shipper import LogShipper

            shipper = self._own_shipper = LogShipper(self.client).start()
        self.context = _under(
            parent,
            FlowRunContext(
                flow_run_id=run_id,
                flow_run_name=run_name or run_id[:8],
                reporter=ApiReporter(self.client) if self.client else LocalReporter(),
                client=self.client,
                shipper=shipper,
                flow=flow,
                parameters=parameters,
                parent_task_run_id=self.parent_task_run_id,
                task_runner=flow.task_runner,
                tags=tags,
                echo_logs=parent.echo_logs if parent is not None else True,
                recorder=self.recorder,
            ),
        )

    def _create_run(
        self,
        client: FlowyardClient,
        name: str | None,
        parameters: dict[str, Any],
        run_id: str,
        tags: frozenset[str],
        starts: bool,
    ) -> tuple[str, str | None]:
        from pydantic import ValidationError

        from flowyard.schemas import FlowRunCreate, storable_tags

        beats = run_beats(client)
        try:
            body = FlowRunCreate(
                flow_name=self.flow.name, name=name, parameters=jsonable(parameters, self.flow.fn),
                parent_task_run_id=self.parent_task_run_id,
                state=StateType.RUNNING if starts else StateType.PENDING,
                heartbeat_seconds=beats.interval if starts else None,
                tags=storable_tags(tags),
            )  # fmt: skip
            run = client.create_flow_run(body)
        except (FlowyardError, ValidationError) as exc:  # e.g. a name the API refuses
            log.warning("flow_run_not_recorded", flow=self.flow.name, error=str(exc))
            return run_id, name
        self.client = client
        self.recorder = FlowRunRecorder(client, run.id)
        if starts:
            beats.add(run.id)  # until its final state is reported
        return run.id, run.name

    def _start_parent_task(self, parent: FlowRunContext, parameters: dict[str, Any]) -> str | None:
        key = f"flow:{self.flow.name}"
        name = parent.next_task_run_name(key, self.flow.name)
        if not parent.reporter.records:
            return str(uuid.uuid4())
        from flowyard.schemas import TaskRunCreate
        from flowyard.sdk.labels import task_run_document

        body = task_run_document(TaskRunCreate, {
            "id": str(uuid.uuid4()), "flow_run_id": parent.flow_run_id, "name": name,
            "task_key": key, "parameters": jsonable(parameters, self.flow.fn),
            "tags": sorted(current_tags() | parent.tags),
            "task_inputs": call_inputs(parent.links, self.flow._signature, *self._call),
        }, task=key)  # fmt: skip
        if body is None:
            return None
        return parent.reporter.start_task_run(body, wait=True)  # the child run names it

    def _finish(self, settle: TerminationSignal | None = None) -> State[Any]:
        """Log, report and run the hooks of the final state; ``settle`` hands it to the
        engine (which reports it and exits) before the scope waits for task threads."""
        state, flow = self.state, self.flow
        if self._reuse:
            return state
        state.flow_run_id = self.context.flow_run_id or None  # a run's state from now on
        self._keep_for_retries(state)
        if settle is not None:  # stopped by a signal: its task runs stop too
            self.context.cancel_task_runs()
        with flow_run_scope(self.context):
            logger = get_run_logger()
            (logger.error if state.is_failed() or state.is_crashed() else logger.info)(
                "Finished in state %r", state
            )
            self._report(state)
            hooks = {
                "COMPLETED": flow.on_completion,
                "FAILED": flow.on_failure,
                "CANCELLED": flow.on_cancellation,
                "CRASHED": flow.on_crashed,
            }.get(state.type.value, ())
            run_hooks(hooks, flow, self.context, state)
            if settle is not None:
                settle.settle(state)
        if self._own_shipper is not None and not self._own_shipper.close(30.0):
            log.error("logs_not_delivered", run_id=self.context.flow_run_id)
        return state

    def _keep_for_retries(self, state: State[Any]) -> None:
        """A subflow's completed, persisted state, for its parent's next attempts."""
        flow, parent, key = self.flow, self.parent, self._subflow_key
        if parent is not None and key is not None and state.is_completed():
            if flow.persist_result and not flow.is_generator:
                parent.subflow_states[key] = state

    def _report(self, state: State[Any]) -> None:
        """The final state of a run this call recorded (the engine reports its own)."""
        self.context.reporter.flush()  # its task runs are all recorded before it ends
        if self.parent is not None and self.parent_task_run_id and self.parent.reporter.records:
            from flowyard.schemas import TaskRunUpdate
            from flowyard.sdk.labels import task_run_document

            fields = {"state": state.type, "message": state.message, "state_name": state.name}
            key = f"flow:{self.flow.name}"
            update = task_run_document(TaskRunUpdate, fields, task=key)
            if update is not None:
                self.parent.reporter.finish_task_run(self.parent_task_run_id, update)
            self.parent.links.produced(self.parent_task_run_id, state)
        if self.given is None and self.recorder is not None and not state.is_pending():
            self.recorder.propose(state)
            run_beats(self.recorder.client).remove(self.recorder.run_id)


def _template(template: Any, parameters: dict[str, Any], naming: FlowRunContext) -> str | None:
    """The run's name; a callable reads ``flowyard.runtime.flow_run`` (``naming``'s) as in
    Prefect, where the name is given inside the run."""
    if template is None:
        return None
    if callable(template):
        with flow_run_scope(naming):
            wanted = inspect.signature(template).parameters
            return checked_name(template(**parameters) if wanted else template(), template, "flow")
    if not isinstance(template, str):
        raise TypeError(
            f"Expected string or callable for 'flow_run_name'; got {type(template).__name__} "
            "instead."
        )
    return template.format(**parameters)


def _under(parent: FlowRunContext | None, context: FlowRunContext) -> FlowRunContext:
    """``context`` with its parent, root and parent deployment when it is a subflow's,
    for ``flowyard.runtime.flow_run``."""
    if parent is not None:
        context.parent_flow_run_id = parent.flow_run_id
        context.root_flow_run_id = parent.root_flow_run_id or parent.flow_run_id
        context.local_root_flow_run_id = parent.local_root_flow_run_id or parent.flow_run_id
        context.parent_deployment_id = parent.deployment_id
    return context


_NOTHING: Any = object()


def _final_state(value: Any) -> State[Any]:
    """The flow's state from its return value (``return_value_to_state``); a state that is
    not final (a returned ``Pending()``) fails the run: no attempt starts from it."""
    state = return_value_to_state(value)
    if state.is_final():
        return state
    return Failed(
        message=f"This run is in a RUNNING state and cannot transition to a {state.type.value} "
        "state."
    )


def _states_of_futures(value: Any) -> Any:
    """``value`` with each task future (also inside lists, tuples, sets and dicts) waited
    for and replaced by its final state, as Prefect's ``resolve_futures_to_states``."""
    if isinstance(value, TaskFuture):
        value.wait()
        return value.state
    if isinstance(value, dict) and _holds_future(value):
        return {k: _states_of_futures(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set) and any(_holds_future(v) for v in value):
        resolved = [_states_of_futures(v) for v in value]
        if isinstance(value, tuple) and hasattr(value, "_fields"):
            return type(value)(*resolved)
        return type(value)(resolved)
    return value


def _holds_future(value: Any) -> bool:
    if isinstance(value, TaskFuture):
        return True
    if isinstance(value, dict):
        return any(_holds_future(v) for v in value.values())
    return isinstance(value, list | tuple | set) and any(_holds_future(v) for v in value)
