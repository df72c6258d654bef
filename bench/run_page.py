"""The flow-run page of a run with many task runs: how long the server takes to answer it
and how big it is, with the task graph drawn grouped by task beyond 200 task runs.

Against a real embedded server (SQLite): one run gets ``--task-runs`` task-run records
(``--tasks`` task keys, each fed by the one before) and ``--logs`` log lines through the
API; then the page (``/ui/runs/<id>``), a log search and the log download are fetched
``--repeat`` times each (median, p99, max in ms) and their sizes recorded; then the page is
opened in headless Chromium (``bench/browser.py``): first paint, load, the longest task and
the total blocking time, and its element count.

    python bench/run_page.py [--task-runs 10000] [--tasks 20] [--logs 20000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from browser import page_timings
from common import embedded_server, summary, write_results

from flowyard import schemas as s
from flowyard.states import StateType


def records(run_id: str, count: int, tasks: int) -> list[dict[str, object]]:
    start = datetime.now(UTC) - timedelta(hours=1)
    ids = [str(uuid.uuid4()) for _ in range(count)]
    out = []
    for n, task_run_id in enumerate(ids):
        began = start + timedelta(milliseconds=100 * n)
        inputs = {"x": [{"input_type": "task_run", "id": ids[n - 1]}]} if n else {}
        out.append(
            s.TaskRunRecord(
                id=task_run_id,
                flow_run_id=run_id,
                name=f"task{n % tasks}-{n}",
                task_key=f"task{n % tasks}",
                state=StateType.COMPLETED,
                start_time=began,
                end_time=began + timedelta(milliseconds=400),
                task_inputs=inputs,
            ).model_dump(mode="json")
        )
    return out


def timed(client: httpx.Client, path: str, repeat: int) -> tuple[dict[str, float], int]:
    times, size = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
        size = len(answer.content)
    return summary(times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task-runs", type=int, default=10_000)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--logs", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with embedded_server() as (server, _), server.client() as api:
        run = api.create_flow_run(s.FlowRunCreate(flow_name="bench", name="many-tasks"))
        batch = records(run.id, args.task_runs, args.tasks)
        for at in range(0, len(batch), s.MAX_LIST_ITEMS):
            api.upsert_task_runs(batch[at : at + s.MAX_LIST_ITEMS])
        now = datetime.now(UTC)
        for at in range(0, args.logs, s.MAX_LIST_ITEMS):
            count = min(s.MAX_LIST_ITEMS, args.logs - at)
            api.create_logs(
                [
                    s.LogCreate(flow_run_id=run.id, message=f"line {at + i}", timestamp=now)
                    for i in range(count)
                ]
            )
        figures: dict[str, object] = {"task_runs": args.task_runs, "logs": args.logs}
        with httpx.Client(base_url=server.url, timeout=120) as client:
            for name, path in (
                ("page", f"/ui/runs/{run.id}"),
                ("search", f"/ui/runs/{run.id}?q=line%2019999"),
                ("download", f"/ui/runs/{run.id}/logs.txt"),
            ):
                ms, size = timed(client, path, args.repeat)
                figures[name] = {"ms": ms, "bytes": size}
        figures["browser"] = page_timings(f"{server.url}/ui/runs/{run.id}", min(args.repeat, 5))
        write_results("run_page", figures)


if __name__ == "__main__":
    main()
