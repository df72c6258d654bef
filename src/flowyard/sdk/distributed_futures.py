"""The future of a background task run (``Task.delay``): Prefect's ``PrefectDistributedFuture``.

It holds only the task run's id, so it pickles (it can be passed to another ``delay`` or
in ``wait_for``). Waiting long-polls the API (``GET /api/background_task_runs/{id}/wait``),
which answers as soon as the run is final; the result is read, by the key the run's
record gives, from the task's result store when the future came from ``delay`` (else from
a storage this process trusts: see ``result_refs.py``), as is a failed run's exception.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from flowyard.errors import MissingResult
from flowyard.sdk.api import required_client
from flowyard.sdk.result_refs import load_result
from flowyard.states import State, StateType

if TYPE_CHECKING:
    from flowyard import schemas as s  # pydantic: loaded only once an API is in use
    from flowyard.client import FlowyardClient
    from flowyard.sdk.results import ResultStore

R = TypeVar("R")

LONG_POLL_SECONDS = 30.0


def background_client() -> FlowyardClient:
    """The API client of background task runs; ``RuntimeError`` when no API is configured."""
    return required_client("background task runs (Task.delay, apply_async, serve) need")


class PrefectDistributedFuture(Generic[R]):
    """The eventual state and result of a background task run, known by its id."""

    def __init__(
        self, task_run_id: str, task_run_name: str | None = None, store: ResultStore | None = None
    ) -> None:
        self.task_run_id = task_run_id
        self.task_run_name = task_run_name or task_run_id
        self._store = store  # the task's: where its result is read (not pickled with it)
        self._final: State[R] | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"task_run_id": self.task_run_id, "task_run_name": self.task_run_name}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["task_run_id"], state["task_run_name"])  # type: ignore[misc]

    @property
    def state(self) -> State[R]:
        """The run's state now; once final, with its result (or exception) as data."""
        if self._final is not None:
            return self._final
        return self._state_of(background_client().wait_background_task_run(self.task_run_id))

    def done(self) -> bool:
        return self.state.is_final()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the run is final (or ``timeout`` passes); never raises its error."""
        if self._final is not None:
            return
        client = background_client()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = LONG_POLL_SECONDS if deadline is None else deadline - time.monotonic()
            run = client.wait_background_task_run(
                self.task_run_id, timeout=max(0.0, min(left, LONG_POLL_SECONDS))
            )
            if run.state_type.is_terminal or left <= 0:
                self._state_of(run)
                return

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> R:
        """The task's return value; re-raises the task's exception (unless told not to)."""
        self.wait(timeout)
        if self._final is None:
            raise TimeoutError(
                f"task run {self.task_run_name!r} did not finish within {timeout} second(s)"
            )
        result: R = self._final.result(raise_on_failure=raise_on_failure, _sync=True)
        return result

    def add_done_callback(self, fn: Callable[[PrefectDistributedFuture[R]], object]) -> None:
        """Call ``fn(self)`` once the run is final, from a thread that waits for it."""

        def wait_then_call() -> None:
            self.wait()
            fn(self)

        threading.Thread(target=wait_then_call, daemon=True).start()

    def _state_of(self, run: s.TaskRun) -> State[R]:
        self.task_run_name = run.name
        state: State[R] = State(type=run.state_type, name=run.state_name or "", message=run.message)
        if not run.state_type.is_terminal:
            return state
        with self._lock:
            if self._final is None:
                state.data = _final_data(run, self._store)
                self._final = state
            return self._final

    def __repr__(self) -> str:
        return f"PrefectDistributedFuture({self.task_run_id!r})"


def _final_data(run: s.TaskRun, store: ResultStore | None) -> Any:
    """A completed run's value, or a failed run's exception; None when it is not stored."""
    if run.result is None:
        return None
    try:
        value = load_result(run.result, store)
    except MissingResult:
        if run.state_type is StateType.COMPLETED:
            raise
        return None
    return value
