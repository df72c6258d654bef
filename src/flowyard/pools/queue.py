"""Work pools and their queues in Redis: enqueue, atomic claim, leases and slots.

The key layout is in :mod:`flowyard.pools.keys`; each atomic operation is one Lua
script next to this module. A pool's *layout* (its queue names in priority order,
with the config ``version`` it was read at) is cached per :class:`PoolQueues`, so a
claim is one round trip; a script that sees another version answers "stale", the
layout is re-read and the call retried once.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import wraps
from importlib import resources
from typing import Any, Concatenate, ParamSpec, TypeVar

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from flowyard.errors import Conflict
from flowyard.pools import keys
from flowyard.pools.redis_server import translated

P = ParamSpec("P")
T = TypeVar("T")
ENQUEUE_BATCH = 1000
COLLIDED = "!"  # the claim script's token for a run to cancel (deployment limit, cancel-new)


@dataclass(frozen=True)
class QueueConfig:
    """One queue of a pool, as the orchestrator configures it."""

    name: str
    priority: int = 1
    concurrency_limit: int | None = None
    paused: bool = False
    fair: bool = False  # deployments take turns instead of first-come first-served


@dataclass(frozen=True)
class Claim:
    """A run taken by a worker; ``token`` identifies this claim of the run."""

    run_id: str
    queue: str
    token: str
    deployment: str | None = None


@dataclass(frozen=True)
class ClaimResult:
    """The runs claimed, and when the earliest not-yet-due run becomes due (epoch seconds).

    ``collided`` are runs taken out of their queue because their deployment was at its
    concurrency limit with the cancel-new strategy: the caller cancels them.
    """

    claims: list[Claim]
    next_due: float | None
    collided: list[str] = dataclasses.field(default_factory=list)


@dataclass(frozen=True)
class Layout:
    """A pool's queue names in claim order, as of config ``version``."""

    version: str
    queues: tuple[str, ...]


def layout_from_config(config: Mapping[str, str]) -> Layout:
    """Order a pool's queues by priority (lower first), then by name."""
    priorities: dict[str, int] = {}
    for field, value in config.items():
        parsed = keys.parse_queue_field(field)
        if parsed and parsed[1] == "priority":
            priorities[parsed[0]] = int(value)
    ordered = sorted(priorities, key=lambda name: (priorities[name], name))
    return Layout(config.get(keys.VERSION, ""), tuple(ordered))


def queue_fields(queue: QueueConfig) -> dict[str, str]:
    """The config-hash fields of one queue (an absent limit means unlimited)."""
    fields = {
        keys.queue_field(queue.name, "priority"): str(queue.priority),
        keys.queue_field(queue.name, "paused"): "1" if queue.paused else "0",
        keys.queue_field(queue.name, "fair"): "1" if queue.fair else "0",
    }
    if queue.concurrency_limit is not None:
        fields[keys.queue_field(queue.name, "limit")] = str(_limit(queue.concurrency_limit))
    return fields


def _boundary(
    method: Callable[Concatenate[PoolQueues, P], Awaitable[T]],
) -> Callable[Concatenate[PoolQueues, P], Awaitable[T]]:
    @wraps(method)
    async def wrapper(self: PoolQueues, *args: P.args, **kwargs: P.kwargs) -> T:
        with translated(self._redis):
            return await method(self, *args, **kwargs)

    return wrapper


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _limit(value: int) -> int:
    if value < 0:
        raise ValueError("a concurrency limit cannot be negative")
    return value


def _new_version() -> str:
    return uuid.uuid4().hex[:12]


