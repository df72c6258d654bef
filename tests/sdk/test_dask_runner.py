"""What only ``DaskTaskRunner`` has, on a real ``distributed.LocalCluster`` (two worker
processes) against a real server that requires keys: ``get_dask_client``, a temporary
cluster made from its class, a deployed run's engine on Dask, and Dask loaded only when
asked for. What every engine shares is tested on Dask in ``test_remote_runners.py``."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from tests.sdk.conftest import ADMIN
from tests.waiting import wait_until

from flowyard import flow, task
from flowyard.task_runners import DaskTaskRunner, get_dask_client

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    """Two single-threaded worker processes, started once for the module."""
    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    ) as local:
        yield local


@pytest.fixture
def runner(cluster) -> DaskTaskRunner:
    return DaskTaskRunner(address=cluster.scheduler_address)


# -- tasks ---------------------------------------------------------------------------------


@task
def add(a: int, b: int) -> int:
    return a + b


@task
def nested_sum(n: int) -> int:
    with get_dask_client() as client:
        return int(client.submit(sum, range(n)).result())


# -- the tests -----------------------------------------------------------------------------


def test_get_dask_client_runs_nested_dask_work_from_a_task(api, runner):
    """Inside a task, get_dask_client() gives a client of the same cluster."""

    @flow(task_runner=runner)
    def program() -> int:
        return nested_sum.submit(10).result()

    assert program() == 45
    with pytest.raises(RuntimeError, match="inside a task run by a DaskTaskRunner"):
        with get_dask_client():
            pass


def test_a_temporary_cluster_is_made_from_its_class_and_options(api):
    """cluster_class (a dotted path), cluster_kwargs and adapt_kwargs make the flow run's
    own cluster."""
    runner = DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={"n_workers": 1, "processes": False, "dashboard_address": None},
        adapt_kwargs={"minimum": 1, "maximum": 1},
    )

    @flow(task_runner=runner)
    def program() -> int:
        return add.submit(2, 3).result()

    assert program() == 5
    with pytest.raises(ValueError, match="Cannot specify"):
        DaskTaskRunner(address="tcp://127.0.0.1:1", cluster_kwargs={"n_workers": 1})


def test_import_flowyard_loads_no_dask_and_a_missing_extra_says_what_to_install():
    """Dask is imported only when a runner is made; without it, one line says the extra."""
    script = (
        "import sys\n"
        "import flowyard, flowyard.task_runners\n"
        "print(sorted({'dask', 'distributed'} & set(sys.modules)))\n"
        "sys.modules['distributed'] = None\n"
        "try:\n"
        "    flowyard.task_runners.DaskTaskRunner()\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.splitlines() == [
        "[]",
        "DaskTaskRunner needs Dask: pip install 'flowyard[dask]'",
    ], done.stderr


ENGINE_FLOWS = """
import json
import json
import os
import signal
from pathlib import Path

from flowyard import flow, task
from flowyard.sdk.context import FlowRunContext
from flowyard.task_runners import DaskTaskRunner


@task
def seen_by_dask() -> dict:
    client = FlowRunContext.get().client
    return {{"key": client.api_key, "pid": os.getpid(), "env": os.environ.get("FLOWYARD_API_KEY")}}


@flow(task_runner=DaskTaskRunner(address={address!r}))
def on_dask(folder: str) -> None:
    seen = seen_by_dask.submit().result()
    seen["engine_key"] = os.environ["FLOWYARD_API_KEY"]
    seen["engine_pid"] = os.getpid()
    Path(folder, "seen.json").write_text(json.dumps(seen))
"""


def test_a_deployed_run_sends_its_engines_run_token_to_the_dask_workers(
    api, cluster, server, tmp_path
):
    """A deployment's run, launched by a worker: its engine's task runs execute on Dask
    with the engine's own run token and are recorded Completed."""
    from tests.e2e.conftest import FAST, create_process_pool, deploy_flow

    from flowyard import schemas as s
    from flowyard.cli.processes import WorkerProcess
    from flowyard.states import StateType

    (tmp_path / "flows.py").write_text(ENGINE_FLOWS.format(address=cluster.scheduler_address))
    pool = create_process_pool(api, "dask-pool")
    dep = deploy_flow(api, pool, tmp_path, "on_dask", parameters={"folder": str(tmp_path)})
    worker = WorkerProcess(server.url, pool, tmp_path, env={**FAST, "FLOWYARD_API_KEY": ADMIN})
    try:
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        final = wait_until(
            lambda: (state := api.read_flow_run(run.id).state.type).is_terminal and state,
            timeout=60,
        )
    finally:
        worker.stop()
    assert final is StateType.COMPLETED, worker.output.read_text()[-3000:]
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen["engine_key"].startswith("fyrt_") and seen["key"] == seen["engine_key"]
    assert seen["env"] is None and seen["pid"] != seen["engine_pid"]
    [record] = api.list_task_runs(run.id)
    assert (record.name, record.state_type) == ("seen_by_dask-0", StateType.COMPLETED)
