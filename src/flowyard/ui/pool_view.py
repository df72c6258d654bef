"""What the work-pool pages show, read from the store in a few bounded queries.

Counts come from the store, not Redis, so that a page and its live updates (rendered in a
worker thread from a store session) agree: "waiting" is the Scheduled runs of a queue
(counted up to ``COUNT_CAP``, by the ``(queue_id, state_type)`` index) and "running" the
runs a worker holds a slot for (Pending, Running, Cancelling), grouped per queue and per
deployment.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flowyard import schemas as s
from flowyard.orchestrator import documents
from flowyard.orchestrator.lookups import get_pool
from flowyard.states import StateType
from flowyard.store import models as m

COUNT_CAP = 10_000  # a longer backlog shows as "10000+" (no count over millions of runs)
SHOWN = 200  # workers and late runs listed on a pool's page at most
IN_FLIGHT = (StateType.PENDING, StateType.RUNNING, StateType.CANCELLING)
LATE = "Late"


@dataclass
class QueueRow:
    id: str
    name: str
    priority: int
    concurrency_limit: int | None
    paused: bool
    fair: bool
    waiting: int
    running: int
    oldest: s.FlowRun | None  # the waiting run due the longest

    @property
    def waiting_text(self) -> str:
        return f"{COUNT_CAP}+" if self.waiting > COUNT_CAP else str(self.waiting)


@dataclass
class PoolRow:
    name: str
    type: str
    paused: bool
    concurrency_limit: int | None
    status: str  # READY, NOT_READY or PAUSED
    running: int
    workers_online: int
    queues: int


@dataclass
class DeploymentRow:
    id: str
    name: str
    flow_name: str
    queue_name: str
    concurrency_limit: int | None
    collision_strategy: str
    running: int


@dataclass
class PoolView:
    pool: PoolRow
    description: str | None
    queues: list[QueueRow] = field(default_factory=list)
    deployments: list[DeploymentRow] = field(default_factory=list)
    workers: list[s.Worker] = field(default_factory=list)
    late: list[s.FlowRun] = field(default_factory=list)


def _since(heartbeat_seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=3 * heartbeat_seconds)


def _status(paused: bool, online: int) -> str:
    return "PAUSED" if paused else ("READY" if online else "NOT_READY")


def read_pools(session: Session, heartbeat_seconds: float) -> list[PoolRow]:
    """Every pool with its status, slots in use and queues: four grouped queries."""
    pools = session.scalars(select(m.WorkPool).order_by(m.WorkPool.name)).all()
    online = dict(
        session.execute(
            select(m.Worker.pool_id, func.count())
            .where(m.Worker.last_heartbeat >= _since(heartbeat_seconds), m.Worker.online.is_(True))
            .group_by(m.Worker.pool_id)
        ).all()
    )
    running = dict(
        session.execute(
            select(m.WorkQueue.pool_id, func.count())
            .join(m.FlowRun, m.FlowRun.queue_id == m.WorkQueue.id)
            .where(m.FlowRun.state_type.in_(IN_FLIGHT))
            .group_by(m.WorkQueue.pool_id)
        ).all()
    )
    queues = dict(
        session.execute(
            select(m.WorkQueue.pool_id, func.count()).group_by(m.WorkQueue.pool_id)
        ).all()
    )
    return [_row(p, online.get(p.id, 0), running.get(p.id, 0), queues.get(p.id, 0)) for p in pools]


def _row(pool: m.WorkPool, online: int, running: int, queues: int) -> PoolRow:
    return PoolRow(
        name=pool.name,
        type=pool.type,
        paused=pool.paused,
        concurrency_limit=pool.concurrency_limit,
        status=_status(pool.paused, online),
        running=running,
        workers_online=online,
        queues=queues,
    )


def _workers(session: Session, pool_id: str) -> Sequence[m.Worker]:
    return session.scalars(
        select(m.Worker).where(m.Worker.pool_id == pool_id).order_by(m.Worker.name).limit(SHOWN)
    ).all()


def read_workers(session: Session, name: str, heartbeat_seconds: float) -> list[s.Worker]:
    """A pool's workers as its page lists them: status from the last heartbeat, now (404:
    NotFound)."""
    pool = get_pool(session, name)
    now = datetime.now(UTC)
    return [
        documents.worker(w, now=now, heartbeat_seconds=heartbeat_seconds)
        for w in _workers(session, pool.id)
    ]


def read_pool(session: Session, name: str, heartbeat_seconds: float) -> PoolView:
    """One pool: its queues in claim order, its deployments, workers and late runs (404:
    NotFound)."""
    pool = get_pool(session, name)
    queue_ids = [q.id for q in pool.queues]
    in_flight = session.execute(
        select(m.FlowRun.queue_id, m.FlowRun.deployment_id, func.count())
        .where(m.FlowRun.queue_id.in_(queue_ids), m.FlowRun.state_type.in_(IN_FLIGHT))
        .group_by(m.FlowRun.queue_id, m.FlowRun.deployment_id)
    ).all()
    running: Counter[str | None] = Counter()
    by_deployment: Counter[str | None] = Counter()
    for queue_id, deployment_id, count in in_flight:
        running[queue_id] += count
        by_deployment[deployment_id] += count
    now = datetime.now(UTC)
    rows = [
        QueueRow(
            id=q.id,
            name=q.name,
            priority=q.priority,
            concurrency_limit=q.concurrency_limit,
            paused=q.paused,
            fair=q.fair,
            waiting=_waiting(session, q.id),
            running=running.get(q.id, 0),
            oldest=_oldest(session, q.id, now),
        )
        for q in sorted(pool.queues, key=lambda q: (q.priority, q.name))  # the claim's order
    ]
    workers = _workers(session, pool.id)
    beat = heartbeat_seconds
    online = sum(1 for w in workers if w.online and w.last_heartbeat >= _since(beat))
    late = session.scalars(
        select(m.FlowRun)
        .where(
            m.FlowRun.queue_id.in_(queue_ids),
            m.FlowRun.state_type == StateType.SCHEDULED,
            m.FlowRun.state_name == LATE,
        )
        .order_by(m.FlowRun.scheduled_time)
        .limit(SHOWN)
    ).all()
    return PoolView(
        pool=_row(pool, online, sum(running.values()), len(rows)),
        description=pool.description,
        queues=rows,
        deployments=_deployments(session, queue_ids, by_deployment),
        workers=[documents.worker(w, now=now, heartbeat_seconds=beat) for w in workers],
        late=[documents.flow_run(r) for r in late],
    )


def _deployments(
    session: Session, queue_ids: list[str], running: Counter[str | None]
) -> list[DeploymentRow]:
    """The first ``SHOWN`` deployments of the pool's queues, by flow and name."""
    found = session.execute(
        select(m.Deployment, m.Flow.name, m.WorkQueue.name)
        .join(m.Flow, m.Deployment.flow_id == m.Flow.id)
        .join(m.WorkQueue, m.Deployment.queue_id == m.WorkQueue.id)
        .where(m.Deployment.queue_id.in_(queue_ids))
        .order_by(m.Flow.name, m.Deployment.name)
        .limit(SHOWN)
    ).all()
    return [
        DeploymentRow(
            id=dep.id,
            name=dep.name,
            flow_name=flow_name,
            queue_name=queue_name,
            concurrency_limit=dep.concurrency_limit,
            collision_strategy=dep.collision_strategy,
            running=running.get(dep.id, 0),
        )
        for dep, flow_name, queue_name in found
    ]


def _waiting(session: Session, queue_id: str) -> int:
    capped = (
        select(m.FlowRun.id)
        .where(m.FlowRun.queue_id == queue_id, m.FlowRun.state_type == StateType.SCHEDULED)
        .limit(COUNT_CAP + 1)
        .subquery()
    )
    return int(session.scalar(select(func.count()).select_from(capped)) or 0)


def _oldest(session: Session, queue_id: str, now: datetime) -> s.FlowRun | None:
    run = session.scalars(
        select(m.FlowRun)
        .where(
            m.FlowRun.queue_id == queue_id,
            m.FlowRun.state_type == StateType.SCHEDULED,
            m.FlowRun.scheduled_time <= now,
        )
        .order_by(m.FlowRun.scheduled_time)
        .limit(1)
    ).first()
    return documents.flow_run(run) if run is not None else None
