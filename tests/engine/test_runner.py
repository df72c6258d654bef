"""The engine run end to end: ``python -m flowyard.engine`` against a real loopback API."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flowyard import schemas as s
from flowyard.engine.runner import EXIT_UNSETTLED
from flowyard.states import StateType

TOKEN = "claim-token-1"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

FLOWS = """
from pathlib import Path

from flowyard import flow, get_run_logger, task


@task
def double(n: int) -> int:
    get_run_logger().info("doubling %s", n)
    return n * 2


@task(retries=1)
def explode() -> None:
    raise ValueError("boom")


@flow
def good(n: int) -> None:
    Path("marker.txt").write_text(str(double(n)))
    get_run_logger().info("hello from the flow")


@flow
def variables() -> None:
    from flowyard.runtime import flow_run

    Path("marker.txt").write_text(repr(flow_run.job_variables))


@flow
def bad() -> None:
    Path("marker.txt").write_text("ran")
    explode()
"""


def run_engine(
    url: str, run_id: str, cwd: Path, **settings: str
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "FLOWYARD_API_URL": url,
        "FLOWYARD_CLAIM_TOKEN": TOKEN,
        "FLOWYARD_ENGINE_LOG_LEVEL": "INFO",
        **{f"FLOWYARD_{name.upper()}": value for name, value in settings.items()},
    }
    return subprocess.run(
        [sys.executable, "-m", "flowyard.engine", run_id],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def write_flows(tmp_path: Path) -> Path:
    (tmp_path / "flows.py").write_text(textwrap.dedent(FLOWS))
    return tmp_path


class TestSuccessfulRun:
    def test_reports_running_then_completed_with_the_claim_token(self, api, tmp_path):
        """The run moves Running → Completed, both with the worker's claim token."""
        fake, url = api
        run = fake.add_run(write_flows(tmp_path), "flows.py:good", {"n": "21"})
        done = run_engine(url, run.id, tmp_path)
        assert done.returncode == 0, done.stderr
        assert fake.states() == [StateType.RUNNING, StateType.COMPLETED]
        assert {change.token for change in fake.state_changes} == {TOKEN}
        assert (tmp_path / "marker.txt").read_text() == "42"

    def test_the_running_answer_spares_reading_the_run_and_its_deployment(self, api, tmp_path):
        """The engine asks for the run and its deployment in the Running answer: no reads."""
        fake, url = api
        run = fake.add_run(write_flows(tmp_path), "flows.py:good", {"n": 3})
        done = run_engine(url, run.id, tmp_path)
        assert done.returncode == 0, done.stderr
        assert fake.state_changes[0].with_run
        assert fake.reads == []
        assert (tmp_path / "marker.txt").read_text() == "6"

    def test_an_older_api_s_answer_makes_the_engine_read_them(self, api, tmp_path):
        """Against an API whose Running answer lacks the run, the engine reads both."""
        fake, url = api
        fake.answers_with_run = False
        run = fake.add_run(write_flows(tmp_path), "flows.py:good", {"n": 4})
        done = run_engine(url, run.id, tmp_path)
        assert done.returncode == 0, done.stderr
        assert fake.reads == [f"flow_runs/{run.id}", f"deployments/{run.deployment_id}"]
        assert fake.states() == [StateType.RUNNING, StateType.COMPLETED]
        assert (tmp_path / "marker.txt").read_text() == "8"

    def test_records_task_runs_and_ships_logs(self, api, tmp_path):
        """Task runs are created and completed; flow and task logs arrive, task ones tagged."""
        fake, url = api
        run = fake.add_run(write_flows(tmp_path), "flows.py:good", {"n": 1})
        done = run_engine(url, run.id, tmp_path)
        assert done.returncode == 0, done.stderr
        [(task_run_id, created)] = fake.task_runs.items()
        assert (created.name, created.flow_run_id) == ("double-0", run.id)
        assert [(i, u.state) for i, u in fake.task_updates] == [(task_run_id, StateType.COMPLETED)]
        by_message = {log.message: log for log in fake.logs}
        assert by_message["doubling 1"].task_run_id == task_run_id
        assert by_message["hello from the flow"].task_run_id is None
        assert {log.source for log in fake.logs} == {"engine"}
        assert {log.flow_run_id for log in fake.logs} == {run.id}

    def test_the_run_sees_the_job_variables_it_was_created_with(self, api, tmp_path):
        """As Prefect's runtime.flow_run.job_variables (tests/runtime/test_flow_run.py,
        TestJobVariables): the flow run's own job variables (None outside a run)."""
        fake, url = api
        variables = {"env": {"STAGE": "test"}, "image": "python:3.11"}
        run = fake.add_run(write_flows(tmp_path), "flows.py:variables", job_variables=variables)
        done = run_engine(url, run.id, tmp_path)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "marker.txt").read_text() == repr(variables)

    def test_shipped_logs_are_not_printed_too(self, api, tmp_path):
        """The worker captures stdout/stderr, so shipped records are not echoed there."""
        fake, url = api
        run = fake.add_run(write_flows(tmp_path), "flows.py:good", {"n": 1})
        done = run_engine(url, run.id, tmp_path)
        assert "hello from the flow" not in done.stdout + done.stderr
        assert "flow_run_started" in done.stderr and done.stdout == ""

    def test_runs_the_quick_start_example(self, api, tmp_path):
        """examples/etl.py runs in the engine: three task runs, its print on stdout."""
        fake, url = api
        run = fake.add_run(EXAMPLES, "etl.py:etl_flow")
        done = run_engine(url, run.id, tmp_path)
        assert done.returncode == 0, done.stderr
        names = [created.name for created in fake.task_runs.values()]
        assert names == ["extract_data-0", "transform_data-0", "load_data-0"]
        assert "Loading data: [10, 20, 30, 40, 50]" in done.stdout
        assert "Starting the ETL pipeline" in fake.log_text()
        assert fake.states()[-1] is StateType.COMPLETED


