"""Kill-based cancellation runs the flow's hooks: real server, worker and flow processes."""

from __future__ import annotations

import os
import signal
import textwrap
from pathlib import Path

import pytest

from flowyard import schemas as s
from flowyard.states import StateType
from tests.e2e.conftest import deploy_flow
from tests.waiting import wait_until

FLOWS = textwrap.dedent(
    """
    import asyncio
    import os
    import time
    from pathlib import Path

    from flowyard import flow
    from flowyard.runtime import flow_run


    def marker(kind):
        def hook(flow, run, state):
            path = Path(run.parameters["folder"], f"{run.id}.{kind}")
            path.write_text(f"{state.type.value}: {state.message}")

        hook.__name__ = f"write_{kind}_marker"
        return hook


    def broken_hook(flow, run, state):
        raise RuntimeError("the hook is broken")


    def started(folder):
        Path(folder, f"{flow_run.id}.pid").write_text(str(os.getpid()))


    @flow(on_cancellation=[marker("cancelled")], on_crashed=[marker("crashed")])
    def hooked_sleeper(folder: str) -> None:
        started(folder)
        time.sleep(600)


    @flow(on_cancellation=[broken_hook, marker("cancelled")])
    def broken_hook_sleeper(folder: str) -> None:
        started(folder)
        time.sleep(600)


    @flow(retries=1, retry_delay_seconds=600, on_cancellation=[marker("cancelled")])
    def retry_then_wait(folder: str) -> None:
        started(folder)
        raise ValueError("fails, then waits ten minutes to retry")


    @flow(on_cancellation=[marker("cancelled")])
    async def async_sleeper(folder: str) -> None:
        started(folder)
        await asyncio.sleep(600)
    """
)


@pytest.fixture(scope="module")
def hook_flows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hook-flows")
    (folder / "flows.py").write_text(FLOWS)  # deploy_flow loads flows.py
    return folder


@pytest.fixture
def launch(api, pool, hook_flows, tmp_path):
    """Deploy one of the hook flows, run it, and return the run once its process started."""

    def run(function: str, state_name: str = "Running") -> tuple[s.FlowRun, int]:
        dep = deploy_flow(api, pool, hook_flows, function, name=function)
        body = s.DeploymentRunRequest(parameters={"folder": str(tmp_path)})
        flow_run = api.run_deployment(dep.id, body)
        pid_file = tmp_path / f"{flow_run.id}.pid"
        wait_until(
            lambda: _pid(pid_file) and api.read_flow_run(flow_run.id).state.name == state_name,
            timeout=90,
        )
        return flow_run, int(pid_file.read_text())

    return run


def _pid(path: Path) -> str:
    """The pid the flow wrote ('' until the file exists and is written)."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in _status(pid)


def _status(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return "zombie"


def _log_text(api, run_id: str) -> str:
    return "\n".join(entry.message for entry in api.read_logs(run_id))


def _ends(api, run_id: str, state: StateType, pid: int) -> s.StateDoc:
    wait_until(lambda: api.read_flow_run(run_id).state.type.is_terminal, timeout=90)
    final = api.read_flow_run(run_id).state
    assert final.type is state, final
    wait_until(lambda: not _alive(pid), timeout=60, message="the flow process is still alive")
    return final


def _kill(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class TestCancellingARunningFlow:
    def test_on_cancellation_hooks_run_and_the_run_ends_cancelled(
        self, api, pool, launch, start_worker, tmp_path
    ):
        """The worker SIGTERMs the run's processes: the flow stops, its hook writes its
        marker, the engine reports Cancelled and exits; no crash hook runs."""
        start_worker()
        run, pid = launch("hooked_sleeper")
        assert api.cancel_flow_run(run.id).state.type is StateType.CANCELLING
        final = _ends(api, run.id, StateType.CANCELLED, pid)
        assert "the engine stopped the flow" in final.message
        marker = tmp_path / f"{run.id}.cancelled"
        assert marker.read_text().startswith("CANCELLED")
        assert not (tmp_path / f"{run.id}.crashed").exists()
        wait_until(
            lambda: (
                "Hook 'write_cancelled_marker' finished running successfully"
                in _log_text(api, run.id)
            ),
            timeout=30,
        )
        assert api.read_work_queue(pool, "default").running == 0

    def test_a_raising_hook_is_logged_and_the_run_is_still_cancelled(
        self, api, launch, start_worker, tmp_path
    ):
        """The first hook raises: its error and traceback are logged, the next hook still
        runs, and the run ends Cancelled."""
        start_worker()
        run, pid = launch("broken_hook_sleeper")
        api.cancel_flow_run(run.id)
        _ends(api, run.id, StateType.CANCELLED, pid)
        assert (tmp_path / f"{run.id}.cancelled").exists()
        text = _log_text(api, run.id)
        assert "An error was encountered while running hook 'broken_hook'" in text
        assert "RuntimeError: the hook is broken" in text

    def test_an_async_flow_is_cancelled_with_its_hooks(self, api, launch, start_worker, tmp_path):
        """An async flow's task is cancelled on SIGTERM; its on_cancellation hook runs."""
        start_worker()
        run, pid = launch("async_sleeper")
        api.cancel_flow_run(run.id)
        _ends(api, run.id, StateType.CANCELLED, pid)
        assert (tmp_path / f"{run.id}.cancelled").read_text().startswith("CANCELLED")

    def test_a_run_awaiting_a_retry_is_cancelled_through_its_process(
        self, api, launch, start_worker, tmp_path
    ):
        """A run waiting out a flow retry's delay still has a process: cancelling it goes
        through Cancelling, stops that process and runs the hooks."""
        start_worker()
        run, pid = launch("retry_then_wait", state_name="AwaitingRetry")
        assert api.cancel_flow_run(run.id).state.type is StateType.CANCELLING
        _ends(api, run.id, StateType.CANCELLED, pid)
        assert (tmp_path / f"{run.id}.cancelled").exists()
        names = [st.name for st in api.read_flow_run_history(run.id).states]
        assert names[-3:] == ["AwaitingRetry", "Cancelling", "Cancelled"]


class TestStopsWithoutAWorker:
    def test_an_engine_that_stops_itself_runs_the_hooks(self, api, launch, start_worker, tmp_path):
        """With its worker killed, the engine learns of the cancellation from a heartbeat,
        stops the flow gracefully (hook marker written) and reports Cancelled."""
        worker = start_worker()
        run, pid = launch("hooked_sleeper")
        worker.stop(sig=signal.SIGKILL)
        try:
            api.cancel_flow_run(run.id)
            final = _ends(api, run.id, StateType.CANCELLED, pid)
            assert "engine stopped itself" in final.message
            assert (tmp_path / f"{run.id}.cancelled").exists()
        finally:
            _kill(pid)

    def test_a_worker_shutdown_runs_the_crash_hooks(self, api, launch, start_worker, tmp_path):
        """SIGTERM that is not a cancellation (the worker's shutdown grace ended): the flow's
        on_crashed hook runs and the run is Crashed with the worker's reason."""
        worker = start_worker("--grace-seconds", "1")
        run, pid = launch("hooked_sleeper")
        assert worker.stop(timeout=60) == 0
        final = _ends(api, run.id, StateType.CRASHED, pid)
        assert "shut down" in final.message
        assert (tmp_path / f"{run.id}.crashed").read_text().startswith("CRASHED")
        assert not (tmp_path / f"{run.id}.cancelled").exists()
