"""Finding stored objects by name, id or reference; unknown ones raise ``NotFound``."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from flowyard.errors import NotFound
from flowyard.store import models as m


def get_pool(session: Session, name: str) -> m.WorkPool:
    pool = session.scalars(select(m.WorkPool).where(m.WorkPool.name == name)).first()
    if pool is None:
        raise NotFound(f"work pool {name!r} not found")
    return pool


def get_queue(session: Session, pool: m.WorkPool, name: str) -> m.WorkQueue:
    for queue in pool.queues:
        if queue.name == name:
            return queue
    raise NotFound(f"work queue {name!r} not found in pool {pool.name!r}")


def get_flow(session: Session, name: str, *, create: bool = False) -> m.Flow:
    flow = session.scalars(select(m.Flow).where(m.Flow.name == name)).first()
    if flow is None and create:
        flow = m.Flow(name=name)
        session.add(flow)
        session.flush()
    if flow is None:
        raise NotFound(f"flow {name!r} not found")
    return flow


def get_deployment(session: Session, ref: str) -> m.Deployment:
    """A deployment by id or by ``flow name/deployment name``."""
    query = select(m.Deployment).options(
        joinedload(m.Deployment.flow), joinedload(m.Deployment.queue).joinedload(m.WorkQueue.pool)
    )
    found = session.scalars(query.where(m.Deployment.id == ref)).first()
    if found is None and "/" in ref:
        flow_name, name = ref.rsplit("/", 1)
        found = session.scalars(
            query.join(m.Flow).where(m.Flow.name == flow_name, m.Deployment.name == name)
        ).first()
    if found is None:
        raise NotFound(f"deployment {ref!r} not found")
    return found
