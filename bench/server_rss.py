"""The API server's memory across rounds of runs, as its database grows (issue 20: peak
RSS grew 145 → 198 MiB over three rounds of 100 runs).

Each round creates ``--runs`` trivial runs (one bulk request) and waits until a process
worker with ``--limit 8`` has finished them all, polling the list of finished runs as
bench/flow_runs.py does (an answer that grows with the store); after each round the
server's RSS, its peak RSS (VmHWM) and the database's size are recorded. Flat is the
target: what a round allocates should be given back, whatever the store holds.

    python bench/server_rss.py [--rounds 3] [--runs 100] [--limit 8]
    python bench/server_rss.py --malloc-arenas 16   (glibc's default on 2 cores: before)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from common import cpu_seconds, embedded_server, make_deployment, write_results
from flow_runs import wait_final

from flowyard import schemas as s
from flowyard.cli.processes import WorkerProcess


def memory_mib(pid: int) -> dict[str, float]:
    """Resident and peak resident memory of ``pid`` (VmRSS, VmHWM), in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return {"rss": fields["VmRSS"], "peak": fields["VmHWM"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--malloc-arenas", type=int, help="MALLOC_ARENA_MAX for the server")
    args = parser.parse_args()
    rounds = []
    arenas = args.malloc_arenas
    env = {"MALLOC_ARENA_MAX": str(arenas)} if arenas else None
    with embedded_server(env) as (server, flows_dir):
        api = server.client()
        dep = make_deployment(api, "rss", flows_dir)
        database = next(server.home.rglob("*.db"))
        worker = WorkerProcess(server.url, "rss", flows_dir, "--limit", str(args.limit))
        try:
            start = memory_mib(server.pid)
            for number in range(1, args.rounds + 1):
                t0, cpu0 = time.monotonic(), cpu_seconds(server.pid)
                ids = api.run_deployment_bulk_ids(dep.id, s.DeploymentRunBulk(count=args.runs))
                wait_final(api, ids, timeout=900)
                rounds.append(
                    {
                        "round": number,
                        "seconds": time.monotonic() - t0,
                        "server_cpu_s": cpu_seconds(server.pid) - cpu0,
                        "server_mib": memory_mib(server.pid),
                        "database_mib": database.stat().st_size / 2**20,
                    }
                )
                print(rounds[-1], flush=True)
        finally:
            worker.stop()
            api.close()
    peaks = [r["server_mib"]["peak"] for r in rounds]
    write_results(
        f"server_rss_arenas{arenas}" if arenas else "server_rss",
        {
            "malloc_arena_max": arenas or "the server's (2)",
            "runs_per_round": args.runs,
            "limit": args.limit,
            "server_mib_at_start": start,
            "rounds": rounds,
            "peak_growth_mib_first_to_last_round": peaks[-1] - peaks[0],
        },
    )


if __name__ == "__main__":
    main()
