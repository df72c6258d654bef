"""A pool deleted while Redis is away leaves no keys behind: once Redis is back with its
data, the dispatcher's rebuild deletes them, and keeps the keys of the pools that live."""

from __future__ import annotations

import redis

from flowyard import schemas as s
from flowyard.pools import keys
from flowyard.workers.process import ProcessWorker
from tests.helpers.redis_outage import server_on_own_redis
from tests.waiting import wait_until


def test_keys_of_a_pool_deleted_during_an_outage_are_deleted_after_it(tmp_path):
    """The delete answers success while Redis is down; afterwards the pool's config,
    queue and registry entry are gone from Redis, the surviving pool's are not."""
    template = ProcessWorker.default_base_job_template()
    with (
        server_on_own_redis(tmp_path) as (server, own_redis, _workers),
        server.client(retry_seconds=0) as api,
    ):
        for name in ("doomed", "kept"):
            api.create_work_pool(
                s.WorkPoolCreate(name=name, type="process", base_job_template=template)
            )
        client = redis.Redis.from_url(own_redis.current.url, decode_responses=True)
        try:
            assert client.exists(keys.config("doomed"), keys.config("kept")) == 2
            assert client.smembers(keys.POOLS) >= {"doomed", "kept"}
        finally:
            client.close()
        own_redis.stop_keeping_data()
        api.delete_work_pool("doomed")
        own_redis.start_again()
        client = redis.Redis.from_url(own_redis.current.url, decode_responses=True)
        try:
            assert client.exists(keys.config("doomed"))  # the snapshot still had them

            def doomed_remains() -> bool:  # its keys go first, then its registry entry
                keys_left = list(client.scan_iter(match="fy:{doomed}:*"))
                return bool(keys_left) or "doomed" in client.smembers(keys.POOLS)

            wait_until(lambda: not doomed_remains(), timeout=60, message="doomed remains")
            assert not list(client.scan_iter(match="fy:{doomed}:*"))
            assert "doomed" not in client.smembers(keys.POOLS)
            assert client.exists(keys.config("kept")) and "kept" in client.smembers(keys.POOLS)
        finally:
            client.close()
        assert [pool.name for pool in api.list_work_pools()] == ["kept"]
