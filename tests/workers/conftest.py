"""Fixtures of the worker tests: a real Docker engine, its test image, and a server."""

from __future__ import annotations

import os
import stat
import tempfile
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess, WorkerProcess
from flowyard.client import FlowyardClient
from tests.docker_engine import DockerEngine, dockerd_available
from tests.e2e.conftest import FAST, api, deploy_flow, server  # noqa: F401 - fixtures
from tests.servers import keyed_server

DOCKER_FLOWS = textwrap.dedent(
    """
    import os
    import time

    from flowyard import flow, get_run_logger, task


    @task
    def double(n: int) -> int:
        return n * 2


    @flow(name="hello")
    def hello(n: int = 1) -> int:
        get_run_logger().info("hello from a container, uid %s", os.getuid())
        print("printed on stdout")
        return double(n)


    @flow(name="sleeper")
    def sleeper(seconds: float = 600) -> None:
        print("sleeping", flush=True)
        time.sleep(seconds)


    @flow(name="uses-secret")
    def uses_secret() -> None:
        token = os.environ["API_TOKEN"]
        get_run_logger().info("token has %d characters", len(token))
    """
)


@pytest.fixture(scope="package")
def docker_engine() -> Iterator[DockerEngine]:
    """A private dockerd and the test image (cached per machine); skipped without dockerd."""
    if not dockerd_available():
        if os.environ.get("CI"):
            pytest.fail("dockerd is not installed; .ci/run must install docker.io")
        pytest.skip("dockerd is not installed here")
    engine = DockerEngine().start()
    try:
        engine.ensure_base_image()
        engine.build_test_image()
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="package")
def docker_flows_dir() -> Iterator[Path]:
    """The test flows in a folder the image's unprivileged user can read (not pytest's 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="flowyard-docker-flows-"))
    (folder / "flows.py").write_text(DOCKER_FLOWS)
    mode = stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
    folder.chmod(mode)
    (folder / "flows.py").chmod(0o644)
    yield folder
    for child in folder.iterdir():
        child.unlink()
    folder.rmdir()


@pytest.fixture
def docker_pool(api: FlowyardClient) -> str:  # noqa: F811 - the imported fixture
    """A fresh docker pool with the worker type's default template."""
    from flowyard.workers.docker import DockerWorker

    name = f"docker-{uuid.uuid4().hex[:8]}"
    template = DockerWorker.default_base_job_template()
    api.create_work_pool(s.WorkPoolCreate(name=name, type="docker", base_job_template=template))
    return name


@pytest.fixture
def deploy_docker(
    api: FlowyardClient,  # noqa: F811
    docker_pool: str,
    docker_flows_dir: Path,
    docker_engine: DockerEngine,
) -> Callable[..., s.Deployment]:
    """Deploy a test flow to the docker pool, running in the test image with the flows mounted."""
    from tests.docker_engine import TEST_IMAGE

    def make(function: str, **job_variables: object) -> s.Deployment:
        variables = {
            "image": TEST_IMAGE,
            "image_pull_policy": "never",
            "volumes": [f"{docker_flows_dir}:{docker_flows_dir}:ro"],
            **job_variables,
        }
        return deploy_flow(api, docker_pool, docker_flows_dir, function, job_variables=variables)

    return make


@pytest.fixture
def start_docker_worker(
    server: ServerProcess,  # noqa: F811
    docker_pool: str,
    docker_engine: DockerEngine,
    tmp_path: Path,
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start ``flowyard worker start --type docker`` processes, stopped after the test
    (``api_url``: another way to the server, such as a ``CountingProxy``)."""
    started: list[WorkerProcess] = []

    def start(*args: str, api_url: str | None = None) -> WorkerProcess:
        env = {**FAST, "DOCKER_HOST": docker_engine.url}
        worker = WorkerProcess(
            api_url or server.url, docker_pool, tmp_path, "--type", "docker", *args, env=env
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop(timeout=30)


ADMIN = "admin-secret-for-worker-tests-0123456789"


@pytest.fixture(scope="module")
def locked_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server that requires API keys, for tests of what credential a flow is given."""
    with keyed_server(tmp_path_factory.mktemp("locked"), ADMIN) as locked:
        yield locked


@pytest.fixture
def admin(locked_server: ServerProcess) -> Iterator[FlowyardClient]:
    with FlowyardClient(locked_server.url, ADMIN) as client:
        yield client
