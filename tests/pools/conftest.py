"""Fixtures for the pools tests: run an async body against a fresh Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from flowyard.pools import PoolQueues, connect

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
