"""A flow's retry inside its engine: Running ⇄ Scheduled (AwaitingRetry), guarded by the claim."""

import pytest

from flowyard.orchestrator.transitions import decide
from flowyard.states import StateType as S

RETRY_MOVES = [(S.RUNNING, S.SCHEDULED), (S.SCHEDULED, S.RUNNING)]


@pytest.mark.parametrize(("current", "proposed"), RETRY_MOVES)
class TestRetryMoves:
    def test_the_claim_holder_may_make_them(self, current, proposed):
        """With the run's claim token, the move is accepted."""
        assert decide(current, proposed, run_token="t", given_token="t").accepted

    def test_a_caller_without_the_token_may_not(self, current, proposed):
        """A claimed run's retry moves need its claim token."""
        decision = decide(current, proposed, run_token="t", given_token=None)
        assert not decision.accepted and "claim token" in decision.reason

    def test_a_stale_engine_may_not(self, current, proposed):
        """An engine whose claim was taken back cannot retry the run."""
        decision = decide(current, proposed, run_token="new", given_token="old")
        assert not decision.accepted and "claimed again" in decision.reason

    def test_a_direct_run_needs_no_token(self, current, proposed):
        """A run called from a script was never claimed: its retries need no token."""
        assert decide(current, proposed, run_token=None, given_token=None).accepted


def test_a_cancelling_run_cannot_start_its_retry():
    """Once Cancelling, the engine waking up from a retry delay is refused Running."""
    decision = decide(S.CANCELLING, S.RUNNING, run_token="t", given_token="t")
    assert not decision.accepted
    assert decision.reason == "cannot move a Cancelling run to Running"
