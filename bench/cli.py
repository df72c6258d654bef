"""How long the ``flowyard`` command takes, start to exit, as a person types it.

- ``flowyard --help`` (target median ≤ 150 ms);
- ``flowyard work-pool ls`` against a running server (target median ≤ 300 ms);
- ``flowyard flow-run ls --limit 50`` against a server holding ``--runs`` runs;
- ``flowyard work-pool ls`` with nothing listening: the time to the error.

Each figure is a whole process (interpreter start-up included), median and p90 of
``--repeat`` (default 10) after one untimed warm-up. The command is the console script
next to this interpreter (as installed), else ``python -m flowyard``; run the benchmark
with the sources to measure first on ``PYTHONPATH``. Figures go to bench/results/cli.json.

    PYTHONPATH=src python -m bench.cli [--repeat 10] [--runs 10000]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import embedded_server, make_deployment, percentile, write_results

from flowyard import schemas as s
from flowyard.cli.processes import free_port

TARGETS = {"help": 0.150, "work_pool_ls": 0.300}


def command() -> list[str]:
    script = Path(sys.executable).parent / "flowyard"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "flowyard"]


def timed(args: list[str], api_url: str, repeat: int, expect: int = 0) -> dict[str, float]:
    """Median and p90 wall time of ``flowyard ARGS`` over ``repeat`` runs (one warm-up), and
    the median CPU time (user + system) of the process: less swayed by a busy machine."""
    env = {**os.environ, "FLOWYARD_API_URL": api_url}
    seconds, cpu = [], []
    for attempt in range(repeat + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run([*command(), *args], env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != expect:
            raise SystemExit(f"flowyard {' '.join(args)} exited {done.returncode}: {done.stderr}")
        if attempt:
            seconds.append(elapsed)
            cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return {
        "median_s": round(statistics.median(seconds), 4),
        "p90_s": round(percentile(seconds, 90), 4),
        "median_cpu_s": round(statistics.median(cpu), 4),
        "count": len(seconds),
    }


def fill(api, flows_dir: Path, runs: int) -> None:
    """``runs`` scheduled runs of a deployment on a pool with no worker."""
    deployment = make_deployment(api, "bench-cli", flows_dir)
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda _: api.run_deployment(deployment.id, s.DeploymentRunRequest()),
                range(runs),
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--runs", type=int, default=10_000)
    args = parser.parse_args()
    figures: dict[str, object] = {"command": " ".join(command()), "repeat": args.repeat}
    down = f"http://127.0.0.1:{free_port()}"
    figures["help"] = timed(["--help"], down, args.repeat)
    figures["server_down_work_pool_ls"] = timed(["work-pool", "ls"], down, args.repeat, expect=1)
    with embedded_server() as (server, flows_dir):
        with server.client() as api:
            figures["work_pool_ls"] = timed(["work-pool", "ls"], server.url, args.repeat)
            started = time.perf_counter()
            fill(api, flows_dir, args.runs)
            figures["runs_in_store"] = args.runs
            figures["fill_s"] = round(time.perf_counter() - started, 1)
        figures["flow_run_ls_50"] = timed(
            ["flow-run", "ls", "--limit", "50"], server.url, args.repeat
        )
    figures["targets_s"] = TARGETS
    figures["met"] = {
        name: figures[name]["median_s"] <= target  # type: ignore[index]
        for name, target in TARGETS.items()
    }
    write_results("cli", figures)


if __name__ == "__main__":
    main()
