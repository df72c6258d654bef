"""The flow's side of task runs sent to a distributed engine (Dask, Ray): each one's
inputs resolved here, sent as a ``remote_runs.RemoteCall``, and the engine's future
settled into the task run's final state.

An engine only says how to send calls, watch them end, gather their outcomes and cancel
them (``RemoteLauncher._send``/``_watch``/``_gather``/``_cancel``). When the engine itself
gives up on a task (it was cancelled, or the processes running it kept dying) the task run
ends Crashed with the engine's reason, so that nothing waits for it forever.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextvars
import queue
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowyard.sdk.remote_parcels import Parcels
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


@dataclass
class Waiting:
    """A task run sent (or to send) to the engine, and what to settle when it ends."""

    call: RemoteCall
    engine: TaskRunEngine
    done: cf.Future[State[Any]]
    options: dict[str, Any]  # the engine's options for this one (Ray's ``remote_options``)
    handle: Any = None  # the engine's (kept while it runs: to cancel it, to read it)


class RemoteLauncher:
    """One flow run's task runs on an engine; subclasses send, watch, gather and cancel.

    Task runs are sent in batches by one thread (what was submitted while the previous
    batch was being sent: one ``client.map`` for a whole ``Task.map``) and their outcomes
    read in batches by another (one gather for the runs that ended meanwhile), so that the
    engine sees what it would see from code that uses it directly."""

    engine_name = "engine"

    def __init__(self, flow_run: FlowRunContext, large_result_bytes: int) -> None:
        self._flow_run = flow_run
        self._large = _large_results(flow_run, large_result_bytes)
        self._tokens = RunTokens(flow_run.client, flow_run.flow_run_id)
        self._parcels = Parcels()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._outbox: list[Waiting] = []
        self._running: dict[str, Waiting] = {}  # task run id -> sent, not yet read
        self._ended: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._cancelled = self._closed = False
        self._threads = [
            threading.Thread(target=self._send_loop, name="flowyard-send", daemon=True),
            threading.Thread(target=self._read_loop, name="flowyard-read", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _send(self, batch: list[Waiting]) -> list[Any]:
        """Start these calls on the engine: a handle for each."""
        raise NotImplementedError

    def _options(self, context: contextvars.Context) -> dict[str, Any]:
        """The engine's options for a task run submitted in ``context`` (none here)."""
        return {}

    def _watch(self, handle: Any, ended: Callable[[], None]) -> None:
        """Call ``ended()`` (from any thread) once the engine task of ``handle`` has ended."""
        raise NotImplementedError

    def _gather(self, handles: list[Any]) -> list[RemoteOutcome]:
        """The outcomes of these ended engine tasks; raises if one of them failed."""
        raise NotImplementedError

    def _cancel(self, handles: list[Any]) -> None:
        """Stop these engine tasks (the flow run is ending without them)."""
        raise NotImplementedError

    def submit(self, engine: TaskRunEngine, context: contextvars.Context) -> cf.Future[State[Any]]:
        done: cf.Future[State[Any]] = cf.Future()
        access = access_for(self._flow_run, self._tokens)
        call = prepare(engine, context, lambda task: self._parcels.of(task, access, self._large))
        if call is None:  # an upstream did not complete: NotReady, here
            done.set_result(context.run(engine.run))
            return done
        if self._flow_run.reporter.records and engine.context.task_run_id:
            context.run(engine._record, Pending())  # in the API while it waits or runs
        with self._wake:
            self._outbox.append(Waiting(call, engine, done, self._options(context)))
            self._wake.notify()
        return done

    def _send_loop(self) -> None:
        while True:
            with self._wake:
                while not self._outbox and not self._closed:
                    self._wake.wait()
                if not self._outbox:
                    return
                batch, self._outbox = self._outbox, []
                cancelled = self._cancelled
            if cancelled:
                for waiting in batch:
                    self._end(waiting, self._lost(CancelledError()))
            else:
                self._send_batch(batch)

    def _send_batch(self, batch: list[Waiting]) -> None:
        try:
            handles = self._send(batch)
        except Exception:  # noqa: BLE001 - one of them cannot be sent: find which
            handles = [self._send_one(waiting) for waiting in batch]
        sent = [(w, h) for w, h in zip(batch, handles, strict=True) if h is not None]
        with self._lock:
            for waiting, handle in sent:
                waiting.handle = handle
                self._running[waiting.call.task_run_id] = waiting
            cancelled = self._cancelled
        if cancelled:  # cancel() ran while these were on their way
            self._cancel([handle for _, handle in sent])
        for waiting, handle in sent:
            run_id = waiting.call.task_run_id
            self._watch(handle, lambda run_id=run_id: self._ended.put(run_id))  # type: ignore[misc]

    def _send_one(self, waiting: Waiting) -> Any:
        try:
            return self._send([waiting])[0]
        except Exception as exc:  # noqa: BLE001 - an argument that cannot be pickled...
            message = f"it could not be sent to {self.engine_name}: {type(exc).__name__}: {exc}"
            self._end(waiting, Crashed(data=exc, message=message))
            return None

    def _read_loop(self) -> None:
        stop = False
        while not stop:
            run_ids = [self._ended.get()]
            while not self._ended.empty():
                run_ids.append(self._ended.get())
            stop = None in run_ids
            with self._lock:
                ended = [self._running.pop(i) for i in run_ids if i in self._running]
            if ended:
                self._read(ended)

    def _read(self, ended: list[Waiting]) -> None:
        """Settle these ended runs, their outcomes gathered at once (one by one if one of
        their engine tasks failed)."""
        try:
            outcomes: list[RemoteOutcome | BaseException] = list(
                self._gather([waiting.handle for waiting in ended])
            )
        except BaseException:  # noqa: BLE001 - read each: the others' outcomes are there
            outcomes = [self._gather_one(waiting.handle) for waiting in ended]
        for waiting, outcome in zip(ended, outcomes, strict=True):
            try:
                self._settle(waiting, outcome)
            except Exception as exc:  # noqa: BLE001 - never a run left waiting forever
                if not waiting.done.done():
                    message = f"its outcome could not be settled: {type(exc).__name__}: {exc}"
                    waiting.done.set_result(Crashed(data=exc, message=message))

    def _gather_one(self, handle: Any) -> RemoteOutcome | BaseException:
        try:
            return self._gather([handle])[0]
        except BaseException as exc:  # noqa: BLE001 - the engine lost it
            return exc

    def _settle(self, waiting: Waiting, outcome: RemoteOutcome | BaseException) -> None:
        if isinstance(outcome, BaseException):  # a killed worker, a cancellation
            self._end(waiting, self._lost(outcome))
            return
        state = self._received(outcome)
        self._ship(outcome)
        run_id = waiting.engine.context.task_run_id
        if self._flow_run.reporter.records and run_id:
            self._flow_run.links.produced(run_id, state)
        waiting.done.set_result(state)

    def _end(self, waiting: Waiting, state: State[Any]) -> None:
        """End a run that has no outcome from the engine with ``state``, reported here."""
        waiting.engine.state = state
        waiting.engine._report(state)
        waiting.done.set_result(state)

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
            handles = [waiting.handle for waiting in self._running.values()]
        if handles:
            self._cancel(handles)

    def _close(self) -> None:
        """Stop the sending and reading threads (every task run has ended)."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._ended.put(None)
        for thread in self._threads:
            thread.join(timeout=10)


def _large_results(flow_run: FlowRunContext, threshold: int) -> LargeResults:
    """The flow's result storage (its ``result_storage``, else the default one), with a
    signing key for this flow run only."""
    from flowyard.sdk.results import get_storage

    storage = get_storage(getattr(flow_run.flow, "result_storage", None))
    return LargeResults(storage, secrets.token_bytes(32), threshold)
