"""SDK benchmark with a local server: 10,000 trivial sequential task calls in one flow.

Run ``python -m bench.sdk_server [--tasks N] [--repeat R]``; figures go to
``bench/results/sdk_server.json``. A real ``flowyard server start`` (SQLite + managed Redis)
runs on a temp ``FLOWYARD_HOME``; the flow runs as a script in a fresh interpreter with
``FLOWYARD_API_URL`` set, so its flow run and task runs are recorded through the API.

Figures per repetition: tasks/s of the flow call (start to return: the SDK flushes the
records before the call returns), and the time from the flow's start until every task run
is visible through the API (the start of the first listing that returned all of them,
asked once the script has exited).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import embedded_server, write_results

from flowyard.client import FlowyardClient

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import json, sys, time
from flowyard import flow, task
from flowyard.runtime import flow_run

@task
def trivial(n: int) -> int:
    return n

@flow(name="sequential")
def many(count: int) -> str:
    for n in range(count):
        trivial(n)
    return flow_run.id

count = int(sys.argv[1])
started = time.time()
run_id = many(count)
ended = time.time()
print(json.dumps({"run_id": run_id, "started": started, "ended": ended}))
"""


def run_once(url: str, count: int) -> dict[str, float]:
    env = {**os.environ, "FLOWYARD_API_URL": url}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(count)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=900,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"the flow script failed:\n{done.stderr}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    with FlowyardClient(url) as api:
        while True:
            asked = time.time()  # every record was visible when the complete answer was asked
            task_runs = api.list_task_runs(out["run_id"])
            if len(task_runs) >= count:
                break
            time.sleep(0.05)
        visible = asked
        states = {t.state_type.value for t in task_runs}
    flow_seconds = out["ended"] - out["started"]
    return {
        "flow_seconds": flow_seconds,
        "tasks_per_s": count / flow_seconds,
        "all_visible_after_start_s": visible - out["started"],
        "all_visible_after_flow_end_s": max(0.0, visible - out["ended"]),
        "states": sorted(states),  # type: ignore[dict-item]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with embedded_server() as (server, _home):
        runs = [run_once(server.url, args.tasks) for _ in range(args.repeat)]
    rates = [r["tasks_per_s"] for r in runs]
    write_results(
        "sdk_server",
        {
            "sequential_tasks_local_server": {
                "tasks": args.tasks,
                "repetitions": runs,
                "tasks_per_s_median": statistics.median(rates),
                "all_visible_after_start_s_median": statistics.median(
                    r["all_visible_after_start_s"] for r in runs
                ),
                "target": ">= 1000 tasks/s",
            }
        },
    )


if __name__ == "__main__":
    main()