class PoolQueues:
    """The Redis side of every work pool: one instance per process is enough."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._layouts: dict[str, Layout] = {}
        self._scripts: dict[str, AsyncScript] = {}
        for name in ("claim", "release", "extend", "enqueue", "sync_pool"):
            source = resources.files("flowyard.pools").joinpath(f"{name}.lua").read_text()
            self._scripts[name] = redis.register_script(source)

    # -- configuration -------------------------------------------------------------

    @_boundary
    async def sync_pool(
        self, pool: str, *, paused: bool, concurrency_limit: int | None, queues: list[QueueConfig]
    ) -> None:
        """Replace the pool's whole configuration; queues not listed are dropped."""
        fields: dict[str, str] = {keys.PAUSED: "1" if paused else "0"}
        if concurrency_limit is not None:
            fields[keys.LIMIT] = str(_limit(concurrency_limit))
        for queue in queues:
            fields.update(queue_fields(queue))
        args = [item for pair in fields.items() for item in pair]
        wanted = {queue.name for queue in queues}
        for _ in range(10):  # retried only while another writer changes the pool meanwhile
            current = await self._load_layout(pool)
            gone = [q for q in current.queues if q not in wanted]
            written = await self._scripts["sync_pool"](
                keys=[keys.config(pool), *_queue_keys(pool, gone)],
                args=[current.version, _new_version(), keys.wake_channel(pool), *args],
            )
            if written:
                return
        raise Conflict(f"Pool {pool!r} changed concurrently too often to sync it")

    @_boundary
    async def set_pool_paused(self, pool: str, paused: bool) -> None:
        """Pause or resume claiming from the whole pool."""
        await self._write_config(pool, {keys.PAUSED: "1" if paused else "0"})

    @_boundary
    async def set_pool_limit(self, pool: str, limit: int | None) -> None:
        """Set the pool's concurrency limit (None = unlimited)."""
        if limit is None:
            await self._write_config(pool, {}, drop=[keys.LIMIT])
        else:
            await self._write_config(pool, {keys.LIMIT: str(_limit(limit))})

    @_boundary
    async def upsert_queue(self, pool: str, queue: QueueConfig) -> None:
        """Create or update one queue of the pool."""
        fields = queue_fields(queue)
        fields[keys.VERSION] = _new_version()
        unlimited = queue.concurrency_limit is None
        await self._write_config(
            pool, fields, drop=[keys.queue_field(queue.name, "limit")] if unlimited else []
        )

    @_boundary
    async def delete_queue(self, pool: str, queue: str) -> None:
        """Remove a queue and its waiting runs; its held runs keep pool slots until released."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(keys.config(pool), *(keys.queue_field(queue, a) for a in keys.QUEUE_ATTRS))
            pipe.hset(keys.config(pool), keys.VERSION, _new_version())
            pipe.delete(*_queue_keys(pool, [queue]))
            await pipe.execute()

    @_boundary
    async def delete_pool(self, pool: str) -> None:
        """Remove every key of the pool."""
        layout = await self._load_layout(pool)
        await self._redis.delete(
            *_pool_keys(pool),
            *_deployment_keys(pool),
            keys.run_priorities(pool),
            *_queue_keys(pool, layout.queues),
        )
        self._layouts.pop(pool, None)

    async def _write_config(
        self, pool: str, fields: Mapping[Any, str], drop: list[str] | None = None
    ) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            if fields:
                pipe.hset(keys.config(pool), mapping=fields)
            if drop:
                pipe.hdel(keys.config(pool), *drop)
            pipe.publish(keys.wake_channel(pool), "config")
            await pipe.execute()

    # -- runs --------------------------------------------------------------------

    async def enqueue(
        self,
        pool: str,
        queue: str,
        run_id: str,
        scheduled_ts: float,
        deployment_id: str | None = None,
        priority: int = 0,
    ) -> bool:
        """Add a run unless it is already waiting (ZADD NX); True if newly added."""
        deployments = {run_id: deployment_id} if deployment_id else None
        priorities = {run_id: priority} if priority else None
        runs = [(run_id, scheduled_ts)]
        return await self.enqueue_many(pool, queue, runs, deployments, priorities) == 1

    @_boundary
    async def enqueue_many(
        self,
        pool: str,
        queue: str,
        runs: list[tuple[str, float]],
        deployments: Mapping[str, str] | None = None,
        priorities: Mapping[str, int] | None = None,
    ) -> int:
        """Add many runs; returns how many were new.

        ``deployments`` maps run ids to their deployment (for deployment concurrency limits
        and fair queues); ``priorities`` maps run ids to their priority within the queue,
        lower first (absent: 0).
        """
        added = 0
        deployments = deployments or {}
        priorities = priorities or {}
        for start in range(0, len(runs), ENQUEUE_BATCH):
            batch = [run_id for run_id, _ in runs[start : start + ENQUEUE_BATCH]]
            scored = [
                item for run_id, ts in runs[start : start + ENQUEUE_BATCH] for item in (ts, run_id)
            ]
            owners = _pairs(batch, deployments)
            ranked = _pairs(batch, {r: p for r, p in priorities.items() if p})
            added += int(
                await self._scripts["enqueue"](
                    keys=[keys.ready(pool, queue), *_run_keys(pool)],
                    args=[keys.wake_channel(pool), len(batch), len(owners) // 2, *scored]
                    + [*owners, *ranked],
                )
            )
        return added

    @_boundary
    async def remove(self, pool: str, queue: str, run_id: str) -> bool:
        """Take a waiting run out of its queue (e.g. cancelled before a claim)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(keys.ready(pool, queue), run_id)
            for key in _run_keys(pool):
                pipe.hdel(key, run_id)
            removed, *_ = await pipe.execute()
        return bool(removed)

    @_boundary
    async def claim(
        self,
        pool: str,
        *,
        worker: str,
        max_runs: int,
        now: float,
        lease_seconds: float,
        prefetch_seconds: float = 0.0,
        queues: list[str] | None = None,
    ) -> ClaimResult:
        """Atomically take up to ``max_runs`` due runs, highest-priority queue first."""
        for attempt in range(2):
            layout = await self._layout(pool, reload=attempt > 0)
            walked = [q for q in layout.queues if queues is None or q in queues]
            reply = await self._scripts["claim"](
                keys=[
                    *_pool_keys(pool),
                    *_deployment_keys(pool),
                    keys.run_priorities(pool),
                    *_queue_keys(pool, walked),
                ],
                args=[
                    layout.version,
                    repr(now + prefetch_seconds),
                    max_runs,
                    repr(now + lease_seconds),
                    worker,
                    uuid.uuid4().hex,
                    *(
                        a
                        for q in walked
                        for a in (q, *(keys.queue_field(q, a) for a in ("paused", "limit", "fair")))
                    ),
                ],
            )
            values = [_text(v) for v in reply]
            if values[0] != "stale":
                return _claim_result(values)
        return ClaimResult([], None)

    @_boundary
    async def release(self, pool: str, run_id: str) -> bool:
        """Free the run's slots, lease and claim; False if it held nothing."""
        for attempt in range(2):
            layout = await self._layout(pool, reload=attempt > 0)
            released = await self._scripts["release"](
                keys=[
                    *_pool_keys(pool),
                    keys.deployment_slots(pool),
                    *(keys.queue_slots(pool, q) for q in layout.queues),
                ],
                args=[layout.version, run_id, keys.wake_channel(pool), *layout.queues],
            )
            if int(released) >= 0:
                return bool(int(released))
        raise Conflict(f"Pool {pool!r} layout kept changing while releasing {run_id}")

    @_boundary
    async def extend_leases(self, pool: str, run_ids: list[str], until: float) -> list[str]:
        """Move the leases of the runs still held to ``until``; returns those runs."""
        if not run_ids:
            return []
        for attempt in range(2):
            layout = await self._layout(pool, reload=attempt > 0)
            reply = await self._scripts["extend"](
                keys=[*_pool_keys(pool), *(keys.queue_slots(pool, q) for q in layout.queues)],
                args=[layout.version, repr(until), len(layout.queues), *layout.queues, *run_ids],
            )
            values = [_text(v) for v in reply]
            if values[0] == "ok":
                return values[1:]
        raise Conflict(f"Pool {pool!r} layout kept changing while extending leases")

    @_boundary
    async def restore_claims(
        self, pool: str, held: list[tuple[Claim, str]], lease_expiry: float
    ) -> None:
        """Record claims the store knows of but Redis lost (a restart): slots, leases, records.

        ``held`` pairs each claim with its worker's name. Their leases start afresh at
        ``lease_expiry``: a live worker extends them with its next heartbeat, a dead one
        lets them expire and the reconciler settles its runs.
        """
        if not held:
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            for claim, worker in held:
                record = json.dumps(
                    {
                        "queue": claim.queue,
                        "token": claim.token,
                        "worker": worker,
                        "deployment": claim.deployment or "",
                    }
                )
                if claim.deployment:
                    member = f"{claim.deployment}:{claim.run_id}"
                    pipe.zadd(keys.deployment_slots(pool), {member: 0})
                pipe.zadd(keys.pool_slots(pool), {claim.run_id: lease_expiry})
                pipe.zadd(keys.queue_slots(pool, claim.queue), {claim.run_id: lease_expiry})
                pipe.zadd(keys.leases(pool), {claim.run_id: lease_expiry})
                pipe.hset(keys.claims(pool), claim.run_id, record)
            await pipe.execute()

    @_boundary
    async def extend_all_leases(self, pool: str, until: float) -> int:
        """Give every held run of the pool a lease until at least ``until``; how many."""
        held = [_text(r) for r in await self._redis.zrangebyscore(keys.leases(pool), "-inf", until)]
        return len(await self.extend_leases(pool, held, until)) if held else 0

    @_boundary
    async def expired_leases(self, pool: str, now: float) -> list[Claim]:
        """The claims whose lease expired at or before ``now``."""
        expired = await self._redis.zrangebyscore(keys.leases(pool), "-inf", now)
        run_ids = [_text(r) for r in expired]
        if not run_ids:
            return []
        records = await self._redis.hmget(keys.claims(pool), run_ids)
        return [
            _claim_from_record(run_id, record)
            for run_id, record in zip(run_ids, records, strict=True)
            if record is not None
        ]

    @_boundary
    async def held_claim(self, pool: str, run_id: str) -> Claim | None:
        """The claim currently holding a run, if any."""
        record = await self._redis.hget(keys.claims(pool), run_id)
        return None if record is None else _claim_from_record(run_id, record)

    @_boundary
    async def depth(self, pool: str, queue: str) -> int:
        """How many runs wait in a queue (due or not)."""
        return int(await self._redis.zcard(keys.ready(pool, queue)))

    @_boundary
    async def running_count(self, pool: str, queue: str | None = None) -> int:
        """How many slots are held in the pool, or in one of its queues."""
        key = keys.pool_slots(pool) if queue is None else keys.queue_slots(pool, queue)
        return int(await self._redis.zcard(key))

    @_boundary
    async def mark_built(self) -> None:
        """Record that the queues were rebuilt from the store."""
        await self._redis.set(keys.BUILT, "1")

    @_boundary
    async def is_built(self) -> bool:
        """False when Redis lost its data since the last rebuild (restarted or flushed)."""
        return bool(await self._redis.exists(keys.BUILT))

    @_boundary
    async def ping(self) -> None:
        """Check that Redis answers; raises QueueUnavailable otherwise."""
        await self._redis.ping()

    # -- layout cache ------------------------------------------------------------

    async def _layout(self, pool: str, *, reload: bool = False) -> Layout:
        if reload or pool not in self._layouts:
            await self._load_layout(pool)
        return self._layouts[pool]

    async def _load_layout(self, pool: str) -> Layout:
        raw = await self._redis.hgetall(keys.config(pool))
        layout = layout_from_config({_text(k): _text(v) for k, v in raw.items()})
        self._layouts[pool] = layout
        return layout


def _pool_keys(pool: str) -> list[str]:
    """The pool-level keys, in the order every script expects them."""
    return [keys.config(pool), keys.pool_slots(pool), keys.leases(pool), keys.claims(pool)]


def _deployment_keys(pool: str) -> list[str]:
    """The keys of deployment concurrency limits, in the order the claim script expects."""
    return [keys.run_deployments(pool), keys.deployment_slots(pool), keys.deployment_limits(pool)]


def _run_keys(pool: str) -> list[str]:
    """The hashes of per-run attributes of waiting runs: deployment, then priority."""
    return [keys.run_deployments(pool), keys.run_priorities(pool)]


def _queue_keys(pool: str, queues: Iterable[str]) -> list[str]:
    """Ready, slots and ranks keys of each queue, interleaved as the claim script expects."""
    return [
        k
        for q in queues
        for k in (keys.ready(pool, q), keys.queue_slots(pool, q), keys.ranks(pool, q))
    ]


def _pairs(run_ids: list[str], values: Mapping[str, Any]) -> list[Any]:
    """``run, value`` pairs, flattened, of the runs that have a value."""
    return [item for run_id in run_ids if run_id in values for item in (run_id, values[run_id])]


def _claim_result(values: list[str]) -> ClaimResult:
    """Parse the claim script's ``['ok', next_due, run, queue, token, ...]`` reply."""
    body = values[2:]
    triples = [body[i : i + 3] for i in range(0, len(body), 3)]
    claims = [Claim(*triple) for triple in triples if triple[2] != COLLIDED]
    collided = [run_id for run_id, _, token in triples if token == COLLIDED]
    return ClaimResult(claims, float(values[1]) if values[1] else None, collided)


def _claim_from_record(run_id: str, record: Any) -> Claim:
    data = json.loads(_text(record))
    deployment = data.get("deployment") or None
    return Claim(run_id=run_id, queue=data["queue"], token=data["token"], deployment=deployment)
