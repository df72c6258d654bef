"""A mistyped pool name: the worker says it made a new pool, ``deploy`` lists the real ones."""

from __future__ import annotations

import uuid

from tests.e2e.conftest import FLOWS
from tests.helpers.cli import flowyard


def test_a_worker_says_when_it_created_its_pool(server):
    """The first worker of a new name prints one plain line naming the pool and its type;
    the next worker of that pool does not."""
    name = f"locl-{uuid.uuid4().hex[:6]}"
    first = flowyard(server.url, "worker", "start", "--pool", name, "--run-once")
    assert first.returncode == 0, first.stderr
    assert f"Created work pool {name!r} of type 'process': it did not exist." in first.stdout
    again = flowyard(server.url, "worker", "start", "--pool", name, "--run-once")
    assert again.returncode == 0, again.stderr
    assert "Created work pool" not in again.stdout


def test_deploy_to_a_missing_pool_lists_the_pools(server, pool, tmp_path):
    """``deploy --pool nopool`` exits 1 with one line naming the pools that exist."""
    (tmp_path / "flows.py").write_text(FLOWS)
    result = flowyard(
        server.url, "deploy", "flows.py:noop", "--name", "n", "--pool", "nopool", cwd=tmp_path
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "work pool 'nopool' not found; the pools are: " in lines[0]
    assert pool in lines[0] and "flowyard work-pool create nopool --type process" in lines[0]
