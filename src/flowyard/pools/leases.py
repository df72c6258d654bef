"""Claim leases: extended by worker heartbeats, restored after Redis lost them, found expired,
and the claim records that go with them."""

from __future__ import annotations

from flowyard.errors import Conflict
from flowyard.pools import keys
from flowyard.pools.models import Claim, claim_from_record, claim_record, text
from flowyard.pools.scripts import PoolScripts, boundary, pool_keys


class PoolLeases(PoolScripts):
    """The leases and records of the claims a pool's runs are held by."""

    @boundary
    async def extend_leases(self, pool: str, run_ids: list[str], until: float) -> list[str]:
        """Move the leases of the runs still held to ``until``; returns those runs."""
        if not run_ids:
            return []
        for attempt in range(2):
            layout = await self._layout(pool, reload=attempt > 0)
            reply = await self._scripts["extend"](
                keys=[*pool_keys(pool), *(keys.queue_slots(pool, q) for q in layout.queues)],
                args=[layout.version, repr(until), len(layout.queues), *layout.queues, *run_ids],
            )
            values = [text(v) for v in reply]
            if values[0] == "ok":
                return values[1:]
        raise Conflict(f"Pool {pool!r} layout kept changing while extending leases")

    @boundary
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
                if claim.deployment:
                    member = f"{claim.deployment}:{claim.run_id}"
                    pipe.zadd(keys.deployment_slots(pool), {member: 0})
                pipe.zadd(keys.pool_slots(pool), {claim.run_id: lease_expiry})
                pipe.zadd(keys.queue_slots(pool, claim.queue), {claim.run_id: lease_expiry})
                pipe.zadd(keys.leases(pool), {claim.run_id: lease_expiry})
                pipe.hset(keys.claims(pool), claim.run_id, claim_record(claim, worker))
            await pipe.execute()

    @boundary
    async def extend_all_leases(self, pool: str, until: float) -> int:
        """Give every held run of the pool a lease until at least ``until``; how many."""
        held = [text(r) for r in await self._redis.zrangebyscore(keys.leases(pool), "-inf", until)]
        return len(await self.extend_leases(pool, held, until)) if held else 0

    @boundary
    async def expired_leases(self, pool: str, now: float) -> list[Claim]:
        """The claims whose lease expired at or before ``now``."""
        expired = await self._redis.zrangebyscore(keys.leases(pool), "-inf", now)
        run_ids = [text(r) for r in expired]
        if not run_ids:
            return []
        records = await self._redis.hmget(keys.claims(pool), run_ids)
        return [
            claim_from_record(run_id, record)
            for run_id, record in zip(run_ids, records, strict=True)
            if record is not None
        ]
