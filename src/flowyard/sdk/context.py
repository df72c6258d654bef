"""The run context: which flow run and task run the current code belongs to.

Held in ``contextvars`` so that threads started by ``Task.submit`` (which copy the
context) and nested calls see the same run. Local runs carry a ``LocalReporter`` and
no client or log shipper; engine runs carry the API client, an ``ApiReporter`` and a
``LogShipper``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flowyard.sdk.reporter import LocalReporter, Reporter

if TYPE_CHECKING:
    from flowyard.client import FlowyardClient
    from flowyard.client.log_shipper import LogShipper


@dataclass
class FlowRunContext:
    """Everything code running inside one flow run may need."""

    flow_run_id: str
    flow_run_name: str
    reporter: Reporter = field(default_factory=LocalReporter)
    client: FlowyardClient | None = None
    shipper: LogShipper | None = None
    _counters: dict[str, int] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _executor: ThreadPoolExecutor | None = field(default=None, repr=False)

    def next_task_run_name(self, task_key: str, task_name: str) -> str:
        """``extract_data-0``, ``extract_data-1``, …: one counter per task in this run."""
        with self._lock:
            index = self._counters.get(task_key, 0)
            self._counters[task_key] = index + 1
        return f"{task_name}-{index}"

    def executor(self) -> ThreadPoolExecutor:
        """The thread pool for ``Task.submit``, created on first use."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(thread_name_prefix="flowyard-task")
            return self._executor

    def shutdown(self) -> None:
        """Wait for every submitted task run to finish."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)


@dataclass(frozen=True)
class TaskRunContext:
    """The task run the current code is executing in (its id is None when not recorded)."""

    task_run_id: str | None
    task_run_name: str


_flow_run: ContextVar[FlowRunContext | None] = ContextVar("flowyard_flow_run", default=None)
_task_run: ContextVar[TaskRunContext | None] = ContextVar("flowyard_task_run", default=None)


def get_flow_run_context() -> FlowRunContext | None:
    """The current flow run, or None outside any flow run."""
    return _flow_run.get()


def get_task_run_context() -> TaskRunContext | None:
    """The current task run, or None outside any task run."""
    return _task_run.get()


@contextmanager
def flow_run_scope(context: FlowRunContext) -> Iterator[FlowRunContext]:
    """Make ``context`` current; on exit wait for submitted tasks and restore the previous one."""
    token = _flow_run.set(context)
    try:
        yield context
    finally:
        context.shutdown()
        _flow_run.reset(token)


@contextmanager
def task_run_scope(context: TaskRunContext) -> Iterator[TaskRunContext]:
    token = _task_run.set(context)
    try:
        yield context
    finally:
        _task_run.reset(token)
