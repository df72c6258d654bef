"""``flow.deploy(...)`` and ``flow.serve(...)`` against a real server, with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from flowyard import flow
from flowyard import schemas as s
from flowyard.engine.entrypoint import load_flow
from flowyard.errors import InvalidInput
from flowyard.states import StateType
from tests.e2e.conftest import FAST
from tests.waiting import wait_until

SCRIPT = textwrap.dedent(
    """
    from pathlib import Path

    from flowyard import flow


    @flow(name="served", description="Writes a marker per run.", version="7")
    def served(folder: str) -> None:
        \"\"\"Not the description: the option wins.\"\"\"
        import os

        Path(folder, os.environ["FLOWYARD_FLOW_RUN_ID"]).write_text("served\\n")


    if __name__ == "__main__":
        import sys

        served.serve(name="every-2s", interval=2, parameters={"folder": sys.argv[1]})
    """
)


def test_deploy_creates_a_deployment_that_runs(server, api, pool, start_worker, tmp_path):
    """``flow.deploy`` records the file and function, parameters and the schedule."""
    (tmp_path / "served.py").write_text(SCRIPT)
    loaded = load_flow("served.py:served", tmp_path)
    os.environ["FLOWYARD_API_URL"] = server.url
    try:
        dep_id = loaded.deploy(
            "nightly",
            pool,
            cron="0 3 * * *",
            timezone="Europe/Berlin",
            parameters={"folder": str(tmp_path)},
        )
    finally:
        del os.environ["FLOWYARD_API_URL"]
    dep = api.read_deployment(dep_id)
    assert (dep.entrypoint, dep.path) == ("served.py:served", str(tmp_path.resolve()))
    assert (dep.description, dep.version) == ("Writes a marker per run.", "7")  # the flow's
    (schedule,) = api.list_schedules(dep_id)
    assert (schedule.kind, schedule.expression, schedule.timezone) == (
        "cron",
        "0 3 * * *",
        "Europe/Berlin",
    )
    start_worker()
    run = api.run_deployment(dep_id, s.DeploymentRunRequest())
    wait_until(lambda: api.read_flow_run(run.id).state.type is StateType.COMPLETED, timeout=90)
    assert (tmp_path / run.id).read_text() == "served\n"


def test_a_flow_defined_in_a_function_cannot_be_deployed():
    """Only a module-level flow can be loaded by a worker; the error says so."""

    @flow
    def inner() -> None: ...

    with pytest.raises(InvalidInput, match="defined in a function"):
        inner.deploy("x", "pool")


def test_serve_runs_the_schedule_until_stopped(server, api, tmp_path):
    """``flow.serve`` in its own process deploys, runs the 2 s schedule's runs to Completed,
    and stops cleanly on SIGTERM."""
    (tmp_path / "served.py").write_text(SCRIPT)
    env = {**os.environ, **FAST, "FLOWYARD_API_URL": server.url}
    process = subprocess.Popen(
        [sys.executable, str(tmp_path / "served.py"), str(tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        dep = wait_until(lambda: _deployment(api, "served/every-2s"), timeout=60)
        assert dep.pool_name == "serve-served-every-2s"
        done = wait_until(
            lambda: [
                r
                for r in api.list_flow_runs(deployment_id=dep.id, limit=50)
                if r.state.type is StateType.COMPLETED
            ][1:],
            timeout=90,
        )
        assert all((tmp_path / r.id).read_text() == "served\n" for r in done)
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0].decode()
    assert process.returncode == 0, output
    assert "Serving served/every-2s" in output


def _deployment(api, ref: str):
    try:
        return api.read_deployment(ref)
    except Exception:
        return None
