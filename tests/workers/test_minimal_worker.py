"""A third-party worker type, installed as its own package, found through its entry point.

``minimal_worker/`` is the package of ``docs/writing-a-worker.md``. It is installed the
way an installer leaves it for ``importlib.metadata`` (the module and a ``.dist-info``
whose ``entry_points.txt`` is written from the package's own ``pyproject.toml``) into a
folder that only the worker's process has on its path. That worker runs one flow run
against the real server, through a proxy that counts what the server is sent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess, WorkerProcess
from flowyard.client import FlowyardClient
from flowyard.errors import ApiError
from tests.e2e.conftest import FAST, deploy_flow, flows_dir  # noqa: F401 - a fixture
from tests.helpers.counting_proxy import CountingProxy
from tests.waiting import wait_until

PACKAGE = Path(__file__).parent / "minimal_worker"
DOC = Path(__file__).parents[2] / "docs" / "writing-a-worker.md"


def install(project: Path, site: Path) -> None:
    """Put the project's module and a dist-info made from its pyproject into ``site``."""
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    meta = pyproject["project"]
    for module in pyproject["tool"]["setuptools"]["py-modules"]:
        shutil.copy(project / f"{module}.py", site / f"{module}.py")
    dist_info = site / f"{meta['name'].replace('-', '_')}-{meta['version']}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n"
    )
    groups = meta["entry-points"]
    (dist_info / "entry_points.txt").write_text(
        "".join(
            f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in points.items())
            for group, points in groups.items()
        )
    )


def pool_exists(api: FlowyardClient, name: str) -> s.WorkPool | None:
    try:
        return api.read_work_pool(name)
    except ApiError:
        return None


def test_a_worker_type_from_its_own_package_runs_a_flow_run(
    api: FlowyardClient,
    server: ServerProcess,
    flows_dir: Path,  # noqa: F811 - the imported fixture
    tmp_path: Path,
):
    """``worker start --type minimal`` loads the type through the ``flowyard.workers`` entry
    point, creates its pool from the variables model, and runs a flow run to Completed,
    its handle reported once."""
    site = tmp_path / "site"
    site.mkdir()
    install(PACKAGE, site)
    pool = f"minimal-{uuid.uuid4().hex[:8]}"
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    with CountingProxy(server.url) as proxy:
        worker = WorkerProcess(
            proxy.url, pool, tmp_path, "--type", "minimal", env={**FAST, "PYTHONPATH": path}
        )
        try:
            created = wait_until(
                lambda: pool_exists(api, pool),
                timeout=15,
                interval=0.1,
                message="the worker never created its pool",
            )
            assert created.type == "minimal"
            assert "env" in created.base_job_template["variables"]["properties"]
            dep = deploy_flow(api, pool, flows_dir, "noop")
            run = api.run_deployment(dep.id, s.DeploymentRunRequest(parameters={"n": 4}))
            done = wait_until(
                lambda: (got := api.read_flow_run(run.id)).state.type.is_terminal and got,
                timeout=20,
                interval=0.1,
                message="the run never ended",
            )
        finally:
            worker.stop(timeout=15)
    assert done.state.type.value == "COMPLETED", done.state.message
    assert done.infrastructure_id == f"minimal:{run.id}"
    assert proxy.count("POST", f"/api/flow_runs/{run.id}/infrastructure") == 1


def test_the_doc_shows_the_tested_package():
    """``docs/writing-a-worker.md`` quotes the module and the entry point this test runs."""
    doc = DOC.read_text()
    assert (PACKAGE / "flowyard_minimal_worker.py").read_text() in doc
    assert 'minimal = "flowyard_minimal_worker:MinimalWorker"' in doc


def test_a_type_whose_name_is_not_its_entry_point_is_refused_with_why(tmp_path: Path):
    """Pools, runs and the UI go by the type's name: an entry point ``mislabelled`` that
    loads a class saying ``type = "minimal"`` would put runs in the wrong pools."""
    site = tmp_path / "site"
    site.mkdir()
    install(PACKAGE, site)
    [entry_points] = site.glob("*.dist-info/entry_points.txt")
    entry_points.write_text(
        "[flowyard.workers]\nmislabelled = flowyard_minimal_worker:MinimalWorker\n"
    )
    probe = (
        "from flowyard.errors import InvalidInput\n"
        "from flowyard.workers.registry import load_worker_type\n"
        "try:\n"
        "    load_worker_type('mislabelled')\n"
        "except InvalidInput as exc:\n"
        "    print(exc)\n"
    )
    path = os.pathsep.join([str(site), os.environ["PYTHONPATH"]])
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "says its type is 'minimal'" in done.stdout
    assert "must be the name of its entry point" in done.stdout
