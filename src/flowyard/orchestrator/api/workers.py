"""Claims and worker heartbeats: the worker-facing half of the API."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import cast

import structlog
from fastapi import APIRouter
from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from flowyard import schemas as s
from flowyard.orchestrator import documents, runs
from flowyard.orchestrator.api.pools import get_pool
from flowyard.orchestrator.runtime import Orch, Orchestrator
from flowyard.pools import Claim
from flowyard.states import StateType
from flowyard.store import models as m

router = APIRouter(prefix="/api", tags=["workers"])
log = structlog.get_logger()


@router.post("/work_pools/{pool_name}/claim")
async def claim(pool_name: str, body: s.ClaimRequest, orch: Orch) -> s.ClaimResponse:
    """Claim up to ``max_runs`` due runs, waiting up to ``wait`` seconds for one to appear."""
    deadline = time.monotonic() + body.wait
    checked_pool = False
    while True:
        mark = orch.wakeups.mark(pool_name)
        result = await orch.queues.claim(
            pool_name,
            worker=body.worker_name,
            max_runs=body.max_runs,
            now=time.time(),
            lease_seconds=orch.settings.claim_lease_seconds,
            prefetch_seconds=body.prefetch_seconds,
            queues=body.queues,
        )
        if result.claims:
            won = await _finalize(orch, pool_name, result.claims, body.worker_name)
            if won:
                return s.ClaimResponse(runs=won)
            continue
        if not checked_pool:
            await orch.in_thread(_check_pool, orch, pool_name)
            checked_pool = True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return s.ClaimResponse(runs=[])
        if result.next_due is not None:
            remaining = min(
                remaining, max(0.0, result.next_due - body.prefetch_seconds - time.time())
            )
        await orch.wakeups.wait(pool_name, remaining, since=mark)


def _check_pool(orch: Orchestrator, pool_name: str) -> None:
    with orch.db.read() as session:
        get_pool(session, pool_name)


async def _finalize(
    orch: Orchestrator, pool_name: str, claims: list[Claim], worker_name: str
) -> list[s.ClaimedRun]:
    """Move claimed runs Scheduled → Pending; a run that moved meanwhile is let go."""
    won, lost = await orch.in_thread(_mark_pending, orch, pool_name, claims, worker_name)
    for claim in lost:
        log.info("claim_lost", run_id=claim.run_id, pool=pool_name)
        await orch.queues.release(pool_name, claim.run_id)
    return won


RUNS = cast(Table, m.FlowRun.__table__)
STATES = cast(Table, m.FlowRunState.__table__)
MARK_PENDING = (
    update(RUNS)
    .where(RUNS.c.id == bindparam("run_id"), RUNS.c.state_type == StateType.SCHEDULED)
    .values(
        state_type=StateType.PENDING,
        state_name=StateType.PENDING.display_name,
        state_message=None,
        state_timestamp=bindparam("now"),
        claim_token=bindparam("token"),
        worker_name=bindparam("worker"),
    )
)


def _mark_pending(
    orch: Orchestrator, pool_name: str, claims: list[Claim], worker_name: str
) -> tuple[list[s.ClaimedRun], list[Claim]]:
    """The store's compare-and-set for a claim (SQL core: this is the hot path)."""
    now = datetime.now(UTC)
    won: dict[str, Claim] = {}
    lost: list[Claim] = []
    with orch.db.session() as session:
        for claim in claims:
            params = {
                "run_id": claim.run_id,
                "now": now,
                "token": claim.token,
                "worker": worker_name,
            }
            result = session.execute(MARK_PENDING, params)
            if result.rowcount == 1:  # type: ignore[attr-defined]
                won[claim.run_id] = claim
            else:
                lost.append(claim)
        if won:
            history = [
                {
                    "flow_run_id": run_id,
                    "type": StateType.PENDING,
                    "timestamp": now,
                    "name": StateType.PENDING.display_name,
                    "message": None,
                }
                for run_id in won
            ]
            session.execute(insert(STATES), history)
        return _claimed_docs(session, pool_name, won), lost


def _claimed_docs(session: Session, pool_name: str, won: dict[str, Claim]) -> list[s.ClaimedRun]:
    if not won:
        return []
    rows = (
        session.scalars(
            select(m.FlowRun).options(*runs.load_options()).where(m.FlowRun.id.in_(list(won)))
        )
        .unique()
        .all()
    )
    return [
        s.ClaimedRun(
            run=documents.flow_run(row),
            token=won[row.id].token,
            deployment=documents.deployment(row.deployment) if row.deployment else None,
            base_job_template=row.queue.pool.base_job_template if row.queue else {},
        )
        for row in sorted(rows, key=lambda r: r.scheduled_time)
    ]


@router.post("/work_pools/{pool_name}/workers/heartbeat")
async def heartbeat(pool_name: str, body: s.WorkerHeartbeat, orch: Orch) -> s.HeartbeatResponse:
    """Record the worker as alive, extend its runs' leases, and say which runs to kill."""

    def record() -> list[str]:
        with orch.db.session() as session:
            pool = get_pool(session, pool_name)
            worker = session.scalars(
                select(m.Worker).where(
                    m.Worker.pool_id == pool.id, m.Worker.name == body.worker_name
                )
            ).first() or m.Worker(pool_id=pool.id, name=body.worker_name)
            worker.type = body.type
            worker.last_heartbeat = datetime.now(UTC)
            session.add(worker)
            if not body.run_ids:
                return []
            stop = (StateType.CANCELLING, StateType.CANCELLED)
            query = select(m.FlowRun.id).where(
                m.FlowRun.id.in_(body.run_ids), m.FlowRun.state_type.in_(stop)
            )
            return list(session.scalars(query).all())

    cancelling = await orch.in_thread(record)
    until = time.time() + orch.settings.claim_lease_seconds
    held = await orch.queues.extend_leases(pool_name, body.run_ids, until) if body.run_ids else []
    return s.HeartbeatResponse(held=held, cancelling=cancelling)


@router.get("/workers")
async def list_workers(orch: Orch, pool: str | None = None) -> list[s.Worker]:
    def read() -> list[s.Worker]:
        with orch.db.read() as session:
            query = select(m.Worker).join(m.WorkPool).order_by(m.WorkPool.name, m.Worker.name)
            if pool:
                query = query.where(m.WorkPool.name == get_pool(session, pool).name)
            now = datetime.now(UTC)
            beat = orch.settings.worker_heartbeat_seconds
            return [
                documents.worker(w, now=now, heartbeat_seconds=beat) for w in session.scalars(query)
            ]

    return await orch.in_thread(read)
