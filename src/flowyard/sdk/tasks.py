"""``@task``: a function whose calls inside a flow run are recorded as task runs."""

from __future__ import annotations

import contextvars
import functools
import inspect
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Generic, ParamSpec, TypeVar, overload

from tenacity import RetryCallState, Retrying, stop_after_attempt

from flowyard.schemas import TaskRunCreate, TaskRunUpdate
from flowyard.sdk.context import (
    FlowRunContext,
    TaskRunContext,
    get_flow_run_context,
    task_run_scope,
)
from flowyard.sdk.futures import TaskFuture, resolve_futures
from flowyard.sdk.logs import get_run_logger
from flowyard.states import StateType

P = ParamSpec("P")
R = TypeVar("R")

RetryDelay = float | Sequence[float]


class Task(Generic[P, R]):
    """A task: call it to run it (recorded inside a flow run), or ``submit`` it to a thread."""

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        retries: int = 0,
        retry_delay_seconds: RetryDelay = 0,
        tags: Sequence[str] = (),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if inspect.iscoroutinefunction(fn):
            raise TypeError(f"async tasks are not supported yet: {fn.__qualname__}")
        if retries < 0:
            raise ValueError("retries must be >= 0")
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = name or fn.__name__
        self.description = description or inspect.getdoc(fn)
        self.retries = retries
        self.retry_delay_seconds = retry_delay_seconds
        self.tags = frozenset(tags)
        self.task_key = f"{fn.__module__}.{fn.__qualname__}"
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"Task(name={self.name!r})"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        context = get_flow_run_context()
        if context is None:
            return self.fn(*args, **kwargs)
        run_name = context.next_task_run_name(self.task_key, self.name)
        return self._run(context, run_name, args, kwargs)

    def submit(self, *args: P.args, **kwargs: P.kwargs) -> TaskFuture[R]:
        """Run the task on the flow run's thread pool (outside a flow run: right away)."""
        context = get_flow_run_context()
        if context is None:
            future: Future[R] = Future()
            try:
                future.set_result(self.fn(*args, **kwargs))
            except Exception as exc:
                future.set_exception(exc)
            return TaskFuture(future, self.name)
        run_name = context.next_task_run_name(self.task_key, self.name)
        copied = contextvars.copy_context()
        pool_future = context.executor().submit(
            copied.run, self._run, context, run_name, args, kwargs
        )
        return TaskFuture(pool_future, run_name)

    def _run(
        self,
        context: FlowRunContext,
        run_name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> R:
        """One recorded task run: Running, then Completed or Failed."""
        args, kwargs = resolve_futures(args, kwargs)
        body = TaskRunCreate(
            id=str(uuid.uuid4()),
            flow_run_id=context.flow_run_id,
            name=run_name,
            task_key=self.task_key,
            parameters=_summarize(self.fn, args, kwargs),
        )
        recorded_id = context.reporter.start_task_run(body)
        with task_run_scope(TaskRunContext(recorded_id, run_name)):
            logger = get_run_logger()
            try:
                result = self._call_with_retries(args, kwargs)
            except Exception as exc:
                message = f"Task run encountered an exception {type(exc).__name__}: {exc}"
                logger.error("Finished in state Failed(%r)", message, exc_info=True)
                _finish(context, recorded_id, StateType.FAILED, message)
                raise
            logger.info("Finished in state Completed()")
            _finish(context, recorded_id, StateType.COMPLETED, None)
            return result

    def _call_with_retries(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        retrying = Retrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=self._retry_delay,
            before_sleep=self._log_retry,
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(self.fn, *args, **kwargs)

    def _retry_delay(self, state: RetryCallState) -> float:
        delays = self.retry_delay_seconds
        if isinstance(delays, int | float):
            return float(delays)
        if not delays:
            return 0.0
        return float(delays[min(state.attempt_number, len(delays)) - 1])

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        get_run_logger().warning(
            "Task run failed with exception %r - Retry %d/%d will start %s second(s) from now",
            exc,
            state.attempt_number,
            self.retries,
            delay,
        )


def _finish(
    context: FlowRunContext, task_run_id: str | None, state: StateType, message: str | None
) -> None:
    if task_run_id:
        context.reporter.finish_task_run(task_run_id, TaskRunUpdate(state=state, message=message))


def _summarize(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The call's arguments by name, as JSON scalars or a short ``repr``."""
    try:
        bound = inspect.signature(fn).bind_partial(*args, **kwargs).arguments
    except TypeError:
        return {}
    return {name: _scalar(value) for name, value in bound.items()}


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value if not isinstance(value, str) else value[:200]
    return repr(value)[:200]


@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...


@overload
def task(
    *,
    name: str | None = None,
    description: str | None = None,
    retries: int = 0,
    retry_delay_seconds: RetryDelay = 0,
    tags: Sequence[str] = (),
) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(fn: Callable[P, R] | None = None, /, **options: Any) -> Any:
    """Mark a function as a task: ``@task`` or ``@task(name=..., retries=..., ...)``."""
    if fn is None:
        return lambda f: Task(f, **options)
    return Task(fn, **options)
