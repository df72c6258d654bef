"""``FlowRunRecorder``: proposes one flow run's states to the API.

A direct call's run proposes without a token; the engine's recorder carries the claim
token, which the API requires for the moves of a claimed run (Running ⇄ AwaitingRetry
included). Like all reporting, an unreachable API is logged and never fails the flow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from flowyard.errors import FlowyardError
from flowyard.schemas import PauseRequest, StateChange, StateChangeResult
from flowyard.states import State, StateType

if TYPE_CHECKING:
    from flowyard.client import FlowyardClient

log = structlog.get_logger()

MESSAGE_LIMIT = 500
STOPPING = (StateType.CANCELLING, StateType.CANCELLED)


class FlowRunRecorder:
    """The API's record of one flow run, seen from the code running it."""

    def __init__(self, client: FlowyardClient, run_id: str, token: str | None = None) -> None:
        self.client = client
        self.run_id = run_id
        self.token = token

    def change(self, state: State[Any], pause: PauseRequest | None = None) -> StateChange:
        message = state.message or (None if state.is_completed() else state.name)
        return StateChange(
            type=state.type,
            message=message[:MESSAGE_LIMIT] if message else None,
            token=self.token,
            scheduled_time=state.scheduled_time if state.is_scheduled() else None,
            pause=pause,
        )

    def propose(
        self, state: State[Any], pause: PauseRequest | None = None
    ) -> StateChangeResult | None:
        """The API's answer, or None when it could not be reached (logged)."""
        try:
            result = self.client.set_flow_run_state(self.run_id, self.change(state, pause))
        except FlowyardError as exc:
            log.warning("flow_run_state_not_recorded", run_id=self.run_id, error=str(exc))
            return None
        if not result.accepted:
            log.warning(
                "flow_run_state_refused", run_id=self.run_id, state=state.name,
                reason=result.reason, now=result.state.type,
            )  # fmt: skip
        return result

    def being_cancelled(self) -> bool:
        """True when the API says the run is Cancelling (or already Cancelled)."""
        try:
            return self.client.read_flow_run(self.run_id).state.type in STOPPING
        except FlowyardError as exc:
            log.warning("flow_run_state_unknown", run_id=self.run_id, error=str(exc))
            return False
