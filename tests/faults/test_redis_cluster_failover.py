"""A primary of a real Redis Cluster (3 primaries + 3 replicas) dies mid-load: its replica
takes over, the server follows, and nothing is lost, nothing runs twice, no slot leaks."""

from __future__ import annotations

import asyncio
from pathlib import Path

from flowyard import schemas as s
from flowyard.cli.processes import WorkerProcess
from flowyard.pools import connect, keys
from flowyard.workers.process import ProcessWorker
from tests.e2e.conftest import FAST, deploy_flow
from tests.helpers.redis_cluster import LocalCluster, pools_on_every_node
from tests.helpers.runs import state_of
from tests.servers import running_server
from tests.waiting import wait_until

RUNS = 6


def _slots_held(url: str, pool: str) -> int:
    async def count() -> int:
        client = connect(url)
        try:
            return int(await client.zcard(keys.pool_slots(pool)))
        finally:
            await client.aclose()

    return asyncio.run(count())


def _primary(cluster: LocalCluster, pool: str) -> int:
    return cluster.node_of(f"{{{pool}}}")


def test_a_primary_killed_mid_load_loses_and_repeats_no_run(tmp_path: Path, flows_dir: Path):
    """Runs of a pool on the killed primary all complete once each; its slots end free."""
    cluster = LocalCluster(tmp_path / "cluster", primaries=3, replicas=1)
    markers = tmp_path / "markers"
    markers.mkdir()
    seed = cluster.nodes[0].port
    try:
        pool = next(
            p for p in pools_on_every_node(cluster, "f") if cluster.node_of(f"{{{p}}}") != seed
        )
        doomed = next(n for n in cluster.nodes if n.port == cluster.node_of(f"{{{pool}}}"))
        env = {**FAST, "FLOWYARD_REDIS_URL": cluster.url}
        with running_server(tmp_path / "home", env) as server, server.client() as api:
            template = ProcessWorker.default_base_job_template()
            api.create_work_pool(
                s.WorkPoolCreate(
                    name=pool, type="process", base_job_template=template, concurrency_limit=2
                )
            )
            dep = deploy_flow(api, pool, flows_dir, "marker")
            body = s.DeploymentRunRequest(parameters={"folder": str(markers)})
            runs = [api.run_deployment(dep.id, body).id for _ in range(RUNS)]
            worker = WorkerProcess(server.url, pool, tmp_path, env=FAST)
            try:
                wait_until(lambda: len(list(markers.iterdir())) >= 2, timeout=60)
                doomed.kill()  # mid-load: runs done, running and waiting
                wait_until(
                    lambda: _primary(cluster, pool) != doomed.port,
                    timeout=30,
                    message="no replica took over the killed primary's slots",
                )
                for run_id in runs:
                    wait_until(
                        lambda run_id=run_id: state_of(api, run_id) == "COMPLETED",
                        timeout=90,
                        message=f"run {run_id} did not complete after the failover",
                    )
            finally:
                worker.stop(timeout=30)
            wait_until(lambda: _slots_held(cluster.url, pool) == 0, message="slots still held")
    finally:
        cluster.stop()
    assert {p.name: p.read_text() for p in markers.iterdir()} == dict.fromkeys(runs, "ran\n")
