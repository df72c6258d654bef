"""Background task runs in Redis: one ready queue per task, leased claims, wake-ups.

The store is the truth; these keys are an index of it (``keys.py`` has the layout). A
run is queued once it is committed Scheduled; a task worker's claim takes due runs of
its tasks atomically (``task_claim.lua``) and leases them; heartbeats extend the leases
of the runs a worker still holds (``task_extend.lua``); a final state ends the claim
(``task_release.lua``). Claims are checked by token everywhere, so a worker whose claim
was taken back can neither extend nor end the newer one.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from flowyard.pools import keys
from flowyard.pools.models import text
from flowyard.pools.redis_server import Client, translated
from flowyard.pools.scripts import register_scripts

SCRIPTS = ("task_claim", "task_extend", "task_release")
CLAIM_KEYS = [keys.TASK_LEASES, keys.TASK_CLAIMS]


@dataclass(frozen=True)
class TaskClaim:
    """A background run held by a task worker: its token, and the task it is a run of."""

    run_id: str
    token: str
    task_key: str


class TaskQueue:
    """The Redis side of background task runs: one instance per process is enough."""

    def __init__(self, redis: Client) -> None:
        self._redis = redis
        self._scripts = register_scripts(redis, SCRIPTS)

    async def enqueue(self, task_key: str, run_ids: list[str], now: float) -> None:
        """Queue Scheduled runs (idempotent, ``ZADD NX``) and wake the task's claimers."""
        if not run_ids:
            return
        with translated(self._redis):
            await self._redis.zadd(keys.task_ready(task_key), dict.fromkeys(run_ids, now), nx=True)
            # a second call, not a pipeline: a Redis Cluster client pipelines no PUBLISH
            await self._redis.publish(keys.wake_channel(keys.task_wake_name(task_key)), "1")

    async def unqueue(self, task_key: str, run_id: str) -> None:
        """Drop a run from its task's ready queue (it is no longer Scheduled)."""
        with translated(self._redis):
            await self._redis.zrem(keys.task_ready(task_key), run_id)

    async def claim(
        self, task_keys: list[str], worker: str, max_runs: int, now: float, lease_until: float
    ) -> list[TaskClaim]:
        """Take up to ``max_runs`` due runs of these tasks (in this order), leased until then."""
        tokens = [secrets.token_urlsafe(16) for _ in range(max_runs)]
        with translated(self._redis):
            reply = await self._scripts["task_claim"](
                keys=[*CLAIM_KEYS, *(keys.task_ready(k) for k in task_keys)],
                args=[repr(now), repr(lease_until), worker, *task_keys, *tokens],
            )
        values = [text(v) for v in reply]
        return [TaskClaim(*values[i : i + 3]) for i in range(0, len(values), 3)]

    async def extend(self, held: list[tuple[str, str]], until: float) -> list[str]:
        """Extend the leases of (run, token) pairs still held; returns those runs."""
        if not held:
            return []
        args = [repr(until), *(part for pair in held for part in pair)]
        with translated(self._redis):
            reply = await self._scripts["task_extend"](keys=CLAIM_KEYS, args=args)
        return [text(v) for v in reply]

    async def release(self, run_id: str, token: str) -> bool:
        """End the claim ``token`` holds on the run; False when it holds it no more."""
        with translated(self._redis):
            ended = await self._scripts["task_release"](keys=CLAIM_KEYS, args=[run_id, token])
        return bool(int(ended))

    async def expired(self, now: float) -> list[TaskClaim]:
        """The claims whose lease expired at or before ``now``."""
        with translated(self._redis):
            run_ids = [text(r) for r in await self._redis.zrangebyscore(keys.TASK_LEASES, 0, now)]
            if not run_ids:
                return []
            records = await self._redis.hmget(keys.TASK_CLAIMS, run_ids)
        claims = []
        for run_id, record in zip(run_ids, records, strict=True):
            if record is not None:
                data = json.loads(text(record))
                claims.append(TaskClaim(run_id, data["token"], data["key"]))
        return claims

    async def restore(self, held: list[TaskClaim], worker: dict[str, str], until: float) -> None:
        """Record claims the store knows of but Redis lost, leased afresh until ``until``."""
        if not held:
            return
        with translated(self._redis):
            async with self._redis.pipeline(transaction=True) as pipe:
                for claim in held:
                    pipe.zadd(keys.TASK_LEASES, {claim.run_id: until}, nx=True)
                    record = {
                        "token": claim.token,
                        "key": claim.task_key,
                        "worker": worker.get(claim.run_id, ""),
                    }
                    pipe.hsetnx(keys.TASK_CLAIMS, claim.run_id, json.dumps(record))
                await pipe.execute()
