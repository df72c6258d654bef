"""With nothing listening, a command fails at once with a hint; workers still wait."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from flowyard.cli.processes import free_port
from flowyard.client import INTERACTIVE, FlowyardClient
from flowyard.errors import ApiUnavailable


@pytest.mark.parametrize("args", [("work-pool", "ls"), ("flow-run", "ls")])
def test_a_command_fails_at_once_when_nothing_listens(args):
    """Connection refused: exit 1 with one line saying how to start the API. That a terminal
    does not retry is the next test's; how fast the line comes is measured in bench/cli.py
    (a timed assertion here failed on a machine under load)."""
    url = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run(
        [sys.executable, "-m", "flowyard", *args],
        env={**os.environ, "FLOWYARD_API_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"Error: cannot reach the Flowyard API at {url} (connection refused)"
        " — start it with: flowyard server start"
    )


def test_the_client_marks_a_refused_connection():
    """The client tells a refused connection from other failures, at the httpx boundary."""
    with FlowyardClient(f"http://127.0.0.1:{free_port()}", retry=INTERACTIVE) as api:
        with pytest.raises(ApiUnavailable) as info:
            api.health()
    assert info.value.refused
    assert "start it with: flowyard server start" in info.value.message
