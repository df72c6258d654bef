"""SDK benchmarks, no server: the quick-start as a script, task-call throughput, map, memory.

Run ``python bench/sdk.py``; figures go to ``bench/results/sdk.json``. Every measurement
runs in a fresh interpreter so that wall times include start-up and RSS is its own.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import summary, write_results

ROOT = Path(__file__).resolve().parents[1]

SEQUENTIAL = """
import json, resource, sys, time
from flowyard import flow, task

@task
def trivial(n: int) -> int:
    return n

@flow
def many(count: int) -> int:
    total = 0
    for n in range(count):
        total += trivial(n)
    return total

start = time.perf_counter()
many(10_000)
elapsed = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": elapsed, "tasks_per_s": 10_000 / elapsed, "peak_rss_mib": rss}))
"""

MAPPED = """
import json, time
from flowyard import flow, task

@task
def io(n: int) -> int:
    time.sleep(0.01)
    return n

@flow
def fan_out() -> int:
    return len(io.map(range(1000)).result())

start = time.perf_counter()
fan_out()
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "FLOWYARD_API_URL"}
    return env


def run_timed(argv: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) and stdout of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_env(), cwd=ROOT
    )
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv} exited with {proc.returncode}")
    return wall, usage.ru_maxrss / 1024, out


def quick_start(repeat: int = 5) -> dict[str, object]:
    walls, rss = [], []
    for _ in range(repeat):
        wall, peak, out = run_timed([sys.executable, "examples/etl.py"])
        assert out == "Loading data: [10, 20, 30, 40, 50]\n", out
        walls.append(wall)
        rss.append(peak)
    return {"wall_s": summary(walls), "peak_rss_mib": max(rss), "target": "<= 0.5 s, <= 60 MiB"}


def script_figures(source: str, repeat: int = 3) -> list[dict[str, float]]:
    return [json.loads(run_timed([sys.executable, "-c", source])[2]) for _ in range(repeat)]


def main() -> None:
    sequential = script_figures(SEQUENTIAL)
    mapped = script_figures(MAPPED)
    figures = {
        "quick_start_no_server": quick_start(),
        "sequential_10k_tasks_no_server": {
            "tasks_per_s_median": statistics.median(r["tasks_per_s"] for r in sequential),
            "target": ">= 5000 tasks/s",
        },
        "map_1000_x_10ms_io_thread_runner": {
            "wall_s_median": statistics.median(r["seconds"] for r in mapped),
        },
        "flow_with_10k_task_runs": {
            "peak_rss_mib": max(r["peak_rss_mib"] for r in sequential),
        },
        "not_measured": "tasks/s with a local server (next session)",
    }
    write_results("sdk", figures)


if __name__ == "__main__":
    main()
