"""A real loopback HTTP endpoint for ``POST /api/logs``, for the log shipper's tests; a
real server that requires keys, for the task runners on distributed engines."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from tests.helpers.http import serving_json
from tests.servers import ServerProcess, keyed_server

from flowyard.client import FlowyardClient
from flowyard.sdk.task_worker import TaskWorker

ADMIN = "admin-secret-for-remote-runner-tests-0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real server whose API requires keys (the admin's: ``ADMIN``), one per module."""
    with keyed_server(tmp_path_factory.mktemp("keyed-server"), ADMIN) as process:
        yield process


@pytest.fixture
def api(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[FlowyardClient]:
    """Direct flow calls are recorded through the server, with the admin key (which only
    the flow's own process holds)."""
    monkeypatch.setenv("FLOWYARD_API_URL", server.url)
    monkeypatch.setenv("FLOWYARD_API_KEY", ADMIN)
    with FlowyardClient(server.url, ADMIN) as client:
        yield client


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


@contextmanager
def task_worker_thread(server: ServerProcess, *tasks: Any, limit: int = 3) -> Iterator[TaskWorker]:
    """A task worker of ``tasks`` claiming from ``server`` (with the admin key) in a thread
    of this process; stopping it waits for its claim's long poll (up to 20 s) to end, so
    a module shares one."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FLOWYARD_API_URL", server.url)
        env.setenv("FLOWYARD_API_KEY", ADMIN)
        worker = TaskWorker(*tasks, limit=limit)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(60)
