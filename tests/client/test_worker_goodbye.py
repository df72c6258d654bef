"""A stopping worker's goodbye is one attempt: an API that is down never holds up its exit."""

from __future__ import annotations

import time

import pytest

from flowyard import schemas as s
from flowyard.cli.processes import free_port
from flowyard.client import FlowyardClient
from flowyard.errors import ApiUnavailable


def test_a_goodbye_to_an_api_that_is_down_fails_at_once_without_retrying():
    """Nothing listens: the goodbye raises ApiUnavailable at once, though the client
    retries its other requests for 30 s."""
    with FlowyardClient(f"http://127.0.0.1:{free_port()}", retry_seconds=30.0) as api:
        started = time.monotonic()
        with pytest.raises(ApiUnavailable):
            api.worker_goodbye("pool", s.WorkerHeartbeat(worker_name="w", stopping=True))
        assert time.monotonic() - started < 5
