"""Deployment concurrency limits, as the claim script reads them (``keys``: ``dlimits``).

A limit is "N" (a run of a full deployment waits) or "N:cancel" (it is handed back to be
cancelled: the cancel-new collision strategy). The claim script counts a deployment's
held slots, members "deployment:run" of ``dslots``, by prefix; release frees them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowyard.pools import keys
from flowyard.pools.redis_server import Client, translated


def _value(limit: int, cancel_new: bool) -> str:
    if limit < 0:
        raise ValueError("a concurrency limit cannot be negative")
    return f"{limit}:cancel" if cancel_new else str(limit)


class DeploymentLimits:
    """Writes the deployment limits of each pool; one instance per process is enough."""

    def __init__(self, redis: Client) -> None:
        self._redis = redis

    async def set(
        self, pool: str, deployment_id: str, limit: int | None, *, cancel_new: bool = False
    ) -> None:
        """Limit how many runs of a deployment hold slots at once (None = unlimited).

        Applies at the next claim; wakes the pool's claimers.
        """
        with translated(self._redis):
            async with self._redis.pipeline(transaction=True) as pipe:
                if limit is None:
                    pipe.hdel(keys.deployment_limits(pool), deployment_id)
                else:
                    value = _value(limit, cancel_new)
                    pipe.hset(keys.deployment_limits(pool), deployment_id, value)
                await pipe.execute()
            await self._redis.publish(keys.wake_channel(pool), "config")  # not pipelined: Cluster

    async def replace(self, pool: str, limits: Mapping[str, tuple[int, bool]]) -> None:
        """Replace every deployment limit of the pool: deployment → (limit, cancel_new)."""
        with translated(self._redis):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(keys.deployment_limits(pool))
                if limits:
                    values: dict[Any, Any] = {
                        dep: _value(n, cancel) for dep, (n, cancel) in limits.items()
                    }
                    pipe.hset(keys.deployment_limits(pool), mapping=values)
                await pipe.execute()
            await self._redis.publish(keys.wake_channel(pool), "config")  # not pipelined: Cluster

    async def running(self, pool: str, deployment_id: str) -> int:
        """How many runs of the deployment hold its slots."""
        low, high = f"[{deployment_id}:", f"[{deployment_id};"
        with translated(self._redis):
            return int(await self._redis.zlexcount(keys.deployment_slots(pool), low, high))
