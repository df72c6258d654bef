"""Flow retries recorded by a real server: deployed runs through a worker, and direct calls."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flowyard import schemas as s
from flowyard.states import StateType
from tests.e2e.conftest import deploy_flow
from tests.waiting import wait_until

FLOWS = textwrap.dedent(
    """
    import os
    from pathlib import Path

    from flowyard import flow
    from flowyard.runtime import flow_run


    def attempt(folder: str) -> int:
        \"\"\"Count this attempt in a file named after the run; the attempt's number.\"\"\"
        path = Path(folder) / f"{flow_run.id}.attempts"
        with open(path, "a") as fh:
            fh.write(f"{flow_run.run_count}\\n")
        return len(path.read_text().splitlines())


    @flow(name="flaky", retries=2, retry_delay_seconds=[0.2, 0.5])
    def flaky(folder: str, failures: int = 2) -> int:
        number = attempt(folder)
        if number <= failures:
            raise ValueError(f"attempt {number} failed")
        return flow_run.run_count


    @flow(name="slow-retry", retries=1, retry_delay_seconds=8)
    def slow_retry(folder: str) -> None:
        if attempt(folder) == 1:
            raise ValueError("the first attempt fails")


    @flow(name="wait-to-retry", retries=1, retry_delay_seconds=600)
    def wait_to_retry(folder: str) -> None:
        Path(folder, f"{flow_run.id}.pid").write_text(str(os.getpid()))
        raise ValueError("fails, then waits ten minutes to retry")


    @flow(name="child", retries=1)
    def child(folder: str) -> int:
        if attempt(folder) == 1:
            raise ValueError("the child's first attempt fails")
        return flow_run.run_count


    @flow(name="parent")
    def parent(folder: str) -> str:
        child(folder)
        return flow_run.id
    """
)

SCRIPT = textwrap.dedent(
    """
    import sys

    from flows import flaky, parent

    folder = sys.argv[1]
    print("direct", flaky(folder, failures=2))
    print("parent", parent(folder))
    """
)

EVERY_ATTEMPT = ["Running", "AwaitingRetry", "Running", "AwaitingRetry", "Running"]


@pytest.fixture(scope="module")
def retry_flows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("retry-flows")
    (folder / "flows.py").write_text(FLOWS)  # deploy_flow loads flows.py
    return folder


def _names_from_running(api, run_id: str) -> list[str]:
    names = [state.name for state in api.read_flow_run_history(run_id).states]
    return names[names.index("Running") :]


def _attempts(folder: Path, run_id: str) -> list[str]:
    return (folder / f"{run_id}.attempts").read_text().split()


class TestDeployedRuns:
    def test_a_flow_that_fails_twice_then_succeeds_completes_after_two_retries(
        self, api, pool, retry_flows, start_worker, tmp_path
    ):
        """retries=2: Running, AwaitingRetry, Running, AwaitingRetry, Running, Completed in
        the history, each attempt seeing its run_count, all in one process."""
        dep = deploy_flow(api, pool, retry_flows, "flaky", name="flaky")
        body = s.DeploymentRunRequest(parameters={"folder": str(tmp_path)})
        run = api.run_deployment(dep.id, body)
        start_worker()
        wait_until(lambda: api.read_flow_run(run.id).state.type.is_terminal, timeout=90)
        history = api.read_flow_run_history(run.id)
        assert history.run.state.type is StateType.COMPLETED, history.run.state
        assert _names_from_running(api, run.id) == [*EVERY_ATTEMPT, "Completed"]
        waits = [st for st in history.states if st.name == "AwaitingRetry"]
        assert all(st.type is StateType.SCHEDULED for st in waits)
        assert [st.message for st in waits] == [
            "Flow run encountered an exception ValueError: attempt 1 failed",
            "Flow run encountered an exception ValueError: attempt 2 failed",
        ]
        assert _attempts(tmp_path, run.id) == ["1", "2", "3"]
        assert api.read_work_queue(pool, "default").running == 0

    def test_exhausted_retries_fail_the_run_with_the_last_exception(
        self, api, pool, retry_flows, start_worker, tmp_path
    ):
        """Three failures with retries=2: Failed, naming the last attempt's exception, with
        its traceback in the logs."""
        dep = deploy_flow(api, pool, retry_flows, "flaky", name="flaky")
        body = s.DeploymentRunRequest(parameters={"folder": str(tmp_path), "failures": 5})
        run = api.run_deployment(dep.id, body)
        start_worker()
        wait_until(lambda: api.read_flow_run(run.id).state.type.is_terminal, timeout=90)
        final = api.read_flow_run(run.id).state
        assert final.type is StateType.FAILED, final
        assert final.message == "Flow run encountered an exception ValueError: attempt 3 failed"
        assert _names_from_running(api, run.id) == [*EVERY_ATTEMPT, "Failed"]
        text = "\n".join(entry.message for entry in api.read_logs(run.id))
        assert "Traceback" in text and "ValueError: attempt 3 failed" in text

    def test_a_retry_waiting_longer_than_the_lease_keeps_its_claim_and_slot(
        self, api, pool, retry_flows, start_worker, tmp_path
    ):
        """An 8 s retry delay (leases last 4 s here): the run stays AwaitingRetry holding the
        pool's only slot, is neither crashed nor queued again, then completes; the next run
        starts only after it."""
        api.update_work_pool(pool, s.WorkPoolUpdate(concurrency_limit=1))
        dep = deploy_flow(api, pool, retry_flows, "slow_retry", name="slow")
        body = s.DeploymentRunRequest(parameters={"folder": str(tmp_path)})
        first = api.run_deployment(dep.id, body)
        start_worker("--limit", "2")
        wait_until(lambda: api.read_flow_run(first.id).state.name == "AwaitingRetry", timeout=60)
        second = api.run_deployment(dep.id, body)
        assert api.read_work_queue(pool, "default").running == 1
        wait_until(lambda: api.read_flow_run(first.id).state.type.is_terminal, timeout=60)
        assert api.read_flow_run(first.id).state.type is StateType.COMPLETED
        assert _names_from_running(api, first.id) == [
            "Running", "AwaitingRetry", "Running", "Completed"
        ]  # fmt: skip
        wait_until(lambda: api.read_flow_run(second.id).state.type.is_terminal, timeout=60)
        first_done = api.read_flow_run(first.id).end_time
        second_history = api.read_flow_run_history(second.id).states
        second_start = next(st.timestamp for st in second_history if st.name == "Running")
        assert second_start >= first_done, (second_start, first_done)

    def test_a_run_whose_processes_die_during_the_retry_delay_is_crashed(
        self, api, pool, retry_flows, start_worker, tmp_path
    ):
        """Worker and engine killed while the run awaits its retry: nothing heartbeats, so
        the run is Crashed (not left Scheduled) and its slot is freed."""
        dep = deploy_flow(api, pool, retry_flows, "wait_to_retry", name="wait")
        body = s.DeploymentRunRequest(parameters={"folder": str(tmp_path)})
        run = api.run_deployment(dep.id, body)
        worker = start_worker()
        pid_file = tmp_path / f"{run.id}.pid"
        wait_until(lambda: api.read_flow_run(run.id).state.name == "AwaitingRetry", timeout=60)
        assert pid_file.read_text()  # written before the attempt failed
        worker.stop(sig=signal.SIGKILL)
        try:
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)
        except ProcessLookupError:
            pass
        wait_until(lambda: api.read_flow_run(run.id).state.type.is_terminal, timeout=60)
        final = api.read_flow_run(run.id).state
        assert final.type is StateType.CRASHED and "heartbeats any more" in final.message
        wait_until(lambda: api.read_work_queue(pool, "default").running == 0, timeout=10)


class TestDirectRuns:
    def test_a_direct_call_with_a_server_records_every_attempt(self, server, api, retry_flows):
        """A script calling a flow with retries while a server is configured: its run's
        history shows each attempt, and a subflow's retries are recorded on the child run."""
        (retry_flows / "direct_retries.py").write_text(SCRIPT)
        folder = retry_flows / "direct"
        folder.mkdir(exist_ok=True)
        env = {**os.environ, "FLOWYARD_API_URL": server.url}
        done = subprocess.run(
            [sys.executable, "direct_retries.py", str(folder)],
            cwd=retry_flows, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        printed = dict(line.split(" ", 1) for line in done.stdout.splitlines())
        assert printed["direct"] == "3"
        [direct] = [path.stem for path in folder.glob("*.attempts") if len(_lines(path)) == 3]
        assert _names_from_running(api, direct) == [*EVERY_ATTEMPT, "Completed"]
        parent_id = printed["parent"]
        assert _names_from_running(api, parent_id) == ["Running", "Completed"]
        [child_id] = [path.stem for path in folder.glob("*.attempts") if len(_lines(path)) == 2]
        assert _names_from_running(api, child_id) == [
            "Running", "AwaitingRetry", "Running", "Completed"
        ]  # fmt: skip
        assert _attempts(folder, child_id) == ["1", "2"]


def _lines(path: Path) -> list[str]:
    return path.read_text().split()
