"""A real loopback HTTP endpoint for ``POST /api/logs``, for the log shipper's tests."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.helpers.http import serving_json


class LogsEndpoint:
    """Records posted log batches; answers 503 to the next ``fail_next`` posts."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.batches: list[list[dict[str, Any]]] = []
        self.fail_next = 0
        self.failures = 0

    def messages(self) -> list[str]:
        with self.cond:
            return [log["message"] for batch in self.batches for log in batch]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        with self.cond:
            ok = self.cond.wait_for(predicate, timeout)
        assert ok, f"condition not met before the deadline; batches: {self.batches}"

    def receive(self, body: list[dict[str, Any]]) -> int:
        with self.cond:
            try:
                if self.fail_next > 0:
                    self.fail_next -= 1
                    self.failures += 1
                    return 503
                self.batches.append(body)
                return 204
            finally:
                self.cond.notify_all()


@pytest.fixture
def logs_api() -> Iterator[tuple[LogsEndpoint, str]]:
    """A LogsEndpoint on a free loopback port; yields it and its URL."""
    endpoint = LogsEndpoint()

    def answer(method: str, path: str, body: Any) -> tuple[int, Any]:
        if (method, path) != ("POST", "/api/logs"):
            return 404, {"detail": "not found"}
        status = endpoint.receive(body)
        return status, None if status == 204 else {"detail": "unavailable"}

    with serving_json(answer) as url:
        yield endpoint, url
