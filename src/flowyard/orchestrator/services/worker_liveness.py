"""Workers whose heartbeats stopped are marked offline, each with its event.

A worker is online from its first heartbeat (``api/workers.py``) until it has been silent
for ``SILENT_BEATS`` heartbeat intervals; the flag moves by compare-and-set, so two
replicas never record one worker going offline twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from flowyard.orchestrator import events
from flowyard.orchestrator.runtime import Orchestrator
from flowyard.store import Database
from flowyard.store import models as m

SILENT_BEATS = 3


def mark_offline(db: Database, now: datetime, heartbeat_seconds: float) -> int:
    """Mark silent workers offline; returns how many."""
    cutoff = now - timedelta(seconds=SILENT_BEATS * heartbeat_seconds)
    with db.session() as session:
        silent = update(m.Worker).where(m.Worker.online.is_(True), m.Worker.last_heartbeat < cutoff)
        ids = list(session.scalars(silent.values(online=False).returning(m.Worker.id)))
        if not ids:
            return 0
        query = select(m.Worker, m.WorkPool).join(m.WorkPool).where(m.Worker.id.in_(ids))
        for worker, pool in session.execute(query):
            events.worker_status(session, worker, pool, "offline")
        return len(ids)


async def worker_liveness_once(orch: Orchestrator) -> int:
    beat = orch.settings.worker_heartbeat_seconds
    return await orch.in_thread(mark_offline, orch.db, datetime.now(UTC), beat)
