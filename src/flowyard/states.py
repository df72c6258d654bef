"""Flow-run and task-run states, shared by every room.

``StateType`` is what the store and the API record; the rules for moving between types
live in ``flowyard.orchestrator.transitions``. ``State`` and its constructors
(``Completed()``, ``Failed()``, …) are the SDK's view, as in Prefect: a type, a display
name (``Late`` and ``AwaitingRetry`` are Scheduled states, ``Retrying`` a Running one), a
message, and the run's result or exception as ``data``. A Paused flow run waits, in its
process, for ``flowyard flow-run resume`` (``pause_flow_run``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from flowyard.errors import FlowyardError

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


class FailedRun(FlowyardError):
    """Raised by ``State.result()`` when a Failed state carries no exception of its own."""


class CrashedRun(FlowyardError):
    """Raised by ``State.result()`` for a Crashed state without an exception."""


class CancelledRun(FlowyardError):
    """Raised by ``State.result()`` for a Cancelled state."""


class UnfinishedRun(FlowyardError):
    """Raised by ``State.result()`` when the run has not reached a final state."""


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

    def result(self, raise_on_failure: bool = True) -> Any:
        """The run's return value; for a failed run, raise (or return) its exception."""
        if self.type is StateType.COMPLETED:
            return self.data
        error = self._error()
        if raise_on_failure:
            raise error
        return error

    def _error(self) -> BaseException:
        if isinstance(self.data, BaseException):
            return self.data
        if isinstance(self.data, State) and not self.data.is_completed():
            return self.data._error()
        kind = {
            StateType.FAILED: FailedRun,
            StateType.CRASHED: CrashedRun,
            StateType.CANCELLED: CancelledRun,
        }.get(self.type, UnfinishedRun)
        return kind(self.message or f"the run is in a {self.name} state")


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
Completed = _constructor(StateType.COMPLETED)
Failed = _constructor(StateType.FAILED)
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
    "Pending",
    "Retrying",
    "Running",
    "Scheduled",
    "State",
    "StateType",
    "UnfinishedRun",
]
