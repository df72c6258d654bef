"""Ctrl-C on a worker: the first says how long runs may finish; the second stops at once."""

from __future__ import annotations

import signal

from flowyard import schemas as s
from flowyard.states import StateType
from tests.proc import alive
from tests.waiting import wait_until


def test_a_second_interrupt_kills_the_runs_at_once(api, deploy, start_worker, tmp_path):
    """SIGINT once: the worker names its grace period and waits; SIGINT again: it kills the
    run, reports it Crashed and exits long before the grace period ends."""
    dep = deploy("sleeper", parameters={"folder": str(tmp_path)})
    run = api.run_deployment(dep.id, s.DeploymentRunRequest())
    worker = start_worker("--grace-seconds", "300")
    pid_file = tmp_path / f"{run.id}.pid"
    wait_until(lambda: pid_file.exists(), timeout=60)
    pid = int(pid_file.read_text())

    worker.process.send_signal(signal.SIGINT)
    said = "finishing runs (grace period 300 s), then stopping; press Ctrl-C again"
    wait_until(lambda: said in worker.tail(50), timeout=30)
    assert worker.alive() and alive(pid)  # waiting for the run, as it said

    worker.process.send_signal(signal.SIGINT)
    assert worker.process.wait(timeout=60) == 0
    assert "killing the runs left now" in worker.tail(50)
    final = api.read_flow_run(run.id).state
    assert final.type is StateType.CRASHED and "stopped at once" in final.message, final
    wait_until(lambda: not alive(pid), timeout=30, message="the flow outlived its worker")


def test_a_worker_that_stops_gracefully_is_offline_at_once(api, pool, start_worker):
    """A worker stopped by Ctrl-C says goodbye: OFFLINE and its pool NOT_READY as soon as it
    exited, not after three silent heartbeat intervals."""
    worker = start_worker()
    wait_until(lambda: [w.status for w in api.list_workers(pool)] == ["ONLINE"], timeout=30)
    worker.process.send_signal(signal.SIGINT)
    assert worker.process.wait(timeout=60) == 0
    [stopped] = api.list_workers(pool)
    assert stopped.status == "OFFLINE"
    assert api.read_work_pool(pool).status == "NOT_READY"
