"""Runs in and out of a pool's queues: enqueue, remove, the atomic claim, release."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from flowyard.errors import Conflict
from flowyard.pools import keys
from flowyard.pools.models import ClaimResult, claim_result, text
from flowyard.pools.scripts import (
    PoolScripts,
    boundary,
    deployment_keys,
    pool_keys,
    queue_keys,
    run_keys,
)

ENQUEUE_BATCH = 1000


class PoolRuns(PoolScripts):
    """Waiting runs added and removed, due runs claimed, claimed runs released."""

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

    @boundary
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
                    keys=[keys.ready(pool, queue), *run_keys(pool)],
                    args=[keys.wake_channel(pool), len(batch), len(owners) // 2, *scored]
                    + [*owners, *ranked],
                )
            )
        return added

    @boundary
    async def remove(self, pool: str, queue: str, run_id: str) -> bool:
        """Take a waiting run out of its queue (e.g. cancelled before a claim)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(keys.ready(pool, queue), run_id)
            for key in run_keys(pool):
                pipe.hdel(key, run_id)
            removed, *_ = await pipe.execute()
        return bool(removed)

    @boundary
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
        idempotency_key: str | None = None,
        recall: bool = False,
    ) -> ClaimResult:
        """Atomically take up to ``max_runs`` due runs, highest-priority queue first.

        With an ``idempotency_key``, the runs taken and their tokens are kept under it for
        the lease; with ``recall`` too, a key that holds runs already answers them
        (``ClaimResult.replayed``) and nothing is taken.
        """
        for attempt in range(2):
            layout = await self._layout(pool, reload=attempt > 0)
            walked = [q for q in layout.queues if queues is None or q in queues]
            reply = await self._scripts["claim"](
                keys=[
                    *pool_keys(pool),
                    *deployment_keys(pool),
                    keys.run_priorities(pool),
                    keys.claim_answer(pool, idempotency_key or ""),
                    *queue_keys(pool, walked),
                ],
                args=[
                    layout.version,
                    repr(now + prefetch_seconds),
                    max_runs,
                    repr(now + lease_seconds),
                    worker,
                    uuid.uuid4().hex,
                    _ms(lease_seconds) if idempotency_key else "",
                    "1" if idempotency_key and recall else "",
                    *(
                        a
                        for q in walked
                        for a in (q, *(keys.queue_field(q, a) for a in ("paused", "limit", "fair")))
                    ),
                ],
            )
            values = [text(v) for v in reply]
            if values[0] != "stale":
                return claim_result(values)
        return ClaimResult([], None)

    @boundary
    async def release(self, pool: str, run_id: str) -> bool:
        """Free the run's slots, lease and claim; False if it held nothing."""
        for attempt in range(2):
            layout = await self._layout(pool, reload=attempt > 0)
            released = await self._scripts["release"](
                keys=[
                    *pool_keys(pool),
                    keys.deployment_slots(pool),
                    *(keys.queue_slots(pool, q) for q in layout.queues),
                ],
                args=[layout.version, run_id, keys.wake_channel(pool), *layout.queues],
            )
            if int(released) >= 0:
                return bool(int(released))
        raise Conflict(f"Pool {pool!r} layout kept changing while releasing {run_id}")


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _pairs(run_ids: list[str], values: Mapping[str, Any]) -> list[Any]:
    """``run, value`` pairs, flattened, of the runs that have a value."""
    return [item for run_id in run_ids if run_id in values for item in (run_id, values[run_id])]
