"""The README's quick-start, typed as a newcomer would, each command a real process."""

from __future__ import annotations

import re
from pathlib import Path

from flowyard.cli.processes import WorkerProcess
from tests.helpers.cli import flowyard

REPO = Path(__file__).resolve().parents[2]


def test_quickstart_sequence_completes(server, tmp_path):
    """work-pool create → deploy → worker start → deployment run --watch → flow-run logs."""
    created = flowyard(server.url, "work-pool", "create", "local", "--type", "process")
    assert created.returncode == 0, created.stderr
    deployed = flowyard(
        server.url,
        "deploy", "examples/etl.py:etl_flow", "--name", "nightly", "--pool", "local",
        cwd=REPO,
    )  # fmt: skip
    assert deployed.returncode == 0, deployed.stderr
    assert "ETL Pipeline/nightly" in deployed.stdout
    worker = WorkerProcess(server.url, "local", tmp_path)
    try:
        run = flowyard(server.url, "deployment", "run", "ETL Pipeline/nightly", "--watch")
        assert run.returncode == 0, run.stdout + run.stderr
        assert "is Completed" in run.stdout
        run_id = re.search(r"Created flow run '[^']+' \(([0-9a-f-]{36})\)", run.stdout).group(1)
        logs = flowyard(server.url, "flow-run", "logs", run_id[:8])
        assert logs.returncode == 0, logs.stderr
        assert "Loading data: [10, 20, 30, 40, 50]" in logs.stdout
        inspected = flowyard(server.url, "flow-run", "inspect", run_id, "--json")
        assert '"load_data-0"' in inspected.stdout or "load_data" in inspected.stdout
    finally:
        worker.stop()


def test_unknown_names_print_one_line_and_exit_1(server):
    """A 404 reaches the user as one line on stderr, exit code 1, no traceback."""
    for args in (
        ("work-pool", "inspect", "nope"),
        ("deployment", "run", "Nope/nothing"),
        ("flow-run", "inspect", "00000000-0000-0000-0000-000000000000"),
        ("work-queue", "inspect", "q", "--pool", "nope"),
    ):
        result = flowyard(server.url, *args)
        assert result.returncode == 1, args
        assert "Traceback" not in result.stderr
        assert "not found" in result.stderr and len(result.stderr.strip().splitlines()) == 1, (
            result.stderr
        )


def test_unreachable_api_is_a_clear_error(tmp_path):
    """With no server, commands say where they tried, without a traceback."""
    result = flowyard("http://127.0.0.1:9", "work-pool", "ls", timeout=60)
    assert result.returncode == 1
    assert "cannot reach the Flowyard API at http://127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr
