"""A Redis error never half-applies a request: with Redis down, creating a pool, a queue,
a deployment and a run answers success, and the rebuild carries it all to Redis later."""

from __future__ import annotations

import redis

from flowyard import schemas as s
from flowyard.cli.processes import WorkerProcess
from flowyard.pools import keys
from flowyard.states import StateType
from flowyard.workers.process import ProcessWorker
from tests.e2e.conftest import FAST, deploy_flow
from tests.helpers.redis_outage import server_on_own_redis
from tests.waiting import wait_until


def test_writes_made_while_redis_is_down_succeed_and_reach_redis_later(tmp_path, flows_dir):
    """Every write answers success (not a 503 or 500 over a committed row), tag concurrency
    limits set and deleted too; once Redis is back (empty) the pool's limit and queue reach
    it and the run completes."""
    with (
        server_on_own_redis(tmp_path) as (server, own_redis, workers),
        server.client(retry_seconds=0) as api,
    ):
        api.set_concurrency_limit("gone-in-outage", 3)
        own_redis.stop()
        assert api.set_concurrency_limit("made-in-outage", 2).active_slots == 0
        api.delete_concurrency_limit("gone-in-outage")
        template = ProcessWorker.default_base_job_template()
        api.create_work_pool(
            s.WorkPoolCreate(
                name="made-in-outage",
                type="process",
                base_job_template=template,
                concurrency_limit=2,
            )
        )
        api.create_work_queue("made-in-outage", s.WorkQueueCreate(name="urgent", priority=1))
        dep = deploy_flow(api, "made-in-outage", flows_dir, "noop", queue_name="urgent")
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        assert run.state.type is StateType.SCHEDULED

        own_redis.start_empty()
        workers.append(WorkerProcess(server.url, "made-in-outage", tmp_path, env=FAST))
        wait_until(
            lambda: api.read_flow_run(run.id).state.type is StateType.COMPLETED,
            timeout=120,
            message="the run made during the outage did not complete",
        )
        client = redis.Redis.from_url(own_redis.current.url, decode_responses=True)
        try:
            config = client.hgetall(keys.config("made-in-outage"))
        finally:
            client.close()
        assert config["limit"] == "2" and config["q:urgent:priority"] == "1"
        assert [limit.tag for limit in api.list_concurrency_limits()] == ["made-in-outage"]
