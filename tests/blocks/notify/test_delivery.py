"""Delivery: transient failures are retried within bounds; errors name service and status only."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from flowyard.blocks.notify import PagerDuty, SlackWebhook
from flowyard.blocks.notify.delivery import (
    ATTEMPTS,
    Transient,
    is_transient_status,
    redact,
    where,
    with_retries,
)
from flowyard.cli.processes import free_port
from flowyard.errors import NotificationError
from tests.blocks.notify.receivers import HttpReceiver

TOKEN = "tok-" + "8d2c4a61f3"


class TestPolicy:
    def test_transient_statuses(self):
        """5xx, 408 and 429 are worth another try; other 4xx are not."""
        assert [is_transient_status(c) for c in (500, 503, 408, 429)] == [True] * 4
        assert [is_transient_status(c) for c in (400, 401, 403, 404, 410)] == [False] * 5

    def test_waits_grow_and_attempts_are_bounded(self):
        """A transient failure is tried ATTEMPTS times, waiting 0.25, 0.5, 1 s between; the
        error then says what went wrong last and how many attempts were made."""
        waits: list[float] = []
        calls: list[int] = []

        def attempt() -> None:
            calls.append(1)
            raise Transient(502, f"answered 502 (call {len(calls)})")

        with pytest.raises(NotificationError) as failed:
            with_retries("X", "X at h:1", attempt, sleep=waits.append)
        assert waits == [0.25, 0.5, 1.0] and len(calls) == ATTEMPTS == 4
        assert str(failed.value) == "X at h:1 answered 502 (call 4) after 4 attempts"
        assert (failed.value.service, failed.value.status) == ("X", 502)

    def test_a_success_after_a_transient_failure_is_returned(self):
        """An attempt that succeeds after one transient failure returns its value."""
        waits: list[float] = []
        outcomes = iter([Transient(None, "could not be reached"), "ok"])

        def attempt() -> str:
            outcome = next(outcomes)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

        assert with_retries("X", "X", attempt, sleep=waits.append) == "ok"
        assert waits == [0.25]

    def test_where_and_redact(self):
        """Errors say host:port, never the path; a secret URL's path pieces and query are masked."""
        url = f"https://user:pw-123456@hooks.example.com:8443/services/T0/{TOKEN}?sig=abcdef"
        assert where(url) == "hooks.example.com:8443"
        text = redact(f"no hook {TOKEN} (sig=abcdef), pw-123456", [url])
        assert TOKEN not in text and "sig=abcdef" not in text and "pw-123456" not in text


class TestRetries:
    def test_500_twice_then_200_is_delivered_on_the_third_attempt(self, receiver: HttpReceiver):
        """Two 500 answers are retried; the third attempt lands and notify returns."""
        receiver.answer(500, 500, then=200)
        SlackWebhook(url=SecretStr(f"{receiver.url}/services/{TOKEN}")).notify("s", "b")
        assert [r.json for r in receiver.requests] == [{"text": "*s*\nb"}] * 3

    def test_always_failing_names_service_and_status_without_the_secret(
        self, receiver: HttpReceiver
    ):
        """A receiver that always answers 503 (echoing the token) gives up after ATTEMPTS tries
        with an error naming the service, where and the status, and no secret in it."""
        receiver.answer(then=503, reply=f"hook /services/{TOKEN} is unavailable")
        with pytest.raises(NotificationError) as failed:
            SlackWebhook(url=SecretStr(f"{receiver.url}/services/{TOKEN}")).notify("s", "b")
        message = str(failed.value)
        assert failed.value.service == "Slack" and failed.value.status == 503
        assert message.startswith(
            f"Slack at 127.0.0.1:{receiver.url.rsplit(':', 1)[1]} answered 503"
        )
        assert f"after {ATTEMPTS} attempts" in message
        assert TOKEN not in message and "is unavailable" in message
        assert len(receiver.requests) == ATTEMPTS

    def test_a_client_error_is_final_at_once(self, receiver: HttpReceiver):
        """A 400 (a bad routing key, say) is not retried: one request, the status in the error."""
        receiver.answer(then=400, reply=f'{{"status":"invalid event","key":"{TOKEN}"}}')
        block = PagerDuty(routing_key=SecretStr(TOKEN), url=f"{receiver.url}/v2/enqueue")
        with pytest.raises(NotificationError, match="PagerDuty at .* answered 400") as failed:
            block.notify("s", "b")
        assert TOKEN not in str(failed.value)
        assert len(receiver.requests) == 1

    def test_nobody_listening_is_a_clear_error(self):
        """A refused connection is retried, then named: the service, where, no secret."""
        url = f"http://127.0.0.1:{free_port()}/services/{TOKEN}"
        with pytest.raises(NotificationError, match="Slack at 127.0.0.1:.* could not be reached"):
            SlackWebhook(url=SecretStr(url)).notify("s", "b")
