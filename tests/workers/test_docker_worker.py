"""The Docker worker against a real Docker engine: runs, logs, crashes, cancels, bad images."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from flowyard import schemas as s
from flowyard.blocks import DockerHost, Secret
from flowyard.cli.processes import ServerProcess, WorkerProcess
from flowyard.client import FlowyardClient
from tests.docker_engine import TEST_IMAGE, DockerEngine
from tests.e2e.conftest import FAST, deploy_flow
from tests.helpers.counting_proxy import CountingProxy
from tests.helpers.runs import completed, containers_of, log_lines, wait_for_state
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(180)

Deploy = Callable[..., s.Deployment]
StartWorker = Callable[..., WorkerProcess]


class TestDockerRuns:
    def test_flow_runs_in_a_container_and_completes_with_its_logs(
        self, api: FlowyardClient, deploy_docker: Deploy, start_docker_worker: StartWorker
    ):
        """A flow deployed to a docker pool completes; its logs and prints reach the run."""
        dep = deploy_docker("hello", auto_remove=False)
        start_docker_worker()
        run = api.run_deployment(dep.id, s.DeploymentRunRequest(parameters={"n": 21}))
        completed(api, run.id)
        done = api.read_flow_run(run.id)
        assert done.infrastructure_id and len(done.infrastructure_id) == 64  # a container id
        lines = wait_until(
            lambda: (got := log_lines(api, run.id)) and "printed on stdout" in got and got,
            message="the container's stdout never reached the run's logs",
        )
        assert any(line.startswith("hello from a container, uid 10001") for line in lines), lines

    def test_container_labels_and_id_recorded_once(
        self,
        api: FlowyardClient,
        server: ServerProcess,
        deploy_docker: Deploy,
        start_docker_worker: StartWorker,
        docker_engine: DockerEngine,
        docker_pool: str,
    ):
        """The container carries run, deployment and pool labels and is the recorded id,
        reported to the server in one POST."""
        dep = deploy_docker("hello", auto_remove=False)
        with CountingProxy(server.url) as proxy:
            worker = start_docker_worker(api_url=proxy.url)
            run = api.run_deployment(dep.id, s.DeploymentRunRequest())
            completed(api, run.id)
            worker.stop(timeout=30)
        assert proxy.count("POST", f"/api/flow_runs/{run.id}/infrastructure") == 1
        (container,) = containers_of(docker_engine, run.id)
        labels = container.labels  # type: ignore[attr-defined]
        assert labels["io.flowyard.deployment-id"] == dep.id
        assert labels["io.flowyard.pool"] == docker_pool
        assert api.read_flow_run(run.id).infrastructure_id == container.id  # type: ignore[attr-defined]

    def test_auto_remove_removes_the_container(
        self,
        api: FlowyardClient,
        deploy_docker: Deploy,
        start_docker_worker: StartWorker,
        docker_engine: DockerEngine,
    ):
        """With auto_remove (the default) no container is left once the run is settled."""
        dep = deploy_docker("hello")
        start_docker_worker()
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        completed(api, run.id)
        wait_until(lambda: not containers_of(docker_engine, run.id), message="container left")


class TestDockerFaults:
    def test_container_killed_from_outside_is_crashed(
        self,
        api: FlowyardClient,
        deploy_docker: Deploy,
        start_docker_worker: StartWorker,
        docker_engine: DockerEngine,
    ):
        """A container killed by someone else ends the run Crashed with its exit code."""
        dep = deploy_docker("sleeper")
        start_docker_worker()
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        wait_for_state(api, run.id, "RUNNING")
        (container,) = containers_of(docker_engine, run.id)
        container.kill()  # type: ignore[attr-defined]
        final = wait_for_state(api, run.id, "CRASHED", "COMPLETED", "FAILED")
        assert final == "CRASHED", (api.read_flow_run(run.id).state, log_lines(api, run.id))
        assert "137" in (api.read_flow_run(run.id).state.message or "")

    def test_cancel_stops_the_container(
        self,
        api: FlowyardClient,
        deploy_docker: Deploy,
        start_docker_worker: StartWorker,
        docker_engine: DockerEngine,
    ):
        """Cancelling a running run stops its container and ends the run Cancelled."""
        dep = deploy_docker("sleeper", auto_remove=False)
        start_docker_worker("--grace-seconds", "20")
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        wait_for_state(api, run.id, "RUNNING")
        api.cancel_flow_run(run.id)
        assert wait_for_state(api, run.id, "CANCELLED", "CRASHED", timeout=30) == "CANCELLED"
        (container,) = containers_of(docker_engine, run.id)
        # the engine reports Cancelled a moment before its process ends
        wait_until(
            lambda: container.reload() or container.status == "exited",  # type: ignore[attr-defined]
            timeout=30,
            message="the cancelled run's container still runs",
        )

    def test_bad_image_is_crashed_with_a_clear_reason(
        self, api: FlowyardClient, deploy_docker: Deploy, start_docker_worker: StartWorker
    ):
        """An image that cannot be found ends the run Crashed, saying so in state and logs."""
        dep = deploy_docker("hello", image="flowyard-test:no-such-tag")
        start_docker_worker()
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        assert wait_for_state(api, run.id, "CRASHED", "COMPLETED") == "CRASHED"
        message = api.read_flow_run(run.id).state.message or ""
        assert "flowyard-test:no-such-tag" in message and "pull policy" in message
        wait_until(
            lambda: any("no-such-tag" in line for line in log_lines(api, run.id)),
            message="the launch error never reached the run's logs",
        )


class TestDockerBlocks:
    def test_block_references_resolve_and_secrets_stay_hidden(
        self,
        api: FlowyardClient,
        deploy_docker: Deploy,
        start_docker_worker: StartWorker,
        docker_engine: DockerEngine,
    ):
        """Blocks in job variables resolve at launch; the secret is in no response or log."""
        secret = "tok-" + "9f1c2e7a5b"  # assembled, so grepping this file finds nothing
        Secret(value=secret).save("docker-test-token", client=api)
        DockerHost(base_url=docker_engine.url).save("docker-test", client=api)
        dep = deploy_docker(
            "uses_secret",
            env={"API_TOKEN": "{{ block.secret/docker-test-token.value }}"},
            docker_host="{{ block.docker-host/docker-test }}",
        )
        worker = start_docker_worker()
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        completed(api, run.id)
        lines = wait_until(
            lambda: (got := log_lines(api, run.id)) and any("characters" in x for x in got) and got
        )
        assert f"token has {len(secret)} characters" in lines
        responses = [
            api.request("GET", f"/api/flow_runs/{run.id}"),
            api.request("GET", f"/api/deployments/{dep.id}"),
            api.request("GET", "/api/blocks"),
            api.request("GET", "/api/blocks/secret/docker-test-token"),
            lines,
        ]
        assert secret not in repr(responses)
        worker.stop()
        assert secret not in worker.output.read_text()


class TestDockerCredentials:
    def test_container_gets_the_run_token_never_the_worker_key(
        self,
        admin: FlowyardClient,
        locked_server: ServerProcess,
        docker_engine: DockerEngine,
        docker_flows_dir: Path,
        tmp_path: Path,
    ):
        """Against a server with keys, the container's FLOWYARD_API_KEY is the run's token,
        the run completes with it, and the worker's key is nowhere in the container."""
        from flowyard.workers.docker import DockerWorker

        pool = f"docker-{uuid.uuid4().hex[:8]}"
        template = DockerWorker.default_base_job_template()
        admin.create_work_pool(
            s.WorkPoolCreate(name=pool, type="docker", base_job_template=template)
        )
        key = admin.create_api_key(s.ApiKeyCreate(name=pool, pools=[pool])).key
        variables = {
            "image": TEST_IMAGE,
            "image_pull_policy": "never",
            "volumes": [f"{docker_flows_dir}:{docker_flows_dir}:ro"],
            "auto_remove": False,
        }
        dep = deploy_flow(admin, pool, docker_flows_dir, "hello", job_variables=variables)
        env = {**FAST, "DOCKER_HOST": docker_engine.url, "FLOWYARD_API_KEY": key}
        worker = WorkerProcess(locked_server.url, pool, tmp_path, "--type", "docker", env=env)
        try:
            run = admin.run_deployment(dep.id, s.DeploymentRunRequest())
            completed(admin, run.id)
        finally:
            worker.stop(timeout=30)
        (container,) = containers_of(docker_engine, run.id)
        attrs = container.attrs  # type: ignore[attr-defined]
        variables = dict(item.split("=", 1) for item in attrs["Config"]["Env"])
        assert variables["FLOWYARD_API_KEY"].startswith("fyrt_")
        assert key not in json.dumps(attrs)
