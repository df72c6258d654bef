"""The retention service: events older than the retention period are deleted, in batches.

Led (one replica runs it); each batch is its own short transaction, so a large backlog
never holds the store's writer for long, and a pass stops after ``MAX_BATCHES`` to let
other work in (the next pass continues).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog

from flowyard.orchestrator import event_queries
from flowyard.orchestrator.runtime import Orchestrator
from flowyard.store import Database

log = structlog.get_logger()

BATCH = 5000
MAX_BATCHES = 200


def delete_expired(
    db: Database, now: datetime, retention_seconds: float, *, batch: int = BATCH
) -> int:
    """Delete events that occurred more than ``retention_seconds`` before ``now``."""
    before = now - timedelta(seconds=retention_seconds)
    deleted = 0
    for _ in range(MAX_BATCHES):
        with db.session() as session:
            done = event_queries.delete_older(session, before, batch)
        deleted += done
        if done < batch:
            break
    if deleted:
        log.info("events_expired", deleted=deleted, before=before.isoformat())
    return deleted


async def event_retention_once(orch: Orchestrator) -> int:
    """One pass of the retention service; returns how many events it deleted."""
    retention = orch.settings.events_retention_seconds
    return await orch.in_thread(delete_expired, orch.db, datetime.now(UTC), retention)
