"""A flow called from a plain script (no worker, no engine) is not left Running when its
process dies: the process heartbeats its run, and the API crashes a run it stops hearing
from. Real server, real script processes, SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from flowyard.states import StateType
from tests.waiting import wait_until

SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path

    from flowyard import flow, pause_flow_run
    from flowyard.runtime import flow_run


    @flow
    def long_job(marker: str, seconds: float, pause: bool) -> str:
        Path(marker).write_text(flow_run.id)
        if pause:
            pause_flow_run(timeout=600, poll_interval=0.2)
        time.sleep(seconds)
        return "done"


    long_job(sys.argv[1], float(sys.argv[2]), sys.argv[3] == "pause")
    """
)


def _start(
    server, tmp_path: Path, seconds: float, pause: bool = False
) -> tuple[subprocess.Popen, Path]:
    marker = tmp_path / f"run-id-{seconds}-{pause}"
    env = {
        **os.environ,
        "FLOWYARD_API_URL": server.url,
        "FLOWYARD_RUN_HEARTBEAT_SECONDS": "0.5",
        "FLOWYARD_HOME": str(tmp_path / "home"),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(marker), str(seconds), "pause" if pause else "run"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return process, marker


def _run_id(marker: Path) -> str:
    wait_until(lambda: marker.exists() and marker.read_text(), timeout=60)
    return marker.read_text()


def test_a_killed_script_leaves_its_run_crashed_not_running(server, api, tmp_path):
    process, marker = _start(server, tmp_path, seconds=600)
    run_id = _run_id(marker)
    assert api.read_flow_run(run_id).state.type is StateType.RUNNING
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    wait_until(lambda: api.read_flow_run(run_id).state.type is StateType.CRASHED, timeout=60)
    assert "stopped heartbeating" in api.read_flow_run(run_id).state.message


def test_a_killed_script_leaves_its_paused_run_crashed(server, api, tmp_path):
    process, marker = _start(server, tmp_path, seconds=0, pause=True)
    run_id = _run_id(marker)
    wait_until(lambda: api.read_flow_run(run_id).state.type is StateType.PAUSED, timeout=60)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    wait_until(lambda: api.read_flow_run(run_id).state.type is StateType.CRASHED, timeout=60)


def test_a_live_script_outlasting_many_beats_is_never_crashed(server, api, tmp_path):
    """4 s of work with beats every 0.5 s (crashed after 1.5 s of silence): Completed, and
    its history never shows Crashed."""
    process, marker = _start(server, tmp_path, seconds=4)
    run_id = _run_id(marker)
    assert process.wait(timeout=120) == 0
    history = [st.name for st in api.read_flow_run_history(run_id).states]
    assert history == ["Running", "Completed"]
