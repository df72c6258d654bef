"""What task runs on a distributed engine share, on each engine: the same flows on a real
``distributed.LocalCluster`` (two single-threaded worker processes), on a real local
Ray instance (2 CPUs, a small object store), each started once for the module, and on a
``ProcessPoolTaskRunner`` (two spawned subprocesses per flow run), against a real server
that requires keys. Task runs execute in the engine's worker processes and report through
the API with a token for their flow run only.

What only one engine has (``get_dask_client``, Ray's ``remote_options``, how each makes a
temporary cluster) is tested in ``test_dask_runner.py`` and ``test_ray_runner.py``."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.helpers.parked_tasks import parks
from tests.helpers.pickle_counts import Counted
from tests.proc import alive
from tests.sdk.conftest import ADMIN
from tests.waiting import wait_until

from flowyard import flow, get_run_logger, tags, task
from flowyard.client import FlowyardClient
from flowyard.errors import ApiError
from flowyard.futures import as_completed, wait
from flowyard.results import LocalFileSystem
from flowyard.runtime import flow_run as current_flow_run
from flowyard.sdk import result_records
from flowyard.sdk.context import FlowRunContext, TaskRunContext
from flowyard.sdk.termination import RunCancelled
from flowyard.task_runners import ThreadPoolTaskRunner

OBJECT_STORE_BYTES = 80 * 1024 * 1024


@dataclass(frozen=True)
class Engine:
    """One engine under test: how to make a runner on it, and what it can do."""

    name: str
    runner: Callable[..., Any]  # the runner's options -> a task runner on this engine
    stops_running_tasks: bool  # a cancelled flow run stops a task already running
    reruns_lost_tasks: bool = True  # a task whose worker died runs again on another


def _on_dask() -> Iterator[Engine]:
    distributed = pytest.importorskip("distributed")
    from flowyard.task_runners import DaskTaskRunner

    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address
        yield Engine("dask", lambda **options: DaskTaskRunner(address=address, **options), False)


def _on_ray() -> Iterator[Engine]:
    ray = pytest.importorskip("ray")
    from flowyard.task_runners import RayTaskRunner

    ray.init(
        num_cpus=2,
        object_store_memory=OBJECT_STORE_BYTES,
        include_dashboard=False,
        log_to_driver=False,
    )
    try:  # the runner uses this process's connection
        yield Engine("ray", RayTaskRunner, True)
    finally:
        ray.shutdown()


def _on_processes() -> Iterator[Engine]:
    from flowyard.task_runners import ProcessPoolTaskRunner

    def runner(**options: Any) -> ProcessPoolTaskRunner:
        return ProcessPoolTaskRunner(max_workers=2, **options)

    yield Engine("process", runner, stops_running_tasks=True, reruns_lost_tasks=False)


@pytest.fixture(scope="module", params=["dask", "ray", "process"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """Each engine once for the module (pytest runs one engine's tests, then the next's)."""
    yield from {"dask": _on_dask, "ray": _on_ray, "process": _on_processes}[request.param]()


@pytest.fixture
def runner(engine: Engine) -> Any:
    return engine.runner()


def _logs(api: FlowyardClient, run_id: str, text: str) -> list:
    return [log for log in api.read_logs(run_id) if text in log.message]


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
    """What the task's own API client is, seen from the engine's worker."""
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
    print(f"said {word} on an engine's worker")


@task
def quiet(n: int) -> int:
    return n


@task
def random_bytes(n: int) -> bytes:
    return os.urandom(n)


@task
def logs_then_waits(marker: str) -> str:
    get_run_logger().info("halfway through a long task")
    wait_until(Path(marker).exists, timeout=90)
    get_run_logger().info("the long task is done")
    return "done"


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


@task
def outlives_its_worker(folder: str) -> int:
    """The first attempt parks until its worker is killed; the engine runs it again."""
    marker = Path(folder, "first.pid")
    if marker.exists():
        return os.getpid()
    marker.with_suffix(".tmp").write_text(str(os.getpid()))
    marker.with_suffix(".tmp").rename(marker)
    threading.Event().wait(60)  # noqa: TID251 - the task's work, killed long before
    return -1


@flow
def same_program(values: list[int]) -> tuple[str, list[object]]:
    with tags("same"):
        mapped = double.map(values)
        total = add.submit(mapped[0], mapped[1])
        failed = broken.submit(total)
        failed.wait()
        out = [total.result(), [f.result() for f in mapped], failed.state.type.value]
        return current_flow_run.id, out


# -- the tests -----------------------------------------------------------------------------


def test_submit_map_wait_for_and_futures_run_in_the_engines_workers(api, runner):
    """submit, map, wait_for, wait, as_completed and result() work; the task runs execute in
    the engine's worker processes, are recorded in the API with their graph links and their
    logs reach the run's logs."""

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
    assert {f"double-{i}" for i in range(4)} | {"add-0", "pid-0"} <= set(by_name)
    assert set(by_name.values()) == {"COMPLETED"}
    [add_run] = [r for r in runs if r.name == "add-0"]
    double_ids = {r.id for r in runs if r.name.startswith("double-")}
    linked = {i.id for inputs in add_run.task_inputs.values() for i in inputs}
    assert {r.id for r in runs if r.name == "double-0"} <= linked <= double_ids
    logs = wait_until(lambda: _logs(api, out["run"], "doubling"), timeout=15)
    assert len(logs) == 4 and all(log.task_run_id in double_ids for log in logs)
    assert all(f"in pid {os.getpid()}" not in log.message for log in logs)


