"""Fixtures of the orchestrator's tests: a server that requires API keys (one per test
module that uses it) and two scheduled runs on it, for run-token and authority tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess
from flowyard.client import FlowyardClient
from tests.e2e.conftest import FAST, create_process_pool
from tests.helpers.locked_server import ADMIN
from tests.servers import running_server


@pytest.fixture(scope="module")
def locked_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {**FAST, "FLOWYARD_API_KEY": ADMIN}
    with running_server(tmp_path_factory.mktemp("locked"), env) as server:
        yield server


@pytest.fixture(scope="module")
def two_runs(locked_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory):
    """Two scheduled runs of one deployment in the pool ``tokens``, and its deployment id."""
    with FlowyardClient(locked_server.url, ADMIN) as admin:
        create_process_pool(admin, "tokens")
        dep = admin.create_deployment(
            s.DeploymentCreate(
                name="d", flow_name="token-flow", entrypoint="flows.py:f", pool_name="tokens"
            )
        )
        mine = admin.run_deployment(dep.id, s.DeploymentRunRequest()).id
        other = admin.run_deployment(dep.id, s.DeploymentRunRequest()).id
    return mine, other, dep.id
