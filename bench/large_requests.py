"""The largest request the API accepts, and worker heartbeats while such requests pour in.

Against a real embedded server with the default limits: a log request of exactly
FLOWYARD_MAX_REQUEST_BYTES is accepted and one byte more is refused (413), as is a 50 MB
log line (timed: refused without being read). Then 1, and 4, threads post maximum-size
log requests (1000 logs filling the limit) back to back for ``--seconds`` while a worker
heartbeats its pool every 100 ms; the heartbeat's latency (median, p99, max) is compared
with the same heartbeats on an idle server. Before the limits, 57 MB of logs held a
heartbeat for 42 s.

    python bench/large_requests.py [--writers 1 4] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time

import httpx
from common import descendants, embedded_server, rss_mib, summary, write_results

from flowyard import schemas as s
from flowyard.settings import Settings
from flowyard.workers.process import ProcessWorker

HEADERS = {"content-type": "application/json"}
BEAT_EVERY = 0.1


def log_body(run_id: str, size: int, count: int = s.MAX_LIST_ITEMS) -> bytes:
    """``count`` logs of one run whose JSON is exactly ``size`` bytes."""
    log = {"flow_run_id": run_id, "message": "", "timestamp": "2026-01-01T00:00:00Z"}
    bare = len(json.dumps([log] * count).encode())
    each, extra = divmod(size - bare, count)
    logs = [{**log, "message": "x" * (each + (i < extra))} for i in range(count)]
    body = json.dumps(logs).encode()
    assert len(body) == size, (len(body), size)
    return body


def beat(api, pool: str, stop: threading.Event, latencies: dict[str, list[float]]) -> None:
    """Heartbeat every BEAT_EVERY seconds, and time /api/health (no store work) in between."""
    body = s.WorkerHeartbeat(worker_name="bench-worker")
    while not stop.is_set():
        started = time.perf_counter()
        api.worker_heartbeat(pool, body)
        latencies["heartbeat"].append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        api.health()
        latencies["health"].append((time.perf_counter() - started) * 1000)
        stop.wait(BEAT_EVERY)


def heartbeats(server, pool: str, seconds: float) -> dict[str, list[float]]:
    latencies: dict[str, list[float]] = {"heartbeat": [], "health": []}
    stop = threading.Event()
    with server.client() as api:
        beater = threading.Thread(target=beat, args=(api, pool, stop, latencies))
        beater.start()
        stop.wait(seconds)
        stop.set()
        beater.join()
    return latencies


def figures(latencies: list[float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in summary(latencies).items()}


def write_logs(url: str, body: bytes, stop: threading.Event, written: list[int]) -> None:
    with httpx.Client(base_url=url, timeout=120) as http:
        while not stop.is_set():
            response = http.post("/api/logs", content=body, headers=HEADERS)
            response.raise_for_status()
            written.append(len(body))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    limit = Settings().max_request_bytes
    with embedded_server() as (server, _):
        with server.client() as api:
            template = ProcessWorker.default_base_job_template()
            api.create_work_pool(s.WorkPoolCreate(name="bench", base_job_template=template))
            run = api.create_flow_run(s.FlowRunCreate(flow_name="logs"))
        largest = log_body(run.id, limit)
        with httpx.Client(base_url=server.url, timeout=120) as http:
            accepted = http.post("/api/logs", content=largest, headers=HEADERS).status_code
            over = http.post("/api/logs", content=log_body(run.id, limit + 1), headers=HEADERS)
            line = {
                "flow_run_id": run.id,
                "message": "x" * 50_000_000,
                "timestamp": "2026-01-01T00:00:00Z",
            }
            huge = json.dumps([line]).encode()
            started = time.perf_counter()
            refused = http.post("/api/logs", content=huge, headers=HEADERS).status_code
            refused_ms = (time.perf_counter() - started) * 1000
        assert accepted == 201 and over.status_code == 413 and refused == 413, (accepted, over)

        idle = heartbeats(server, "bench", seconds=5)
        loads = {n: under_load(server, largest, n, args.seconds) for n in args.writers}

    write_results(
        "large_requests",
        {
            "max_request_bytes": limit,
            "largest_accepted_request_bytes": len(largest),
            "one_byte_more": over.status_code,
            "log_line_50mb": {"status": refused, "answered_ms": round(refused_ms, 1)},
            "heartbeat_ms_idle": figures(idle["heartbeat"]),
            "health_ms_idle": figures(idle["health"]),
            "while_writing": [{"concurrent_writers": n, **load} for n, load in loads.items()],
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),  # the machine is shared
        },
    )


def under_load(server, body: bytes, count: int, seconds: float) -> dict[str, object]:
    """Heartbeat figures while ``count`` threads post ``body`` to /api/logs back to back."""
    pids = descendants(server.pid)
    rss_before = rss_mib(pids)
    stop, written = threading.Event(), []
    writers = [
        threading.Thread(target=write_logs, args=(server.url, body, stop, written))
        for _ in range(count)
    ]
    for writer in writers:
        writer.start()
    loaded = heartbeats(server, "bench", seconds=seconds)
    stop.set()
    for writer in writers:
        writer.join()
    mib = sum(written) / 2**20
    return {
        "max_size_log_requests_written": len(written),
        "logs_written_mib_per_second": round(mib / seconds, 2),
        "heartbeat_ms": figures(loaded["heartbeat"]),
        "health_ms": figures(loaded["health"]),
        "server_rss_mib": {"before": round(rss_before), "after": round(rss_mib(pids))},
    }


if __name__ == "__main__":
    main()
