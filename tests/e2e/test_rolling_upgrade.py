"""A rolling upgrade: the previous release's worker and engine against this server.

Operators upgrade the server first; their workers, and the engines already running, keep
the previous release's code for a while (docs/upgrading.md). The previous release is
taken from this repository's history (``PREVIOUS_RELEASE``, moved forward at each
release) and run from its own source tree: the worker and every engine it starts import
that tree, never this checkout. It runs the quick start, a cancellation and a crash.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess, WorkerProcess
from flowyard.states import StateType
from tests.e2e.conftest import FAST
from tests.proc import alive
from tests.waiting import wait_until

PREVIOUS_RELEASE = "72094c94061a9cce978781f204d769dd269b3049"
"""The commit of the release before this one (a tag once releases are tagged)."""
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def previous_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The previous release's ``src`` folder, exported from git history."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout: the previous release's source is not at hand")
    folder = tmp_path_factory.mktemp("previous-release")
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", PREVIOUS_RELEASE, "src"],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    src = folder / "src"
    imported = subprocess.run(
        [sys.executable, "-c", "import flowyard; print(flowyard.__file__)"],
        env={**os.environ, "PYTHONPATH": str(src)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert imported.stdout.strip().startswith(str(src))  # that tree, not this checkout
    return src


@pytest.fixture
def previous_worker(
    server: ServerProcess, pool: str, tmp_path: Path, previous_source: Path
) -> Iterator[Callable[[], WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start() -> WorkerProcess:
        env = {**FAST, "PYTHONPATH": str(previous_source)}  # its engines inherit it
        worker = WorkerProcess(server.url, pool, tmp_path, env=env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop(timeout=30)


def _final(api, run_id: str) -> s.FlowRun:
    return wait_until(
        lambda: (run := api.read_flow_run(run_id)).state.type.is_terminal and run,
        timeout=90,
        message=f"run {run_id} never ended",
    )


def test_the_previous_worker_and_engine_run_the_quick_start(api, deploy, previous_worker):
    dep = deploy("noop", parameters={"n": 4})
    run = api.run_deployment(dep.id, s.DeploymentRunRequest())
    previous_worker()
    final = _final(api, run.id)
    assert final.state.type is StateType.COMPLETED, final.state.message
    assert [t.name for t in api.list_task_runs(run.id)] == ["double-0"]
    assert any("Finished in state Completed" in log.message for log in api.read_logs(run.id))


def test_the_previous_worker_cancels_and_reports_a_crash(api, deploy, previous_worker, tmp_path):
    sleeper = api.run_deployment(
        deploy("sleeper", parameters={"folder": str(tmp_path)}).id, s.DeploymentRunRequest()
    )
    crash = api.run_deployment(deploy("crash").id, s.DeploymentRunRequest())
    previous_worker()

    pid_file = tmp_path / f"{sleeper.id}.pid"
    wait_until(lambda: pid_file.exists(), timeout=90, message="the sleeper never started")
    assert api.cancel_flow_run(sleeper.id).state.type is StateType.CANCELLING
    assert _final(api, sleeper.id).state.type is StateType.CANCELLED
    pid = int(pid_file.read_text())
    wait_until(lambda: not alive(pid), timeout=30, message="the cancelled flow outlived it")

    crashed = _final(api, crash.id)
    assert crashed.state.type is StateType.CRASHED
    assert "3" in (crashed.state.message or "")
