"""``RayTaskRunner`` on a real local Ray instance (2 CPUs, a small object store, started
once for the module), with flows called against a real server that requires keys: task
runs execute in Ray's worker processes and report through the API with a token for their
flow run only."""

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
from flowyard.results import LocalFileSystem
from flowyard.runtime import flow_run as current_flow_run
from flowyard.sdk import result_records
from flowyard.sdk.context import FlowRunContext, TaskRunContext
from flowyard.sdk.termination import RunCancelled
from flowyard.task_runners import RayTaskRunner, ThreadPoolTaskRunner, remote_options

ray = pytest.importorskip("ray")

ADMIN = "admin-secret-for-ray-tests-0123456789"
OBJECT_STORE_BYTES = 80 * 1024 * 1024
GADGET = "flowyard-gadget"


@pytest.fixture(scope="module")
def local_ray() -> Iterator[object]:
    """One local Ray instance for the module; the runner uses this process's connection."""
    info = ray.init(
        num_cpus=2,
        resources={GADGET: 2},  # a custom resource for remote_options to ask for
        object_store_memory=OBJECT_STORE_BYTES,
        include_dashboard=False,
        log_to_driver=False,
    )
    try:
        yield info
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {**FAST, "FLOWYARD_API_KEY": ADMIN}
    with running_server(tmp_path_factory.mktemp("ray-server"), env) as process:
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
def runner(local_ray) -> RayTaskRunner:
    return RayTaskRunner()


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
    """What the task's own API client is, seen from the Ray worker."""
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


# -- the tests -----------------------------------------------------------------------------


def test_submit_map_wait_for_and_futures_run_in_ray_workers(api, runner):
    """submit, map, wait_for, wait, as_completed and result() work; the task runs execute in
    Ray's worker processes, are recorded in the API with their graph links, their logs
    reach the run's logs, and they report with a run token (not the admin key)."""

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
            "pid": pid.submit().result(),
            "seen": credentials.submit().result(),
        }

    out = program()
    assert out["after"] == 12 and out["mapped"] == [4, 6, 8] and out["waited"] == (4, 0)
    assert out["pid"] != os.getpid()
    assert out["seen"] == {"run_token": True, "admin": False, "env_key": None, "list_pools": 403}
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
    assert ray.is_initialized()  # the runner used this process's connection and left it


def test_retries_and_a_failing_task_keep_their_traceback(api, runner):
    """A flaky task is retried in Ray; a failing one fails the future with its own
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


@flow
def same_program(values: list[int]) -> tuple[str, list[object]]:
    with tags("same"):
        mapped = double.map(values)
        total = add.submit(mapped[0], mapped[1])
        failed = broken.submit(total)
        failed.wait()
        out = [total.result(), [f.result() for f in mapped], failed.state.type.value]
        return current_flow_run.id, out


def test_threads_and_ray_give_the_same_results_and_states(api, runner):
    """The same flow, with the thread runner and (via with_options) on Ray: same results,
    same final states and tags of its task runs in the API."""
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


@task
def outlives_its_worker(folder: str) -> int:
    """The first attempt parks until its worker is killed; Ray runs it again."""
    marker = Path(folder, "first.pid")
    if marker.exists():
        return os.getpid()
    marker.with_suffix(".tmp").write_text(str(os.getpid()))
    marker.with_suffix(".tmp").rename(marker)
    threading.Event().wait(60)  # noqa: TID251 - the task's work, killed long before
    return -1


def test_a_worker_killed_mid_task_runs_the_task_again(api, runner, tmp_path):
    """SIGKILL of the Ray worker running a task run: Ray runs it again in a new worker,
    the task run completes there and the API records it Completed (nothing hangs)."""
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


@task
def dies_with_its_worker() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_task_whose_worker_dies_past_max_retries_crashes_saying_so(api, runner):
    """A task run that kills every Ray worker running it (Ray's max_retries=1 here: two
    deaths) ends Crashed with Ray's reason, in the API too; the flow run goes on."""

    @flow(task_runner=runner)
    def program() -> tuple[str, str, str]:
        with remote_options(max_retries=1):
            future = dies_with_its_worker.submit()
        future.wait(timeout=120)
        return current_flow_run.id, future.state.type.value, future.state.message or ""

    run_id, state_type, message = program()
    assert state_type == "CRASHED"
    assert "the Ray task of this task run failed: WorkerCrashedError" in message
    [record] = api.list_task_runs(run_id)
    assert record.state_type.value == "CRASHED"


@task
def ray_resources(n: int = 0) -> dict[str, float]:
    return dict(ray.get_runtime_context().get_assigned_resources())


def test_remote_options_give_task_runs_rays_resources(api, runner):
    """Prefect-ray's remote_options: the task runs submitted inside ask Ray for those
    resources (a custom one, fractional CPUs); an inner one adds to the outer one; outside
    a task run gets Ray's default; a misspelt option fails at the ``with``."""

    @flow(task_runner=runner)
    def program() -> list[dict[str, float]]:
        with remote_options(num_cpus=0.5, resources={GADGET: 1}):
            outer = ray_resources.submit()
            with remote_options(num_cpus=0.25):
                inner = ray_resources.map([1, 2])
        plain = ray_resources.submit()
        return [outer.result(), *inner.result(), plain.result()]

    outer, inner, other_inner, plain = program()
    assert outer == {"CPU": 0.5, GADGET: 1.0}
    assert inner == other_inner == {"CPU": 0.25, GADGET: 1.0}
    assert plain == {"CPU": 1.0}
    with pytest.raises(ValueError, match="Invalid option keyword num_cpuz"):
        with remote_options(num_cpuz=1):
            pass


