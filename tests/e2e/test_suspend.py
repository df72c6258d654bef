"""``suspend_flow_run`` and ``wait_for_input``, on a real server with a real worker: a
suspended run's process exits and frees its slot; resumed (CLI or API) it is scheduled
again and starts from the top, its persisted task results reused; a run waiting for input
takes only input that satisfies its schema, and gets it back typed.

Prefect 3.9.1's expectations, from ``tests/test_flow_engine.py`` (``TestSuspendFlowRun``)
and ``tests/server/orchestration/api/test_flow_runs.py`` (``TestResumeFlowrun``)."""

from __future__ import annotations

import json
import os
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowyard import flow, suspend_flow_run, task
from flowyard import schemas as s
from flowyard.cli.main import cli
from flowyard.states import StateType
from tests.e2e.conftest import deploy_flow
from tests.waiting import wait_until

FLOWS = textwrap.dedent(
    """
    import json
    import os
    import time
    from pathlib import Path

    from flowyard import flow, pause_flow_run, suspend_flow_run, task
    from flowyard.input import RunInput
    from flowyard.runtime import flow_run


    class Approval(RunInput):
        approved: bool
        note: str = ""


    @task(persist_result=True)
    def prepare(folder: str) -> int:
        with open(Path(folder, f"{flow_run.id}.prepared"), "a") as fh:
            fh.write("prepared\\n")
        return 41


    @flow
    def suspending(folder: str, timeout: float = 600) -> int:
        Path(folder, f"{flow_run.id}.{os.getpid()}.pid").write_text("")
        value = prepare(folder)
        suspend_flow_run(timeout=timeout)
        Path(folder, f"{flow_run.id}.after").write_text("resumed")
        return value + 1


    @flow
    def approving(folder: str) -> str:
        answer = suspend_flow_run(wait_for_input=Approval)
        Path(folder, f"{flow_run.id}.answer").write_text(answer.model_dump_json())
        return "approved" if answer.approved else "refused"


    @flow
    def asking(folder: str) -> int:
        number = pause_flow_run(wait_for_input=int, timeout=600, poll_interval=0.2)
        return number * 2


    @flow
    def lingering(folder: str, timeout: float) -> None:
        # resumed, it outlives its suspension's timeout: it ends when the test says so
        suspend_flow_run(timeout=timeout)
        Path(folder, f"{flow_run.id}.resumed").write_text("")
        deadline = time.monotonic() + 120
        while not Path(folder, "release").exists() and time.monotonic() < deadline:
            time.sleep(0.1)


    @task
    def tick(i: int) -> int:
        time.sleep(0.05)
        return i + 1


    @flow
    def ticking(folder: str) -> int:
        # calls tasks until told to stop: suspended from outside, it leaves at a call
        Path(folder, f"{flow_run.id}.{os.getpid()}.pid").write_text("")
        i, deadline = 0, time.monotonic() + 120
        while not Path(folder, "stop").exists() and time.monotonic() < deadline:
            i = tick(i)
        return i


    @flow
    def other(folder: str) -> None:
        Path(folder, f"{flow_run.id}.ran").write_text("ran")
    """
)

NAMES = ("suspending", "approving", "asking", "lingering", "ticking", "other")


@pytest.fixture
def deployed(api, pool, tmp_path_factory):
    """The flows above, deployed to this test's pool (limited to one run at a time)."""
    folder = tmp_path_factory.mktemp("suspend-flows")
    (folder / "flows.py").write_text(FLOWS)
    api.update_work_pool(pool, s.WorkPoolUpdate(concurrency_limit=1))
    return {name: deploy_flow(api, pool, folder, name, name=name) for name in NAMES}


def _start(api, deployment: s.Deployment, **parameters: object) -> str:
    return api.run_deployment(deployment.id, s.DeploymentRunRequest(parameters=parameters)).id


def _state(api, run_id: str) -> tuple[StateType, str]:
    state = api.read_flow_run(run_id).state
    return state.type, state.name


def _history(api, run_id: str) -> list[str]:
    return [state.name for state in api.read_flow_run_history(run_id).states]


