"""Work pools and their work queues: store first, then the pool's Redis configuration."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from fastapi import APIRouter
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flowyard import schemas as s
from flowyard.errors import Conflict, QueueUnavailable
from flowyard.orchestrator import documents, events
from flowyard.orchestrator.lookups import get_pool, get_queue
from flowyard.orchestrator.runtime import Orch, Orchestrator
from flowyard.pools import QueueConfig
from flowyard.store import models as m

log = structlog.get_logger()

router = APIRouter(prefix="/api/work_pools", tags=["work pools"])
DEFAULT_QUEUE = "default"


@dataclass(frozen=True)
class PoolConfig:
    """A pool's queueing configuration, read inside a session and written to Redis after it."""

    name: str
    paused: bool
    concurrency_limit: int | None
    queues: list[QueueConfig]

    @classmethod
    def of(cls, pool: m.WorkPool) -> PoolConfig:
        queues = [
            QueueConfig(
                q.name,
                priority=q.priority,
                concurrency_limit=q.concurrency_limit,
                paused=q.paused,
                fair=q.fair,
            )
            for q in pool.queues
        ]
        return cls(pool.name, pool.paused, pool.concurrency_limit, queues)


async def sync_pool(orch: Orchestrator, config: PoolConfig) -> None:
    """Write the pool's whole configuration to Redis (limits, pause, queue priorities).

    Called once the change is committed: with Redis away the request still succeeds and
    the dispatcher's next rebuild writes it (a Redis error never half-applies a request)."""
    try:
        await orch.queues.sync_pool(
            config.name,
            paused=config.paused,
            concurrency_limit=config.concurrency_limit,
            queues=config.queues,
        )
    except QueueUnavailable:
        orch.rebuild_needed = True
        log.warning("queue_sync_deferred", pool=config.name)


def apply_update(row: m.WorkPool | m.WorkQueue, body: s.WorkPoolUpdate | s.WorkQueueUpdate) -> None:
    """Copy the fields a PATCH gave onto the row; ``clear_concurrency_limit`` removes the limit."""
    changes = body.model_dump(exclude_unset=True, exclude={"clear_concurrency_limit"})
    for field, value in changes.items():
        if value is not None:
            setattr(row, field, value)
    if body.clear_concurrency_limit:
        row.concurrency_limit = None


def pool_status(session: Session, pool: m.WorkPool, heartbeat_seconds: float) -> str:
    since = datetime.now(UTC) - timedelta(seconds=3 * heartbeat_seconds)
    online = session.scalar(
        select(func.count()).where(
            m.Worker.pool_id == pool.id,
            m.Worker.last_heartbeat >= since,
            m.Worker.online.is_(True),
        )
    )
    return "READY" if online else "NOT_READY"


def _pool_doc(orch: Orchestrator, session: Session, pool: m.WorkPool) -> s.WorkPool:
    status = pool_status(session, pool, orch.settings.worker_heartbeat_seconds)
    return documents.work_pool(pool, status=status)


@router.post("", status_code=201)
async def create_pool(body: s.WorkPoolCreate, orch: Orch) -> s.WorkPool:
    def create() -> tuple[PoolConfig, s.WorkPool]:
        with orch.db.session() as session:
            if session.scalars(select(m.WorkPool).where(m.WorkPool.name == body.name)).first():
                raise Conflict(f"work pool {body.name!r} already exists")
            pool = m.WorkPool(
                name=body.name,
                type=body.type,
                description=body.description,
                concurrency_limit=body.concurrency_limit,
                paused=body.paused,
                base_job_template=body.base_job_template or {},
            )
            pool.queues.append(m.WorkQueue(name=DEFAULT_QUEUE, priority=1))
            session.add(pool)
            session.flush()
            events.changed(session, "work-pool", pool, "created", {"type": pool.type})
            return PoolConfig.of(pool), _pool_doc(orch, session, pool)

    config, doc = await orch.in_thread(create)
    await sync_pool(orch, config)
    return doc


@router.get("")
async def list_pools(orch: Orch) -> list[s.WorkPool]:
    def read() -> list[s.WorkPool]:
        with orch.db.read() as session:
            pools = session.scalars(select(m.WorkPool).order_by(m.WorkPool.name)).all()
            return [_pool_doc(orch, session, pool) for pool in pools]

    return await orch.in_thread(read)


@router.get("/{name}")
async def read_pool(name: str, orch: Orch) -> s.WorkPool:
    def read() -> s.WorkPool:
        with orch.db.read() as session:
            return _pool_doc(orch, session, get_pool(session, name))

    return await orch.in_thread(read)


@router.patch("/{name}")
async def update_pool(name: str, body: s.WorkPoolUpdate, orch: Orch) -> s.WorkPool:
    def update() -> tuple[PoolConfig, s.WorkPool]:
        with orch.db.session() as session:
            pool = get_pool(session, name)
            before = pool.paused, pool.concurrency_limit
            apply_update(pool, body)
            events.pause_and_limit(session, "work-pool", pool, before)
            session.flush()
            return PoolConfig.of(pool), _pool_doc(orch, session, pool)

    config, doc = await orch.in_thread(update)
    await sync_pool(orch, config)
    return doc


