"""Real API servers for tests: started in a folder of their own, answering, then stopped."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from flowyard.cli.processes import ServerProcess
from tests.helpers.cli import flowyard


@contextmanager
def running_server(home: Path, env: Mapping[str, str] | None = None) -> Iterator[ServerProcess]:
    """``flowyard server start`` with its data in ``home`` and ``env`` on top of this
    process's environment; yielded once it answers (a 401 counts: it asks for a key)."""
    process = ServerProcess(home, env=dict(env or {}))
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


@contextmanager
def keyed_server(home: Path, admin_key: str) -> Iterator[ServerProcess]:
    """``running_server`` whose API requires keys (``admin_key`` the admin's), with the
    end-to-end tests' short leases and heartbeats."""
    from tests.e2e.conftest import FAST  # it imports this module

    with running_server(home, {**FAST, "FLOWYARD_API_KEY": admin_key}) as process:
        yield process


def run_cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """``flowyard ARGS…`` as a user types it, against ``server``."""
    return flowyard(server.url, *args)
