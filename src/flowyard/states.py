"""Flow-run and task-run state types, shared by every room.

The rules for moving between them live in ``flowyard.orchestrator.transitions``.
"""

from __future__ import annotations

from enum import StrEnum


class StateType(StrEnum):
    """The kinds of state a run can be in."""

    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
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
