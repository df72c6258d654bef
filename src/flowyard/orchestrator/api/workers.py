"""Claims and worker heartbeats: the worker-facing half of the API."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import structlog
from fastapi import APIRouter, Header, Request
from sqlalchemy import select

from flowyard import schemas as s
from flowyard.errors import QueueUnavailable
from flowyard.orchestrator import claims as claims_store
from flowyard.orchestrator import documents, events, queue_sync, runs
from flowyard.orchestrator.api.run_tokens import issue
from flowyard.orchestrator.lookups import get_pool
from flowyard.orchestrator.open_claims import OpenClaim
from flowyard.orchestrator.run_tokens import claim_fingerprint
from flowyard.orchestrator.runtime import Orch, Orchestrator
from flowyard.pools import Claim
from flowyard.states import StateType
from flowyard.store import models as m

router = APIRouter(prefix="/api", tags=["workers"])
ClaimsOf = tuple[list[Claim], str]  # the runs one request claimed, and its worker
log = structlog.get_logger()

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=r"^[A-Za-z0-9_.:\-]{1,100}$",
        description="A claim sent again with the same key (its answer was lost) gets the "
        "runs the first was given, while they are still Pending, instead of more runs.",
    ),
]


@router.post("/work_pools/{pool_name}/claim")
async def claim(
    pool_name: str,
    body: s.ClaimRequest,
    orch: Orch,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> s.ClaimResponse:
    """Claim up to ``max_runs`` due runs, waiting up to ``wait`` seconds for one to appear."""
    with orch.open_claims.opened(pool_name, body.worker_name) as open_claim:
        won = await _claim_when_due(orch, pool_name, body, request, open_claim, idempotency_key)
        if isinstance(won, Replay):
            return s.ClaimResponse(runs=await _replayed(orch, won.given, body.worker_name))
        if won and await _gone(request, open_claim):  # the worker left while we wrote
            await _hand_back(orch, won)
            won = []
    if not won:
        return s.ClaimResponse(runs=[])
    return _hand_out(orch, pool_name, won)


@dataclass(frozen=True)
class Replay:
    """A claim sent again (same idempotency key): the (run id, token) pairs it was given."""

    given: list[tuple[str, str]]


async def _claim_when_due(
    orch: Orchestrator,
    pool_name: str,
    body: s.ClaimRequest,
    request: Request,
    open_claim: OpenClaim,
    idempotency_key: str | None,
) -> list[s.ClaimedRun] | Replay:
    """The runs won, once some are due (or none: the wait ended, the server is stopping,
    or the worker is gone: it said goodbye or disconnected). The claim script keeps the
    runs it takes under the idempotency key; the first call answers what the key holds."""
    deadline = time.monotonic() + body.wait
    checked_pool = False
    first = True
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
            idempotency_key=idempotency_key,
            recall=first,
        )
        first = False
        if result.replayed is not None:
            return Replay(result.replayed)
        if result.collided:
            await _cancel_collided(orch, result.collided)
        if result.claims:
            won = await _finalize(orch, pool_name, result.claims, body.worker_name)
            if won:
                return won
            continue
        if not checked_pool:
            await orch.in_thread(_check_pool, orch, pool_name)
            checked_pool = True
        remaining = deadline - time.monotonic()
        if remaining <= 0 or orch.stopping:  # a stopping server answers its long-polls now
            return []
        if result.next_due is not None:
            remaining = min(
                remaining, max(0.0, result.next_due - body.prefetch_seconds - time.time())
            )
        await orch.wakeups.wait(pool_name, remaining, since=mark)
        if await _gone(request, open_claim):  # checked before it may take a run
            return []


async def _gone(request: Request, open_claim: OpenClaim) -> bool:
    """True once the claim's worker said goodbye or its connection closed."""
    return open_claim.ended or await request.is_disconnected()


HANDED_BACK = "its worker went away before the claim was answered; returned to the queue"


async def _hand_back(orch: Orchestrator, won: list[s.ClaimedRun]) -> None:
    """Runs won for a worker that is gone: back to Scheduled and their queue, at once
    (rather than after their lease expires), as the worker's own give-back would."""

    def reschedule() -> list[runs.QueueEffect | None]:
        effects = []
        now = datetime.now(UTC)
        for claimed in won:
            with orch.db.session() as session:
                run = runs.get_run(session, claimed.run.id, for_update=True)
                _, effect = runs.set_state(
                    session,
                    run,
                    StateType.SCHEDULED,
                    now=now,
                    message=HANDED_BACK,
                    token=claimed.token,
                )
                effects.append(effect)
        return effects

    await queue_sync.apply_many(orch, await orch.in_thread(reschedule))
    log.info("claim_handed_back", runs=[claimed.run.id for claimed in won])


