"""Mapped task runs on threads and on Dask, against the same functions submitted to Dask
directly (no Flowyard): wall time, and Flowyard's overhead per task run on Dask.

A server (task runs and logs recorded through the API, as in production) and one
``LocalCluster`` of 2 worker processes. Each workload is a flow mapping a task over
``--tasks`` inputs: ``io`` sleeps 10 ms, ``cpu`` spins 100 ms.

    python bench/task_runners.py [--tasks 500] [--cpu-tasks 40] [--threads-per-worker 8]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

from common import embedded_server, write_results

from flowyard import flow, task
from flowyard.task_runners import DaskTaskRunner, ThreadPoolTaskRunner


def io_work(n: int) -> int:
    time.sleep(0.01)
    return n


def cpu_work(n: int) -> int:
    deadline = time.process_time() + 0.1
    while time.process_time() < deadline:
        pass
    return n


io_task = task(io_work, name="io")
cpu_task = task(cpu_work, name="cpu")


def through_flowyard(runner: Any, work: Any, count: int) -> float:
    @flow(task_runner=runner)
    def mapped() -> int:
        return len(work.map(range(count)).result())

    start = time.perf_counter()
    assert mapped() == count
    return time.perf_counter() - start


def direct(client: Any, fn: Callable[[int], int], count: int) -> float:
    start = time.perf_counter()
    futures = client.map(fn, range(count), pure=False)
    assert len(client.gather(futures)) == count
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--cpu-tasks", type=int, default=40)
    parser.add_argument("--threads-per-worker", type=int, default=8)
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    figures: dict[str, object] = {"tasks": args.tasks, "cpu_tasks": args.cpu_tasks}
    with embedded_server() as (server, _):
        os.environ["FLOWYARD_API_URL"] = server.url
        with LocalCluster(
            n_workers=2, processes=True, threads_per_worker=args.threads_per_worker,
            dashboard_address=None,
        ) as cluster, Client(cluster) as client:  # fmt: skip
            dask = DaskTaskRunner(address=cluster.scheduler_address)
            direct(client, io_work, 20)  # workers warmed up before anything is timed
            for name, work, fn, count in (
                ("io_10ms", io_task, io_work, args.tasks),
                ("cpu_100ms", cpu_task, cpu_work, args.cpu_tasks),
            ):
                threads = through_flowyard(ThreadPoolTaskRunner(), work, count)
                on_dask = through_flowyard(dask, work, count)
                bare = direct(client, fn, count)
                figures[name] = {
                    "threads_s": round(threads, 3),
                    "flowyard_dask_s": round(on_dask, 3),
                    "dask_direct_s": round(bare, 3),
                    "overhead_ms_per_task": round((on_dask - bare) / count * 1000, 2),
                    "ratio_to_direct": round(on_dask / bare, 2),
                }
    write_results("task_runners", figures)


if __name__ == "__main__":
    main()
