"""Fixtures for the pools tests: run an async body against a fresh Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator

import pytest

from flowyard.pools import PoolQueues, connect
from tests.helpers.redis_cluster import LocalCluster, running_cluster

Body = Callable[[PoolQueues], Awaitable[None]]


@pytest.fixture
def run_pools(redis_url: str) -> Callable[[Body], None]:
    """Run ``body(PoolQueues)`` in a fresh event loop against the flushed test Redis."""

    def run(body: Body) -> None:
        async def main() -> None:
            client = connect(redis_url)
            try:
                await body(PoolQueues(client))
            finally:
                await client.aclose()

        asyncio.run(main())

    return run


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A real Redis Cluster of three primaries on loopback, for the session."""
    with running_cluster(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster
