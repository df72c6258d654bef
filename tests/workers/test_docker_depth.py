"""The Docker worker's deeper job variables, registry logins and prompt cancels, against
the real local Docker engine (and, for the login, a loopback registry that asks for one)."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from flowyard import schemas as s
from flowyard.blocks import DockerRegistryCredentials
from flowyard.cli.processes import WorkerProcess
from flowyard.client import FlowyardClient
from flowyard.errors import ApiError
from tests.docker_engine import TEST_IMAGE, DockerEngine
from tests.e2e.conftest import FAST, deploy_flow
from tests.helpers.runs import completed, containers_of, log_lines, wait_for_state
from tests.servers import running_server
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(180)

Deploy = Callable[..., s.Deployment]
StartWorker = Callable[..., WorkerProcess]


class TestJobVariables:
    def test_resources_privileges_hosts_devices_and_create_kwargs_reach_the_container(
        self,
        api: FlowyardClient,
        deploy_docker: Deploy,
        start_docker_worker: StartWorker,
        docker_engine: DockerEngine,
    ):
        """Each job variable, and the allowed create options, is what Docker ran."""
        dep = deploy_docker(
            "hello",
            auto_remove=False,
            privileged=True,
            extra_hosts={"registry.flowyard.test": "127.0.0.1"},
            mem_limit="256m",
            cpus=0.5,
            devices=["/dev/null:/dev/flowyard-null:rwm"],
            networks=["host"],
            container_create_kwargs={"shm_size": "32m", "pids_limit": 200, "cap_drop": ["MKNOD"]},
        )
        start_docker_worker()
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        completed(api, run.id)
        (container,) = containers_of(docker_engine, run.id)
        host = container.attrs["HostConfig"]  # type: ignore[attr-defined]
        assert host["Privileged"] is True
        assert host["ExtraHosts"] == ["registry.flowyard.test:127.0.0.1"]
        assert host["Memory"] == 256 * 2**20 and host["NanoCpus"] == 500_000_000
        assert host["Devices"][0]["PathInContainer"] == "/dev/flowyard-null"
        assert host["ShmSize"] == 32 * 2**20 and host["PidsLimit"] == 200
        assert host["CapDrop"] == ["MKNOD"] and host["NetworkMode"] == "host"

    def test_a_gpu_request_reaches_the_engine(
        self, api: FlowyardClient, deploy_docker: Deploy, start_docker_worker: StartWorker
    ):
        """``gpus`` becomes a device request: this engine has no GPU driver and says so."""
        dep = deploy_docker("hello", gpus="all")
        start_docker_worker()
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        assert wait_for_state(api, run.id, "CRASHED", "COMPLETED") == "CRASHED"
        message = api.read_flow_run(run.id).state.message or ""
        assert "could not start the container" in message and "[[gpu]]" in message, message

    @pytest.mark.parametrize(
        "kwargs",
        [{"pid_mode": "host"}, {"environment": {"FLOWYARD_API_KEY": "x"}}, {"command": "sh"}],
    )
    def test_create_kwargs_outside_the_allow_list_are_a_422_naming_the_field(
        self,
        api: FlowyardClient,
        docker_pool: str,
        docker_flows_dir: Path,
        kwargs: dict[str, object],
    ):
        """At deploy and at run time; nothing is created."""
        variables, name = {"container_create_kwargs": kwargs}, f"kwargs-{uuid.uuid4().hex[:6]}"
        with pytest.raises(ApiError) as refused:
            deploy_flow(
                api, docker_pool, docker_flows_dir, "hello", name=name, job_variables=variables
            )
        assert refused.value.status_code == 422
        assert "'container_create_kwargs'" in str(refused.value)
        assert repr(next(iter(kwargs))) in str(refused.value)
        assert not [d for d in api.list_deployments() if d.pool_name == docker_pool]
        dep = deploy_flow(api, docker_pool, docker_flows_dir, "hello", name=name)
        request = s.DeploymentRunRequest(job_variables=variables)
        with pytest.raises(ApiError) as refused:
            api.run_deployment(dep.id, request)
        assert refused.value.status_code == 422
        assert not api.list_flow_runs(deployment_id=dep.id)


class _Registry(BaseHTTPRequestHandler):
    """A registry that asks for a login and has no image: what the pull sent is kept."""

    seen: list[str | None]

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.seen.append(self.headers.get("Authorization"))
        if self.headers.get("Authorization") is None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="flowyard-test"')
        else:
            self.send_response(404 if self.path != "/v2/" else 200)
            self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_HEAD = do_GET  # noqa: N815

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def registry() -> Iterator[tuple[str, list[str | None]]]:
    """A loopback registry: its address and the Authorization headers it received."""
    seen: list[str | None] = []
    handler = type("Registry", (_Registry,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_registry_credentials_from_a_block_log_the_pull_in_and_stay_secret(
    api: FlowyardClient,
    deploy_docker: Deploy,
    start_docker_worker: StartWorker,
    registry: tuple[str, list[str | None]],
):
    """The block's login reaches the registry (Basic auth, as dockerd sends it); the
    password is in no state message, run log or worker output."""
    address, seen = registry
    password = "pw-" + uuid.uuid4().hex  # made here: in no file
    name = f"registry-{uuid.uuid4().hex[:6]}"
    DockerRegistryCredentials(registry_url=address, username="flowyard", password=password).save(
        name, client=api
    )
    dep = deploy_docker(
        "hello",
        image=f"{address}/private/flows:1",
        image_pull_policy="always",
        registry_credentials=f"{{{{ block.docker-registry-credentials/{name} }}}}",
    )
    worker = start_docker_worker()
    run = api.run_deployment(dep.id, s.DeploymentRunRequest())
    assert wait_for_state(api, run.id, "CRASHED", "COMPLETED") == "CRASHED"
    login = "Basic " + base64.b64encode(f"flowyard:{password}".encode()).decode()
    assert login in seen, seen
    message = api.read_flow_run(run.id).state.message or ""
    assert "could not pull image" in message and password not in message
    assert not any(password in line for line in log_lines(api, run.id))
    worker.stop(timeout=30)
    assert password not in worker.output.read_text(errors="replace")


def test_a_cancel_stops_the_container_within_seconds_not_at_a_heartbeat(
    docker_engine: DockerEngine, docker_flows_dir: Path, tmp_path: Path
):
    """Worker and engine heartbeat every 30 s here: the worker's cancel watch still stops
    the container (SIGTERM: the engine reports the cancel) within a few seconds."""
    from flowyard.workers.docker import DockerWorker

    slow = {
        **FAST,
        "FLOWYARD_CLAIM_LEASE_SECONDS": "120",
        "FLOWYARD_WORKER_HEARTBEAT_SECONDS": "30",
    }
    with (
        running_server(tmp_path / "server", slow) as server,
        FlowyardClient(server.url) as api,
    ):
        template = DockerWorker.default_base_job_template()
        api.create_work_pool(
            s.WorkPoolCreate(name="slow", type="docker", base_job_template=template)
        )
        variables = {
            "image": TEST_IMAGE,
            "image_pull_policy": "never",
            "volumes": [f"{docker_flows_dir}:{docker_flows_dir}:ro"],
            "env": {"FLOWYARD_RUN_HEARTBEAT_SECONDS": "30"},
        }
        dep = deploy_flow(api, "slow", docker_flows_dir, "sleeper", job_variables=variables)
        env = {**slow, "DOCKER_HOST": docker_engine.url}
        worker = WorkerProcess(server.url, "slow", tmp_path, "--type", "docker", env=env)
        try:
            run = api.run_deployment(dep.id, s.DeploymentRunRequest())
            wait_until(lambda: "sleeping" in log_lines(api, run.id), timeout=60)
            asked = time.monotonic()
            api.cancel_flow_run(run.id)
            assert wait_for_state(api, run.id, "CANCELLED", "CRASHED", timeout=25) == "CANCELLED"
            took = time.monotonic() - asked
        finally:
            worker.stop(timeout=30)
        message = api.read_flow_run(run.id).state.message or ""
    assert "the engine stopped the flow" in message, message
    assert took < 15, f"the cancel took {took:.1f} s: it waited for a heartbeat"


def test_the_cancel_watch_reads_at_most_max_reads_a_round_and_visits_every_run():
    """With more runs than reads per round, the rounds take turns: all are seen."""
    from flowyard.workers.cancel_watch import CancelWatch

    runs = [f"run-{n}" for n in range(25)]
    watch = CancelWatch(None, lambda: runs, lambda run_id: None, max_reads=10)  # type: ignore[arg-type]
    rounds = [watch._this_round(runs) for _ in range(3)]
    assert all(len(chosen) == 10 for chosen in rounds)
    assert set().union(*rounds) == set(runs)
    assert watch._this_round(runs[:4]) == runs[:4]
