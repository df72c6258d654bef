"""A real server on a Sentinel-watched primary (1 primary, 1 replica, 3 Sentinels): the
primary dies with a write the replica never got; the client follows the failover, the
queues are rebuilt from the store, and every run runs exactly once."""

from __future__ import annotations

from pathlib import Path

from flowyard import schemas as s
from flowyard.cli.processes import WorkerProcess
from flowyard.pools import keys
from tests.e2e.conftest import FAST, create_process_pool, deploy_flow
from tests.helpers.redis_cluster import LocalSentinel
from tests.helpers.runs import completed
from tests.servers import running_server
from tests.waiting import wait_until

POOL = "sentinel-pool"


def test_a_failover_that_lost_a_write_loses_no_run(tmp_path: Path, flows_dir: Path) -> None:
    """Run A completes before the failover; run B, queued on the primary but missing on the
    replica, completes after it (the rebuild queued it again); each ran once."""
    sentinel = LocalSentinel(tmp_path / "sentinel")
    markers = tmp_path / "markers"
    markers.mkdir()
    env = {**FAST, "FLOWYARD_REDIS_URL": sentinel.url}
    try:
        with running_server(tmp_path / "home", env) as server, server.client() as api:
            create_process_pool(api, POOL)
            dep = deploy_flow(api, POOL, flows_dir, "marker")
            body = s.DeploymentRunRequest(parameters={"folder": str(markers)})
            first = api.run_deployment(dep.id, body).id
            worker = WorkerProcess(server.url, POOL, tmp_path, env=FAST)
            try:
                completed(api, first)
            finally:
                worker.stop(timeout=30)

            second = api.run_deployment(dep.id, body).id
            ready = keys.ready(POOL, "default")
            wait_until(lambda: sentinel.replica.client.zscore(ready, second) is not None)
            # the write the replica never got: its own copy loses it, then it takes over
            sentinel.replica.client.config_set("replica-read-only", "no")
            sentinel.replica.client.zrem(ready, second)
            sentinel.primary.kill()
            wait_until(
                lambda: sentinel.primary_port() == sentinel.replica.port,
                timeout=30,
                message="the Sentinels did not promote the replica",
            )
            worker = WorkerProcess(server.url, POOL, tmp_path, env=FAST)
            try:
                completed(api, second)
            finally:
                worker.stop(timeout=30)
            log = server.tail(100_000)
    finally:
        sentinel.stop()
    assert {p.name: p.read_text() for p in markers.iterdir()} == {
        first: "ran\n",
        second: "ran\n",
    }
    assert "redis_servers_changed" in log and "queues_rebuilt" in log
