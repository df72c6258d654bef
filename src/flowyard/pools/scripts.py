"""What every part of :class:`~flowyard.pools.queue.PoolQueues` shares: the Lua scripts,
the key lists they take, the cached pool layouts and the Redis error boundary.

Each atomic operation is one Lua script next to this module. A pool's *layout* (its
queue names in priority order, with the config ``version`` it was read at) is cached
per instance, so a claim is one round trip; a script that sees another version answers
"stale", the layout is re-read and the call retried once.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from functools import wraps
from importlib import resources
from typing import Any, Concatenate, ParamSpec, TypeVar

from redis.commands.core import AsyncScript

from flowyard.pools import keys
from flowyard.pools.models import Layout, layout_from_config, text
from flowyard.pools.redis_server import Client, translated

P = ParamSpec("P")
T = TypeVar("T")
SCRIPTS = ("claim", "release", "extend", "enqueue", "sync_pool")


def register_scripts(redis: Client, names: Iterable[str]) -> dict[str, AsyncScript]:
    """The Lua scripts ``<name>.lua`` next to this module, registered with ``redis``."""
    folder = resources.files("flowyard.pools")
    return {
        name: redis.register_script(folder.joinpath(f"{name}.lua").read_text()) for name in names
    }


class PoolScripts:
    """The Redis client, its registered scripts and the layouts read so far."""

    def __init__(self, redis: Client) -> None:
        self._redis = redis
        self._layouts: dict[str, Layout] = {}
        self._scripts = register_scripts(redis, SCRIPTS)
        self._built_on: frozenset[str] | None = None  # the servers of the last rebuild
        self._serving: frozenset[str] | None = None  # the servers seen last

    async def _layout(self, pool: str, *, reload: bool = False) -> Layout:
        if reload or pool not in self._layouts:
            await self._load_layout(pool)
        return self._layouts[pool]

    async def _load_layout(self, pool: str) -> Layout:
        raw = await self._redis.hgetall(keys.config(pool))
        layout = layout_from_config({text(k): text(v) for k, v in raw.items()})
        self._layouts[pool] = layout
        return layout


S = TypeVar("S", bound=PoolScripts)


def boundary(
    method: Callable[Concatenate[S, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """Run ``method`` with Redis connection failures translated to QueueUnavailable."""

    @wraps(method)
    async def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        with translated(self._redis):
            return await method(self, *args, **kwargs)

    return wrapper


def pool_keys(pool: str) -> list[str]:
    """The pool-level keys, in the order every script expects them."""
    return [keys.config(pool), keys.pool_slots(pool), keys.leases(pool), keys.claims(pool)]


def deployment_keys(pool: str) -> list[str]:
    """The keys of deployment concurrency limits, in the order the claim script expects."""
    return [keys.run_deployments(pool), keys.deployment_slots(pool), keys.deployment_limits(pool)]


def run_keys(pool: str) -> list[str]:
    """The hashes of per-run attributes of waiting runs: deployment, then priority."""
    return [keys.run_deployments(pool), keys.run_priorities(pool)]


def queue_keys(pool: str, queues: Iterable[str]) -> list[str]:
    """Ready, slots and ranks keys of each queue, interleaved as the claim script expects."""
    return [
        k
        for q in queues
        for k in (keys.ready(pool, q), keys.queue_slots(pool, q), keys.ranks(pool, q))
    ]
