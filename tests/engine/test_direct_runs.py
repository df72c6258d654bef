"""A flow called from a plain script is recorded through the API when a server is configured."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from flowyard.states import StateType

SCRIPT = """
from flowyard import flow, get_run_logger, task


@task
def double(n: int) -> int:
    return n * 2


@flow(flow_run_name="child-{n}")
def child(n: int) -> int:
    return double(n)


@flow(name="direct")
def parent(n: int = 2) -> int:
    get_run_logger().info("parent says hi")
    return child(n) + double(n)


print(parent())
"""


def run_script(tmp_path: Path, url: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "direct.py").write_text(textwrap.dedent(SCRIPT))
    env = {k: v for k, v in os.environ.items() if k != "FLOWYARD_API_URL"}
    if url:
        env["FLOWYARD_API_URL"] = url
    return subprocess.run(
        [sys.executable, str(tmp_path / "direct.py")],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )  # fmt: skip


class TestDirectRuns:
    def test_runs_tasks_states_logs_and_the_subflow_link_are_recorded(self, api, tmp_path):
        """Parent and child runs are created, the child linked to a task run of the parent."""
        fake, url = api
        done = run_script(tmp_path, url)
        assert done.returncode == 0, done.stderr
        assert done.stdout == "8\n"
        parent_create, child_create = fake.created_runs
        assert (parent_create.flow_name, parent_create.parameters) == ("direct", {"n": 2})
        assert child_create.name == "child-2" and child_create.parent_task_run_id is not None
        link = fake.task_runs[child_create.parent_task_run_id]
        assert link.task_key == "flow:child"
        assert [c.type for c in fake.state_changes] == [StateType.COMPLETED] * 2
        names = sorted(created.name for created in fake.task_runs.values())
        assert names == ["child-0", "double-0", "double-0"]
        assert "parent says hi" in fake.log_text()

    def test_an_unreachable_api_leaves_the_run_local(self, tmp_path):
        """With the API down, the script still runs in-process and says so once."""
        done = run_script(tmp_path, "http://127.0.0.1:9")
        assert done.returncode == 0, done.stderr
        assert done.stdout == "8\n"
        assert "running the flow locally" in done.stderr

    def test_a_name_the_api_refuses_leaves_the_run_local(self, api, tmp_path):
        """A flow whose name breaks the API's bounds still runs, unrecorded, with a warning."""
        _, url = api
        (tmp_path / "odd.py").write_text(
            "from flowyard import flow\n\n@flow(name='odd name ')\ndef odd() -> int:\n"
            "    return 3\n\nprint(odd())\n"
        )
        env = {**os.environ, "FLOWYARD_API_URL": url}
        done = subprocess.run(
            [sys.executable, str(tmp_path / "odd.py")],
            capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0 and done.stdout.endswith("3\n"), done.stderr
        assert "flow_run_not_recorded" in done.stdout + done.stderr
