"""``ProcessPoolTaskRunner``: a flow run's submitted and mapped task runs execute in a
pool of subprocesses (as ``prefect.task_runners.ProcessPoolTaskRunner``).

The pool is a ``concurrent.futures.ProcessPoolExecutor`` with the ``spawn`` start method
(as Prefect's), made for each flow run and shut down when it ends. Each task run travels
as a ``remote_runs.RemoteCall``, pickled with cloudpickle (as Prefect pickles its calls:
a task or argument defined in ``__main__`` or as a lambda travels by value), and reports
to the API from its subprocess with the flow run's own token: the API key of the flow's
process is taken out of the subprocesses' environment before any task runs there.

A subprocess that dies (killed, out of memory) breaks a ``ProcessPoolExecutor``: the task
runs it was running, and any others the pool was running then, end Crashed, and the next
task runs go to a new pool. A cancelled flow run stops the subprocesses running its task
runs, which end Cancelled.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from flowyard.sdk.remote_launcher import RemoteLauncher, Waiting
from flowyard.sdk.remote_runs import (
    LARGE_RESULT_BYTES,
    RemoteCall,
    RemoteOutcome,
    check_result_limit,
    run_remote,
)

if TYPE_CHECKING:
    from flowyard.sdk.context import FlowRunContext, Launcher

Initializer = Callable[..., object]
PERSON_KEYS = ("FLOWYARD_API_KEY",)  # a person's key stays in the flow's process


class ProcessPoolTaskRunner:
    """Runs task runs in ``max_workers`` subprocesses (default: the machine's CPU count,
    as Prefect's), each started with ``initializer(*initargs)`` when given. A result larger
    than ``large_result_bytes`` travels back through the flow's result storage."""

    def __init__(
        self,
        max_workers: int | None = None,
        initializer: Initializer | None = None,
        initargs: tuple[Any, ...] = (),
        large_result_bytes: int = LARGE_RESULT_BYTES,
    ) -> None:
        if max_workers is not None and max_workers < 1:
            raise ValueError("max_workers must be >= 1")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be callable")
        self.max_workers = max_workers or multiprocessing.cpu_count()
        self.initializer = initializer
        self.initargs = tuple(initargs)
        self.large_result_bytes = check_result_limit(large_result_bytes)

    def __repr__(self) -> str:
        return f"ProcessPoolTaskRunner(max_workers={self.max_workers})"

    def __eq__(self, other: object) -> bool:  # as Prefect's: the same size of pool
        if not isinstance(other, ProcessPoolTaskRunner):
            return NotImplemented
        return self.max_workers == other.max_workers

    __hash__ = None  # type: ignore[assignment]

    def duplicate(self) -> ProcessPoolTaskRunner:
        """A runner with the same options (Prefect's API)."""
        return ProcessPoolTaskRunner(
            self.max_workers, self.initializer, self.initargs, self.large_result_bytes
        )

    def open(self, flow_run: FlowRunContext) -> Launcher:
        return ProcessLauncher(flow_run, self)


class ProcessLauncher(RemoteLauncher):
    """One flow run's pool of subprocesses; its task runs as calls in the pool."""

    engine_name = "process pool"

    def __init__(self, flow_run: FlowRunContext, runner: ProcessPoolTaskRunner) -> None:
        self._runner = runner
        self._pool_lock = threading.Lock()
        self._executor = self._new_pool()
        super().__init__(flow_run, runner.large_result_bytes)

    def _new_pool(self) -> ProcessPoolExecutor:
        runner = self._runner
        return ProcessPoolExecutor(
            runner.max_workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(runner.initializer, runner.initargs),
        )

    def _send(self, batch: list[Waiting]) -> list[Any]:
        import cloudpickle

        packed = [cloudpickle.dumps(waiting.call) for waiting in batch]  # before any is sent
        return [self._submit(blob) for blob in packed]

    def _submit(self, blob: bytes) -> Future[bytes]:
        with self._pool_lock:
            try:
                return self._executor.submit(_run_packed, blob)
            except BrokenProcessPool:  # a subprocess died: its runs end Crashed; a new pool
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = self._new_pool()
                return self._executor.submit(_run_packed, blob)

    def _watch(self, handle: Any, ended: Callable[[], None]) -> None:
        handle.add_done_callback(lambda _: ended())

    def _gather(self, handles: list[Any]) -> list[RemoteOutcome]:
        outcomes: list[RemoteOutcome] = [pickle.loads(handle.result()) for handle in handles]
        return outcomes

    def _cancel(self, handles: list[Any]) -> None:
        """Stop the runs not started yet, and the subprocesses running the others."""
        running = [handle for handle in handles if not handle.cancel()]
        if running:
            with self._pool_lock:
                _kill_workers(self._executor)

    def shutdown(self) -> None:
        self._close()
        with self._pool_lock:
            self._executor.shutdown(wait=True, cancel_futures=True)


def _kill_workers(executor: ProcessPoolExecutor) -> None:
    """Kill the pool's subprocesses (``kill_workers`` from Python 3.14 on)."""
    kill = getattr(executor, "kill_workers", None)
    if kill is not None:
        kill()
        return
    for process in list((getattr(executor, "_processes", None) or {}).values()):
        process.kill()


def _start_worker(initializer: Initializer | None, initargs: tuple[Any, ...]) -> None:
    """Each subprocess's start: without the person's key, then the user's initializer."""
    for name in PERSON_KEYS:
        os.environ.pop(name, None)
    if initializer is not None:
        initializer(*initargs)


def _run_packed(blob: bytes) -> bytes:
    """Run the pickled call in this subprocess; its outcome pickled to travel back."""
    import cloudpickle

    call: RemoteCall = pickle.loads(blob)
    packed: bytes = cloudpickle.dumps(run_remote(call))
    return packed
