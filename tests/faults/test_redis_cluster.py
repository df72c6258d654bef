"""A real server on a real 3-primary Redis Cluster: pools whose slots are on different
nodes take runs from deployment to Completed through a worker, with no MOVED error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess, WorkerProcess
from tests.e2e.conftest import FAST, create_process_pool, deploy_flow
from tests.helpers.redis_cluster import LocalCluster, pools_on_every_node
from tests.helpers.runs import completed
from tests.servers import running_server


@pytest.fixture
def cluster_server(tmp_path: Path, redis_cluster: LocalCluster) -> Iterator[ServerProcess]:
    redis_cluster.flush()
    env = {**FAST, "FLOWYARD_REDIS_URL": redis_cluster.url}
    with running_server(tmp_path / "home", env) as server:
        yield server


def test_runs_of_pools_on_every_node_complete(
    cluster_server: ServerProcess, redis_cluster: LocalCluster, flows_dir: Path, tmp_path: Path
) -> None:
    """Create, deploy, run, claim and complete in a pool on each primary; the server's
    log shows no MOVED or CROSSSLOT error (a plain client would get them every time)."""
    pools = pools_on_every_node(redis_cluster, "cluster-pool")
    workers: list[WorkerProcess] = []
    with cluster_server.client() as api:
        try:
            runs = []
            for pool in pools:
                create_process_pool(api, pool)
                deployment = deploy_flow(api, pool, flows_dir, "noop")
                runs.append(api.run_deployment(deployment.id, s.DeploymentRunRequest()).id)
                workers.append(WorkerProcess(cluster_server.url, pool, tmp_path, env=FAST))
            for run_id in runs:
                completed(api, run_id)
        finally:
            for worker in workers:
                worker.stop(timeout=30)
    log = cluster_server.tail(100_000)
    assert "MOVED" not in log and "MovedError" not in log and "CROSSSLOT" not in log
