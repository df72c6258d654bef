"""What the per-route authority check costs: the same requests with each kind of credential.

A server with API keys; one claimed run of pool ``bench``. For each credential — the admin
key, a worker key of the pool, the run's token — the engine's and worker's hot requests
(run heartbeat, a one-line log batch, reading the run) are sent sequentially, and their
latency reported (median, p99). The admin key skips the scope checks, so its figures are
the baseline the others are compared with.

    python bench/authority.py [--requests 1000]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

import httpx
from common import embedded_server, make_deployment, summary, write_results

from flowyard import schemas as s
from flowyard.client import FlowyardClient

ADMIN = "bench-admin-key-0123456789abcdef0123456789"


def timed(http: httpx.Client, requests: int, method: str, path: str, body: object) -> list[float]:
    latencies = []
    for _ in range(requests):
        t0 = time.perf_counter()
        response = http.request(method, path, json=body)
        latencies.append((time.perf_counter() - t0) * 1000)
        response.raise_for_status()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    with embedded_server({"FLOWYARD_API_KEY": ADMIN}) as (server, flows_dir):
        with FlowyardClient(server.url, ADMIN) as admin:
            dep = make_deployment(admin, "bench", flows_dir)
            run = admin.run_deployment(dep.id, s.DeploymentRunRequest())
            claimed: list[s.ClaimedRun] = []
            while not claimed:
                claimed = admin.claim("bench", s.ClaimRequest(worker_name="b", wait=1.0))
            worker_key = admin.create_api_key(s.ApiKeyCreate(name="w", pools=["bench"])).key
            run_token = admin.create_run_token(run.id)
        claim_token = claimed[0].token
        log = {"flow_run_id": run.id, "message": "x", "timestamp": datetime.now(UTC).isoformat()}
        requests = {
            "heartbeat": ("POST", f"/api/flow_runs/{run.id}/heartbeat", {"token": claim_token}),
            "log": ("POST", "/api/logs", [log]),
            "read_run": ("GET", f"/api/flow_runs/{run.id}", None),
        }
        figures: dict[str, dict[str, object]] = {}
        for who, key in (("admin", ADMIN), ("worker_key", worker_key), ("run_token", run_token)):
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
                timed(http, 50, *requests["read_run"])  # warm up
                figures[who] = {
                    name: summary(timed(http, args.requests, method, path, body))
                    for name, (method, path, body) in requests.items()
                }
        write_results("authority", {"requests_per_figure": args.requests, "ms": figures})


if __name__ == "__main__":
    main()
