"""``pause_flow_run``: a flow run waits in its process until resumed, on a real server —
script runs in this process, and a deployed run in a real worker's flow process."""

from __future__ import annotations

import asyncio
import os
import signal
import textwrap
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowyard import flow, pause_flow_run, resume_flow_run, task
from flowyard import schemas as s
from flowyard.cli.main import cli
from flowyard.exceptions import FlowPauseTimeout
from flowyard.runtime import flow_run
from flowyard.states import State, StateType
from tests.e2e.conftest import deploy_flow
from tests.waiting import wait_until

POLL = 0.2  # seconds between a paused flow's checks of its state


@pytest.fixture
def script_api(server, monkeypatch):
    """Flows called in this process record their runs on the test server."""
    monkeypatch.setenv("FLOWYARD_API_URL", server.url)
    return server.url


class PausedScript:
    """Runs ``flow_`` in a thread once started (after the test has bound it: the flow
    calls ``note_start`` on it); ``run_id`` once it started, ``state`` once it ended."""

    def __init__(self, flow_, api) -> None:
        self.api = api
        self.run_id = ""
        self.started = threading.Event()
        self.state: State | None = None
        self._flow = flow_
        self._thread = threading.Thread(target=self._run)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        self.state = self._flow(return_state=True)

    def note_start(self) -> None:  # called by the flow
        self.run_id = flow_run.id
        self.started.set()

    def wait_paused(self) -> None:
        assert self.started.wait(60)
        wait_until(lambda: self.current() is StateType.PAUSED, timeout=60)

    def current(self) -> StateType:
        return self.api.read_flow_run(self.run_id).state.type

    def result(self) -> State:
        self._thread.join(timeout=120)
        assert self.state is not None, "the flow did not end"
        return self.state

    def history(self) -> list[str]:
        return [st.name for st in self.api.read_flow_run_history(self.run_id).states]


def test_a_paused_flow_carries_on_when_resumed_from_the_cli(script_api, api):
    """Running → Paused → Running → Completed; the code after the pause runs only after
    `flowyard flow-run resume`, and the logs say so."""
    after: list[str] = []
    script: PausedScript

    @flow
    def approval() -> str:
        script.note_start()
        pause_flow_run(timeout=120, poll_interval=POLL)
        after.append("after the pause")
        return "approved"

    script = PausedScript(approval, api)
    script.start()
    script.wait_paused()
    assert after == []
    result = CliRunner().invoke(cli, ["--api-url", script_api, "flow-run", "resume", script.run_id])
    assert result.exit_code == 0, result.output
    assert "is Running" in result.output
    final = script.result()
    assert (final.is_completed(), final.result(), after) == (True, "approved", ["after the pause"])
    assert script.history() == ["Running", "Paused", "Running", "Completed"]
    logs = "\n".join(entry.message for entry in api.read_logs(script.run_id))
    assert "Pausing flow, execution will continue" in logs
    assert "Resuming flow run execution!" in logs


def test_a_pause_that_times_out_fails_the_run(script_api, api):
    @flow
    def never_resumed() -> None:
        pause_flow_run(timeout=0.5, poll_interval=POLL)

    state = never_resumed(return_state=True)
    assert state.is_failed()
    assert isinstance(state.data, FlowPauseTimeout)
    assert "paused and never resumed" in state.message


def test_cancelling_a_paused_run_ends_it_cancelled_with_its_hooks(script_api, api):
    hooked: list[str] = []
    script: PausedScript

    @flow(on_cancellation=[lambda flow, run, state: hooked.append(state.name)])
    def waiting() -> None:
        script.note_start()
        pause_flow_run(timeout=120, poll_interval=POLL)

    script = PausedScript(waiting, api)
    script.start()
    script.wait_paused()
    assert api.cancel_flow_run(script.run_id).state.type is StateType.CANCELLING
    assert script.result().is_cancelled()
    assert hooked == ["Cancelled"]
    wait_until(lambda: script.current() is StateType.CANCELLED, timeout=30)


def test_a_retry_does_not_pause_again_at_a_pause_it_passed(script_api, api):
    """The first attempt pauses, is resumed, then fails; its retry goes through the same
    pause without stopping (as in Prefect: each pause has a key)."""
    attempts: list[int] = []
    script: PausedScript

    @flow(retries=1, retry_delay_seconds=0)
    def flaky() -> int:
        script.note_start()
        pause_flow_run(timeout=120, poll_interval=POLL)
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("first attempt fails after its pause")
        return len(attempts)

    script = PausedScript(flaky, api)
    script.start()
    script.wait_paused()
    resume_flow_run(script.run_id)
    assert script.result().result() == 2
    assert script.history().count("Paused") == 1


