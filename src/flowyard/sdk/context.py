"""The run context: which flow run and task run the current code belongs to.

Held in ``contextvars`` so that threads started by ``Task.submit`` (which copy the
context) and nested calls see the same run. Local runs carry a ``LocalReporter`` and
no client or log shipper; runs recorded through the API carry the client, an
``ApiReporter`` and a ``LogShipper``.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from flowyard.errors import MissingContextError
from flowyard.sdk.reporter import LocalReporter, Reporter
from flowyard.sdk.task_inputs import RunLinks
from flowyard.states import RUN_IS_ASYNC

if TYPE_CHECKING:
    from flowyard.client import FlowyardClient
    from flowyard.client.log_shipper import LogShipper
    from flowyard.sdk.flow_recorder import FlowRunRecorder
    from flowyard.sdk.task_engine import TaskRunEngine
    from flowyard.states import State

DEFAULT_MAX_WORKERS = 64


class Launcher(Protocol):
    """Where one flow run's submitted task runs execute; opened by its task runner."""

    def submit(self, engine: TaskRunEngine, context: contextvars.Context) -> Future[State[Any]]:
        """Run ``engine`` (its upstreams are done); a future of its final state."""
        ...

    def shutdown(self) -> None:
        """Release what ``open`` took, once every submitted task run has ended."""
        ...

    def cancel(self) -> None:
        """Stop the task runs still running or waiting: the flow run is being cancelled."""
        ...


class TaskRunner(Protocol):
    """A flow's task runner: opens one ``Launcher`` per flow run that submits tasks."""

    def open(self, flow_run: FlowRunContext) -> Launcher: ...


class _Threads:
    def __init__(self, max_workers: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="flowyard-task")

    def submit(self, engine: TaskRunEngine, context: contextvars.Context) -> Future[State[Any]]:
        return self._pool.submit(context.run, engine.run)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)

    def cancel(self) -> None:
        """Nothing: a thread cannot be stopped from outside (as with Prefect's threads)."""


class ThreadPoolTaskRunner:
    """Runs submitted task runs on a pool of threads (the default task runner)."""

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and max_workers < 1:
            raise ValueError("max_workers must be >= 1")
        self.max_workers = max_workers or DEFAULT_MAX_WORKERS

    def __repr__(self) -> str:
        return f"ThreadPoolTaskRunner(max_workers={self.max_workers})"

    def open(self, flow_run: FlowRunContext) -> Launcher:
        return _Threads(self.max_workers)


@dataclass
class FlowRunContext:
    """Everything code running inside one flow run may need."""

    flow_run_id: str
    flow_run_name: str
    reporter: Reporter = field(default_factory=LocalReporter)
    client: FlowyardClient | None = None
    recorder: FlowRunRecorder | None = None  # proposes this run's states (with its claim token)
    shipper: LogShipper | None = None
    echo_logs: bool = True  # False in an engine: its infrastructure's output is shipped already
    flow: Any = None
    parameters: dict[str, Any] = field(default_factory=dict)
    parent_task_run_id: str | None = None
    parent_flow_run_id: str | None = None  # the flow run this one is a subflow of
    root_flow_run_id: str | None = None  # the outermost flow run; None when this one is
    # the outermost flow run of this process (an engine's heartbeat hears of its suspension)
    local_root_flow_run_id: str | None = None
    parent_deployment_id: str | None = None
    scheduled_start_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    deployment_id: str | None = None
    deployment_name: str | None = None
    deployment_parameters: dict[str, Any] = field(default_factory=dict)
    job_variables: dict[str, Any] | None = None  # a deployed run's, as it was created with
    task_runner: TaskRunner = field(default_factory=ThreadPoolTaskRunner)
    tags: frozenset[str] = frozenset()
    run_count: int = 0
    links: RunLinks = field(default_factory=RunLinks, repr=False)  # which task run fed which
    paused_keys: set[str] = field(default_factory=set, repr=False)  # see pause_flow_run
    pause_calls: dict[int, int] = field(default_factory=dict, repr=False)  # attempt -> calls
    # a subflow that completed with a persisted result, by "name:call number in its
    # attempt": a retry of this run reuses it instead of running it again, as Prefect's
    subflow_states: dict[str, State[Any]] = field(default_factory=dict, repr=False)
    _subflow_calls: dict[str, int] = field(default_factory=dict, repr=False)
    _counters: dict[str, int] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _launcher: Launcher | None = field(default=None, repr=False)
    _pending: set[Future[Any]] = field(default_factory=set, repr=False)

    @property
    def id(self) -> str:
        return self.flow_run_id

    @property
    def name(self) -> str:
        return self.flow_run_name

    @property
    def flow_run(self) -> FlowRunContext:
        """Prefect code reads ``ctx.flow_run.id``: the context is its own run."""
        return self

    @classmethod
    def get(cls) -> FlowRunContext | None:
        """The current flow run's context, or None (Prefect's ``FlowRunContext.get()``)."""
        return _flow_run.get()

    def next_task_run_name(self, task_key: str, task_name: str) -> str:
        """``extract_data-0``, ``extract_data-1``, …: one counter per task in this run."""
        with self._lock:
            index = self._counters.get(task_key, 0)
            self._counters[task_key] = index + 1
        return f"{task_name}-{index}"

    def subflow_key(self, flow_name: str) -> str:
        """``"child:0"``, ``"child:1"``, …: the calls of one subflow in this attempt."""
        with self._lock:
            index = self._subflow_calls.get(flow_name, 0)
            self._subflow_calls[flow_name] = index + 1
        return f"{flow_name}:{index}"

    def attempt_starts(self) -> None:
        """Count the next attempt; its subflow calls are numbered from 0 again."""
        with self._lock:
            self.run_count += 1
            self._subflow_calls.clear()

    def launcher(self) -> Launcher:
        """Where ``Task.submit`` runs task runs: the task runner's, opened on first use."""
        with self._lock:
            if self._launcher is None:
                self._launcher = self.task_runner.open(self)
            return self._launcher

    def track(self, future: Future[Any]) -> None:
        """Count ``future`` among the task runs this flow run waits for before it ends."""
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._untrack)

    def _untrack(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)

    def cancel_task_runs(self) -> None:
        """Stop the submitted task runs the task runner can stop (the run is cancelled)."""
        with self._lock:
            launcher = self._launcher
        if launcher is not None:
            launcher.cancel()

    def shutdown(self) -> None:
        """Wait for every submitted task run (including ones still waiting on upstreams)."""
        while True:
            with self._lock:
                pending = list(self._pending)
            if not pending:
                break
            wait(pending)
        with self._lock:
            launcher, self._launcher = self._launcher, None
        if launcher is not None:
            launcher.shutdown()


