"""The flow's side of task runs sent to a distributed engine (Dask, Ray): each one's
inputs resolved here, sent as a ``remote_runs.RemoteCall``, and the engine's future
settled into the task run's final state.

An engine only says how to send a call and how to cancel what it sent
(``RemoteLauncher._send``/``_cancel``). When the engine itself gives up on a task (it
was cancelled, or the processes running it kept dying) the task run ends Crashed with
the engine's reason, so that nothing waits for it forever.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextvars
import secrets
import threading
from typing import TYPE_CHECKING, Any, Protocol

from flowyard.sdk.remote_runs import (
    LargeResults,
    RemoteCall,
    RemoteOutcome,
    RunTokens,
    access_for,
    prepare,
)
from flowyard.sdk.reporter import ApiReporter
from flowyard.states import Cancelled, Crashed, Pending, State

if TYPE_CHECKING:
    from flowyard.sdk.context import FlowRunContext
    from flowyard.sdk.task_engine import TaskRunEngine


class EngineFuture(Protocol):
    """What Dask's futures and Ray's (``ObjectRef.future()``) have in common."""

    def result(self) -> Any: ...

    def add_done_callback(self, fn: Any) -> None: ...


class RemoteLauncher:
    """One flow run's task runs on an engine; subclasses send and cancel."""

    engine_name = "engine"

    def __init__(self, flow_run: FlowRunContext, large_result_bytes: int) -> None:
        self._flow_run = flow_run
        self._large = _large_results(flow_run, large_result_bytes)
        self._tokens = RunTokens(flow_run.client, flow_run.flow_run_id)
        self._running: dict[str, Any] = {}  # task run id -> the engine's handle, to cancel
        self._lock = threading.Lock()
        self._cancelled = False

    def _send(self, call: RemoteCall) -> tuple[Any, EngineFuture]:
        """Start ``call`` on the engine: its handle (kept while it runs) and its future."""
        raise NotImplementedError

    def _cancel(self, handles: list[Any]) -> None:
        """Stop these engine tasks (the flow run is ending without them)."""
        raise NotImplementedError

    def submit(self, engine: TaskRunEngine, context: contextvars.Context) -> cf.Future[State[Any]]:
        done: cf.Future[State[Any]] = cf.Future()
        call = prepare(engine, context, access_for(self._flow_run, self._tokens))
        if call is None:  # an upstream did not complete: NotReady, here
            done.set_result(context.run(engine.run))
            return done
        call.large_results = self._large
        if self._flow_run.reporter.records and engine.context.task_run_id:
            context.run(engine._record, Pending())  # in the API while it waits or runs
        handle, remote = self._send(call)
        with self._lock:
            self._running[call.task_run_id] = handle
        remote.add_done_callback(lambda _: self._settle(call.task_run_id, remote, engine, done))
        return done

    def _settle(
        self, run_id: str, remote: EngineFuture, engine: TaskRunEngine, done: cf.Future[State[Any]]
    ) -> None:
        with self._lock:
            self._running.pop(run_id, None)
        try:
            outcome: RemoteOutcome = remote.result()
        except BaseException as exc:  # the engine lost it: a killed worker, a cancellation
            state: State[Any] = self._lost(exc)
            engine.state = state
            engine._report(state)
        else:
            state = self._received(outcome)
            self._ship(outcome)
            if self._flow_run.reporter.records and engine.context.task_run_id:
                self._flow_run.links.produced(engine.context.task_run_id, state)
        done.set_result(state)

    def _received(self, outcome: RemoteOutcome) -> State[Any]:
        """The remote run's final state, with its result read from the flow's result
        storage when it was too large to travel with it."""
        state = outcome.state
        if outcome.stored_as is not None:
            try:
                state.data = self._large.store().load(outcome.stored_as).value
            except Exception as exc:  # noqa: BLE001 - the run ends Crashed, saying why
                message = f"its result could not be read from the flow's result storage: {exc}"
                return Crashed(data=exc, message=message)
        return state

    def _lost(self, exc: BaseException) -> State[Any]:
        """The state of a task run whose engine task ended without one."""
        if self._cancelled:
            return Cancelled(message=f"the flow run was cancelled; {self.engine_name} stopped it")
        message = f"the {self.engine_name} task of this task run failed: {type(exc).__name__}"
        return Crashed(data=exc, message=f"{message}: {exc}")

    def _ship(self, outcome: RemoteOutcome) -> None:
        """The remote run's records and logs, to the API with the flow run's own."""
        reporter, shipper = self._flow_run.reporter, self._flow_run.shipper
        if outcome.records and isinstance(reporter, ApiReporter):
            reporter.put_records(outcome.records)
        if shipper is not None:
            for log in outcome.logs:
                shipper.put(log)

    def cancel(self) -> None:
        """Cancel every task run still on the engine (the flow run is being cancelled)."""
        with self._lock:
            self._cancelled = True
            handles = list(self._running.values())
        if handles:
            self._cancel(handles)


def _large_results(flow_run: FlowRunContext, threshold: int) -> LargeResults:
    """The flow's result storage (its ``result_storage``, else the default one), with a
    signing key for this flow run only."""
    from flowyard.sdk.results import get_storage

    storage = get_storage(getattr(flow_run.flow, "result_storage", None))
    return LargeResults(storage, secrets.token_bytes(32), threshold)
