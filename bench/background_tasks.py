"""Background task runs (``Task.delay``): latency of one call, and throughput of a burst.

Run ``python -m bench.background_tasks [--calls N] [--burst N] [--limit N]``; figures go to
``bench/results/background_tasks.json``. A real ``flowyard server start`` (SQLite + managed
Redis) and a real ``flowyard task serve tasks.py:echo --limit N`` process run on one temp
``FLOWYARD_HOME`` (parameters and results go through its local result storage); the
producer is a fresh interpreter.

- latency: ``echo.delay(n).result()`` one after another — from the call to the result in
  the producer (create, queue, claim, run, persist, report, the future's long poll);
- burst: ``delay`` N runs, then the result of each — runs/s from the first call to the
  last result.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from bench.common import embedded_server, percentile, write_results

TASKS = """
from flowyard import task

@task
def echo(n: int) -> int:
    return n
"""

PRODUCER = """
import json, statistics, sys, time
sys.path.insert(0, sys.argv[1])
from tasks import echo

calls, burst = int(sys.argv[2]), int(sys.argv[3])
echo.delay(-1).result(timeout=120)  # the worker is up and the connections warm
latencies = []
for n in range(calls):
    started = time.perf_counter()
    assert echo.delay(n).result(timeout=120) == n
    latencies.append(time.perf_counter() - started)
started = time.perf_counter()
futures = [echo.delay(n) for n in range(burst)]
created = time.perf_counter() - started
assert [f.result(timeout=600) for f in futures] == list(range(burst))
print(json.dumps({"latencies": latencies, "burst_seconds": time.perf_counter() - started,
                  "create_seconds": created}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--limit", type=int, default=16)
    args = parser.parse_args()
    with embedded_server() as (server, home):
        (home / "tasks.py").write_text(TASKS)
        env = {**os.environ, "FLOWYARD_API_URL": server.url, "FLOWYARD_HOME": str(home / "home")}
        worker = subprocess.Popen(
            [sys.executable, "-m", "flowyard", "task", "serve", "tasks.py:echo",
             "--limit", str(args.limit)],
            cwd=home, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            done = subprocess.run(
                [sys.executable, "-c", PRODUCER, str(home), str(args.calls), str(args.burst)],
                capture_output=True, text=True, env=env, timeout=1800,
            )  # fmt: skip
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    if done.returncode != 0:
        raise SystemExit(f"the producer failed:\n{done.stderr}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    latencies_ms = [s * 1000 for s in out["latencies"]]
    write_results(
        "background_tasks",
        {
            "worker_limit": args.limit,
            "latency_delay_to_result_ms": {
                "calls": args.calls,
                "median": percentile(latencies_ms, 50),
                "p99": percentile(latencies_ms, 99),
                "max": max(latencies_ms),
            },
            "burst": {
                "runs": args.burst,
                "runs_per_s": args.burst / out["burst_seconds"],
                "delay_calls_per_s": args.burst / out["create_seconds"],
            },
        },
    )


if __name__ == "__main__":
    main()
