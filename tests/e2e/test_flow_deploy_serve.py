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
from flowyard.errors import InvalidInput
from flowyard.sdk.sources import load_flow
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
    and stops cleanly on SIGTERM: its deployment paused (no Scheduled run left to go Late),
    its pool without an online worker at once; served again, it is resumed."""
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
    assert "Stopped serving served/every-2s: paused its schedules" in output
    assert api.read_deployment(dep.id).paused
    left = api.list_flow_runs(deployment_id=dep.id, state="SCHEDULED", limit=50)
    assert left == [], [r.scheduled_time for r in left]
    assert api.read_work_pool(dep.pool_name).status == "NOT_READY"

    again = subprocess.Popen(
        [sys.executable, str(tmp_path / "served.py"), str(tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:  # served again: resumed, its schedule makes runs again
        wait_until(lambda: not api.read_deployment(dep.id).paused, timeout=60)
    finally:
        again.send_signal(signal.SIGTERM)
        output = again.communicate(timeout=60)[0].decode()
    assert again.returncode == 0 and api.read_deployment(dep.id).paused, output


def _deployment(api, ref: str):
    try:
        return api.read_deployment(ref)
    except Exception:
        return None


def _git_repo(folder, files: dict[str, str], branch: str = "main") -> str:
    """A real git repository with ``files`` committed on ``branch``; its file:// URL."""
    folder.mkdir()
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    git = ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", "-b", branch, str(folder)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "flows"], check=True)
    return f"file://{folder}"


def test_from_source_deploys_a_flow_whose_runs_clone_the_repository(
    server, api, pool, start_worker, tmp_path, monkeypatch
):
    """``flow.from_source(git URL, entrypoint)``: the flow is loaded from a clone (its
    parameters known), and its deployment's runs clone the branch afresh — changing the
    repository after deploying changes what the next run does."""
    from flowyard.runner.storage import GitRepository

    url = _git_repo(tmp_path / "repo", {"pkg/served.py": SCRIPT}, branch="release")
    monkeypatch.setenv("FLOWYARD_API_URL", server.url)
    remote = flow.from_source(GitRepository(url, branch="release"), "pkg/served.py:served")
    assert remote.name == "served" and "folder" in remote.parameters["properties"]
    dep = api.read_deployment(remote.deploy("from-git", pool))
    assert (dep.entrypoint, dep.path) == ("pkg/served.py:served", None)
    (step,) = dep.pull_steps
    assert step.git_clone == s.GitClone(repository=url, branch="release")
    repo = tmp_path / "repo"
    changed = SCRIPT.replace('write_text("served\\n")', 'write_text("served from git\\n")')
    (repo / "pkg" / "served.py").write_text(changed)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "commit", "-q", "-am", "changed"], check=True)
    start_worker()
    body = s.DeploymentRunRequest(parameters={"folder": str(tmp_path)})
    run = api.run_deployment(dep.id, body)
    wait_until(lambda: api.read_flow_run(run.id).state.type is StateType.COMPLETED, timeout=90)
    assert (tmp_path / run.id).read_text() == "served from git\n"


def test_from_source_takes_a_local_folder_and_refuses_bad_sources(tmp_path):
    from flowyard.errors import EntrypointError
    from flowyard.runner.storage import GitRepository

    (tmp_path / "served.py").write_text(SCRIPT)
    local = flow.from_source(str(tmp_path), "served.py:served")
    assert local.source is not None and local.source.path == str(tmp_path.resolve())
    assert local.with_options(retries=2).source == local.source
    with pytest.raises(InvalidInput, match="neither a folder nor a git URL"):
        flow.from_source(str(tmp_path / "missing"), "served.py:served")
    with pytest.raises(EntrypointError):
        flow.from_source(str(tmp_path), "served.py")  # no function named
    with pytest.raises(EntrypointError, match="pull step git_clone of file://"):
        flow.from_source(f"file://{tmp_path}/no-repo.git", "served.py:served")
    token = GitRepository("https://example.com/x.git", credentials={"access_token": "s3cr3t"})
    with pytest.raises(InvalidInput, match="a token in clear would be stored"):
        flow.from_source(token, "served.py:served")


def test_a_git_token_is_referred_to_by_its_secret_blocks_name(server, monkeypatch):
    """``credentials={"access_token": Secret.load(name)}`` puts the block's name in the
    pull step, never the token."""
    from flowyard.blocks import Secret
    from flowyard.runner.storage import GitRepository

    monkeypatch.setenv("FLOWYARD_API_URL", server.url)
    assert Secret(value="s3cr3t").save("git-token-for-source").saved_name == "git-token-for-source"
    loaded = Secret.load("git-token-for-source")
    repo = GitRepository("https://example.com/x.git", credentials={"access_token": loaded})
    assert repo.secret_name() == "git-token-for-source"
    assert GitRepository("https://example.com/x.git", access_token_secret="a").secret_name() == "a"
    assert Secret(value="unsaved").saved_name is None