def test_an_async_flow_awaits_its_pause(script_api, api):
    script: PausedScript

    @flow
    async def async_approval() -> str:
        script.note_start()
        await pause_flow_run(timeout=120, poll_interval=POLL)
        return "resumed"

    script = PausedScript(lambda return_state: asyncio.run(async_approval(return_state=True)), api)
    script.start()
    script.wait_paused()
    api.resume_flow_run(script.run_id)
    assert script.result().result() == "resumed"


def test_a_task_may_pause_its_flow_run(script_api, api):
    script: PausedScript

    @task
    def ask() -> str:
        script.note_start()
        pause_flow_run(timeout=120, poll_interval=POLL)
        return "asked"

    @flow
    def asking() -> str:
        return ask()

    script = PausedScript(asking, api)
    script.start()
    script.wait_paused()
    api.resume_flow_run(script.run_id)
    assert script.result().result() == "asked"


def test_pausing_needs_a_flow_run_and_an_api_and_resuming_a_paused_run(
    script_api, api, monkeypatch
):
    with pytest.raises(RuntimeError, match="only be paused from within a flow run"):
        pause_flow_run()

    @flow
    def quick() -> str:
        return flow_run.id

    run_id = quick()
    result = CliRunner().invoke(cli, ["--api-url", script_api, "flow-run", "resume", run_id])
    assert result.exit_code != 0
    assert "is not paused: it is Completed" in result.output

    monkeypatch.delenv("FLOWYARD_API_URL")
    with pytest.raises(RuntimeError, match="resuming a flow run needs a Flowyard API"):
        resume_flow_run(run_id)

    @flow
    def offline() -> None:
        pause_flow_run(timeout=1)

    state = offline(return_state=True)
    assert state.is_failed()
    assert "needs a Flowyard API" in state.message


DEPLOYED = textwrap.dedent(
    """
    import os
    from pathlib import Path

    from flowyard import flow, pause_flow_run
    from flowyard.runtime import flow_run


    @flow
    def gated(folder: str) -> str:
        Path(folder, f"{flow_run.id}.pid").write_text(str(os.getpid()))
        pause_flow_run(timeout=600, poll_interval=0.2)
        Path(folder, f"{flow_run.id}.after").write_text("resumed")
        return "done"


    @flow
    def other(folder: str) -> None:
        Path(folder, f"{flow_run.id}.ran").write_text("ran")
    """
)


@pytest.fixture
def deployed(api, pool, tmp_path_factory):
    """The pausing flows, deployed to this test's pool (limited to one run at a time)."""
    folder = tmp_path_factory.mktemp("pause-flows")
    (folder / "flows.py").write_text(DEPLOYED)
    api.update_work_pool(pool, s.WorkPoolUpdate(concurrency_limit=1))
    return {name: deploy_flow(api, pool, folder, name, name=name) for name in ("gated", "other")}


def _start(api, deployment: s.Deployment, folder: Path) -> str:
    body = s.DeploymentRunRequest(parameters={"folder": str(folder)})
    return api.run_deployment(deployment.id, body).id


def test_a_deployed_paused_run_keeps_its_slot_until_resumed(api, deployed, start_worker, tmp_path):
    """Pool limit 1: while the first run is paused, a second one waits Scheduled; once
    resumed, the first completes, then the second runs."""
    start_worker()
    gated = _start(api, deployed["gated"], tmp_path)
    wait_until(lambda: api.read_flow_run(gated).state.type is StateType.PAUSED, timeout=90)
    other = _start(api, deployed["other"], tmp_path)
    wait_until(lambda: api.read_flow_run(other).state.name == "Late", timeout=30)
    assert api.read_flow_run(other).state.type is StateType.SCHEDULED
    assert not (tmp_path / f"{gated}.after").exists()
    api.resume_flow_run(gated)
    wait_until(lambda: api.read_flow_run(other).state.type.is_terminal, timeout=90)
    assert api.read_flow_run(gated).state.type is StateType.COMPLETED
    assert api.read_flow_run(other).state.type is StateType.COMPLETED
    assert (tmp_path / f"{gated}.after").read_text() == "resumed"


def test_a_paused_run_whose_process_dies_is_crashed_and_frees_its_slot(
    api, pool, deployed, start_worker, tmp_path
):
    """Nothing stuck: with its flow process SIGKILLed while paused, the run stops
    heartbeating and becomes Crashed; its slot goes back to the pool."""
    start_worker()
    gated = _start(api, deployed["gated"], tmp_path)
    wait_until(lambda: api.read_flow_run(gated).state.type is StateType.PAUSED, timeout=90)
    os.kill(int((tmp_path / f"{gated}.pid").read_text()), signal.SIGKILL)
    wait_until(lambda: api.read_flow_run(gated).state.type is StateType.CRASHED, timeout=90)
    other = _start(api, deployed["other"], tmp_path)
    wait_until(lambda: api.read_flow_run(other).state.type is StateType.COMPLETED, timeout=90)
