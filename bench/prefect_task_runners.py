"""The workloads of ``task_runners.py`` on Prefect (run by a Prefect interpreter, never by
Flowyard's: ``task_runners.py --prefect-python PATH`` starts it): threads, prefect-dask on
a ``LocalCluster`` of 2 worker processes (made once), prefect-ray on a local Ray instance
(prefect-ray starts and stops one per flow run: its start-up is in each figure). Prefect
records through its temporary local server (``PREFECT_API_URL`` unset), as a plain script
does. Prints one JSON document of wall times.

    python bench/prefect_task_runners.py TASKS CPU_TASKS THREADS_PER_WORKER RAY_CPUS ENGINES
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from prefect import flow, task
from prefect.task_runners import ThreadPoolTaskRunner


def io_work(n: int) -> int:
    time.sleep(0.01)
    return n


def cpu_work(n: int) -> int:
    deadline = time.thread_time() + 0.1  # this thread's CPU, not its process's
    while time.thread_time() < deadline:
        pass
    return n


WORK = {"io_10ms": task(io_work, name="io"), "cpu_100ms": task(cpu_work, name="cpu")}


def timed(runner: Any, work: Any, count: int) -> float:
    @flow(task_runner=runner)
    def mapped() -> int:
        return len(work.map(range(count)).result())

    start = time.perf_counter()
    assert mapped() == count
    return round(time.perf_counter() - start, 3)


def main() -> None:
    tasks, cpu_tasks, threads, ray_cpus = (int(a) for a in sys.argv[1:5])
    engines = set(sys.argv[5].split(","))
    counts = {"io_10ms": tasks, "cpu_100ms": cpu_tasks}
    runners: dict[str, Any] = {}
    if "threads" in engines:
        runners["threads"] = lambda: ThreadPoolTaskRunner()
    if "dask" in engines:  # one cluster for every run, as Flowyard's figures use
        from distributed import LocalCluster
        from prefect_dask import DaskTaskRunner

        cluster = LocalCluster(n_workers=2, threads_per_worker=threads, dashboard_address=None)
        runners["dask"] = lambda: DaskTaskRunner(address=cluster.scheduler_address)
    if "ray" in engines:
        from prefect_ray import RayTaskRunner

        init = {"num_cpus": ray_cpus, "include_dashboard": False, "log_to_driver": False}
        runners["ray"] = lambda: RayTaskRunner(init_kwargs=init)
    timed(ThreadPoolTaskRunner(), WORK["io_10ms"], 20)  # the temporary server warmed up
    figures: dict[str, dict[str, float]] = {name: {} for name in counts}
    for engine, make in runners.items():
        timed(make(), WORK["io_10ms"], 40)  # the engine's workers warmed up
        for name, count in counts.items():
            figures[name][engine] = timed(make(), WORK[name], count)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
