"""The process worker's launch paths, with real processes and no API calls."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

from flowyard import schemas as s
from flowyard.client import FlowyardClient
from flowyard.workers.process import ProcessVariables, ProcessWorker

PRINT_PARENT = "import os; print(os.getppid(), os.environ['FLOWYARD_FLOW_RUN_ID'])"


@pytest.fixture
def worker() -> Iterator[ProcessWorker]:
    client = FlowyardClient("http://127.0.0.1:9")
    process_worker = ProcessWorker(client, "pool", grace_seconds=1)
    try:
        yield process_worker
    finally:
        process_worker.shutdown()
        client.close()


def claimed_run(run_id: str) -> s.ClaimedRun:
    run = s.FlowRun.model_construct(id=run_id)
    return s.ClaimedRun.model_construct(run=run, token="t", deployment=None, base_job_template={})


def test_a_custom_command_is_a_subprocess_of_the_worker(worker):
    """With ``command`` set the run is the worker's own child, its output streamed as before."""
    lines: list[tuple[str, str]] = []
    command = f'{sys.executable} -c "{PRINT_PARENT}"'
    infrastructure = worker.create(
        claimed_run("run-1"),
        ProcessVariables(command=command),
        lambda stream, line: lines.append((stream, line)),
    )
    assert worker.wait(infrastructure) == 0
    assert lines == [("stdout", f"{os.getpid()} run-1")]