class TestFailedRun:
    def test_a_raising_flow_fails_with_its_traceback_in_the_logs(self, api, tmp_path):
        """The flow's exception gives Failed with a one-line message; the traceback is logged."""
        fake, url = api
        run = fake.add_run(write_flows(tmp_path), "flows.py:bad")
        done = run_engine(url, run.id, tmp_path)
        assert done.returncode == 0, done.stderr
        assert fake.states() == [StateType.RUNNING, StateType.FAILED]
        message = fake.state_changes[-1].message
        assert message == "Flow run encountered an exception ValueError: boom"
        errors = [log.message for log in fake.logs if log.level == logging.ERROR]
        assert any("Traceback" in m and "raise ValueError" in m for m in errors)
        assert [u.state for _, u in fake.task_updates] == [StateType.FAILED]
        assert "Retry 1/1" in fake.log_text()

    def test_a_missing_function_fails_the_run(self, api, tmp_path):
        """An entrypoint naming no function fails the run with the loader's message."""
        fake, url = api
        run = fake.add_run(write_flows(tmp_path), "flows.py:nope")
        done = run_engine(url, run.id, tmp_path)
        assert done.returncode == 0, done.stderr
        assert fake.states() == [StateType.RUNNING, StateType.FAILED]
        assert fake.state_changes[-1].message == "'nope' not found in 'flows.py'"
        assert "EntrypointError" in fake.log_text()

    def test_invalid_parameters_fail_the_run_naming_the_parameter(self, api, tmp_path):
        """A parameter pydantic cannot coerce fails the run before the flow body starts."""
        fake, url = api
        run = fake.add_run(write_flows(tmp_path), "flows.py:good", {"n": "many"})
        done = run_engine(url, run.id, tmp_path)
        assert done.returncode == 0, done.stderr
        assert fake.state_changes[-1].message.startswith(
            "parameter 'n': Input should be a valid integer"
        )
        assert not (tmp_path / "marker.txt").exists()


