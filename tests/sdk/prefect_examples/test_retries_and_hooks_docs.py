"""Prefect 3 docs: "How to automatically rerun your workflow when it fails" and "How to
respond to state changes".

Each example is the doc's code with ``prefect`` → ``flowyard`` in imports. Two harmless
changes: the waits between retries are recorded instead of slept (the test calls
``.with_options(sleep=...)`` on the doc's flow or task, then the doc's code), and
httpbin.org is a loopback server (the ``status_server`` fixture).
"""

from __future__ import annotations

import random
import time
from functools import partial

import httpx
import pytest

from flowyard import flow, task
from flowyard.tasks import exponential_backoff


class TestFlowRetries:
    def test_retries(self):
        """retries=3 runs the flow four times, then it fails with the exception."""
        attempts = []

        @flow(retries=3)
        def troublesome_workflow():
            attempts.append(1)
            raise Exception("oopsie daisy")

        state = troublesome_workflow(return_state=True)
        assert state.is_failed() and len(attempts) == 4
        with pytest.raises(Exception, match="oopsie daisy"):
            state.result()

    def test_wait_between_retries(self):
        """retry_delay_seconds=2.7182 waits that long before each retry."""
        waits: list[float] = []

        @flow(retries=3, retry_delay_seconds=2.7182)
        def troublesome_workflow():
            raise Exception("oopsie daisy")

        troublesome_workflow = troublesome_workflow.with_options(sleep=waits.append)
        with pytest.raises(Exception, match="oopsie daisy"):
            troublesome_workflow()
        assert waits == [2.7182] * 3


class TestTaskRetries:
    def test_retry_parts_of_a_workflow(self, status_server, capsys):
        """Only the failing task reruns; it succeeds once httpbin answers 200."""
        url_base = status_server.url

        @task
        def consistent_task() -> dict:
            print("I won't rerun even if the task after me fails")

        @task(retries=4, retry_delay_seconds=5)
        def mercurial_task() -> dict:
            # Will fail half of the time
            url = f"{url_base}/status/{random.choice([200, 500])}"

            response = httpx.get(url)
            response.raise_for_status()

        @flow
        def my_workflow():
            consistent_task()
            mercurial_task()

        waits: list[float] = []
        mercurial_task = mercurial_task.with_options(sleep=waits.append)  # noqa: F841
        random.seed(0)  # choices 500, 500, 200 (checked below)
        my_workflow()
        assert status_server.requests == [500, 500, 200] and waits == [5, 5]
        assert capsys.readouterr().out.count("I won't rerun") == 1

    def test_delay_list(self):
        """retry_delay_seconds=[1, 2, 4, 8] waits those delays in order."""
        waits: list[float] = []

        @task(retries=4, retry_delay_seconds=[1, 2, 4, 8])
        def melancholic_task():
            raise Exception("We used to see each other so much more often")

        state = melancholic_task.with_options(sleep=waits.append)(return_state=True)
        assert waits == [1, 2, 4, 8] and state.is_failed()

    def test_exponential_backoff(self):
        """exponential_backoff(backoff_factor=2) waits 2, 4, 8, 16."""
        waits: list[float] = []

        @task(retries=4, retry_delay_seconds=exponential_backoff(backoff_factor=2))
        def melancholic_task():
            raise Exception("We used to see each other so much more often")

        state = melancholic_task.with_options(sleep=waits.append)(return_state=True)
        assert waits == [2, 4, 8, 16] and state.is_failed()
        assert "We used to see each other" in state.message

    @pytest.mark.parametrize(("code", "requests"), [(404, 1), (401, 1), (500, 2)])
    def test_retry_condition_fn(self, status_server, code, requests):
        """401 and 404 are not retried; 500 is."""

        def retry_handler(task, task_run, state) -> bool:
            """
            Retry handler that skips retries if the HTTP status code is 401 or 404.
            """
            try:
                state.result()
            except httpx.HTTPStatusError as exc:
                do_not_retry_on_these_codes = [401, 404]
                return exc.response.status_code not in do_not_retry_on_these_codes
            except httpx.ConnectError:
                return False
            except Exception:
                return True

        @task(retries=1, retry_condition_fn=retry_handler)
        def api_call_task(url):
            response = httpx.get(url)
            response.raise_for_status()
            return response.json()

        @flow
        def my_workflow(url):
            api_call_task(url=url)

        state = my_workflow(f"{status_server.url}/status/{code}", return_state=True)
        assert state.is_failed() and len(status_server.requests) == requests

    def test_jitter(self, capsys):
        """retry_jitter_factor=3 spreads each backoff delay over [0, 4×delay]."""
        waits: list[float] = []
        last_run_time = time.time()

        @task(
            retries=3,
            retry_delay_seconds=exponential_backoff(backoff_factor=5),
            retry_jitter_factor=3,
        )
        def some_task_with_exponential_backoff_retries():
            nonlocal last_run_time  # the doc's ``global``
            print(f"Time between retries: {time.time() - last_run_time}")
            if time.time() - last_run_time < 10:
                last_run_time = time.time()
                raise Exception("I could fail some more")
            return "That's enough failure"

        fast = some_task_with_exponential_backoff_retries.with_options(sleep=waits.append)
        assert fast(return_state=True).is_failed()  # no time passes: every attempt fails
        assert len(waits) == 3
        assert all(0 <= w <= 4 * d for w, d in zip(waits, [5, 10, 20], strict=True))


class TestStateChangeHooks:
    def test_on_failure_decorator_after_retries(self):
        """@flow.on_failure registers a hook that runs once, after the last retry."""
        notified = []

        @flow(retries=1)
        def failing_flow():
            raise ValueError("oops!")

        @failing_flow.on_failure
        def notify_slack(flow, flow_run, state):
            # the doc posts to a Slack webhook block; here the message is kept
            notified.append(f"Your job {flow_run.name} entered {state.name}")

        state = failing_flow(return_state=True)
        assert state.is_failed()
        assert len(notified) == 1 and notified[0].endswith("entered Failed")

    def test_on_running_for_tasks(self, capsys):
        """on_running=[...] and @task.on_running hooks run before the task body."""

        def record_start_time(task, task_run, state):
            print(f"Task {task.name} started at {time.time()}")

        @task(on_running=[record_start_time])
        def my_task():
            return "hello"

        # Or use the decorator pattern
        @task
        def another_task():
            return "world"

        @another_task.on_running
        def log_start(task, task_run, state):
            print(f"Starting {task.name}!")

        @flow
        def my_flow():
            my_task()
            another_task()

        my_flow()
        out = capsys.readouterr().out
        assert "Task my_task started at " in out and "Starting another_task!" in out

    def test_kwargs_through_with_options_and_partial(self):
        """A partial hook receives the flow's values; the returned tuple is the result."""
        data = {}

        def my_hook(task, task_run, state, **kwargs):
            data.update(state=state, **kwargs)

        @task
        def bad_task():
            raise ValueError("meh")

        @flow
        def ok_with_failure_flow(x: str = "foo", y: int = 42):
            bad_task_with_a_hook = bad_task.with_options(
                on_failure=[partial(my_hook, **dict(x=x, y=y))]
            )
            # return a tuple of "bar" and the task run state
            # to avoid raising the task's exception
            return "bar", bad_task_with_a_hook(return_state=True)

        _, task_run_state = ok_with_failure_flow()

        assert data == {"x": "foo", "y": 42, "state": task_run_state}
