"""``TaskFuture``: the handle ``Task.submit`` returns."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Generic, TypeVar

R = TypeVar("R")


class TaskFuture(Generic[R]):
    """The eventual result of one submitted task run."""

    def __init__(self, future: Future[R], task_run_name: str) -> None:
        self._future = future
        self.task_run_name = task_run_name

    def wait(self, timeout: float | None = None) -> None:
        """Block until the task run finishes (or ``timeout`` passes); never raises its error."""
        try:
            self._future.exception(timeout=timeout)
        except TimeoutError:
            return

    def done(self) -> bool:
        return self._future.done()

    def result(self, timeout: float | None = None) -> R:
        """The task's return value; re-raises the task's exception."""
        return self._future.result(timeout=timeout)

    def __repr__(self) -> str:
        status = "done" if self.done() else "running"
        return f"TaskFuture({self.task_run_name!r}, {status})"


def resolve_futures(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Replace futures passed directly as arguments by their results (waiting for them)."""

    def value(item: Any) -> Any:
        return item.result() if isinstance(item, TaskFuture) else item

    return tuple(value(a) for a in args), {k: value(v) for k, v in kwargs.items()}
