"""Futures of submitted task runs, and resolving task inputs that are futures or states.

``TaskFuture`` is Prefect's ``PrefectFuture``: ``result()`` gives the task's value (or
raises its exception), ``wait()`` only waits, ``state`` is the task run's state. Module
functions ``wait`` and ``as_completed`` work on many futures at once.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, NamedTuple, TypeVar

from flowyard.errors import UpstreamTaskError
from flowyard.sdk.annotations import allow_failure, opaque, quote
from flowyard.sdk.distributed_futures import PrefectDistributedFuture
from flowyard.states import Pending, State

R = TypeVar("R")


class TaskFuture(Generic[R]):
    """The eventual state and result of one submitted task run."""

    def __init__(
        self, future: cf.Future[State[R]], task_run_name: str, task_run_id: str | None = None
    ) -> None:
        self._future = future
        self.task_run_name = task_run_name
        self.task_run_id = task_run_id
        """The task run's id, known from the call on (before the run starts), as in Prefect."""

    @property
    def state(self) -> State[R]:
        """The final state once done; a Pending state before."""
        if self._future.done():
            return self._future.result()
        return Pending()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the task run finishes (or ``timeout`` passes); never raises its error."""
        cf.wait([self._future], timeout=timeout)

    def done(self) -> bool:
        return self._future.done()

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> R:
        """The task's return value; re-raises the task's exception (unless told not to)."""
        try:
            state = self._future.result(timeout=timeout)
        except cf.TimeoutError:
            raise TimeoutError(
                f"task run {self.task_run_name!r} did not finish within {timeout} second(s)"
            ) from None
        result: R = state.result(raise_on_failure=raise_on_failure, _sync=True)
        return result

    def add_done_callback(self, fn: Callable[[TaskFuture[R]], object]) -> None:
        """Call ``fn(self)`` once the task run is done (at once if it already is)."""
        self._future.add_done_callback(lambda _: fn(self))

    def __repr__(self) -> str:
        status = "done" if self.done() else "running"
        return f"TaskFuture({self.task_run_name!r}, {status})"


class PrefectFutureList(list[TaskFuture[R]]):
    """What ``Task.map`` returns: a list of futures that can wait and collect as one (of
    background runs, ``PrefectDistributedFuture``, after ``map(..., deferred=True)``)."""

    def wait(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        wait([f for f in self if isinstance(f, TaskFuture)], timeout=timeout)
        for future in self:
            if isinstance(future, PrefectDistributedFuture):  # long-polls the API
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                future.wait(left)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> list[R]:
        return [f.result(timeout=timeout, raise_on_failure=raise_on_failure) for f in self]


TaskFutureList = PrefectFutureList
"""Its earlier name."""


class DoneAndNotDoneFutures(NamedTuple):
    done: set[TaskFuture[Any]]
    not_done: set[TaskFuture[Any]]


def wait(futures: Iterable[TaskFuture[Any]], timeout: float | None = None) -> DoneAndNotDoneFutures:
    """Wait for every future (up to ``timeout``); returns the done and not-done sets."""
    by_inner = {f._future: f for f in futures}
    done, not_done = cf.wait(list(by_inner), timeout=timeout)
    return DoneAndNotDoneFutures({by_inner[f] for f in done}, {by_inner[f] for f in not_done})


def as_completed(
    futures: Iterable[TaskFuture[Any]], timeout: float | None = None
) -> Iterator[TaskFuture[Any]]:
    """Yield futures as their task runs finish; ``TimeoutError`` if ``timeout`` passes first."""
    by_inner = {f._future: f for f in futures}
    try:
        for inner in cf.as_completed(list(by_inner), timeout=timeout):
            yield by_inner[inner]
    except cf.TimeoutError:
        raise TimeoutError(f"futures unfinished after {timeout} second(s)") from None


# -- inputs --------------------------------------------------------------------------------

_CONTAINERS = (list, tuple, set, frozenset, dict)


def upstream_futures(values: Iterable[Any]) -> list[TaskFuture[Any]]:  # noqa: C901 - a type switch
    """Every future found in ``values`` (inside lists, tuples, sets, dicts, dataclasses and
    annotations other than ``quote``)."""
    found: list[TaskFuture[Any]] = []

    def visit(item: Any) -> None:
        if isinstance(item, TaskFuture):
            found.append(item)
        elif isinstance(item, allow_failure | opaque):
            visit(item.value)
        elif isinstance(item, dict):
            for v in item.values():
                visit(v)
        elif isinstance(item, _CONTAINERS):
            for v in item:
                visit(v)
        elif _is_dataclass_instance(item):
            for f in dataclasses.fields(item):
                visit(getattr(item, f.name))

    for value in values:
        visit(value)
    return found


def resolve(value: Any, upstream: list[str]) -> Any:
    """``value`` with futures and states replaced by their results.

    Raises ``UpstreamTaskError`` for an upstream that did not complete, unless it is
    wrapped in ``allow_failure`` (then its exception is the value). The names of the
    upstream task runs met are appended to ``upstream``.
    """
    return _resolve(value, upstream, allow=False)


def _resolve(item: Any, upstream: list[str], allow: bool) -> Any:  # noqa: C901 - a type switch
    if isinstance(item, TaskFuture | PrefectDistributedFuture):
        item.wait()
        upstream.append(item.task_run_name)
        return _value(item.state, item.task_run_id, allow)
    if isinstance(item, State):
        return _value(item, item.task_run_id, allow)
    if isinstance(item, allow_failure):
        return _resolve(item.value, upstream, allow=True)
    if isinstance(item, quote):
        return item.value
    if isinstance(item, opaque):
        inner = item.value
        futures = (TaskFuture, PrefectDistributedFuture, State)
        return _resolve(inner, upstream, allow) if isinstance(inner, futures) else inner
    if isinstance(item, dict):
        return {k: _resolve(v, upstream, allow) for k, v in item.items()}
    if isinstance(item, list | tuple | set | frozenset):
        if not any(_may_hold_futures(v) for v in item):
            return item
        resolved = [_resolve(v, upstream, allow) for v in item]
        if isinstance(item, tuple) and hasattr(item, "_fields"):
            return type(item)(*resolved)
        return type(item)(resolved)
    if _is_dataclass_instance(item):
        return _resolve_dataclass(item, upstream, allow)
    return item


_RESOLVABLE = _CONTAINERS + (
    TaskFuture,
    PrefectDistributedFuture,
    State,
    allow_failure,
    quote,
    opaque,
)


def _may_hold_futures(value: Any) -> bool:
    return isinstance(value, _RESOLVABLE) or _is_dataclass_instance(value)


def _is_dataclass_instance(value: Any) -> bool:
    return hasattr(type(value), "__dataclass_fields__") and not isinstance(value, type)


def _resolve_dataclass(item: Any, upstream: list[str], allow: bool) -> Any:
    """The dataclass itself, or a copy made with ``dataclasses.replace`` (so ``__init__`` and
    ``__post_init__`` run again) when some field held a future or state, as in Prefect."""
    changed = {}
    for f in dataclasses.fields(item):
        value = getattr(item, f.name)
        resolved = _resolve(value, upstream, allow)
        if resolved is not value and f.init:
            changed[f.name] = resolved
    return dataclasses.replace(item, **changed) if changed else item


def _value(state: State[Any], task_run_id: str | None, allow: bool) -> Any:
    if state.is_completed():
        return state.data
    if allow:
        return state.result(raise_on_failure=False, _sync=True)
    # Prefect's words: the upstream's id ('None' for a state of no task run)
    raise UpstreamTaskError(f"Upstream task run '{task_run_id}' did not reach a 'COMPLETED' state.")
