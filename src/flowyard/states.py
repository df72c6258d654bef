"""Flow-run and task-run states, shared by every room.

``StateType`` is what the store and the API record; the rules for moving between types
live in ``flowyard.orchestrator.transitions``. ``State`` and its constructors
(``Completed()``, ``Failed()``, …) are the SDK's view, as in Prefect: a type, a display
name (``Late`` and ``AwaitingRetry`` are Scheduled states, ``Retrying`` a Running one), a
message, and the run's result or exception as ``data``. A Paused flow run waits, in its
process, for ``flowyard flow-run resume`` (``pause_flow_run``).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import GeneratorType
from typing import Any, Generic, TypeVar

from flowyard.errors import (
    CancelledRun,
    CrashedRun,
    FailedRun,
    FlowyardError,
    PausedRun,
    UnfinishedRun,
)

R = TypeVar("R")


class StateType(StrEnum):
    """The kinds of state a run can be in."""

    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    CRASHED = "CRASHED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def display_name(self) -> str:
        return self.value.capitalize()


TERMINAL_STATES = frozenset(
    {StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED}
)


# -- State objects (the SDK's, as in Prefect) ------------------------------------------


@dataclass
class State(Generic[R]):
    """What a flow run or task run is (or ended) in, with its result or exception as ``data``."""

    type: StateType
    name: str = ""
    message: str | None = None
    data: Any = None
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))
    scheduled_time: datetime | None = None
    cache_key: str | None = None
    cache_expiration: datetime | None = None
    flow_run_id: str | None = None
    task_run_id: str | None = None
    """The run the state belongs to (Prefect's ``state_details``); None for a state a user
    made, which a run that returns it ends in as it is."""
    returned: bool = field(default=False, repr=False, compare=False)
    """A run ended in it by returning it: its ``data`` is the run's result even when None
    (Prefect records one), so ``result(raise_on_failure=False)`` gives None, not an error."""

    def __post_init__(self) -> None:
        if not self.name:
            self.name = self.type.display_name

    def __repr__(self) -> str:
        shown = f"{self.message!r}" if self.message else ""
        if self.name != self.type.display_name:
            shown += (", " if shown else "") + f"type={self.type.value}"
        return f"{self.name}({shown})"

    def is_scheduled(self) -> bool:
        return self.type is StateType.SCHEDULED

    def is_pending(self) -> bool:
        return self.type is StateType.PENDING

    def is_running(self) -> bool:
        return self.type is StateType.RUNNING

    def is_completed(self) -> bool:
        return self.type is StateType.COMPLETED

    def is_failed(self) -> bool:
        return self.type is StateType.FAILED

    def is_crashed(self) -> bool:
        return self.type is StateType.CRASHED

    def is_cancelled(self) -> bool:
        return self.type is StateType.CANCELLED

    def is_cancelling(self) -> bool:
        return self.type is StateType.CANCELLING

    def is_paused(self) -> bool:
        return self.type is StateType.PAUSED

    def is_final(self) -> bool:
        return self.type.is_terminal

    def result(
        self, raise_on_failure: bool = True, retry_result_failure: bool = True,
        *, _sync: bool | None = None,
    ) -> Any:  # fmt: skip
        """The run's return value, as Prefect's ``State.result()``: a paused or unfinished
        run raises; a failed, crashed or cancelled one raises its exception (or, when told
        not to, returns its data — the exception, or the states it aggregates).

        In an async context (an async flow or task, or a running event loop outside any
        run) it returns a coroutine to await, as Prefect 3's; ``_sync=True``/``False``
        chooses. ``retry_result_failure`` is accepted for Prefect's signature (results
        are read once here)."""
        if _sync is False or (_sync is None and in_async_context()):
            return self.aresult(raise_on_failure)
        return self._value(raise_on_failure)

    async def aresult(
        self, raise_on_failure: bool = True, retry_result_failure: bool = True
    ) -> Any:
        """``result()`` to await, whatever the context (Prefect's ``State.aresult``)."""
        return self._value(raise_on_failure)

    def _value(self, raise_on_failure: bool) -> Any:
        if self.type is StateType.PAUSED:
            raise PausedRun("Run is paused, its result is not available.")
        if not self.is_final():
            raise UnfinishedRun(f"Run is in {self.type.value} state, its result is not available.")
        failed = self.type is not StateType.COMPLETED
        if failed and raise_on_failure:
            raise get_state_exception(self)
        if failed and self.data is None and not self.returned:
            return get_state_exception(self)
        return self.data


RUN_IS_ASYNC: ContextVar[bool | None] = ContextVar("flowyard_run_is_async", default=None)
"""Whether the innermost flow or task run's function is async: set by the SDK's run
scopes (``sdk/context.py``), None outside any run. Kept here, below the SDK, so that the
API documents that use ``StateType`` do not load the SDK."""


def in_async_context() -> bool:
    """Prefect's rule for whether ``State.result()`` returns a coroutine: inside a run,
    whether the innermost run's function (task, else flow) is async; outside any run,
    whether an event loop runs in this thread."""
    running = RUN_IS_ASYNC.get()
    if running is not None:
        return running
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


_WRAPPERS: dict[StateType, tuple[type[FlowyardError], str]] = {
    StateType.FAILED: (FailedRun, "Run failed."),
    StateType.CRASHED: (CrashedRun, "Run crashed."),
    StateType.CANCELLED: (CancelledRun, "Run cancelled."),
}


def get_state_exception(state: State[Any]) -> BaseException:
    """The exception a failed, crashed or cancelled state stands for (Prefect's rules): its
    data's own exception, the first failure among the states it holds, or a ``FailedRun``/
    ``CrashedRun``/``CancelledRun`` carrying its message."""
    if state.type not in _WRAPPERS:
        raise ValueError(f"Expected failed or crashed state got {state!r}.")
    wrapper, default_message = _WRAPPERS[state.type]
    data = state.data
    if data is None:
        return wrapper(state.message or default_message)
    if isinstance(data, BaseException):
        return data
    if isinstance(data, str):
        return wrapper(data)
    if isinstance(data, State):
        return get_state_exception(data)
    if is_state_iterable(data):
        for inner in data:
            if inner.type in _WRAPPERS:
                return get_state_exception(inner)
        raise ValueError("Failed state result was an iterable of states but none were failed.")
    raise TypeError(
        f"Unexpected result for failed state: {data!r} —— "
        f"{type(data).__name__} cannot be resolved into an exception"
    )


def is_state_iterable(value: Any) -> bool:
    """A non-empty list, set or tuple of states only (not dicts or other iterables)."""
    return (
        isinstance(value, list | set | tuple)
        and bool(value)
        and all(isinstance(v, State) for v in value)
    )


def return_value_to_state(value: Any) -> State[Any]:
    """The state a run ends in when its function returns ``value`` (Prefect's rule).

    A state the user made is used as it is (its data, even None, is the result). A run's
    state, or a list/tuple/set of states, is aggregated: Completed when all completed,
    else Cancelled if any is cancelled, Paused if any is paused, Failed otherwise — with
    ``'2/3 states failed.'``-style messages and the states themselves as the data.
    Anything else is Completed with the value (a generator drained into a list).
    """
    if isinstance(value, State) and not value.flow_run_id and not value.task_run_id:
        value.returned = True
        return value
    if isinstance(value, State) or is_state_iterable(value):
        states: list[State[Any]] = [value] if isinstance(value, State) else list(value)
        kind, message = _aggregate(states)
        return State(kind, message=message, data=value)
    if isinstance(value, GeneratorType):
        value = list(value)
    return State(StateType.COMPLETED, data=value)


def _aggregate(states: list[State[Any]]) -> tuple[StateType, str]:
    counts = Counter(s.type for s in states)
    total = len(states)
    failed = counts[StateType.FAILED] + counts[StateType.CRASHED]
    not_final = sum(not s.is_final() for s in states)
    if counts[StateType.COMPLETED] == total:
        return StateType.COMPLETED, "All states completed."
    if counts[StateType.CANCELLED]:
        return StateType.CANCELLED, f"{counts[StateType.CANCELLED]}/{total} states cancelled."
    if counts[StateType.PAUSED]:
        return StateType.PAUSED, f"{counts[StateType.PAUSED]}/{total} states paused."
    if failed:
        return StateType.FAILED, f"{failed}/{total} states failed."
    if not_final:
        return StateType.FAILED, f"{not_final}/{total} states are not final."
    shown = [f"total={total}"] + [f"{k.value!r}={n}" for k, n in counts.items() if n]
    return StateType.FAILED, "Given states: " + ", ".join(shown)


def _constructor(kind: StateType, default_name: str | None = None) -> Callable[..., State[Any]]:
    def make(
        data: Any = None,
        message: str | None = None,
        name: str | None = None,
        **details: Any,
    ) -> State[Any]:
        return State(kind, name or default_name or kind.display_name, message, data, **details)

    make.__name__ = default_name or kind.display_name
    make.__doc__ = f"A new ``{make.__name__}`` state (type {kind.value})."
    return make


Scheduled = _constructor(StateType.SCHEDULED)
Late = _constructor(StateType.SCHEDULED, "Late")
AwaitingRetry = _constructor(StateType.SCHEDULED, "AwaitingRetry")
Pending = _constructor(StateType.PENDING)
Running = _constructor(StateType.RUNNING)
Retrying = _constructor(StateType.RUNNING, "Retrying")
Paused = _constructor(StateType.PAUSED)
SUSPENDED = "Suspended"
"""The name of a suspended run's Paused state: its process exited; a resume schedules it."""
Suspended = _constructor(StateType.PAUSED, SUSPENDED)
Completed = _constructor(StateType.COMPLETED)
Failed = _constructor(StateType.FAILED)
TimedOut = _constructor(StateType.FAILED, "TimedOut")
Cancelling = _constructor(StateType.CANCELLING)
Cancelled = _constructor(StateType.CANCELLED)
Crashed = _constructor(StateType.CRASHED)

__all__ = [
    "TERMINAL_STATES",
    "AwaitingRetry",
    "Cancelled",
    "CancelledRun",
    "Cancelling",
    "Completed",
    "Crashed",
    "CrashedRun",
    "Failed",
    "FailedRun",
    "Late",
    "Paused",
    "PausedRun",
    "SUSPENDED",
    "Suspended",
    "Pending",
    "Retrying",
    "Running",
    "Scheduled",
    "State",
    "StateType",
    "TimedOut",
    "UnfinishedRun",
    "get_state_exception",
    "is_state_iterable",
    "return_value_to_state",
]
