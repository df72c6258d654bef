"""The reconciler's decision table, without I/O: every cause, every state."""

from __future__ import annotations

import itertools

import pytest

from flowyard.orchestrator.services.reconciler import (
    CANCELLED_UNCONFIRMED,
    CRASHED,
    RETURNED,
    SILENT,
    Cause,
    Move,
    acted_on,
    decide,
)
from flowyard.orchestrator.transitions import ALLOWED
from flowyard.states import StateType as S

EXPECTED: dict[tuple[Cause, S, bool], Move] = {
    (Cause.LEASE_EXPIRED, S.PENDING, False): Move(S.SCHEDULED, RETURNED),
    (Cause.LEASE_EXPIRED, S.RUNNING, False): Move(S.CRASHED, CRASHED),
    (Cause.LEASE_EXPIRED, S.PAUSED, False): Move(S.CRASHED, CRASHED),
    (Cause.LEASE_EXPIRED, S.SCHEDULED, True): Move(S.CRASHED, CRASHED),
    (Cause.LEASE_EXPIRED, S.CANCELLING, False): Move(S.CANCELLED, CANCELLED_UNCONFIRMED),
    (Cause.CANCEL_OVERDUE, S.CANCELLING, False): Move(S.CANCELLED, CANCELLED_UNCONFIRMED),
    (Cause.PROCESS_SILENT, S.SCHEDULED, False): Move(S.CRASHED, SILENT),
    (Cause.PROCESS_SILENT, S.RUNNING, False): Move(S.CRASHED, SILENT),
    (Cause.PROCESS_SILENT, S.PAUSED, False): Move(S.CRASHED, SILENT),
}
"""Every move the reconciler makes, written out; every other combination is no move."""

CASES = list(itertools.product(Cause, S))


@pytest.mark.parametrize(("cause", "state"), CASES, ids=[f"{c.value}-{s}" for c, s in CASES])
def test_each_cause_and_state_gives_the_expected_move(cause: Cause, state: S) -> None:
    """The table moves exactly the runs listed above; a run awaiting a flow retry in its
    engine (Scheduled, still claimed) counts only for an expired lease."""
    assert decide(cause, state) == EXPECTED.get((cause, state, False))
    waiting = EXPECTED.get((cause, state, True), EXPECTED.get((cause, state, False)))
    if state is S.SCHEDULED and cause is Cause.LEASE_EXPIRED:
        assert waiting is not None
    assert decide(cause, state, waits_in_process=True) == waiting


def test_a_final_run_is_never_touched() -> None:
    """No cause moves a Completed, Failed, Cancelled or Crashed run."""
    final = [state for state in S if state.is_terminal]
    assert not [(c, s) for c in Cause for s in final if decide(c, s, waits_in_process=True)]


def test_every_move_leaves_the_state_it_acts_on() -> None:
    """Each move is one the state machine allows from that state (the reconciler forces
    it only to skip the claim-token check), and never stays put."""
    for (_, state, waits), move in EXPECTED.items():
        assert move.to is not state or waits
        assert move.to in ALLOWED[state]


def test_the_passes_look_for_the_states_the_table_acts_on() -> None:
    """Each pass queries exactly the states its cause moves (no run read for nothing)."""
    assert acted_on(Cause.CANCEL_OVERDUE) == [S.CANCELLING]
    assert set(acted_on(Cause.PROCESS_SILENT)) == {S.SCHEDULED, S.RUNNING, S.PAUSED}
    assert set(acted_on(Cause.LEASE_EXPIRED)) == {S.PENDING, S.RUNNING, S.PAUSED, S.CANCELLING}
