"""Pools on a real 3-primary Redis Cluster: each pool's scripts on its own node, the keys
that belong to no pool, wake-ups across nodes and the queue of background task runs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from redis.asyncio.cluster import RedisCluster

from flowyard.errors import InvalidInput, QueueUnavailable
from flowyard.pools import Leadership, PoolQueues, QueueConfig, Wakeups, connect, keys
from flowyard.pools.redis_server import describe
from flowyard.pools.task_queue import TaskQueue
from flowyard.pools.topology import parse
from tests.helpers.redis_cluster import LocalCluster, pools_on_every_node

NOW = 1_700_000_000.0


def _on_cluster(cluster: LocalCluster, body: Callable[..., Awaitable[None]]) -> None:
    cluster.flush()

    async def main() -> None:
        client, listener = connect(cluster.url), connect(cluster.url)
        assert isinstance(client, RedisCluster)
        wakeups = Wakeups(listener)
        await wakeups.start()
        try:
            await body(client, wakeups)
        finally:
            await wakeups.stop()
            await client.aclose()
            await listener.aclose()

    asyncio.run(main())


def test_pools_on_every_node_enqueue_claim_and_release(redis_cluster: LocalCluster) -> None:
    """Each pool's configure, enqueue, claim (kept under its idempotency key and answered
    again), extend and release run on the node of its slot."""
    pools = pools_on_every_node(redis_cluster, "spread")
    assert len({redis_cluster.node_of(f"{{{p}}}") for p in pools}) == 3

    async def body(client: RedisCluster, _: Wakeups) -> None:
        queues = PoolQueues(client)
        for pool in pools:
            config = [QueueConfig("high", priority=1), QueueConfig("low", priority=2)]
            await queues.sync_pool(pool, paused=False, concurrency_limit=1, queues=config)
            await queues.enqueue(pool, "low", f"{pool}-low", NOW - 2)
            await queues.enqueue(pool, "high", f"{pool}-high", NOW - 1)
        for pool in pools:
            result = await queues.claim(pool, worker="w", max_runs=5, now=NOW, lease_seconds=30)
            assert [c.run_id for c in result.claims] == [f"{pool}-high"]  # the limit is 1
            assert await queues.extend_leases(pool, [f"{pool}-high"], NOW + 60) == [f"{pool}-high"]
            await queues.release(pool, f"{pool}-high")
            result = await queues.claim(
                pool, worker="w", max_runs=5, now=NOW, lease_seconds=30, idempotency_key="k"
            )
            assert [c.run_id for c in result.claims] == [f"{pool}-low"]
            again = await queues.claim(
                pool, worker="w", max_runs=5, now=NOW, lease_seconds=30,
                idempotency_key="k", recall=True,
            )  # fmt: skip
            assert again.replayed == [(f"{pool}-low", result.claims[0].token)]

    _on_cluster(redis_cluster, body)


def test_keys_of_no_pool_work_wherever_their_slot_is(redis_cluster: LocalCluster) -> None:
    """The rebuilt mark and the services' lease each live in a slot of their own tag."""
    assert redis_cluster.node_of(keys.BUILT) != redis_cluster.node_of(keys.LEADER)

    async def body(client: RedisCluster, _: Wakeups) -> None:
        queues = PoolQueues(client)
        assert not await queues.is_built()
        await queues.mark_built()
        assert await queues.is_built()
        first, second = Leadership(client, 30), Leadership(client, 30)
        assert await first.held() and not await second.held()
        await first.resign()
        assert await second.held()

    _on_cluster(redis_cluster, body)


def test_a_wake_reaches_a_listener_on_another_node(redis_cluster: LocalCluster) -> None:
    """Enqueueing into a pool on each primary wakes the one listener, wherever it listens."""
    pools = pools_on_every_node(redis_cluster, "wake")

    async def body(client: RedisCluster, wakeups: Wakeups) -> None:
        queues = PoolQueues(client)
        for pool in pools:
            await queues.sync_pool(
                pool, paused=False, concurrency_limit=None, queues=[QueueConfig("default")]
            )
        for pool in pools:
            mark = wakeups.mark(pool)
            await queues.enqueue(pool, "default", f"{pool}-run", NOW)
            assert await wakeups.wait(pool, 10, since=mark), f"no wake for {pool}"

    _on_cluster(redis_cluster, body)


