"""What only ``RayTaskRunner`` has, on a real local Ray instance (2 CPUs, a custom
resource, a small object store, started once for the module) against a real server that
requires keys: ``remote_options``, Ray giving up on a task whose workers keep dying, a
temporary local Ray, and Ray loaded only when asked for. What every engine shares is
tested on Ray in ``test_remote_runners.py``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from flowyard import flow, task
from flowyard.runtime import flow_run as current_flow_run
from flowyard.task_runners import RayTaskRunner, remote_options

ray = pytest.importorskip("ray")

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


@pytest.fixture
def runner(local_ray) -> RayTaskRunner:
    return RayTaskRunner()


# -- tasks and tests -----------------------------------------------------------------------


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
    assert ray.is_initialized()  # the runner used this process's connection and left it
    assert outer == {"CPU": 0.5, GADGET: 1.0}
    assert inner == other_inner == {"CPU": 0.25, GADGET: 1.0}
    assert plain == {"CPU": 1.0}
    with pytest.raises(ValueError, match="Invalid option keyword num_cpuz"):
        with remote_options(num_cpuz=1):
            pass


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
