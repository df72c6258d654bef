"""Fixtures for the Prefect documentation examples.

Each example runs with its own ``FLOWYARD_HOME`` (persisted results and caches start
empty) and without ``FLOWYARD_API_URL`` (no server, as a plain script). Examples that
call an HTTP service get a real loopback server instead of httpbin.org.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from tests.helpers.http import serving_json


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """Results and caches of each example go to a fresh folder; no API is configured."""
    monkeypatch.setenv("FLOWYARD_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FLOWYARD_API_URL", raising=False)


@dataclass
class StatusServer:
    """A loopback stand-in for httpbin.org: ``GET /status/<code>`` answers with that status."""

    url: str = ""
    requests: list[int] = field(default_factory=list)  # the codes asked for, in order


@pytest.fixture
def status_server() -> Iterator[StatusServer]:
    """A ``StatusServer`` on a free loopback port."""
    server = StatusServer()
    lock = threading.Lock()

    def answer(method: str, path: str, body: Any) -> tuple[int, Any]:
        _, _, code = path.rpartition("/")
        status = int(code) if code.isdigit() else 404
        with lock:
            server.requests.append(status)
        return status, {"status": status}

    with serving_json(answer) as url:
        server.url = url
        yield server
