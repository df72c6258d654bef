"""Metrics and health endpoints, scraped from real processes."""

from __future__ import annotations

import httpx

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess, free_port
from flowyard.states import StateType
from tests.e2e.conftest import FAST, create_process_pool
from tests.waiting import wait_until


def _metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text format, or None."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_api_metrics_show_queues_states_and_claims(server, api, deploy, pool, start_worker):
    """/metrics reports ready runs per queue, runs by state, and claim latency."""
    dep = deploy("noop")
    waiting = api.run_deployment(dep.id, s.DeploymentRunRequest())
    text = httpx.get(f"{server.url}/metrics").text
    assert _metric(text, "flowyard_queue_ready_runs", pool=pool, queue="default") == 1
    start_worker()
    wait_until(lambda: api.read_flow_run(waiting.id).state.type is StateType.COMPLETED, timeout=60)
    text = httpx.get(f"{server.url}/metrics").text
    assert _metric(text, "flowyard_queue_ready_runs", pool=pool, queue="default") == 0
    assert _metric(text, "flowyard_flow_runs", state="COMPLETED") >= 1
    assert _metric(text, "flowyard_claim_latency_seconds_count", pool=pool) == 1
    assert _metric(text, "flowyard_pool_slots_in_use", pool=pool) == 0
    requests = "flowyard_api_requests_total"
    assert _metric(text, requests, route="POST /api/work_pools/{pool_name}/claim") >= 1
    assert _metric(text, requests, route="POST /api/flow_runs/{ref}/state") >= 2  # its engine's


def test_a_run_whose_engine_settled_it_costs_its_worker_no_read(
    server, api, pool, deploy, start_worker
):
    """The engine exits 0 once the API kept its final state: the worker then reads
    nothing back (no ``GET /api/flow_runs/{ref}``), where an engine that died without a
    final state (exit 3) is read and Crashed."""
    port = free_port()
    start_worker("--metrics-port", str(port))
    wait_until(lambda: _get(f"http://127.0.0.1:{port}/health"), timeout=30)
    reads = {"name": "flowyard_api_requests_total", "route": "GET /api/flow_runs/{ref}"}

    def settled(run_id: str) -> str | None:  # polls by listing: no GET of the run itself
        [run] = [run for run in api.list_flow_runs(pool=pool) if run.id == run_id]
        worker = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        idle = _metric(worker, "flowyard_worker_active_runs", pool=pool) == 0
        return run.state.type.value if run.state.type.is_terminal and idle else None

    before = _metric(httpx.get(f"{server.url}/metrics").text, **reads) or 0
    noop, crash = deploy("noop"), deploy("crash")
    done = api.run_deployment(noop.id, s.DeploymentRunRequest())
    assert wait_until(lambda: settled(done.id), timeout=60) == "COMPLETED"
    assert (_metric(httpx.get(f"{server.url}/metrics").text, **reads) or 0) == before
    crashed = api.run_deployment(crash.id, s.DeploymentRunRequest())
    assert wait_until(lambda: settled(crashed.id), timeout=60) == "CRASHED"
    assert (_metric(httpx.get(f"{server.url}/metrics").text, **reads) or 0) == before + 1


def test_worker_health_and_metrics(server, api, pool, deploy, start_worker):
    """A worker's /health is 200 and its /metrics counts the runs it launched."""
    port = free_port()
    start_worker("--metrics-port", str(port))
    health = wait_until(lambda: _get(f"http://127.0.0.1:{port}/health"), timeout=30)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    run = api.run_deployment(deploy("noop").id, s.DeploymentRunRequest())
    wait_until(lambda: api.read_flow_run(run.id).state.type is StateType.COMPLETED, timeout=60)
    # the run is Completed when its engine says so; the worker settles it once it has seen
    # the process exit, a moment later
    text = wait_until(
        lambda: (
            (t := httpx.get(f"http://127.0.0.1:{port}/metrics").text)
            and _metric(t, "flowyard_worker_active_runs", pool=pool) == 0
            and t
        ),
        timeout=30,
        message="the worker still watches the run",
    )
    assert _metric(text, "flowyard_worker_runs_launched_total", pool=pool) == 1
    assert _metric(text, "flowyard_worker_active_runs", pool=pool) == 0


def test_worker_health_fails_when_the_api_is_gone(tmp_path, start_worker):
    """With its API gone for three heartbeats, a worker's /health answers 503."""
    from flowyard.cli.processes import WorkerProcess

    lonely = ServerProcess(tmp_path / "home", env=FAST)
    lonely.wait_ready()
    with lonely.client() as api:
        create_process_pool(api, "lonely")
    port = free_port()
    worker = WorkerProcess(lonely.url, "lonely", tmp_path, "--metrics-port", str(port), env=FAST)
    try:
        wait_until(lambda: _get(f"http://127.0.0.1:{port}/health"), timeout=30)
        lonely.stop()
        wait_until(
            lambda: (
                (r := _get(f"http://127.0.0.1:{port}/health")) is not None and r.status_code == 503
            ),
            timeout=30,
        )
    finally:
        worker.stop(timeout=60)
        lonely.stop()


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return None
