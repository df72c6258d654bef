"""Expired pauses: a Paused run not resumed within its pause's timeout is Failed.

As Prefect's ``FailExpiredPauses``. A suspended run has no process that could notice its
timeout, so this is what ends it; it is Failed as soon as a pass sees the timeout passed.
A paused run's engine waits in its process and fails the run itself at the timeout
(``FlowPauseTimeout``); it is Failed here only once the timeout passed by a claim lease
(its engine died unnoticed, or cannot reach the API). Each run is read again, locked,
before it changes, so a resume that wins meanwhile is left alone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import select

from flowyard.orchestrator import pauses, queue_sync, runs
from flowyard.orchestrator.runtime import Orchestrator
from flowyard.states import SUSPENDED, StateType
from flowyard.store import Database
from flowyard.store import models as m

log = structlog.get_logger()

PAGE = 500  # Paused runs read at a time


def _expired(db: Database, now: datetime, engine_grace: timedelta) -> list[str]:
    """The Paused runs whose pause timed out (an in-process pause, by ``engine_grace``)."""
    expired: list[str] = []
    after = ""
    while True:
        query = (
            select(m.FlowRun.id, m.FlowRun.state_name, m.FlowRun.pauses)
            .where(m.FlowRun.state_type == StateType.PAUSED, m.FlowRun.id > after)
            .order_by(m.FlowRun.id)
            .limit(PAGE)
        )
        with db.read() as session:
            rows = session.execute(query).all()
        for run_id, name, record in rows:
            timeout = pauses.timeout_in(record)
            grace = timedelta(0) if name == SUSPENDED else engine_grace
            if timeout is not None and timeout + grace < now:
                expired.append(run_id)
        if len(rows) < PAGE:
            return expired
        after = rows[-1][0]


def fail_expired(db: Database, run_id: str, now: datetime) -> tuple[bool, runs.QueueEffect | None]:
    """Fail ``run_id`` if it is still Paused past its timeout: whether it was, and what
    Redis must do."""
    with db.session() as session:
        run = runs.get_run(session, run_id, for_update=True)
        if not pauses.timed_out(run, now):
            return False, None  # resumed or cancelled meanwhile
        return True, pauses.fail_timed_out(session, run, now)


async def pause_expirations_once(orch: Orchestrator, now: datetime | None = None) -> int:
    """One pass: Fail the runs whose pause expired; returns how many."""
    now = now or datetime.now(UTC)
    grace = timedelta(seconds=orch.settings.claim_lease_seconds)
    failed = 0
    for run_id in await orch.in_thread(_expired, orch.db, now, grace):
        changed, effect = await orch.in_thread(fail_expired, orch.db, run_id, now)
        await queue_sync.apply(orch, effect)
        if changed:
            log.info("pause_expired", run_id=run_id)
            failed += 1
    return failed