def _hand_out(orch: Orchestrator, pool_name: str, won: list[s.ClaimedRun]) -> s.ClaimResponse:
    """The answer to a claim that won runs (the claim script kept them under its key)."""
    now = datetime.now(UTC)
    for claimed in won:
        orch.metrics.observe_claim(pool_name, claimed.run.scheduled_time, now)
    if orch.settings.api_key:  # each engine gets a token, never a key
        won = [_with_run_token(orch, claimed) for claimed in won]
    return s.ClaimResponse(runs=won)


async def _replayed(
    orch: Orchestrator, given: list[tuple[str, str]], worker_name: str
) -> list[s.ClaimedRun]:
    """The runs a claim sent again was given the first time (those still Pending)."""

    def read() -> list[s.ClaimedRun]:
        with orch.db.read() as session:
            return claims_store.replayed(session, given, worker_name, orch.deployment_docs)

    runs_again = await orch.in_thread(read)
    if orch.settings.api_key:
        runs_again = [_with_run_token(orch, claimed) for claimed in runs_again]
    return runs_again


def _with_run_token(orch: Orchestrator, claimed: s.ClaimedRun) -> s.ClaimedRun:
    """The claim with the token its engine will act with, bound to this claim."""
    token = issue(orch, claimed.run.id, claim_fingerprint(claimed.token))
    return claimed.model_copy(update={"run_token": token})


COLLIDED = "cancelled: its deployment's concurrency limit was reached (strategy cancel-new)"


async def _cancel_collided(orch: Orchestrator, run_ids: list[str]) -> None:
    """Runs the claim took out of their queue because their deployment was full."""

    def cancel() -> list[runs.QueueEffect | None]:
        effects = []
        now = datetime.now(UTC)
        for run_id in run_ids:
            with orch.db.session() as session:
                run = runs.get_run(session, run_id, for_update=True)
                _, effect = runs.set_state(
                    session, run, StateType.CANCELLED, now=now, message=COLLIDED
                )
                effects.append(effect)
        return effects

    await queue_sync.apply_many(orch, await orch.in_thread(cancel))
    log.info("runs_cancelled_by_deployment_limit", count=len(run_ids))


def _check_pool(orch: Orchestrator, pool_name: str) -> None:
    with orch.db.read() as session:
        get_pool(session, pool_name)


async def _finalize(
    orch: Orchestrator, pool_name: str, claims: list[Claim], worker_name: str
) -> list[s.ClaimedRun]:
    """Move claimed runs Scheduled → Pending; a run that moved meanwhile is let go.

    The claims of concurrent requests are written in one transaction (group commit).
    """

    def mark(requests: list[ClaimsOf]) -> list[claims_store.Marked]:
        with orch.db.session() as session:
            return [
                claims_store.mark_pending(session, taken, worker, orch.deployment_docs)
                for taken, worker in requests
            ]

    async def mark_in_thread(requests: list[ClaimsOf]) -> list[claims_store.Marked]:
        return await orch.in_thread(mark, requests)

    won, lost = await orch.claim_marks.submit((claims, worker_name), mark_in_thread)
    for claim in lost:
        log.info("claim_lost", run_id=claim.run_id, pool=pool_name)
        try:
            await orch.queues.release(pool_name, claim.run_id)
        except QueueUnavailable:  # the won runs are committed: answer; the lease expires
            log.warning("claim_release_deferred", run_id=claim.run_id, pool=pool_name)
    return won


@router.post("/work_pools/{pool_name}/workers/heartbeat")
async def heartbeat(pool_name: str, body: s.WorkerHeartbeat, orch: Orch) -> s.HeartbeatResponse:
    """Record the worker as alive, extend its runs' leases, and say which runs to kill.

    A beat with ``stopping`` is the worker's goodbye: it is recorded offline at once.
    """

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
            if body.stopping:  # a goodbye: offline at once, not after SILENT_BEATS
                if worker.online:
                    events.worker_status(session, worker, pool, "offline")
                worker.online = False
                return []
            if not worker.online:
                worker.online = True
                events.worker_status(session, worker, pool, "online")
            if not body.run_ids:
                return []
            stop = (StateType.CANCELLING, StateType.CANCELLED)
            query = select(m.FlowRun.id).where(
                m.FlowRun.id.in_(body.run_ids), m.FlowRun.state_type.in_(stop)
            )
            return list(session.scalars(query).all())

    cancelling = await orch.in_thread(record)
    if body.stopping:
        if orch.open_claims.end(pool_name, body.worker_name):  # its long-poll answers now
            orch.wakeups.wake(pool_name)
        return s.HeartbeatResponse(held=[], cancelling=[])
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
