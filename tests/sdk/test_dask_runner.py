"""``DaskTaskRunner`` on a real ``distributed.LocalCluster`` (two worker processes), with
flows called against a real server that requires keys: task runs execute in the Dask
workers and report through the API with a token for their flow run only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.e2e.conftest import FAST
from tests.servers import running_server
from tests.waiting import wait_until

from flowyard import flow, get_run_logger, tags, task
from flowyard.client import FlowyardClient
from flowyard.errors import ApiError
from flowyard.futures import as_completed, wait
from flowyard.runtime import flow_run as current_flow_run
from flowyard.sdk.context import FlowRunContext, TaskRunContext
from flowyard.sdk.termination import RunCancelled
from flowyard.task_runners import DaskTaskRunner, ThreadPoolTaskRunner, get_dask_client

distributed = pytest.importorskip("distributed")

ADMIN = "admin-secret-for-dask-tests-0123456789"


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    """Two single-threaded worker processes, started once for the module."""
    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    ) as local:
        yield local


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {**FAST, "FLOWYARD_API_KEY": ADMIN}
    with running_server(tmp_path_factory.mktemp("dask-server"), env) as process:
        yield process


@pytest.fixture
def api(server, monkeypatch) -> Iterator[FlowyardClient]:
    """Direct flow calls are recorded through the server, with the admin key (which only
    the flow's own process holds)."""
    monkeypatch.setenv("FLOWYARD_API_URL", server.url)
    monkeypatch.setenv("FLOWYARD_API_KEY", ADMIN)
    with FlowyardClient(server.url, ADMIN) as client:
        yield client


@pytest.fixture
def runner(cluster) -> DaskTaskRunner:
    return DaskTaskRunner(address=cluster.scheduler_address)


# -- tasks ---------------------------------------------------------------------------------


@task
def double(n: int) -> int:
    get_run_logger().info("doubling %s in pid %s", n, os.getpid())
    return n * 2


@task
def pid() -> int:
    return os.getpid()


@task
def add(a: int, b: int) -> int:
    return a + b


@task(retries=2)
def flaky() -> int:
    context = TaskRunContext.get()
    assert context is not None
    if context.run_count < 2:
        raise RuntimeError(f"attempt {context.run_count} fails")
    return context.run_count


@task
def broken(n: int) -> int:
    raise ValueError(f"the data is wrong: {n}")


@task
def credentials() -> dict[str, object]:
    """What the task's own API client is, seen from the Dask worker."""
    context = FlowRunContext.get()
    assert context is not None and context.client is not None
    key = context.client.api_key or ""
    try:
        context.client.list_work_pools()
        status = 200
    except ApiError as exc:
        status = exc.status_code
    return {
        "run_token": key.startswith("fyrt_"),
        "admin": key == ADMIN,
        "env_key": os.environ.get("FLOWYARD_API_KEY"),
        "list_pools": status,
    }


@task
def chatty(word: str) -> None:
    print(f"said {word} on a Dask worker")


@task
def nested_sum(n: int) -> int:
    with get_dask_client() as client:
        return int(client.submit(sum, range(n)).result())


# -- the tests -----------------------------------------------------------------------------


def test_submit_map_wait_for_and_futures_run_in_the_dask_workers(api, runner):
    """submit, map, wait_for, wait, as_completed and result() work; the task runs execute in
    the workers' processes, are recorded in the API and their logs reach the run's logs."""

    @flow(task_runner=runner)
    def program() -> dict[str, object]:
        first = double.submit(1)
        mapped = double.map([2, 3, 4])
        after = add.submit(first, 10, wait_for=[mapped])
        done, not_done = wait([first, *mapped], timeout=30)
        finished = sorted(f.result() for f in as_completed(mapped))
        return {
            "run": current_flow_run.id,
            "after": after.result(),
            "mapped": finished,
            "waited": (len(done), len(not_done)),
            "pids": {pid.submit().result() for _ in range(4)},
        }

    out = program()
    assert out["after"] == 12 and out["mapped"] == [4, 6, 8] and out["waited"] == (4, 0)
    assert os.getpid() not in out["pids"]
    runs = api.list_task_runs(out["run"])
    by_name = {r.name: r.state_type.value for r in runs}
    assert {f"double-{i}" for i in range(4)} | {"add-0"} <= set(by_name)
    assert set(by_name.values()) == {"COMPLETED"}
    [add_run] = [r for r in runs if r.name == "add-0"]
    double_ids = {r.id for r in runs if r.name.startswith("double-")}
    linked = {i.id for inputs in add_run.task_inputs.values() for i in inputs}
    assert {r.id for r in runs if r.name == "double-0"} <= linked <= double_ids
    logs = wait_until(lambda: _logs(api, out["run"], "doubling"), timeout=15)
    assert len(logs) == 4 and all(log.task_run_id in double_ids for log in logs)
    assert all(f"in pid {os.getpid()}" not in log.message for log in logs)


def test_remote_task_runs_report_with_a_token_of_their_run(api, runner):
    """The Dask worker's client holds a run token (not the admin key the flow was called
    with, nothing from its environment), which may not read other resources; the flow's
    log_prints reaches the worker, its prints the run's logs."""

    @flow(task_runner=runner, log_prints=True)
    def program() -> tuple[str, dict[str, object]]:
        chatty.submit("hello").wait()
        return current_flow_run.id, credentials.submit().result()

    run_id, seen = program()
    assert seen == {"run_token": True, "admin": False, "env_key": None, "list_pools": 403}
    assert wait_until(lambda: _logs(api, run_id, "said hello on a Dask worker"))


def test_retries_and_a_failing_task_keep_their_traceback(api, runner):
    """A flaky task is retried on the cluster; a failing one fails the future with its own
    exception and traceback, logged to the run and recorded Failed in the API."""

    @flow(task_runner=runner)
    def program() -> tuple[str, int, BaseException | None]:
        retried = flaky.submit()
        failed = broken.submit(7)
        failed.wait()  # its state is final only then
        return current_flow_run.id, retried.result(), failed.state.result(raise_on_failure=False)

    run_id, attempts, error = program()
    assert attempts == 2
    assert isinstance(error, ValueError) and str(error) == "the data is wrong: 7"
    frames = [frame.name for frame in traceback.extract_tb(error.__traceback__)]
    assert "broken" in frames
    states = {r.name: (r.state_type.value, r.run_count) for r in api.list_task_runs(run_id)}
    assert states == {"flaky-0": ("COMPLETED", 2), "broken-0": ("FAILED", 1)}
    logged = wait_until(lambda: _logs(api, run_id, "ValueError: the data is wrong: 7"))
    assert "Traceback" in logged[0].message and "in broken" in logged[0].message


def test_get_dask_client_runs_nested_dask_work_from_a_task(api, runner):
    """Inside a task, get_dask_client() gives a client of the same cluster."""

    @flow(task_runner=runner)
    def program() -> int:
        return nested_sum.submit(10).result()

    assert program() == 45
    with pytest.raises(RuntimeError, match="inside a task run by a DaskTaskRunner"):
        with get_dask_client():
            pass


@task
def quiet(n: int) -> int:
    return n


def test_short_remote_task_runs_are_recorded_in_batches(api, runner, server, monkeypatch):
    """Records and logs of remote task runs travel back with their states and are shipped
    in batches by the flow's process: fewer requests than task runs, nothing lost."""
    from tests.helpers.counting_proxy import CountingProxy

    with CountingProxy(server.url) as proxy:
        monkeypatch.setenv("FLOWYARD_API_URL", proxy.url)

        @flow(task_runner=runner)
        def program() -> tuple[str, list[int]]:
            return current_flow_run.id, quiet.map(range(30)).result()

        run_id, out = program()
        requests = proxy.count("POST", "/api/task_runs/bulk") + proxy.count("POST", "/api/logs")
    assert out == list(range(30)) and requests < 30
    runs = api.list_task_runs(run_id)
    assert len(runs) == 30 and {r.state_type.value for r in runs} == {"COMPLETED"}
    assert all(r.start_time is not None and r.end_time is not None for r in runs)
    finished = _logs(api, run_id, "Finished in state Completed")
    assert {log.task_run_id for log in finished} == {r.id for r in runs} | {None}


@flow
def same_program(values: list[int]) -> tuple[str, list[object]]:
    with tags("same"):
        mapped = double.map(values)
        total = add.submit(mapped[0], mapped[1])
        failed = broken.submit(total)
        failed.wait()
        out = [total.result(), [f.result() for f in mapped], failed.state.type.value]
        return current_flow_run.id, out


def test_threads_and_dask_give_the_same_results_and_states(api, runner):
    """The same flow, with the thread runner and (via with_options) on Dask: same results,
    same final states of its task runs in the API."""
    outcomes = []
    for task_runner in (ThreadPoolTaskRunner(), runner):
        state = same_program.with_options(task_runner=task_runner)([1, 2, 3], return_state=True)
        assert state.is_completed()
        run_id, out = state.result()
        runs = api.list_task_runs(run_id)
        records = sorted((r.name, r.state_type.value, tuple(r.tags)) for r in runs)
        outcomes.append((out, records, api.read_flow_run(run_id).state.type.value))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == [6, [2, 4, 6], "FAILED"] and outcomes[0][2] == "COMPLETED"


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


@task
def parks(folder: str) -> int:
    """Says it started, then waits to be released (for a minute at most)."""
    Path(folder, "parked").touch()
    wait_until(lambda: Path(folder, "release").exists(), timeout=60)
    return os.getpid()


def test_a_cancelled_flow_run_cancels_its_dask_futures(api, runner, tmp_path):
    """A flow run that ends Cancelled cancels its Dask futures instead of waiting for
    them (Dask cannot interrupt the thread already running one); recorded Cancelled."""

    @flow(task_runner=runner)
    def program() -> None:
        parks.submit(str(tmp_path))
        wait_until((tmp_path / "parked").exists, timeout=30)
        raise RunCancelled("cancelled by request")

    try:
        state = program(return_state=True)
        assert state.is_cancelled()
        [record] = api.list_task_runs(state.flow_run_id)
    finally:
        (tmp_path / "release").touch()  # the worker's thread ends its wait
    assert (record.name, record.state_type.value) == ("parks-0", "CANCELLED")


@task(timeout_seconds=1)
def overruns(folder: str) -> int:
    wait_until(lambda: Path(folder, "release").exists(), timeout=30)
    return 1


@task(tags=["one-at-a-time"])
def exclusive(folder: str, n: int) -> int:
    """Holds its slot a moment, noting when it started and ended."""
    start = time.time()
    threading.Event().wait(0.3)  # noqa: TID251 - the task's work
    Path(folder, f"{n}.json").write_text(json.dumps([start, time.time()]))
    return n


def test_timeouts_and_tag_concurrency_limits_hold_on_dask(api, runner, tmp_path):
    """A task's timeout fails it on the cluster; a tag's concurrency limit of 1 keeps its
    task runs from overlapping although two Dask workers are free (slots taken with the
    flow run's token)."""
    api.set_concurrency_limit("one-at-a-time", 1)

    @flow(task_runner=runner)
    def program() -> tuple[str, str, list[int]]:
        late = overruns.submit(str(tmp_path))
        late.wait()  # its worker is free again before the limited tasks start
        done = exclusive.map([str(tmp_path)] * 3, range(3)).result()
        return late.state.type.value, late.state.message or "", done

    try:
        state, message, done = program()
    finally:
        (tmp_path / "release").touch()
        api.delete_concurrency_limit("one-at-a-time")
    assert state == "FAILED" and "exceeded timeout of 1.0" in message, message
    spans = sorted(json.loads((tmp_path / f"{n}.json").read_text()) for n in range(3))
    assert done == [0, 1, 2]
    assert all(earlier[1] <= later[0] for earlier, later in zip(spans, spans[1:], strict=False))


def _logs(api: FlowyardClient, run_id: str, text: str) -> list:
    return [log for log in api.read_logs(run_id) if text in log.message]


class Counted:
    """Counts, in each process, how often it is pickled and unpickled."""

    pickled = 0
    unpickled = 0

    def __init__(self, made_by_pickle: bool = False) -> None:
        if made_by_pickle:
            Counted.unpickled += 1

    def __reduce__(self) -> tuple[type, tuple[bool]]:
        Counted.pickled += 1
        return (Counted, (True,))


def test_a_mapped_task_is_pickled_once_per_flow_run_and_unpickled_once_per_worker(api, runner):
    """The task (here with an object in its closure, so pickled by value) travels with
    each of 30 task runs but is pickled once in the flow's process, and each worker
    process unpickles it once, however many of the runs it executes."""
    counted = Counted()

    @task
    def unpickled_here(n: int) -> int:
        assert counted is not None
        return Counted.unpickled

    @flow(task_runner=runner)
    def program() -> list[int]:
        return unpickled_here.map(range(30)).result()

    before = Counted.pickled
    seen = program()
    assert Counted.pickled - before == 1
    assert set(seen) == {1}


@task
def logs_then_waits(marker: str) -> str:
    get_run_logger().info("halfway through a long task")
    wait_until(Path(marker).exists, timeout=90)
    get_run_logger().info("the long task is done")
    return "done"


def test_a_long_task_runs_logs_reach_the_api_while_it_runs(api, runner, tmp_path):
    """A task run still running after a moment ships its logs from the worker: the flow
    sees its first line in the API before it lets the task finish; no line is doubled."""
    marker = tmp_path / "go"

    @flow(task_runner=runner)
    def program() -> tuple[str, str]:
        future = logs_then_waits.submit(str(marker))
        run_id = current_flow_run.id
        wait_until(lambda: _logs(api, run_id, "halfway through"), timeout=60)
        marker.touch()
        return run_id, future.result()

    run_id, value = program()
    assert value == "done"
    assert len(_logs(api, run_id, "halfway through")) == 1
    wait_until(lambda: _logs(api, run_id, "the long task is done"), timeout=30)
    assert len(_logs(api, run_id, "the long task is done")) == 1


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
    from tests.e2e.conftest import create_process_pool, deploy_flow

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


@task
def outlives_its_worker(folder: str) -> int:
    """The first attempt parks until its worker is killed; Dask runs it again elsewhere."""
    marker = Path(folder, "first.pid")
    if marker.exists():
        return os.getpid()
    marker.with_suffix(".tmp").write_text(str(os.getpid()))
    marker.with_suffix(".tmp").rename(marker)
    threading.Event().wait(60)  # noqa: TID251 - the task's work, killed long before
    return -1


def test_a_worker_killed_mid_task_runs_the_task_again_on_another(api, runner, tmp_path):
    """SIGKILL of the Dask worker running a task run: Dask runs it on the other worker,
    the task run completes there and the API records it Completed (nothing hangs)."""
    pid_file = tmp_path / "first.pid"

    @flow(task_runner=runner)
    def program() -> tuple[str, int, int]:
        future = outlives_its_worker.submit(str(tmp_path))
        first = int(wait_until(lambda: pid_file.exists() and pid_file.read_text(), timeout=20))
        os.kill(first, signal.SIGKILL)
        return current_flow_run.id, first, future.result(timeout=45)

    run_id, first, second = program()
    assert second not in (first, -1)
    [record] = api.list_task_runs(run_id)
    assert (record.name, record.state_type.value) == ("outlives_its_worker-0", "COMPLETED")
