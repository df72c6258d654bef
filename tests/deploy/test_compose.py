"""docker-compose.yml: valid for docker-compose, and the quick-start through it for real."""

from __future__ import annotations

import contextlib
import re
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from flowyard.cli.processes import free_port
from flowyard.client import FlowyardClient
from tests.deploy.conftest import ComposeImages
from tests.docker_engine import DockerEngine
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
HOST_FILES = ["-f", "docker-compose.yml", "-f", "docker-compose.host.yml"]


def compose_config(
    docker_compose: str, *files: str, **env: str
) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": "/usr/local/bin:/usr/bin:/bin", **env}
    return subprocess.run(
        [docker_compose, *files, "config"],
        cwd=REPO,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_default_files_are_valid(docker_compose: str) -> None:
    """docker-compose.yml with its override validates and publishes the API on loopback."""
    done = compose_config(docker_compose, FLOWYARD_API_KEY="fy_key")
    assert done.returncode == 0, done.stderr
    assert "127.0.0.1:4200:4200" in done.stdout
    assert "postgres-data:/var/lib/postgresql/data" in done.stdout
    assert "postgresql+psycopg2://flowyard:flowyard@postgres:5432/flowyard" in done.stdout


def test_api_key_is_required(docker_compose: str) -> None:
    """Without FLOWYARD_API_KEY docker-compose refuses the file and says what to set."""
    done = compose_config(docker_compose)
    assert done.returncode != 0
    assert "set FLOWYARD_API_KEY" in done.stderr


def test_host_override_is_valid(docker_compose: str) -> None:
    """The host-network override validates and puts every service on the host network."""
    ports = {"FLOWYARD_PORT": "1", "POSTGRES_PORT": "2", "REDIS_PORT": "3"}
    done = compose_config(docker_compose, *HOST_FILES, FLOWYARD_API_KEY="k", **ports)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("network_mode: host") == 4
    assert "ports:" not in done.stdout


@dataclass
class Stack:
    """A running compose project on the host network."""

    docker_compose: str
    project: str
    env: dict[str, str]
    api_url: str
    worker_metrics_url: str

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.docker_compose, "-p", self.project, *HOST_FILES, *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def flowyard(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A flowyard command inside the worker's container (where the flows are mounted)."""
        done = self.run("exec", "-T", "worker", "flowyard", *args, timeout=timeout)
        assert done.returncode == 0, f"flowyard {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done

    def logs(self) -> str:
        return self.run("logs", "--no-color", "--tail", "40", timeout=60).stdout


@pytest.fixture(scope="module")
def stack(
    docker_compose: str, compose_engine: DockerEngine, compose_images: ComposeImages
) -> Iterator[Stack]:
    """docker-compose.yml + docker-compose.host.yml up on free loopback ports, then down -v."""
    ports = {
        name: str(free_port())
        for name in ("FLOWYARD_PORT", "POSTGRES_PORT", "REDIS_PORT", "WORKER_METRICS_PORT")
    }
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "DOCKER_HOST": compose_engine.url,
        "FLOWYARD_API_KEY": "fy_" + secrets.token_urlsafe(24),
        "POSTGRES_PASSWORD": secrets.token_hex(12),
        "FLOWYARD_IMAGE": compose_images.flowyard,
        "POSTGRES_IMAGE": compose_images.postgres,
        "REDIS_IMAGE": compose_images.redis,
        **ports,
    }
    stack = Stack(
        docker_compose,
        f"fytest{secrets.token_hex(4)}",
        env,
        f"http://127.0.0.1:{ports['FLOWYARD_PORT']}",
        f"http://127.0.0.1:{ports['WORKER_METRICS_PORT']}",
    )
    try:
        up = stack.run("up", "-d", "--no-build", timeout=300)
        assert up.returncode == 0, f"{up.stderr}\n{stack.logs()}"
        yield stack
    finally:
        stack.run("down", "-v", "--remove-orphans", timeout=120)


@pytest.fixture
def api(stack: Stack) -> Iterator[FlowyardClient]:
    with contextlib.closing(FlowyardClient(stack.api_url, stack.env["FLOWYARD_API_KEY"])) as client:
        yield client


def _status(url: str, key: str | None = None) -> int | None:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        return httpx.get(url, headers=headers, timeout=5).status_code
    except httpx.HTTPError:
        return None


def test_services_are_healthy_without_a_bridge(stack: Stack, compose_engine: DockerEngine) -> None:
    """All four services turn healthy, and compose created no network of its own."""

    def states() -> dict[str, str]:
        done = stack.run("ps", timeout=60)
        return {
            name: line
            for line in done.stdout.splitlines()
            for name in ("postgres", "redis", "server", "worker")
            if f"_{name}_1" in line
        }

    try:
        wait_until(
            lambda: (s := states()) and len(s) == 4 and all("(healthy)" in v for v in s.values()),
            timeout=180,
            interval=0.5,
            message="all four services healthy",
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{stack.logs()}") from None
    with contextlib.closing(compose_engine.client()) as client:
        assert {n.name for n in client.networks.list()} <= {"host", "none", "bridge"}
        assert not [n.name for n in client.networks.list() if stack.project in n.name]


def test_api_needs_its_key(stack: Stack) -> None:
    """The API answers /api/health with the key, and refuses a request without one."""
    key = stack.env["FLOWYARD_API_KEY"]
    wait_until(lambda: _status(f"{stack.api_url}/api/health", key) == 200, timeout=120)
    assert _status(f"{stack.api_url}/api/health") == 401


def test_quick_start_through_compose(stack: Stack, api: FlowyardClient) -> None:
    """examples/etl.py deployed to the process worker's pool runs to Completed, with its logs."""
    wait_until(lambda: _status(f"{stack.worker_metrics_url}/health") == 200, timeout=120)
    deployed = stack.flowyard(
        "deploy", "examples/etl.py:etl_flow", "--name", "nightly", "--pool", "local"
    )
    assert "Deployed ETL Pipeline/nightly" in deployed.stdout
    ran = stack.flowyard("deployment", "run", "ETL Pipeline/nightly", "--watch", timeout=180)
    assert "is Completed" in ran.stdout, ran.stdout
    run_id = re.search(r"Created flow run '[^']+' \(([0-9a-f-]{36})\)", ran.stdout)
    assert run_id, ran.stdout
    run = api.read_flow_run(run_id[1])
    assert run.state.type == "COMPLETED"
    assert run.pool_name == "local" and run.deployment_name == "nightly"
    messages = [log.message for log in api.read_logs(run.id)]
    assert any("Loading data: [10, 20, 30, 40, 50]" in m for m in messages), messages


def test_queue_depth_metric_for_keda(stack: Stack, api: FlowyardClient) -> None:
    """The API's /metrics carries the queue-depth gauge the worker chart's KEDA trigger reads."""
    key = stack.env["FLOWYARD_API_KEY"]
    wait_until(lambda: _status(f"{stack.api_url}/api/health", key) == 200, timeout=120)
    stack.flowyard("work-pool", "create", "keda-probe", "--paused")
    text = httpx.get(
        f"{stack.api_url}/metrics", headers={"Authorization": f"Bearer {key}"}, timeout=10
    ).text
    assert 'flowyard_queue_ready_runs{pool="keda-probe",queue="default"} 0.0' in text


def test_migrate_command_on_postgres(stack: Stack) -> None:
    """``flowyard server migrate`` in the server's container finds PostgreSQL up to date."""
    done = stack.run("exec", "-T", "server", "flowyard", "server", "migrate", timeout=120)
    assert done.returncode == 0, done.stderr
    assert "is at the newest schema revision" in done.stdout
    assert stack.env["POSTGRES_PASSWORD"] not in done.stdout + done.stderr
