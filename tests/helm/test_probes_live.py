"""The server chart's probes, run for real against a real API server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from flowyard.cli.processes import ServerProcess
from tests.helm.conftest import ADMIN_KEY, Manifests, container, find


def server_container(render: Callable[..., Manifests]) -> dict[str, object]:
    return container(find(render("flowyard-server", "bundled-values.yaml"), "Deployment"), "server")


def run_readiness(item: dict[str, object], port: int, key: str) -> int:
    command = item["readinessProbe"]["exec"]["command"]  # type: ignore[index]
    assert command[0] == "python3"
    env = {"FLOWYARD_SERVER_PORT": str(port), "FLOWYARD_API_KEY": key}
    done = subprocess.run(
        [sys.executable, *command[1:]], env=env, capture_output=True, text=True, timeout=30
    )
    return done.returncode


def test_readiness_passes_with_the_key(
    render: Callable[..., Manifests], keyed_server: ServerProcess
) -> None:
    """The readiness script succeeds against a healthy API with the right key."""
    port = urlsplit(keyed_server.url).port
    assert port is not None
    assert run_readiness(server_container(render), port, ADMIN_KEY) == 0


def test_readiness_fails_with_a_wrong_key_or_no_server(
    render: Callable[..., Manifests], keyed_server: ServerProcess
) -> None:
    """A refused key, or nothing listening, makes the readiness script fail."""
    port = urlsplit(keyed_server.url).port
    assert port is not None
    item = server_container(render)
    assert run_readiness(item, port, "fy_wrong") != 0
    assert run_readiness(item, 1, ADMIN_KEY) != 0


def test_liveness_path_needs_no_key(
    render: Callable[..., Manifests], keyed_server: ServerProcess
) -> None:
    """The liveness path answers 200 without a key (a kubelet probe sends none)."""
    path = server_container(render)["livenessProbe"]["httpGet"]["path"]  # type: ignore[index]
    assert httpx.get(f"{keyed_server.url}{path}", timeout=10).status_code == 200
    assert httpx.get(f"{keyed_server.url}/api/health", timeout=10).status_code == 401
