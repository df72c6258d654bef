"""The flow-run state machine: which moves are allowed, and who may make them.

Pure: no I/O. The API applies ``decide`` inside a compare-and-set on the store, so two
callers racing for the same run cannot both win.

Running → Scheduled is a flow's retry inside its own process (``AwaitingRetry``): the
run keeps its claim, and only that claim's holder may make the move and the way back.
Running → Paused is ``pause_flow_run``, also the claim holder's; Paused → Running is a
resume, by an operator (or by the engine itself, when its pause timed out).
"""

from __future__ import annotations

from dataclasses import dataclass

from flowyard.states import StateType as S

ALLOWED: dict[S, frozenset[S]] = {
    S.SCHEDULED: frozenset({S.PENDING, S.RUNNING, S.CANCELLED, S.CRASHED}),
    S.PENDING: frozenset({S.SCHEDULED, S.RUNNING, S.CANCELLING, S.CANCELLED, S.CRASHED, S.FAILED}),
    S.RUNNING: frozenset(
        {S.SCHEDULED, S.PAUSED, S.COMPLETED, S.FAILED, S.CRASHED, S.CANCELLING, S.CANCELLED}
    ),
    S.PAUSED: frozenset({S.RUNNING, S.FAILED, S.CRASHED, S.CANCELLING, S.CANCELLED}),
    S.CANCELLING: frozenset({S.CANCELLED, S.COMPLETED, S.FAILED, S.CRASHED}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
    S.CRASHED: frozenset(),
}

# Moves that only the holder of the run's claim token may make.
TOKEN_GUARDED = frozenset(
    {
        (S.PENDING, S.RUNNING),
        (S.SCHEDULED, S.PENDING),
        (S.RUNNING, S.SCHEDULED),  # awaiting a retry in-process
        (S.SCHEDULED, S.RUNNING),  # ...and back
        (S.RUNNING, S.PAUSED),  # pause_flow_run (anyone may resume: Paused → Running)
    }
)


@dataclass(frozen=True)
class Decision:
    accepted: bool
    reason: str | None = None


def decide(
    current: S,
    proposed: S,
    *,
    run_token: str | None,
    given_token: str | None,
    force: bool = False,
) -> Decision:
    """May a run in ``current`` move to ``proposed`` for a caller holding ``given_token``?"""
    if force:
        return Decision(True)
    if proposed not in ALLOWED[current]:
        return Decision(
            False, f"cannot move a {current.display_name} run to {proposed.display_name}"
        )
    if given_token is not None and run_token is not None and given_token != run_token:
        return Decision(False, "the claim token does not match: this run was claimed again")
    if (current, proposed) in TOKEN_GUARDED and run_token is not None and given_token is None:
        return Decision(False, f"moving to {proposed.display_name} needs the run's claim token")
    return Decision(True)