def test_background_task_runs_are_queued_claimed_and_woken(redis_cluster: LocalCluster) -> None:
    """The background-task queue's keys share one slot; its wake crosses nodes too."""

    async def body(client: RedisCluster, wakeups: Wakeups) -> None:
        tasks = TaskQueue(client)
        mark = wakeups.mark(keys.task_wake_name("a"))
        await tasks.enqueue("a", ["a1"], NOW)
        await tasks.enqueue("b", ["b1"], NOW)
        assert await wakeups.wait(keys.task_wake_name("a"), 10, since=mark)
        claimed = await tasks.claim(["a", "b"], "w", 5, NOW, NOW + 30)
        assert sorted(c.run_id for c in claimed) == ["a1", "b1"]

    _on_cluster(redis_cluster, body)


class TestRedisUrls:
    """What FLOWYARD_REDIS_URL names (no Redis needed)."""

    def test_a_cluster_url_seeds_a_cluster_client(self) -> None:
        """redis+cluster:// names a cluster, reached with a plain redis:// seed URL."""
        where = parse("redis+cluster://:pw@10.0.0.1:7000/0")
        assert (where.kind, where.url) == ("cluster", "redis://:pw@10.0.0.1:7000/0")
        assert parse("rediss+cluster://h:1").url == "rediss://h:1"

    def test_a_sentinel_url_names_sentinels_service_and_database(self) -> None:
        """redis+sentinel:// lists the Sentinels, then the service and the database."""
        where = parse("redis+sentinel://:secret@s1:26379,s2,[::1]:26380/mymaster/2")
        assert where.kind == "sentinel"
        assert where.sentinels == (("s1", 26379), ("s2", 26379), ("::1", 26380))
        assert (where.service, where.db, where.password) == ("mymaster", 2, "secret")

    def test_a_sentinel_url_without_a_service_is_refused(self) -> None:
        """A Sentinel URL must name the service whose primary it follows."""
        with pytest.raises(InvalidInput, match="service"):
            parse("redis+sentinel://s1:26379")

    def test_a_sentinel_url_with_a_bad_port_db_or_too_many_hosts_is_refused(self) -> None:
        """Hostile URLs get the same one-line answer, never a bare ValueError."""
        many = ",".join(["h:1"] * 17)
        for url in (
            "redis+sentinel://h:port/svc",
            "redis+sentinel://h:1/svc/db",
            f"redis+sentinel://{many}/svc",
        ):
            with pytest.raises(InvalidInput, match="numeric port"):
                parse(url)

    def test_errors_say_which_redis_without_its_password(self) -> None:
        """A Sentinel client is described by its service, a cluster client by its seed."""
        sentinel = connect("redis+sentinel://:pw@127.0.0.1:1,127.0.0.1:2/orders/0")
        cluster = connect("redis+cluster://:pw@127.0.0.1:7000/0")
        assert describe(sentinel) == "the primary of Sentinel service 'orders'"
        assert describe(cluster) == "Redis Cluster 127.0.0.1:7000"

    def test_other_urls_are_one_server(self) -> None:
        """redis://, rediss:// and unix:// stay single-server URLs, untouched."""
        for url in ("redis://h:1/0", "rediss://h:1", "unix:///tmp/r.sock"):
            assert parse(url) == parse(url).__class__("single", url)


def test_a_one_server_url_to_a_cluster_node_says_what_to_use(redis_cluster: LocalCluster) -> None:
    """A pool on another node than the one a plain redis:// URL names is QueueUnavailable
    (503, never a 500 after the store was written) naming the redis+cluster:// scheme."""
    seed = redis_cluster.nodes[0].port
    pool = next(
        p
        for p in pools_on_every_node(redis_cluster, "moved")
        if redis_cluster.node_of(f"{{{p}}}") != seed
    )

    async def body() -> None:
        plain = connect(f"redis://127.0.0.1:{seed}/0")
        try:
            with pytest.raises(QueueUnavailable, match=r"redis\+cluster://"):
                await PoolQueues(plain).sync_pool(
                    pool, paused=False, concurrency_limit=None, queues=[QueueConfig("default")]
                )
        finally:
            await plain.aclose()

    asyncio.run(body())
