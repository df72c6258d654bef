"""Mapped task runs on threads, on Dask and on Ray, against the same functions submitted
to the engine directly (no Flowyard): wall time, and Flowyard's overhead per task run.

A server (task runs and logs recorded through the API, as in production), a
``LocalCluster`` of 2 worker processes and a local Ray instance (``--ray-cpus`` concurrent
tasks). Each workload is a flow mapping a task over ``--tasks`` inputs: ``io`` sleeps
10 ms, ``cpu`` spins 100 ms (``--cpu-tasks``).

    python bench/task_runners.py [--tasks 500] [--cpu-tasks 40] [--threads-per-worker 8]
        [--ray-cpus 8] [--engines threads,dask,ray] [--prefect-python ../prefect-venv/bin/python]

Each figure also gives the CPU seconds of this (the driving) process: on a shared machine
the wall times move with the load, and this process hosts Dask's scheduler and client loop
as well as the flow run, so that its CPU is what Flowyard adds per task run.

With ``--prefect-python`` (an interpreter with prefect, prefect-dask and prefect-ray; never
a dependency of this project) the same workloads run on Prefect too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from common import embedded_server, write_results

from flowyard import flow, task
from flowyard.task_runners import DaskTaskRunner, RayTaskRunner, ThreadPoolTaskRunner


def io_work(n: int) -> int:
    time.sleep(0.01)
    return n


def cpu_work(n: int) -> int:
    deadline = time.thread_time() + 0.1  # this thread's CPU, not its process's
    while time.thread_time() < deadline:
        pass
    return n


io_task = task(io_work, name="io")
cpu_task = task(cpu_work, name="cpu")


class Timed:
    """Wall and CPU seconds (of this process, all its threads) of what runs inside."""

    def __enter__(self) -> Timed:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def through_flowyard(runner: Any, work: Any, count: int) -> Timed:
    @flow(task_runner=runner)
    def mapped() -> int:
        return len(work.map(range(count)).result())

    with Timed() as timed:
        assert mapped() == count
    return timed


def dask_direct(client: Any, fn: Callable[[int], int], count: int) -> Timed:
    with Timed() as timed:
        futures = client.map(fn, range(count), pure=False)
        assert len(client.gather(futures)) == count
    return timed


def ray_direct(fn: Callable[[int], int], count: int) -> Timed:
    import ray

    remote = ray.remote(fn)
    with Timed() as timed:
        assert len(ray.get([remote.remote(n) for n in range(count)])) == count
    return timed


WORKLOADS = (("io_10ms", io_task, io_work), ("cpu_100ms", cpu_task, cpu_work))


def compare(
    figures: dict[str, Any], engine: str, runner: Any, direct: Callable[..., Timed],
    counts: dict[str, int],
) -> None:  # fmt: skip
    """Flowyard on ``engine`` against the same functions on the engine directly."""
    direct(io_work, 20)  # workers warmed up (flowyard imported) before anything is timed
    through_flowyard(runner, io_task, 40)
    for name, work, fn in WORKLOADS:
        count = counts[name]
        through = through_flowyard(runner, work, count)
        bare = direct(fn, count)
        figures[name][engine] = {
            "flowyard_s": round(through.wall, 3),
            "direct_s": round(bare.wall, 3),
            "overhead_ms_per_task": round((through.wall - bare.wall) / count * 1000, 2),
            "ratio_to_direct": round(through.wall / bare.wall, 2),
            "driver_cpu_s": round(through.cpu, 2),
            "direct_driver_cpu_s": round(bare.cpu, 2),
            "driver_cpu_ms_per_task_over_direct": round((through.cpu - bare.cpu) / count * 1000, 2),
        }


def on_dask(figures: dict[str, Any], counts: dict[str, int], threads: int) -> None:
    from distributed import Client, LocalCluster

    with LocalCluster(
        n_workers=2, processes=True, threads_per_worker=threads, dashboard_address=None
    ) as cluster, Client(cluster) as client:  # fmt: skip
        runner = DaskTaskRunner(address=cluster.scheduler_address)
        compare(figures, "dask", runner, lambda fn, n: dask_direct(client, fn, n), counts)


def on_ray(figures: dict[str, Any], counts: dict[str, int], cpus: int) -> None:
    import ray

    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    try:
        compare(figures, "ray", RayTaskRunner(), ray_direct, counts)
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--cpu-tasks", type=int, default=40)
    parser.add_argument("--threads-per-worker", type=int, default=8)
    parser.add_argument("--ray-cpus", type=int, default=8, help="Ray's concurrent tasks")
    parser.add_argument("--engines", default="threads,dask,ray")
    parser.add_argument("--prefect-python", help="a Python with prefect-dask and prefect-ray")
    parser.add_argument("--prefect-only", action="store_true", help="measure Prefect only")
    args = parser.parse_args()
    engines = set() if args.prefect_only else set(args.engines.split(","))
    counts = {"io_10ms": args.tasks, "cpu_100ms": args.cpu_tasks}
    figures: dict[str, Any] = {"tasks": args.tasks, "cpu_tasks": args.cpu_tasks}
    figures |= {name: {} for name, _, _ in WORKLOADS}
    load_before = os.getloadavg()  # the machine may be shared: say how loaded it was
    with embedded_server() as (server, _):
        os.environ["FLOWYARD_API_URL"] = server.url
        if "threads" in engines:
            for name, work, _ in WORKLOADS:
                threads = through_flowyard(ThreadPoolTaskRunner(), work, counts[name])
                figures[name]["threads_s"] = round(threads.wall, 3)
        if "dask" in engines:
            on_dask(figures, counts, args.threads_per_worker)
        if "ray" in engines:
            on_ray(figures, counts, args.ray_cpus)
    if args.prefect_python:
        figures["prefect"] = on_prefect(args, counts)
    figures["load_average"] = {"before": load_before, "after": os.getloadavg()}
    write_results("task_runners_prefect" if args.prefect_only else "task_runners", figures)


def on_prefect(args: argparse.Namespace, counts: dict[str, int]) -> Any:
    """The same workloads on Prefect, in its own interpreter (``prefect_task_runners.py``),
    one engine at a time (a failure loses only its own figures), each against a fresh
    Prefect server with a throw-away home (as Flowyard's runs use one: Prefect's temporary
    server would be started again by every Dask worker)."""
    script = Path(__file__).with_name("prefect_task_runners.py")
    argv = [counts["io_10ms"], counts["cpu_100ms"], args.threads_per_worker, args.ray_cpus]
    figures: dict[str, Any] = {name: {} for name in counts}
    for engine in args.engines.split(","):
        with _prefect_server(args.prefect_python) as env:
            done = subprocess.run(
                [args.prefect_python, str(script), *map(str, argv), engine],
                capture_output=True, text=True, env=env,
            )  # fmt: skip
        if done.returncode != 0:
            figures.setdefault("failed", {})[engine] = _last_traceback(done.stderr)
            continue
        for name, by_engine in json.loads(done.stdout.splitlines()[-1]).items():
            figures[name] |= by_engine
    return figures


@contextlib.contextmanager
def _prefect_server(python: str) -> Iterator[dict[str, str]]:
    """A Prefect server of its own, stopped on leaving; yields the environment that uses it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "FLOWYARD_"))}
    env["PREFECT_HOME"] = tempfile.mkdtemp(prefix="prefect-bench-home-")
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [python, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    env["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
    try:
        _wait_healthy(f"{env['PREFECT_API_URL']}/health")
        yield env
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)


def _last_traceback(stderr: str, limit: int = 4000) -> str:
    """The last traceback a failed run printed (its log lines around it left out)."""
    start = stderr.rfind("Traceback (most recent call last)")
    return stderr[start : start + limit] if start >= 0 else stderr[-limit:]


def _wait_healthy(url: str, timeout: float = 180.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the Prefect server did not answer at {url} within {timeout:.0f}s")


if __name__ == "__main__":
    main()