@dataclass
class TaskRunContext:
    """The task run the current code is executing in (its id is None when not recorded)."""

    task_run_id: str | None
    task_run_name: str
    task: Any = None
    parameters: dict[str, Any] = field(default_factory=dict)
    tags: frozenset[str] = frozenset()
    flow_run_id: str | None = None
    run_count: int = 0
    # a background run's (on a task worker): the flow run that made it, where its logs go
    caller_flow_run_id: str | None = None
    shipper: LogShipper | None = field(default=None, repr=False)

    @property
    def id(self) -> str | None:
        return self.task_run_id

    @property
    def name(self) -> str:
        return self.task_run_name

    @property
    def task_run(self) -> TaskRunContext:
        """Prefect code reads ``ctx.task_run.id``: the context is its own run."""
        return self

    @classmethod
    def get(cls) -> TaskRunContext | None:
        """The current task run's context, or None (Prefect's ``TaskRunContext.get()``)."""
        return _task_run.get()


_flow_run: ContextVar[FlowRunContext | None] = ContextVar("flowyard_flow_run", default=None)
_task_run: ContextVar[TaskRunContext | None] = ContextVar("flowyard_task_run", default=None)
_tags: ContextVar[frozenset[str]] = ContextVar("flowyard_tags", default=frozenset())


def get_flow_run_context() -> FlowRunContext | None:
    """The current flow run, or None outside any flow run."""
    return _flow_run.get()


def get_task_run_context() -> TaskRunContext | None:
    """The current task run, or None outside any task run."""
    return _task_run.get()


def get_run_context() -> TaskRunContext | FlowRunContext:
    """The current task run's context inside a task, else the flow run's; raises outside."""
    context = _task_run.get() or _flow_run.get()
    if context is None:
        raise MissingContextError("No run context available: call this inside a @flow or @task.")
    return context


def current_tags() -> frozenset[str]:
    """The tags of every enclosing ``with tags(...)`` block."""
    return _tags.get()


@contextmanager
def tags(*names: str) -> Iterator[frozenset[str]]:
    """Add tags to every flow run and task run started inside the block."""
    token = _tags.set(_tags.get() | frozenset(names))
    try:
        yield _tags.get()
    finally:
        _tags.reset(token)


@contextmanager
def flow_run_scope(context: FlowRunContext) -> Iterator[FlowRunContext]:
    """Make ``context`` current; on exit wait for submitted tasks and restore the previous one."""
    token = _flow_run.set(context)
    task_token = _task_run.set(None)
    async_token = RUN_IS_ASYNC.set(bool(getattr(context.flow, "is_async", False)))
    try:
        yield context
    finally:
        context.shutdown()
        RUN_IS_ASYNC.reset(async_token)
        _task_run.reset(task_token)
        _flow_run.reset(token)


@contextmanager
def task_run_scope(context: TaskRunContext) -> Iterator[TaskRunContext]:
    token = _task_run.set(context)
    is_async = (
        RUN_IS_ASYNC.get() if context.task is None else getattr(context.task, "is_async", False)
    )
    async_token = RUN_IS_ASYNC.set(bool(is_async))
    try:
        yield context
    finally:
        RUN_IS_ASYNC.reset(async_token)
        _task_run.reset(token)
