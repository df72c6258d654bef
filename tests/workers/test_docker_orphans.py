"""Containers a dead Docker worker left behind: what the next worker does with them."""

from __future__ import annotations

import signal
from datetime import UTC, datetime

from flowyard import schemas as s
from flowyard.states import StateType
from flowyard.workers.docker_orphans import Action, decide
from tests.helpers.runs import containers_of, wait_for_state
from tests.waiting import wait_until


def _run(state: StateType, worker: str = "w1") -> s.FlowRun:
    now = datetime.now(UTC)
    return s.FlowRun(
        id="r1",
        name="r",
        flow_id="f",
        flow_name="f",
        deployment_id=None,
        deployment_name=None,
        pool_name="p",
        queue_name="default",
        parameters={},
        job_variables={},
        state=s.StateDoc(type=state, name=state.display_name, timestamp=now),
        scheduled_time=now,
        start_time=None,
        end_time=None,
        worker_name=worker,
        infrastructure_id=None,
        created=now,
    )


def _decide(running=False, run=None, worker="w1", online=frozenset()):
    action, _ = decide(
        running=running, exit_code=137, container_worker=worker, run=run, online=set(online)
    )
    return action


def test_decisions():
    """Online workers' containers and running containers are left; an exited container is
    removed, and its run Crashed only if the run is still its own and not final."""
    assert _decide(online={"w1"}, run=_run(StateType.RUNNING)) is Action.LEAVE
    assert _decide(running=True, run=_run(StateType.RUNNING)) is Action.LEAVE
    assert _decide(run=_run(StateType.RUNNING)) is Action.CRASH
    assert _decide(run=_run(StateType.COMPLETED)) is Action.REMOVE
    assert _decide(run=None) is Action.REMOVE
    assert _decide(run=_run(StateType.RUNNING, worker="w2")) is Action.REMOVE
    _, why = decide(
        running=False,
        exit_code=137,
        container_worker="w1",
        run=_run(StateType.RUNNING),
        online=set(),
    )
    assert "exited with code 137" in why


def test_the_next_worker_settles_a_dead_workers_exited_container(
    api, deploy_docker, start_docker_worker, docker_engine
):
    """The worker is SIGKILLed mid-run and its container dies too: the run ends Crashed and
    the container left behind is removed once the next worker starts."""
    dep = deploy_docker("sleeper")
    first = start_docker_worker()
    run = api.run_deployment(dep.id, s.DeploymentRunRequest())
    wait_for_state(api, run.id, "RUNNING")
    (container,) = containers_of(docker_engine, run.id)
    first.stop(timeout=0, sig=signal.SIGKILL)
    container.kill()  # type: ignore[attr-defined]
    wait_until(
        lambda: all(w.status == "OFFLINE" for w in api.list_workers(dep.pool_name)), timeout=60
    )
    start_docker_worker()
    assert wait_for_state(api, run.id, "CRASHED", "COMPLETED", "FAILED") == "CRASHED"
    wait_until(lambda: containers_of(docker_engine, run.id) == [], timeout=60)
