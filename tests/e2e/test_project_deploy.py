"""``flowyard deploy --all`` from a flowyard.yaml, and git pull steps, against a real server."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

from click.testing import CliRunner

from flowyard import schemas as s
from flowyard.cli.main import cli
from tests.e2e.conftest import FLOWS
from tests.waiting import wait_until


def _project(folder: Path, pool: str, extra: str = "", job_variables: str = "{}") -> Path:
    """Two deployments of the test flows; ``extra`` is appended (e.g. pull steps)."""
    folder.mkdir(exist_ok=True)
    (folder / "flows.py").write_text(FLOWS)
    (folder / "flowyard.yaml").write_text(
        textwrap.dedent(
            f"""
            deployments:
              - name: noop-hourly
                entrypoint: flows.py:noop
                work_pool: {{name: {pool}}}
                parameters: {{n: 4}}
                schedules:
                  - cron: "0 * * * *"
                    timezone: Europe/Berlin
              - name: marker-manual
                entrypoint: flows.py:marker
                work_pool: {{name: {pool}, job_variables: {job_variables}}}
                parameters: {{folder: {str(folder)!r}}}
            """
        )
        + extra
    )
    return folder


def _deploy(server, folder: Path, *args: str):
    return CliRunner().invoke(
        cli,
        ["--api-url", server.url, "deploy", "--file", str(folder / "flowyard.yaml"), *args],
        catch_exceptions=False,
    )


def test_deploy_all_applies_every_deployment_and_they_run(
    server, api, pool, tmp_path, start_worker
):
    """Both deployments are created with their schedules; one of them runs to Completed."""
    folder = _project(tmp_path / "project", pool)
    result = _deploy(server, folder, "--all")
    assert result.exit_code == 0, result.output
    assert "Deployed noop/noop-hourly" in result.output and "marker/marker-manual" in result.output
    hourly = api.read_deployment("noop/noop-hourly")
    assert hourly.parameters == {"n": 4} and hourly.path == str(folder.resolve())
    (schedule,) = api.list_schedules(hourly.id)
    assert (schedule.kind, schedule.timezone) == ("cron", "Europe/Berlin")
    start_worker()
    marker = api.read_deployment("marker/marker-manual")
    run = api.run_deployment(marker.id, s.DeploymentRunRequest())
    wait_until(lambda: api.read_flow_run(run.id).state.type.value == "COMPLETED", timeout=90)
    assert (folder / run.id).read_text() == "ran\n"


def test_deploy_says_per_deployment_what_changed(server, api, pool, tmp_path):
    """Deployed again as is: unchanged; with a new parameter: updated, naming the field."""
    folder = _project(tmp_path / "project", pool)
    assert _deploy(server, folder, "--all").exit_code == 0
    again = _deploy(server, folder, "--all")
    assert again.exit_code == 0, again.output
    assert again.output.count(": unchanged.") == 2, again.output
    yaml = folder / "flowyard.yaml"
    yaml.write_text(yaml.read_text().replace("{n: 4}", "{n: 5}"))
    changed = _deploy(server, folder, "--all")
    assert changed.exit_code == 0, changed.output
    assert "noop/noop-hourly to work pool" in changed.output
    assert ": updated (parameters)." in changed.output, changed.output
    assert changed.output.count(": unchanged.") == 1, changed.output


def test_an_error_in_one_deployment_applies_none(server, api, pool, tmp_path):
    """A mistyped job variable in the second deployment: the file, the deployment and the
    variable are named, and the first deployment is not applied either."""
    folder = _project(tmp_path / "bad", pool, job_variables="{env: [1, 2]}")
    result = _deploy(server, folder, "--all")
    assert result.exit_code != 0
    assert "flowyard.yaml: deployment 'marker-manual'" in result.output
    assert "job variable 'env'" in result.output
    assert [d.name for d in api.list_deployments() if d.pool_name == pool] == []


def test_git_clone_pull_step_runs_the_code_of_the_repository(
    server, api, pool, tmp_path, start_worker
):
    """With a git_clone pull step, the run loads the flow from a fresh clone of the branch,
    not from the folder it was deployed from."""
    repo = tmp_path / "repo"
    repo.mkdir()
    cloned_flows = FLOWS.replace('fh.write("ran\\n")', 'fh.write("ran from git\\n")')
    assert cloned_flows != FLOWS
    (repo / "flows.py").write_text(cloned_flows)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "release", str(repo)], check=True)
    subprocess.run([*git, "add", "flows.py"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "flows"], check=True)
    pull = f"pull:\n  - git_clone: {{repository: {str(repo)!r}, branch: release}}\n"
    folder = _project(tmp_path / "checkout", pool, pull)
    result = _deploy(server, folder, "--name", "marker-manual")
    assert result.exit_code == 0, result.output
    dep = api.read_deployment("marker/marker-manual")
    assert dep.pull_steps[0].git_clone is not None
    start_worker()
    run = api.run_deployment(dep.id, s.DeploymentRunRequest())
    wait_until(lambda: api.read_flow_run(run.id).state.type.value == "COMPLETED", timeout=90)
    assert (folder / run.id).read_text() == "ran from git\n"


def _escaping_project(tmp_path: Path, pool: str, entrypoint: str, pull: str = "") -> Path:
    """A project folder whose one deployment names ``entrypoint``; the test flows are in
    ``shared/``, next to it."""
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "flows.py").write_text(FLOWS)
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "flowyard.yaml").write_text(
        textwrap.dedent(
            f"""
            deployments:
              - name: escape
                entrypoint: {entrypoint}
                work_pool: {{name: {pool}}}
                parameters: {{folder: {str(folder)!r}}}
            """
        )
        + pull
    )
    return folder


def test_entrypoints_leaving_the_project_are_refused(server, api, pool, tmp_path, monkeypatch):
    """``deploy ../shared/flows.py:marker`` and the same entrypoint in flowyard.yaml are
    refused with the reason, though the file exists; nothing is deployed."""
    folder = _escaping_project(tmp_path, pool, "../shared/flows.py:marker")
    monkeypatch.chdir(folder)
    one = ["--api-url", server.url, "deploy", "../shared/flows.py:marker", "-n", "x", "-p", pool]
    result = CliRunner().invoke(cli, one, catch_exceptions=False)
    assert result.exit_code != 0
    assert "leads outside the deployment's working directory" in result.output
    result = _deploy(server, folder, "--all")
    assert result.exit_code != 0
    assert "flowyard.yaml: deployment 'escape'" in result.output
    assert "leads outside the deployment's working directory" in result.output
    assert [d.name for d in api.list_deployments() if d.pool_name == pool] == []


def test_a_pull_step_directory_is_where_the_entrypoint_is_found(
    server, api, pool, tmp_path, start_worker
):
    """With ``set_working_directory: ../shared`` the entrypoint ``flows.py:marker`` is that
    folder's file, when deployed and when run."""
    pull = "pull:\n  - set_working_directory: {directory: ../shared}\n"
    folder = _escaping_project(tmp_path, pool, "flows.py:marker", pull)
    result = _deploy(server, folder, "--all")
    assert result.exit_code == 0, result.output
    dep = api.read_deployment("marker/escape")
    start_worker()
    run = api.run_deployment(dep.id, s.DeploymentRunRequest())
    wait_until(lambda: api.read_flow_run(run.id).state.type.value == "COMPLETED", timeout=90)
    assert (folder / run.id).read_text() == "ran\n"
