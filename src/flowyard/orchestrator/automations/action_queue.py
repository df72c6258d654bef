"""Automation actions as RQ jobs on the server's Redis (interface; built by the actions work)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flowyard.orchestrator.runtime import Orchestrator


class ActionQueue:
    """Queues action rows (``m.AutomationAction``) as RQ jobs and runs them in-process."""

    def __init__(self, redis_url: str, orch: Orchestrator) -> None:
        self.redis_url = redis_url
        self.orch = orch

    def enqueue(self, action_ids: list[str]) -> None:
        """Queue the actions of a committed firing (blocking; call it off the event loop)."""

    def start(self) -> None:
        """Start running queued actions in this process (called from the event loop)."""

    def stop(self) -> None:
        """Stop running actions (the current one finishes)."""
