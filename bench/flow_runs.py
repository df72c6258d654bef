"""Flow runs through a real process worker, on the embedded defaults.

- one trivial run, created → Completed, 20 times one after another (target p50 ≤ 1 s);
- 100 trivial runs created at once, one worker with ``--limit 8``: wall time until all
  are Completed (target ≤ 15 s);
- the API's CPU per run of that batch (creation, claim, states, logs, polling included),
  and its requests per run, by route (from /metrics' ``flowyard_api_requests_total``);
- the worker's RSS when idle, after those runs (it should stay flat), and the RSS of
  the worker's whole process tree while 8 runs are running.

    python bench/flow_runs.py [--runs 100] [--limit 8] [--single 20]
    python bench/flow_runs.py --runs 1000 --limit 16 --single 0   (issue 20: >= 25 runs/s)
"""

from __future__ import annotations

import argparse
import time

from common import (
    api_requests,
    cpu_seconds,
    descendants,
    embedded_server,
    make_deployment,
    requests_per_run,
    rss_mib,
    summary,
    write_results,
)

from flowyard import schemas as s
from flowyard.cli.processes import WorkerProcess
from flowyard.states import StateType

POLL_PAGE = 20  # runs read per poll, unless more ended since the last one
POLL_SECONDS = 0.25  # the end times are the server's: polling more often measures no better
OUT_OF_ORDER_SECONDS = 1.0  # runs may commit a little out of their end-time order


def wait_final(api, run_ids: list[str], timeout: float) -> dict[str, float]:
    """Poll until every run is final; returns each run's end time (epoch seconds). Each
    poll reads the latest-ended runs back to those that ended shortly before the previous
    poll began (a page, read again with a larger limit when more ended meanwhile): the
    bench's polling costs the API little however many runs are awaited or stored."""
    deadline = time.monotonic() + timeout
    ended: dict[str, float] = {}
    awaited = set(run_ids)
    since = 0.0
    while len(ended) < len(run_ids):
        began = time.time()
        limit = POLL_PAGE
        while True:
            latest = {"order": "ended", "limit": limit}
            runs = s.read_list(s.FlowRun, api.request("GET", "/api/flow_runs", params=latest))
            _record(runs, awaited, ended)
            if len(runs) < limit or runs[-1].end_time.timestamp() < since or limit >= 10_000:
                break
            limit = min(limit * 4, 10_000)
        since = began - OUT_OF_ORDER_SECONDS
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(ended)}/{len(run_ids)} runs finished in {timeout}s")
        time.sleep(POLL_SECONDS)
    return ended


def _record(runs: list[s.FlowRun], awaited: set[str], ended: dict[str, float]) -> None:
    """The end times of the awaited runs among ``runs`` (each must have Completed)."""
    for run in runs:
        if run.id in awaited and run.id not in ended:
            if run.state.type is not StateType.COMPLETED:
                raise SystemExit(f"run {run.id} ended {run.state.type}: {run.state.message}")
            ended[run.id] = run.end_time.timestamp()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--single", type=int, default=20)
    args = parser.parse_args()
    with embedded_server() as (server, flows_dir):
        api = server.client()
        dep = make_deployment(api, "bench", flows_dir)
        hold = api.create_deployment(
            s.DeploymentCreate(
                name="hold",
                flow_name="hold",
                entrypoint="flows.py:hold",
                path=str(flows_dir),
                pool_name="bench",
            )
        )
        worker = WorkerProcess(server.url, "bench", flows_dir, "--limit", str(args.limit))
        try:
            time.sleep(2.0)  # let the worker start and reach its first long-poll
            rss_idle = rss_mib([worker.pid])

            single = []
            for _ in range(args.single):
                t0 = time.time()
                run = api.run_deployment(dep.id, s.DeploymentRunRequest())
                ended = wait_final(api, [run.id], timeout=60)
                single.append(ended[run.id] - t0)

            t0 = time.time()
            api_cpu = cpu_seconds(server.pid)
            requests_before = api_requests(server.url)
            run_ids = [
                api.run_deployment(dep.id, s.DeploymentRunRequest()).id for _ in range(args.runs)
            ]
            created = time.time() - t0
            ended = wait_final(api, run_ids, timeout=600)
            wall = max(ended.values()) - t0
            api_cpu = cpu_seconds(server.pid) - api_cpu
            requests = requests_per_run(requests_before, api_requests(server.url), args.runs)
            rss_after = rss_mib([worker.pid])

            held = [
                api.run_deployment(hold.id, s.DeploymentRunRequest(parameters={"seconds": 6})).id
                for _ in range(args.limit)
            ]
            deadline = time.monotonic() + 60
            while len(api.list_flow_runs(state="RUNNING", pool="bench")) < args.limit:
                if time.monotonic() > deadline:
                    raise SystemExit("the held runs did not all start")
                time.sleep(0.05)
            tree = descendants(worker.pid)
            rss_tree = rss_mib(tree)
            wait_final(api, held, timeout=120)
        finally:
            worker.stop()
            api.close()
    write_results(
        "flow_runs",
        {
            "single_run_created_to_completed_s": summary(single) if single else None,
            "batch": {
                "runs": args.runs,
                "worker_limit": args.limit,
                "create_seconds": created,
                "wall_seconds_until_all_completed": wall,
                "runs_per_second": args.runs / wall,
                "api_cpu_ms_per_run": api_cpu * 1000 / args.runs,
                # the bench's own polling included (the latest-ended runs, every POLL_SECONDS)
                "api_requests_per_run": requests,
            },
            "worker_rss_mib": {"idle": rss_idle, "after_batch": rss_after},
            "worker_tree_rss_mib_at_limit": {"processes": len(tree), "rss": rss_tree},
            "targets": {"single_p50_s": 1.0, "batch_wall_s": 15},
        },
    )


if __name__ == "__main__":
    main()
