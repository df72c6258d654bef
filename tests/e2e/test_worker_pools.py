"""One worker process serving several pools: ``flowyard worker start --pool a --pool b``."""

from __future__ import annotations

import uuid

import httpx
import pytest

from flowyard import schemas as s
from flowyard.cli.processes import WorkerProcess, free_port
from flowyard.errors import ApiError
from flowyard.states import StateType
from tests.e2e.conftest import FAST, create_process_pool, deploy_flow
from tests.helpers.cli import flowyard
from tests.waiting import wait_until


def _workers(api, pool: str) -> list[tuple[str, str]]:
    """The pool's workers' names and statuses (none while the pool does not exist)."""
    try:
        return [(w.name, w.status) for w in api.list_workers(pool)]
    except ApiError as exc:
        if exc.status_code == 404:
            return []
        raise


def test_run_once_runs_a_run_of_each_pool(server, api, pool, flows_dir, tmp_path):
    """``--run-once`` over two pools claims in each, runs what came and exits; each pool
    lists its own worker, named after the pool."""
    other = create_process_pool(api, f"pool-{uuid.uuid4().hex[:8]}")
    runs = [
        api.run_deployment(deploy_flow(api, name, flows_dir, "noop").id, s.DeploymentRunRequest())
        for name in (pool, other)
    ]
    worker = WorkerProcess(
        server.url, [pool, other], tmp_path, "--run-once", "--name", "both", env=FAST
    )
    assert worker.process.wait(timeout=120) == 0, worker.tail()
    assert [api.read_flow_run(run.id).state.type for run in runs] == [StateType.COMPLETED] * 2
    assert _workers(api, pool) == [(f"both-{pool}", "OFFLINE")]
    assert _workers(api, other) == [(f"both-{other}", "OFFLINE")]


def test_sigterm_stops_every_pools_runs(server, api, pool, flows_dir, tmp_path):
    """A pool that does not exist is created; one /metrics shows both pools' runs; SIGTERM
    gives both pools' runs the grace period, then kills them, and both pools' workers are
    offline once the process exits."""
    new_pool = f"pool-{uuid.uuid4().hex[:8]}"
    port = free_port()
    options = ("--grace-seconds", "1", "--metrics-port", str(port))
    worker = WorkerProcess(server.url, [pool, new_pool], tmp_path, *options, env=FAST)
    try:
        wait_until(lambda: [st for _, st in _workers(api, new_pool)] == ["ONLINE"], timeout=60)
        assert api.read_work_pool(new_pool).type == "process"
        sleeper = {"parameters": {"folder": str(tmp_path)}}
        runs = [
            api.run_deployment(
                deploy_flow(api, name, flows_dir, "sleeper", **sleeper).id,
                s.DeploymentRunRequest(),
            )
            for name in (pool, new_pool)
        ]
        for run in runs:
            wait_until(lambda run=run: (tmp_path / f"{run.id}.pid").exists(), timeout=60)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        for name in (pool, new_pool):
            assert f'flowyard_worker_active_runs{{pool="{name}"}} 1.0' in metrics, metrics
    finally:
        assert worker.stop(timeout=60) == 0, worker.tail()
    for run in runs:
        final = api.read_flow_run(run.id).state
        assert final.type is StateType.CRASHED and "grace ended" in final.message, final
    assert [st for _, st in _workers(api, pool) + _workers(api, new_pool)] == ["OFFLINE"] * 2


@pytest.mark.parametrize(
    ("pools", "error"),
    [
        ({"FLOWYARD_POOL": "twice-x7, twice-x7"}, "work pool 'twice-x7' is given twice"),
        ({"FLOWYARD_POOL": "ok-x7,bad/name"}, "'bad/name' is not a valid work pool name"),
    ],
)
def test_bad_pool_lists_are_refused_before_anything_is_done(server, api, pools, error):
    """A pool named twice or an invalid name is a one-line error; no pool is created."""
    started = flowyard(server.url, "worker", "start", env=pools, timeout=60)
    assert started.returncode != 0 and error in started.stderr, started.stderr
    assert "Traceback" not in started.stderr
    for name in ("twice-x7", "ok-x7"):
        with pytest.raises(ApiError) as missing:
            api.read_work_pool(name)
        assert missing.value.status_code == 404