@router.delete("/{name}", status_code=204)
async def delete_pool(name: str, orch: Orch) -> None:
    def delete() -> None:
        with orch.db.session() as session:
            pool = get_pool(session, name)
            queue_ids = [q.id for q in pool.queues]
            used = (
                session.scalar(select(func.count()).where(m.Deployment.queue_id.in_(queue_ids)))
                if queue_ids
                else 0
            )
            if used:
                raise Conflict(
                    f"work pool {name!r} still has {used} deployment(s); delete them first"
                )
            session.delete(pool)

    await orch.in_thread(delete)
    try:
        await orch.queues.delete_pool(name)
    except QueueUnavailable:  # committed: the dispatcher's rebuild deletes its keys later
        log.warning("pool_keys_left", pool=name)
        orch.rebuild_needed = True


def _in_pool(pool: m.WorkPool) -> events.Labels:
    return events.related("work-pool", "work-pool", pool.id, pool.name)


# -- work queues -----------------------------------------------------------------------------


async def _with_counts(orch: Orchestrator, doc: s.WorkQueue) -> s.WorkQueue:
    ready = await orch.queues.depth(doc.pool_name, doc.name)
    running = await orch.queues.running_count(doc.pool_name, doc.name)
    return doc.model_copy(update={"ready": ready, "running": running})


async def _written(orch: Orchestrator, doc: s.WorkQueue) -> s.WorkQueue:
    """The answer to a committed write: with its counts, or without them (0) while Redis
    is away, never an error over a change that was made."""
    try:
        return await _with_counts(orch, doc)
    except QueueUnavailable:
        return doc


@router.post("/{pool_name}/queues", status_code=201)
async def create_queue(pool_name: str, body: s.WorkQueueCreate, orch: Orch) -> s.WorkQueue:
    def create() -> tuple[PoolConfig, s.WorkQueue]:
        with orch.db.session() as session:
            pool = get_pool(session, pool_name)
            if any(q.name == body.name for q in pool.queues):
                raise Conflict(f"work queue {body.name!r} already exists in pool {pool_name!r}")
            queue = m.WorkQueue(**body.model_dump())
            pool.queues.append(queue)
            session.flush()
            events.changed(session, "work-queue", queue, "created", None, [_in_pool(pool)])
            return PoolConfig.of(pool), documents.work_queue(queue, pool_name=pool_name)

    config, doc = await orch.in_thread(create)
    await sync_pool(orch, config)
    return await _written(orch, doc)


@router.get("/{pool_name}/queues")
async def list_queues(pool_name: str, orch: Orch) -> list[s.WorkQueue]:
    def read() -> list[s.WorkQueue]:
        with orch.db.read() as session:
            pool = get_pool(session, pool_name)
            return [documents.work_queue(q, pool_name=pool_name) for q in pool.queues]

    return [await _with_counts(orch, doc) for doc in await orch.in_thread(read)]


@router.get("/{pool_name}/queues/{name}")
async def read_queue(pool_name: str, name: str, orch: Orch) -> s.WorkQueue:
    def read() -> s.WorkQueue:
        with orch.db.read() as session:
            queue = get_queue(session, get_pool(session, pool_name), name)
            return documents.work_queue(queue, pool_name=pool_name)

    return await _with_counts(orch, await orch.in_thread(read))


@router.patch("/{pool_name}/queues/{name}")
async def update_queue(
    orch: Orch,
    pool_name: str,
    name: str,
    body: s.WorkQueueUpdate,
) -> s.WorkQueue:
    def update() -> tuple[PoolConfig, s.WorkQueue]:
        with orch.db.session() as session:
            pool = get_pool(session, pool_name)
            queue = get_queue(session, pool, name)
            before = queue.paused, queue.concurrency_limit
            apply_update(queue, body)
            events.pause_and_limit(session, "work-queue", queue, before, [_in_pool(pool)])
            session.flush()
            return PoolConfig.of(pool), documents.work_queue(queue, pool_name=pool_name)

    config, doc = await orch.in_thread(update)
    await sync_pool(orch, config)
    return await _written(orch, doc)


@router.delete("/{pool_name}/queues/{name}", status_code=204)
async def delete_queue(pool_name: str, name: str, orch: Orch) -> None:
    def delete() -> None:
        with orch.db.session() as session:
            pool = get_pool(session, pool_name)
            queue = get_queue(session, pool, name)
            if name == DEFAULT_QUEUE:
                raise Conflict("the default queue of a pool cannot be deleted")
            used = session.scalar(select(func.count()).where(m.Deployment.queue_id == queue.id))
            if used:
                raise Conflict(f"work queue {name!r} still has {used} deployment(s)")
            pool.queues.remove(queue)

    await orch.in_thread(delete)
    try:
        await orch.queues.delete_queue(pool_name, name)
    except QueueUnavailable:  # committed: the next rebuild drops the queue from Redis
        orch.rebuild_needed = True
        log.warning("queue_sync_deferred", pool=pool_name, queue=name)
