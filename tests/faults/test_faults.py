"""Faults injected into real processes: every run ends where it should, none runs twice,
no slot stays held."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess, WorkerProcess
from flowyard.pools import ManagedRedis
from flowyard.states import StateType
from tests.e2e.conftest import FAST, create_process_pool, deploy_flow
from tests.waiting import wait_until


def _state(api, run_id: str) -> StateType:
    return api.read_flow_run(run_id).state.type


def _running_intervals(api, run_ids):
    spans = []
    for run_id in run_ids:
        at = {st.type: st.timestamp for st in api.read_flow_run_history(run_id).states}
        spans.append((at[StateType.RUNNING], at.get(StateType.COMPLETED)))
    return spans


def _peak(spans, after=None):
    points = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    current = peak = 0
    for when, delta in points:
        current += delta
        if after is None or when >= after:
            peak = max(peak, current)
    return peak


def _kill(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_run_outlives_its_killed_worker(api, deploy, pool, start_worker, tmp_path):
    """SIGKILL a worker mid-run: its engine keeps heartbeating, finishes, frees the slot."""
    dep = deploy("sleeper", parameters={"folder": str(tmp_path), "seconds": 8})
    run = api.run_deployment(dep.id, s.DeploymentRunRequest())
    worker = start_worker()
    pid_file = tmp_path / f"{run.id}.pid"
    wait_until(lambda: pid_file.exists() and _state(api, run.id) is StateType.RUNNING, timeout=60)
    worker.stop(sig=signal.SIGKILL)
    wait_until(lambda: _state(api, run.id).is_terminal, timeout=60)
    assert _state(api, run.id) is StateType.COMPLETED
    wait_until(lambda: api.read_work_queue(pool, "default").running == 0, timeout=10)


def test_worker_and_engine_killed_crash_the_run_and_free_its_slot(
    api, deploy, pool, start_worker, tmp_path
):
    """SIGKILL a worker and its run's process: heartbeats stop, Crashed, slot freed."""
    dep = deploy("sleeper", parameters={"folder": str(tmp_path)})
    run = api.run_deployment(dep.id, s.DeploymentRunRequest())
    worker = start_worker()
    pid_file = tmp_path / f"{run.id}.pid"
    wait_until(lambda: pid_file.exists() and _state(api, run.id) is StateType.RUNNING, timeout=60)
    worker.stop(sig=signal.SIGKILL)
    _kill(int(pid_file.read_text()))
    wait_until(lambda: _state(api, run.id) is StateType.CRASHED, timeout=30)
    assert "heartbeats any more" in api.read_flow_run(run.id).state.message
    wait_until(lambda: api.read_work_queue(pool, "default").running == 0, timeout=10)


def test_cancel_with_worker_gone_is_done_by_the_engine(api, deploy, pool, start_worker, tmp_path):
    """Cancel a run whose worker died: its engine learns it from a heartbeat and stops itself."""
    dep = deploy("sleeper", parameters={"folder": str(tmp_path)})
    run = api.run_deployment(dep.id, s.DeploymentRunRequest())
    worker = start_worker()
    pid_file = tmp_path / f"{run.id}.pid"
    wait_until(lambda: pid_file.exists() and _state(api, run.id) is StateType.RUNNING, timeout=60)
    worker.stop(sig=signal.SIGKILL)
    pid = int(pid_file.read_text())
    try:
        assert api.cancel_flow_run(run.id).state.type is StateType.CANCELLING
        wait_until(lambda: _state(api, run.id) is StateType.CANCELLED, timeout=30)
        assert "engine stopped itself" in api.read_flow_run(run.id).state.message
        wait_until(lambda: not Path(f"/proc/{pid}").exists(), timeout=30)
        wait_until(lambda: api.read_work_queue(pool, "default").running == 0, timeout=10)
    finally:
        _kill(pid)


def test_cancel_with_its_worker_gone_ends_cancelled_with_a_warning(api, deploy, pool):
    """A run being cancelled whose worker vanished is Cancelled, noting it may still run."""
    run = api.run_deployment(deploy("noop").id, s.DeploymentRunRequest())
    [claimed] = api.claim(pool, s.ClaimRequest(worker_name="doomed"))
    started = api.set_flow_run_state(
        run.id, s.StateChange(type=StateType.RUNNING, token=claimed.token)
    )
    assert started.accepted
    assert api.cancel_flow_run(run.id).state.type is StateType.CANCELLING
    wait_until(lambda: _state(api, run.id) is StateType.CANCELLED, timeout=30)
    assert "may still be running" in api.read_flow_run(run.id).state.message
    assert api.read_work_queue(pool, "default").running == 0


def test_lowering_a_pool_limit_applies_at_the_next_claim(api, deploy, pool, start_worker, tmp_path):
    """Limit 8 → 2 under load: once the runs already going finish, at most 2 run at once."""
    dep = deploy("sleeper", parameters={"folder": str(tmp_path), "seconds": 2})
    first = [api.run_deployment(dep.id, s.DeploymentRunRequest()).id for _ in range(4)]
    start_worker("--limit", "8")
    wait_until(lambda: all(_state(api, r) is StateType.RUNNING for r in first), timeout=60)
    api.update_work_pool(pool, s.WorkPoolUpdate(concurrency_limit=2))
    later = [api.run_deployment(dep.id, s.DeploymentRunRequest()).id for _ in range(6)]
    wait_until(
        lambda: all(_state(api, r) is StateType.COMPLETED for r in first + later),
        timeout=120,
        interval=0.2,
    )
    spans = _running_intervals(api, first + later)
    last_of_first = max(end for _, end in spans[: len(first)])
    assert _peak(spans, after=last_of_first) <= 2
    assert _peak(_running_intervals(api, later)) <= 2


def test_redis_restart_with_data_gone_keeps_limits_and_loses_nothing(tmp_path, flows_dir):
    """Redis restarted empty mid-load: queues and held slots are rebuilt, limits still hold."""
    redis = ManagedRedis(workdir=tmp_path / "redis").start()
    server = ServerProcess(tmp_path / "home", env={**FAST, "FLOWYARD_REDIS_URL": redis.url})
    worker = None
    try:
        server.wait_ready()
        api = server.client()
        pool = create_process_pool(api, "limited")
        api.update_work_pool(pool, s.WorkPoolUpdate(concurrency_limit=2))
        markers = tmp_path / "markers"
        markers.mkdir()
        dep = deploy_flow(
            api, pool, flows_dir, "sleeper", parameters={"folder": str(markers), "seconds": 6}
        )
        run_ids = [api.run_deployment(dep.id, s.DeploymentRunRequest()).id for _ in range(6)]
        worker = WorkerProcess(server.url, pool, tmp_path, "--limit", "8", env=FAST)
        wait_until(
            lambda: sum(_state(api, r) is StateType.RUNNING for r in run_ids) == 2, timeout=60
        )
        port, password = redis.port, redis.password
        redis.stop()
        redis = ManagedRedis(port=port, password=password, workdir=tmp_path / "redis2").start()
        wait_until(
            lambda: all(_state(api, r) is StateType.COMPLETED for r in run_ids),
            timeout=180,
            interval=0.2,
            message="runs did not all complete after the restart",
        )
        assert _peak(_running_intervals(api, run_ids)) <= 2
        assert sorted(p.name for p in markers.glob("*.pid")) == sorted(f"{r}.pid" for r in run_ids)
        api.close()
    finally:
        if worker is not None:
            worker.stop()
        server.stop()
        redis.stop()
