"""Retry delays (pure), and task retries with an injected sleep."""

from __future__ import annotations

import pytest

from flowyard import flow
from flowyard.sdk import Task
from flowyard.sdk.retries import delay_list, retry_delay
from flowyard.tasks import exponential_backoff


def always_fails() -> None:
    raise RuntimeError("no")


class TestDelays:
    def test_exponential_backoff_doubles(self):
        """exponential_backoff(10) waits 10, 20, 40 seconds for three retries."""
        assert delay_list(exponential_backoff(backoff_factor=10), 3) == [10, 20, 40]

    def test_list_last_value_repeats(self):
        """Retry n waits item n; past the list the last item repeats."""
        delays = delay_list([1, 2], 3)
        assert [retry_delay(delays, n) for n in (1, 2, 3)] == [1, 2, 2]

    @pytest.mark.parametrize("draw", [0.0, 0.25, 0.5, 0.999])
    def test_jitter_stays_within_its_bounds(self, draw):
        """With jitter factor j a delay d falls within [d(1-j), d(1+j)]."""
        delay = retry_delay([10.0], 1, jitter_factor=0.5, rand=lambda: draw)
        assert 5.0 <= delay <= 15.0

    def test_bad_options_are_refused(self):
        """Negative retries or jitter factors raise at decoration."""
        with pytest.raises(ValueError):
            Task(always_fails, retries=-1)
        with pytest.raises(ValueError):
            Task(always_fails, retry_jitter_factor=-0.1)


class TestTaskRetries:
    def test_backoff_delays_are_slept_between_attempts(self):
        """retries=3 with exponential_backoff(2) sleeps 2, 4, 8 and then fails."""
        sleeps: list[float] = []
        t = Task(always_fails, retries=3, retry_delay_seconds=exponential_backoff(2),
                 sleep=sleeps.append)  # fmt: skip

        @flow
        def f() -> None:
            t()

        state = f(return_state=True)
        assert sleeps == [2, 4, 8] and state.is_failed()

    def test_jittered_delays_within_bounds(self):
        """With retry_jitter_factor=1 every delay of 4 s lies between 0 and 8 s."""
        sleeps: list[float] = []
        t = Task(always_fails, retries=5, retry_delay_seconds=4, retry_jitter_factor=1,
                 sleep=sleeps.append)  # fmt: skip
        t(return_state=True)
        assert len(sleeps) == 5 and all(0 <= s <= 8 for s in sleeps)

    def test_retry_condition_fn_stops_retries(self):
        """A retry_condition_fn returning False makes the first failure final."""
        calls: list[int] = []

        def flaky() -> None:
            calls.append(1)
            raise ValueError("permanent")

        def only_timeouts(task, task_run, state) -> bool:
            return isinstance(state.result(raise_on_failure=False), TimeoutError)

        t = Task(flaky, retries=3, retry_condition_fn=only_timeouts, sleep=lambda _: None)
        assert t(return_state=True).is_failed() and len(calls) == 1

    def test_run_count_grows_and_logs_name_the_retry(self, capsys):
        """Each attempt sees its run_count; the log says 'Retry 1/2'."""
        from flowyard import runtime

        seen: list[int] = []

        def body() -> str:
            seen.append(runtime.task_run.run_count)
            if len(seen) < 3:
                raise RuntimeError("again")
            return "ok"

        t = Task(body, retries=2, sleep=lambda _: None)
        assert t() == "ok" and seen == [1, 2, 3]
        assert "Retry 1/2" in capsys.readouterr().err