class TestEntrypointFolder:
    """The engine resolves a file entrypoint in the run's working directory, and only there."""

    def test_a_path_leaving_the_folder_fails_the_run_before_loading(self, api, tmp_path):
        """``../other/flows.py:good`` is refused even though the file exists and is a flow."""
        fake, url = api
        project, other = tmp_path / "project", tmp_path / "other"
        project.mkdir()
        other.mkdir()
        write_flows(other)
        run = fake.add_run(project, "../other/flows.py:good", {"n": 1})
        done = run_engine(url, run.id, tmp_path)
        assert done.returncode == 0, done.stderr
        assert fake.states() == [StateType.RUNNING, StateType.FAILED]
        assert "leads outside the deployment's working directory" in (
            fake.state_changes[-1].message or ""
        )
        assert not (other / "marker.txt").exists()

    def test_a_pull_step_directory_is_where_the_file_is_found(self, api, tmp_path):
        """With set_working_directory ``../other``, ``flows.py:good`` is that folder's file."""
        fake, url = api
        project, other = tmp_path / "project", tmp_path / "other"
        project.mkdir()
        other.mkdir()
        write_flows(other)
        run = fake.add_run(project, "flows.py:good", {"n": 2})
        step = s.PullStep(set_working_directory=s.SetWorkingDirectory(directory="../other"))
        deployment = fake.deployments[run.deployment_id]
        fake.deployments[run.deployment_id] = deployment.model_copy(update={"pull_steps": [step]})
        done = run_engine(url, run.id, tmp_path)
        assert done.returncode == 0, done.stderr
        assert fake.states() == [StateType.RUNNING, StateType.COMPLETED]
        assert (other / "marker.txt").read_text() == "4"


class TestRefusedAndBroken:
    def test_a_refused_running_state_never_runs_the_flow(self, api, tmp_path):
        """When the claim was taken back, the engine exits 4 (the worker reads the run to
        settle it) without running the flow."""
        fake, url = api
        fake.refuse_running = "the claim token is no longer valid"
        run = fake.add_run(write_flows(tmp_path), "flows.py:good", {"n": 1})
        done = run_engine(url, run.id, tmp_path)
        assert done.returncode == EXIT_UNSETTLED, done.stderr
        assert not (tmp_path / "marker.txt").exists()
        assert fake.states() == [StateType.RUNNING]
        assert fake.task_runs == {} and fake.logs == []
        assert "flow_run_refused" in done.stderr

    def test_a_refused_final_state_exits_4_for_the_worker_to_settle(self, api, tmp_path):
        """Exit 0 tells the worker the API kept the final state (it reads nothing back); a
        final state the API refused (the run was cancelled by force meanwhile) is exit 4."""
        fake, url = api
        fake.refuse_final = "the run is Cancelled already"
        run = fake.add_run(write_flows(tmp_path), "flows.py:good", {"n": 1})
        done = run_engine(url, run.id, tmp_path)
        assert done.returncode == EXIT_UNSETTLED, done.stderr
        assert fake.states() == [StateType.RUNNING, StateType.COMPLETED]
        assert "state_report_refused" in done.stderr

    def test_an_unknown_run_exits_non_zero(self, api, tmp_path):
        """A run the API does not know cannot be reported on: exit 1."""
        _, url = api
        done = run_engine(url, "no-such-run", tmp_path)
        assert done.returncode == 1
        assert "flow_run_start_failed" in done.stderr

    @pytest.mark.parametrize(("status", "retried"), [(502, True), (500, False)])
    def test_a_terminal_state_that_cannot_be_reported_exits_non_zero(
        self, api, tmp_path, status, retried
    ):
        """An API that keeps answering 502 (a proxy in front of it failed) to the final
        report is retried for ``final_report_seconds``, a 500 (a fault the same report
        meets again) is not; then the exit is 1, so the worker marks Crashed."""
        fake, url = api
        fake.terminal_status = status
        run = fake.add_run(write_flows(tmp_path), "flows.py:good", {"n": 1})
        done = run_engine(url, run.id, tmp_path, final_report_seconds="3")
        assert done.returncode == 1
        assert ("state_report_retrying" in done.stderr) is retried
        assert "state_report_failed" in done.stderr
        assert "hello from the flow" in fake.log_text()

    def test_a_missing_argument_is_a_usage_error(self):
        """Without a flow run id the engine prints its usage and exits 2."""
        done = subprocess.run(
            [sys.executable, "-m", "flowyard.engine"], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2 and "usage" in done.stderr