def _gone(pid: int) -> bool:
    """The process ended (reaped, or a zombie waiting for its parent)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


def _resume(url: str, run_id: str, *extra: str):
    return CliRunner().invoke(cli, ["--api-url", url, "flow-run", "resume", run_id, *extra])


def test_a_suspended_run_exits_frees_its_slot_and_starts_again_when_resumed(
    server, api, deployed, start_worker, tmp_path
):
    """As Prefect's test_suspended_flow_run_has_correct_state (Paused, named Suspended)
    and its resume of a non-blocking pause (Scheduled again): the process exits at once;
    with the pool limited to one run, another run runs meanwhile; resumed from the CLI,
    the run starts from the top in a new process, the persisted task is not run again,
    and the suspend it went through lets it carry on."""
    start_worker()
    run_id = _start(api, deployed["suspending"], folder=str(tmp_path))
    wait_until(lambda: _state(api, run_id) == (StateType.PAUSED, "Suspended"), timeout=90)
    first_pid = int(next(tmp_path.glob(f"{run_id}.*.pid")).name.split(".")[1])
    wait_until(lambda: _gone(first_pid), timeout=60, message="the suspended process lives on")

    other = _start(api, deployed["other"], folder=str(tmp_path))  # the slot is free
    wait_until(lambda: _state(api, other)[0] is StateType.COMPLETED, timeout=90)
    assert _state(api, run_id) == (StateType.PAUSED, "Suspended")  # not taken for crashed
    assert not (tmp_path / f"{run_id}.after").exists()

    result = _resume(server.url, run_id)
    assert result.exit_code == 0, result.output
    assert "is Resuming" in result.output
    wait_until(lambda: _state(api, run_id)[0] is StateType.COMPLETED, timeout=90)
    assert (tmp_path / f"{run_id}.after").read_text() == "resumed"
    assert (tmp_path / f"{run_id}.prepared").read_text() == "prepared\n"  # reused, not rerun
    assert len(list(tmp_path.glob(f"{run_id}.*.pid"))) == 2  # two processes ran it
    history = _history(api, run_id)
    assert history[history.index("Suspended") :] == [
        "Suspended", "Resuming", "Pending", "Running", "Completed",
    ]  # fmt: skip
    logs = "\n".join(entry.message for entry in api.read_logs(run_id))
    assert "Suspending flow run, execution will be rescheduled" in logs


def test_a_run_suspended_for_input_takes_only_input_its_schema_allows(
    server, api, deployed, start_worker, tmp_path
):
    """As Prefect's test_resume_flow_run_waiting_for_input_without_input_fails_if_required,
    ..._schema_fails_validation and ..._valid_data: a resume without the required field,
    or with a value of the wrong type, is refused with the schema's reason and the run
    stays Suspended; valid input (here from a file) resumes it, and the flow gets it as
    its RunInput model."""
    start_worker()
    run_id = _start(api, deployed["approving"], folder=str(tmp_path))
    wait_until(lambda: _state(api, run_id) == (StateType.PAUSED, "Suspended"), timeout=90)
    schema = api.read_run_input(run_id, "1").input_schema
    assert schema is not None and schema["required"] == ["approved"]

    missing = _resume(server.url, run_id)
    assert missing.exit_code != 0
    assert "'approved' is a required property" in missing.output
    wrong = _resume(server.url, run_id, "--input", '{"approved": "not a bool!"}')
    assert wrong.exit_code != 0
    assert "'not a bool!' is not of type 'boolean'" in wrong.output
    not_json = _resume(server.url, run_id, "--input", "{approved")
    assert not_json.exit_code != 0 and "--input is not valid JSON" in not_json.output
    assert _state(api, run_id) == (StateType.PAUSED, "Suspended")

    answer = tmp_path / "answer.json"
    answer.write_text(json.dumps({"approved": True, "note": "ship it"}))
    resumed = _resume(server.url, run_id, "--input-file", str(answer))
    assert resumed.exit_code == 0, resumed.output
    wait_until(lambda: _state(api, run_id)[0] is StateType.COMPLETED, timeout=90)
    assert json.loads((tmp_path / f"{run_id}.answer").read_text()) == {
        "approved": True,
        "note": "ship it",
    }
    assert api.read_run_input(run_id, "1").run_input == {"approved": True, "note": "ship it"}


def test_a_paused_run_waiting_for_a_plain_type_gets_the_value(api, deployed, start_worker):
    """As Prefect's AutomaticRunInput: ``wait_for_input=int`` is answered with
    ``{"value": 21}`` and the flow gets ``21``; its process waited (pause, not suspend),
    reading its input with its own run token."""
    start_worker()
    run_id = _start(api, deployed["asking"], folder="unused")
    wait_until(lambda: _state(api, run_id) == (StateType.PAUSED, "Paused"), timeout=90)
    with pytest.raises(Exception, match="is not of type 'integer'"):
        api.resume_flow_run(run_id, run_input={"value": "twenty-one"})
    api.resume_flow_run(run_id, run_input={"value": 21})
    wait_until(lambda: _state(api, run_id)[0] is StateType.COMPLETED, timeout=90)
    assert _history(api, run_id)[-3:] == ["Paused", "Running", "Completed"]


def test_a_suspension_past_its_timeout_cannot_resume(server, api, deployed, start_worker, tmp_path):
    """As Prefect's HandleResumingPausedFlows: resuming after the timeout is refused and
    the run is Failed, 'The flow was suspended and never resumed.'"""
    start_worker()
    run_id = _start(api, deployed["suspending"], folder=str(tmp_path), timeout=0.2)
    wait_until(lambda: _state(api, run_id) == (StateType.PAUSED, "Suspended"), timeout=90)
    deadline = api.read_flow_run(run_id).state.timestamp + timedelta(seconds=0.2)
    wait_until(lambda: datetime.now(UTC) > deadline, timeout=30)
    refused = _resume(server.url, run_id)
    assert refused.exit_code != 0
    timed_out = "The flow run suspend has timed out and can no longer resume."
    already = "is not paused: it is Failed"  # the expired pauses service came first
    assert timed_out in refused.output or already in refused.output, refused.output
    result = _resume(server.url, run_id)
    assert "is not paused: it is Failed" in result.output
    run = api.read_flow_run(run_id)
    assert run.state.type is StateType.FAILED
    assert run.state.message == "The flow was suspended and never resumed."


def test_an_expired_suspension_is_failed_with_nobody_resuming(
    api, deployed, start_worker, tmp_path
):
    """As Prefect's FailExpiredPauses: no process holds a suspended run, yet once its
    timeout passes the server Fails it."""
    start_worker()
    run_id = _start(api, deployed["suspending"], folder=str(tmp_path), timeout=0.5)
    wait_until(lambda: _state(api, run_id) == (StateType.PAUSED, "Suspended"), timeout=90)
    wait_until(lambda: _state(api, run_id)[0] is StateType.FAILED, timeout=60)
    run = api.read_flow_run(run_id)
    assert run.state.message == "The flow was suspended and never resumed."
    assert _history(api, run_id)[-2:] == ["Suspended", "Failed"]
    assert not (tmp_path / f"{run_id}.after").exists()


def test_a_run_resumed_in_time_outlives_its_suspension_timeout(
    api, deployed, start_worker, tmp_path
):
    """The service Fails only runs still Paused: one resumed before its timeout runs on
    past it (a pass of the service included) and completes."""
    start_worker()
    timeout = 8.0
    run_id = _start(api, deployed["lingering"], folder=str(tmp_path), timeout=timeout)
    wait_until(lambda: _state(api, run_id) == (StateType.PAUSED, "Suspended"), timeout=90)
    expires = api.read_flow_run(run_id).state.timestamp + timedelta(seconds=timeout)
    api.resume_flow_run(run_id)
    assert datetime.now(UTC) < expires, "resumed too late for this test: raise the timeout"
    wait_until(lambda: (tmp_path / f"{run_id}.resumed").exists(), timeout=90)
    # past the timeout and past one more pass of the service (every 5 s by default)
    wait_until(lambda: datetime.now(UTC) > expires + timedelta(seconds=6), timeout=60)
    assert _state(api, run_id)[0] is StateType.RUNNING
    (tmp_path / "release").write_text("")
    wait_until(lambda: _state(api, run_id)[0] is StateType.COMPLETED, timeout=90)
    assert "Failed" not in _history(api, run_id)


def test_a_run_suspended_from_outside_leaves_at_its_next_task_and_starts_again(
    script_api, api, deployed, start_worker, tmp_path
):
    """As Prefect's suspend_flow_run(flow_run_id=...): the run is Suspended at once, its
    process leaves at its flow's next task call (the slot goes back: another run runs),
    and resumed it starts again from the top."""
    start_worker()
    run_id = _start(api, deployed["ticking"], folder=str(tmp_path))
    wait_until(lambda: _state(api, run_id)[0] is StateType.RUNNING, timeout=90)
    wait_until(lambda: any(tmp_path.glob(f"{run_id}.*.pid")), timeout=60)
    first_pid = int(next(tmp_path.glob(f"{run_id}.*.pid")).name.split(".")[1])

    assert suspend_flow_run(flow_run_id=run_id, timeout=600) is None
    assert _state(api, run_id) == (StateType.PAUSED, "Suspended")
    wait_until(lambda: _gone(first_pid), timeout=60, message="the suspended process lives on")
    other = _start(api, deployed["other"], folder=str(tmp_path))  # the slot is free
    wait_until(lambda: _state(api, other)[0] is StateType.COMPLETED, timeout=90)
    assert _state(api, run_id) == (StateType.PAUSED, "Suspended")

    (tmp_path / "stop").write_text("")
    api.resume_flow_run(run_id)
    wait_until(lambda: _state(api, run_id)[0] is StateType.COMPLETED, timeout=90)
    assert len(list(tmp_path.glob(f"{run_id}.*.pid"))) == 2
    history = _history(api, run_id)
    assert history[history.index("Suspended") :][:3] == ["Suspended", "Resuming", "Pending"]
    logs = "\n".join(entry.message for entry in api.read_logs(run_id))
    assert "Suspending flow run, execution will be rescheduled" in logs


def test_suspending_another_run_is_refused_as_prefect_refuses_it(api, deployed, script_api):
    """A run that is not running: Prefect's 'Cannot suspend flows that are not currently
    running.' as a RuntimeError; a run that does not exist: not found."""
    later = s.DeploymentRunRequest(
        parameters={"folder": "unused"}, scheduled_time=datetime.now(UTC) + timedelta(days=1)
    )
    waiting = api.run_deployment(deployed["other"].id, later).id
    with pytest.raises(RuntimeError, match="Cannot suspend flows that are not currently running."):
        suspend_flow_run(flow_run_id=waiting)
    with pytest.raises(Exception, match="not found"):
        suspend_flow_run(flow_run_id="00000000-0000-0000-0000-000000000000")
    assert _state(api, waiting)[0] is StateType.SCHEDULED