@task
def random_bytes(n: int) -> bytes:
    return os.urandom(n)


def test_a_large_result_travels_through_the_flows_result_storage(api, local_ray, tmp_path):
    """A result above large_result_bytes is written to the flow's result storage (signed
    for this flow run) and read back there; a small one travels with its state."""
    runner = RayTaskRunner(large_result_bytes=1000)

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
        RayTaskRunner(large_result_bytes=0)


@task(timeout_seconds=1)
def overruns(folder: str) -> int:
    wait_until(lambda: Path(folder, "release").exists(), timeout=30)
    return 1


@task(tags=["ray-one-at-a-time"])
def exclusive(folder: str, n: int) -> int:
    """Holds its slot a moment, noting when it started and ended."""
    start = time.time()
    threading.Event().wait(0.3)  # noqa: TID251 - the task's work
    Path(folder, f"{n}.json").write_text(json.dumps([start, time.time()]))
    return n


def test_timeouts_and_tag_concurrency_limits_hold_on_ray(api, runner, tmp_path):
    """A task's timeout fails it in Ray; a tag's concurrency limit of 1 keeps its task
    runs from overlapping although Ray has two CPUs free."""
    api.set_concurrency_limit("ray-one-at-a-time", 1)

    @flow(task_runner=runner)
    def program() -> tuple[str, str, list[int]]:
        late = overruns.submit(str(tmp_path))
        late.wait()  # its CPU is free again before the limited tasks start
        done = exclusive.map([str(tmp_path)] * 3, range(3)).result()
        return late.state.type.value, late.state.message or "", done

    try:
        state, message, done = program()
    finally:
        (tmp_path / "release").touch()
        api.delete_concurrency_limit("ray-one-at-a-time")
    assert state == "FAILED" and "exceeded timeout of 1.0" in message, message
    spans = sorted(json.loads((tmp_path / f"{n}.json").read_text()) for n in range(3))
    assert done == [0, 1, 2]
    assert all(earlier[1] <= later[0] for earlier, later in zip(spans, spans[1:], strict=False))


TEMPORARY = """
import sys
import flowyard, flowyard.task_runners
from flowyard import flow, task
print(sorted({'ray'} & set(sys.modules)))

@task
def square(n):
    return n * n

runner = flowyard.task_runners.RayTaskRunner(
    init_kwargs={'num_cpus': 1, 'object_store_memory': 80 * 1024 * 1024,
                 'include_dashboard': False, 'log_to_driver': False},
)

@flow(task_runner=runner)
def squares():
    return [f.result() for f in square.map([1, 2, 3])]

print(squares())
import ray
print(ray.is_initialized())
sys.modules['ray'] = None
try:
    flowyard.task_runners.RayTaskRunner()
except ImportError as exc:
    print(exc)
"""


def test_a_temporary_local_ray_is_started_and_shut_down_and_import_flowyard_loads_no_ray(
    tmp_path,
):
    """Without an address (and no connection yet) the flow run starts a local Ray with
    init_kwargs and shuts it down at its end; `import flowyard` loads no Ray; without Ray,
    one line says the extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWYARD_")}
    env["FLOWYARD_HOME"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", TEMPORARY], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.stdout.splitlines() == [
        "[]",
        "[1, 4, 9]",
        "False",
        "RayTaskRunner needs Ray: pip install 'flowyard[ray]'",
    ], done.stderr[-3000:]
    with pytest.raises(ValueError, match="address="):
        RayTaskRunner(init_kwargs={"address": "auto"})


@task
def parks(folder: str) -> int:
    """Says its pid, then waits to be released (for a minute at most)."""
    Path(folder, "parked.tmp").write_text(str(os.getpid()))
    Path(folder, "parked.tmp").rename(Path(folder, "parked.pid"))
    wait_until(lambda: Path(folder, "release").exists(), timeout=60)
    return os.getpid()


def test_a_cancelled_flow_run_stops_its_ray_tasks(api, runner, tmp_path):
    """A flow run that ends Cancelled cancels its running Ray task (its worker process is
    stopped) instead of waiting for it; the task run is recorded Cancelled."""
    pid_file = tmp_path / "parked.pid"

    @flow(task_runner=runner)
    def program() -> None:
        parks.submit(str(tmp_path))
        wait_until(pid_file.exists, timeout=30)
        raise RunCancelled("cancelled by request")

    try:
        state = program(return_state=True)
        assert state.is_cancelled()
        assert wait_until(lambda: not _alive(int(pid_file.read_text())), timeout=30)
    finally:
        (tmp_path / "release").touch()
    [record] = api.list_task_runs(state.flow_run_id)
    assert (record.name, record.state_type.value) == ("parks-0", "CANCELLED")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _logs(api: FlowyardClient, run_id: str, text: str) -> list:
    return [log for log in api.read_logs(run_id) if text in log.message]
