"""Flow retries without a server: delays as tasks take them, states and hooks per attempt."""

from __future__ import annotations

import pytest

from flowyard import runtime
from flowyard.sdk import Flow


def _failing(times: int, attempts: list[int]):
    def body() -> int:
        attempts.append(runtime.flow_run.run_count)
        if len(attempts) <= times:
            raise ValueError(f"attempt {len(attempts)} failed")
        return runtime.flow_run.run_count

    return body


class TestFlowRetryDelays:
    def test_a_list_of_delays_is_used_in_order_and_the_last_repeats(self):
        """retry_delay_seconds=[1, 2] waits 1, then 2, then 2 seconds."""
        sleeps: list[float] = []
        attempts: list[int] = []
        flow = Flow(
            _failing(3, attempts), retries=3, retry_delay_seconds=[1, 2], sleep=sleeps.append
        )
        assert flow() == 4
        assert sleeps == [1, 2, 2] and attempts == [1, 2, 3, 4]

    def test_exhausted_retries_fail_with_the_last_exception(self):
        """Every attempt failing: the final state is Failed with the last attempt's error."""
        attempts: list[int] = []
        flow = Flow(_failing(9, attempts), retries=2, sleep=lambda _: None)
        state = flow(return_state=True)
        assert state.is_failed() and attempts == [1, 2, 3]
        assert "attempt 3 failed" in state.message
        with pytest.raises(ValueError, match="attempt 3 failed"):
            state.result()

    def test_failure_hooks_run_once_after_the_last_attempt(self):
        """on_failure waits for the retries to be exhausted."""
        calls: list[str] = []
        flow = Flow(
            _failing(9, []), retries=2, sleep=lambda _: None,
            on_failure=[lambda f, run, state: calls.append(state.name)],
        )  # fmt: skip
        flow(return_state=True)
        assert calls == ["Failed"]

    def test_negative_delays_are_refused(self):
        """A negative delay is a mistake caught when the flow is defined."""
        with pytest.raises(ValueError, match=">= 0"):
            Flow(lambda: None, retries=1, retry_delay_seconds=[-1])