def test_remote_task_runs_report_with_a_token_of_their_run(api, runner):
    """The worker's client holds a run token (not the admin key the flow was called with,
    nothing from its environment), which may not read other resources; the flow's
    log_prints reaches the worker, its prints the run's logs."""

    @flow(task_runner=runner, log_prints=True)
    def program() -> tuple[str, dict[str, object]]:
        chatty.submit("hello").wait()
        return current_flow_run.id, credentials.submit().result()

    run_id, seen = program()
    assert seen == {"run_token": True, "admin": False, "env_key": None, "list_pools": 403}
    assert wait_until(lambda: _logs(api, run_id, "said hello on an engine's worker"))


def test_retries_and_a_failing_task_keep_their_traceback(api, runner):
    """A flaky task is retried on the engine; a failing one fails the future with its own
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


def test_threads_and_the_engine_give_the_same_results_and_states(api, runner):
    """The same flow, with the thread runner and (via with_options) on the engine: same
    results, same final states and tags of its task runs in the API."""
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


def test_a_large_result_travels_through_the_flows_result_storage(api, engine, tmp_path):
    """A result above large_result_bytes is written to the flow's result storage (signed
    for this flow run) and read back there; a small one travels with its state."""

    runner = engine.runner(large_result_bytes=1000)

    @flow(task_runner=runner, result_storage=LocalFileSystem(tmp_path))
    def program() -> tuple[bytes, bytes, str]:
        small, large = random_bytes.submit(10), random_bytes.submit(50_000)
        return small.result(), large.result(), large.state.type.value

    small, large, state = program()
    assert (len(small), len(large), state) == (10, 50_000, "COMPLETED")
    [stored] = list(tmp_path.iterdir())
    assert stored.name.startswith("remote-result-")
    assert large in result_records.decode(stored.read_bytes()).payload
    with pytest.raises(ValueError, match="large_result_bytes"):
        engine.runner(large_result_bytes=0)


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


def test_timeouts_and_tag_concurrency_limits_hold_on_the_engine(api, runner, tmp_path):
    """A task's timeout fails it on the engine; a tag's concurrency limit of 1 keeps its
    task runs from overlapping although two of the engine's workers are free (slots taken
    with the flow run's token)."""
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


def test_a_cancelled_flow_run_cancels_its_engine_tasks(api, engine, runner, tmp_path):
    """A flow run that ends Cancelled cancels its engine tasks instead of waiting for
    them, and its task run is recorded Cancelled. Ray stops the worker process already
    running one; Dask cannot interrupt the thread running it."""
    pid_file = tmp_path / "parked.pid"

    @flow(task_runner=runner)
    def program() -> None:
        parks.submit(str(tmp_path))
        wait_until(pid_file.exists, timeout=30)
        raise RunCancelled("cancelled by request")

    try:
        state = program(return_state=True)
        assert state.is_cancelled()
        if engine.stops_running_tasks:
            assert wait_until(lambda: not alive(int(pid_file.read_text())), timeout=30)
    finally:
        (tmp_path / "release").touch()  # a thread still running it ends its wait
    [record] = api.list_task_runs(state.flow_run_id)
    assert (record.name, record.state_type.value) == ("parks-0", "CANCELLED")


def test_a_worker_killed_mid_task_runs_the_task_again(api, engine, runner, tmp_path):
    """SIGKILL of the worker process running a task run: the engine runs it again in
    another, the task run completes there and the API records it Completed (nothing
    hangs). A process pool runs nothing again: test_process_runner.py."""
    if not engine.reruns_lost_tasks:
        pytest.skip(f"{engine.name} does not run a lost task again")
    pid_file = tmp_path / "first.pid"

    @flow(task_runner=runner)
    def program() -> tuple[str, int, int]:
        future = outlives_its_worker.submit(str(tmp_path))
        first = int(wait_until(lambda: pid_file.exists() and pid_file.read_text(), timeout=30))
        os.kill(first, signal.SIGKILL)
        return current_flow_run.id, first, future.result(timeout=60)

    run_id, first, second = program()
    assert second not in (first, -1)
    [record] = api.list_task_runs(run_id)
    assert (record.name, record.state_type.value) == ("outlives_its_worker-0", "COMPLETED")