def test_cancelling_a_suspended_run_ends_it_at_once(api, deployed, start_worker, tmp_path):
    """As Prefect's test_rejects_cancelling_suspended_flow_and_sets_to_cancelled: no
    process holds a suspended run, so a cancel makes it Cancelled, not Cancelling."""
    start_worker()
    run_id = _start(api, deployed["approving"], folder=str(tmp_path))
    wait_until(lambda: _state(api, run_id) == (StateType.PAUSED, "Suspended"), timeout=90)
    assert api.cancel_flow_run(run_id).state.type is StateType.CANCELLED
    assert _history(api, run_id)[-2:] == ["Suspended", "Cancelled"]


@pytest.fixture
def script_api(server, monkeypatch):
    monkeypatch.setenv("FLOWYARD_API_URL", server.url)
    return server.url


def test_suspending_needs_a_deployment_a_top_level_flow_and_no_task(script_api, api):
    """As Prefect's test_suspending_flow_run_without_deployment_fails,
    test_suspending_sub_flow_run_fails, and 'Cannot suspend task runs.'."""

    @flow
    def lone() -> None:
        suspend_flow_run()

    with pytest.raises(RuntimeError, match="Cannot suspend flows without a deployment."):
        lone()

    @flow
    def parent() -> None:
        lone()

    with pytest.raises(RuntimeError, match="Cannot suspend subflows."):
        parent()

    @task
    def suspends_from_a_task() -> None:
        suspend_flow_run()

    @flow
    def with_task() -> None:
        suspends_from_a_task()

    with pytest.raises(RuntimeError, match="Cannot suspend task runs."):
        with_task()

    with pytest.raises(RuntimeError, match="only be suspended from within a flow run"):
        suspend_flow_run()
