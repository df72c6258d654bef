"""Containers a dead Docker worker left behind: what the next worker does with them."""

from __future__ import annotations

import contextlib
import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess, WorkerProcess
from flowyard.client import FlowyardClient
from flowyard.states import StateType
from flowyard.workers.docker import LABEL, DockerWorker
from flowyard.workers.docker_orphans import Action, decide
from tests.docker_engine import TEST_IMAGE, DockerEngine
from tests.e2e.conftest import FAST, deploy_flow
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


def test_a_pool_scoped_key_settles_a_dead_workers_containers(
    admin: FlowyardClient,
    locked_server: ServerProcess,
    docker_flows_dir: Path,
    docker_engine: DockerEngine,
    tmp_path: Path,
):
    """With the worker key the docs recommend (scoped to its pool), the next worker reads
    the pool's workers and each container's run: the dead worker's exited run ends Crashed,
    the container of a run that no longer exists (404, not 403) is removed too."""
    pool = f"docker-key-{uuid.uuid4().hex[:8]}"
    template = DockerWorker.default_base_job_template()
    admin.create_work_pool(s.WorkPoolCreate(name=pool, type="docker", base_job_template=template))
    key = admin.create_api_key(s.ApiKeyCreate(name=pool, pools=[pool])).key
    variables = {
        "image": TEST_IMAGE,
        "image_pull_policy": "never",
        "volumes": [f"{docker_flows_dir}:{docker_flows_dir}:ro"],
    }
    dep = deploy_flow(admin, pool, docker_flows_dir, "sleeper", job_variables=variables)
    env = {**FAST, "DOCKER_HOST": docker_engine.url, "FLOWYARD_API_KEY": key}
    workers: list[WorkerProcess] = []

    def start_worker() -> WorkerProcess:
        workers.append(
            WorkerProcess(locked_server.url, pool, tmp_path, "--type", "docker", env=env)
        )
        return workers[-1]

    gone_run = str(uuid.uuid4())
    try:
        first = start_worker()
        run = admin.run_deployment(dep.id, s.DeploymentRunRequest())
        wait_for_state(admin, run.id, "RUNNING", timeout=120)
        (container,) = containers_of(docker_engine, run.id)
        first.stop(timeout=0, sig=signal.SIGKILL)
        container.kill()  # type: ignore[attr-defined]
        with contextlib.closing(docker_engine.client()) as docker:
            labels = {
                f"{LABEL}.pool": pool,
                f"{LABEL}.flow-run-id": gone_run,
                f"{LABEL}.worker": "long-gone-worker",
            }
            docker.containers.run(
                TEST_IMAGE, ["true"], labels=labels, network_mode="none", detach=True
            ).wait(timeout=60)
        wait_until(lambda: all(w.status == "OFFLINE" for w in admin.list_workers(pool)), timeout=60)
        second = start_worker()
        assert wait_for_state(admin, run.id, "CRASHED", "COMPLETED", "FAILED") == "CRASHED"
        wait_until(
            lambda: (
                containers_of(docker_engine, run.id) == []
                and containers_of(docker_engine, gone_run) == []
            ),
            timeout=60,
            message="a dead worker's container was left",
        )
    finally:
        for worker in workers:
            worker.stop(timeout=30)
        for leftover in containers_of(docker_engine, gone_run):
            leftover.remove(force=True)  # type: ignore[attr-defined]
    output = second.output.read_text()
    assert "403" not in output and output.count("orphan_container_settled") == 2
