"""The dispatcher: keeps the Redis queues in step with the store.

Runs are enqueued as they are created; this service rebuilds every pool's configuration
and ready queues from the store when the server starts, when Redis comes back empty
(restarted or flushed), and when a queue write was deferred during an outage. The store
is the truth, so a rebuild loses nothing, and ZADD NX makes it idempotent; the keys of a
pool deleted while Redis was away are deleted then. After Redis
lost its data, the claims of Pending and Running runs are restored as well, so that
concurrency limits still count them.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

import structlog
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from flowyard.orchestrator.api.pools import PoolConfig, sync_pool
from flowyard.orchestrator.runtime import Orchestrator
from flowyard.pools import Claim
from flowyard.states import StateType
from flowyard.store import models as m

log = structlog.get_logger()

HOLDING = (StateType.PENDING, StateType.RUNNING, StateType.PAUSED, StateType.CANCELLING)


@dataclass
class StoreView:
    """What the store says Redis should hold."""

    pools: list[PoolConfig]
    ready: dict[tuple[str, str], list[tuple[str, float]]] = field(default_factory=dict)
    held: dict[str, list[tuple[Claim, str]]] = field(default_factory=dict)
    run_deployments: dict[str, str] = field(default_factory=dict)
    run_priorities: dict[str, int] = field(default_factory=dict)
    deployment_limits: dict[str, dict[str, tuple[int, bool]]] = field(default_factory=dict)


def _read_store(orch: Orchestrator) -> StoreView:
    with orch.db.read() as session:
        pools = session.scalars(select(m.WorkPool).options(joinedload(m.WorkPool.queues))).unique()
        view = StoreView(
            [PoolConfig.of(pool) for pool in pools], defaultdict(list), defaultdict(list)
        )
        view.deployment_limits = {config.name: {} for config in view.pools}
        limited = session.execute(
            select(
                m.Deployment.id,
                m.Deployment.concurrency_limit,
                m.Deployment.collision_strategy,
                m.WorkPool.name,
            )
            .join(m.WorkQueue, m.Deployment.queue_id == m.WorkQueue.id)
            .join(m.WorkPool)
            .where(m.Deployment.concurrency_limit.is_not(None))
        ).all()
        for limited_id, limit, strategy, pool_name in limited:
            if limit is not None:
                cancel_new = strategy == "cancel-new"
                view.deployment_limits[pool_name][limited_id] = (limit, cancel_new)
        rows = session.execute(
            select(
                m.FlowRun.id,
                m.FlowRun.state_type,
                m.FlowRun.scheduled_time,
                m.FlowRun.claim_token,
                m.FlowRun.worker_name,
                m.FlowRun.deployment_id,
                m.FlowRun.priority,
                m.WorkQueue.name,
                m.WorkPool.name,
            )
            .join(m.WorkQueue, m.FlowRun.queue_id == m.WorkQueue.id)
            .join(m.WorkPool)
            .where(m.FlowRun.state_type.in_([StateType.SCHEDULED, *HOLDING]))
        ).all()
    for run_id, state, scheduled_time, token, worker, dep_id, priority, queue, pool in rows:
        if state is StateType.SCHEDULED and not token:  # with a token: a retry in-process
            view.ready[(pool, queue)].append((run_id, scheduled_time.timestamp()))
            if dep_id:
                view.run_deployments[run_id] = dep_id
            if priority:
                view.run_priorities[run_id] = priority
        elif token:
            view.held[pool].append((Claim(run_id, queue, token, dep_id), worker or "?"))
    return view


async def rebuild(orch: Orchestrator, *, redis_lost_data: bool) -> int:
    """Write every pool's configuration and every Scheduled run into Redis; returns runs added.

    When Redis lost its data, the claims of runs already Pending or Running are restored
    too, so that their slots count against the limits again.
    """
    view = await orch.in_thread(_read_store, orch)
    for config in view.pools:
        await sync_pool(orch, config)
        await orch.deployment_limits.replace(config.name, view.deployment_limits[config.name])
    await _delete_stale_pools(orch, {config.name for config in view.pools})
    # held claims first: a waiting run queued before them could be claimed past a limit
    restored = 0
    if redis_lost_data:
        expiry = time.time() + orch.settings.claim_lease_seconds
        for pool, held in view.held.items():
            await orch.queues.restore_claims(pool, held, expiry)
            restored += len(held)
    added = 0
    for (pool, queue), entries in view.ready.items():
        added += await orch.queues.enqueue_many(
            pool, queue, entries, view.run_deployments, view.run_priorities
        )
    # Workers and engines could not heartbeat while this API (or Redis) was away: every
    # held run gets one lease period to be heard from before the reconciler judges it.
    until = time.time() + orch.settings.claim_lease_seconds
    for config in view.pools:
        await orch.queues.extend_all_leases(config.name, until)
    await orch.queues.mark_built()
    if not orch.leases_trusted:
        orch.trusted_at = time.time()
    orch.leases_trusted = True
    log.info("queues_rebuilt", pools=len(view.pools), added=added, claims_restored=restored)
    return added


async def _delete_stale_pools(orch: Orchestrator, in_store: set[str]) -> None:
    """Delete the keys of pools deleted from the store while Redis was away; a pool made
    since the store was read (by another replica) is looked up again and kept."""
    for pool in sorted(await orch.queues.pools_with_keys() - in_store):
        if not await orch.in_thread(_pool_exists, orch, pool):
            await orch.queues.delete_pool(pool)
            log.info("stale_pool_keys_deleted", pool=pool)


def _pool_exists(orch: Orchestrator, name: str) -> bool:
    with orch.db.read() as session:
        return session.scalar(select(m.WorkPool.id).where(m.WorkPool.name == name)) is not None


async def dispatch_once(orch: Orchestrator) -> int:
    """Rebuild when Redis lost its state or a write was deferred; else do nothing."""
    lost = not await orch.queues.is_built()
    if orch.rebuild_needed or lost:
        orch.rebuild_needed = False
        try:
            return await rebuild(orch, redis_lost_data=lost)
        except Exception:
            orch.rebuild_needed = True
            raise
    return 0
