"""The flow-run state machine, without I/O."""

import pytest

from flowyard.orchestrator.transitions import ALLOWED, decide
from flowyard.states import TERMINAL_STATES
from flowyard.states import StateType as S


def test_terminal_states_are_final():
    """No move leaves a terminal state unless forced."""
    for terminal in TERMINAL_STATES:
        for target in S:
            assert not decide(terminal, target, run_token=None, given_token=None).accepted
        assert decide(terminal, S.SCHEDULED, run_token=None, given_token=None, force=True).accepted


@pytest.mark.parametrize(
    ("current", "proposed"),
    [
        (S.SCHEDULED, S.PENDING),
        (S.PENDING, S.RUNNING),
        (S.RUNNING, S.COMPLETED),
        (S.RUNNING, S.FAILED),
        (S.RUNNING, S.CANCELLING),
        (S.CANCELLING, S.CANCELLED),
        (S.PENDING, S.SCHEDULED),
        (S.PENDING, S.CRASHED),
    ],
)
def test_life_of_a_run_is_allowed(current, proposed):
    """Each step of a normal run's life is accepted with the right token."""
    assert decide(current, proposed, run_token="t", given_token="t").accepted


def test_running_needs_the_claim_token():
    """Pending → Running without the claim token is refused."""
    decision = decide(S.PENDING, S.RUNNING, run_token="t1", given_token=None)
    assert not decision.accepted
    assert "token" in decision.reason


def test_stale_token_is_refused():
    """An engine whose claim was taken back cannot start the run."""
    decision = decide(S.PENDING, S.RUNNING, run_token="new", given_token="old")
    assert not decision.accepted
    assert "claimed again" in decision.reason


def test_scheduled_cannot_complete():
    """Skipping Running is refused with a readable reason."""
    decision = decide(S.SCHEDULED, S.COMPLETED, run_token=None, given_token=None)
    assert not decision.accepted
    assert decision.reason == "cannot move a Scheduled run to Completed"


def test_table_covers_every_state():
    """Every state has an entry in the table."""
    assert set(ALLOWED) == set(S)


def test_only_the_claim_holder_pauses_and_anyone_resumes():
    """Running → Paused is the engine's (claim token); Paused → Running is a resume by an
    operator; a paused run cannot complete without being resumed."""
    assert not decide(S.RUNNING, S.PAUSED, run_token="t", given_token=None).accepted
    assert decide(S.RUNNING, S.PAUSED, run_token="t", given_token="t").accepted
    assert decide(S.PAUSED, S.RUNNING, run_token="t", given_token=None).accepted
    assert decide(S.PAUSED, S.CANCELLING, run_token="t", given_token=None).accepted
    assert not decide(S.PAUSED, S.COMPLETED, run_token="t", given_token="t").accepted
