"""Background task runs (``Task.delay``) over HTTP: create, claim, heartbeat, report, wait.

A producer creates a Scheduled run; a task worker long-polls a claim for its task keys,
woken per task when a run is queued (no sleep-polling); its heartbeats extend the leases
of the runs it holds; each report carries the claim token. ``wait`` long-polls a run until
it is final, woken at once by a final report made on this replica (and re-reading the
store every second for reports made on another one).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Query, Request

from flowyard import schemas as s
from flowyard.errors import QueueUnavailable
from flowyard.orchestrator import background_runs as store
from flowyard.orchestrator.runtime import Orch, Orchestrator
from flowyard.pools import keys
from flowyard.pools.task_queue import TaskClaim, TaskQueue

router = APIRouter(prefix="/api/background_task_runs", tags=["background task runs"])
log = structlog.get_logger()

RECHECK_SECONDS = 1.0  # a waiter re-reads the store this often (final reports of other replicas)
MAX_WAIT_SECONDS = 60.0


@dataclass
class BackgroundRuns:
    """What the routes share: the Redis queue, and the waiters of runs not final yet."""

    queue: TaskQueue
    _finished: dict[str, asyncio.Event] = field(default_factory=dict)

    def finished(self, run_id: str) -> None:
        event = self._finished.pop(run_id, None)
        if event is not None:
            event.set()

    async def apply(self, change: store.QueueChange) -> None:
        """Carry a state set through the API over to Redis. On an outage the store's
        compare-and-sets keep the run safe (a stale entry loses its claim) and the sweep
        queues a Scheduled run again."""
        try:
            if change.ended_claim is not None:
                await self.queue.release(change.run_id, change.ended_claim.token)
            if change.queue:
                await self.queue.enqueue(change.task_key, [change.run_id], time.time())
            else:
                await self.queue.unqueue(change.task_key, change.run_id)
        except QueueUnavailable:
            log.warning("task_queue_sync_deferred", run_id=change.run_id)
        if change.final:
            self.finished(change.run_id)

    async def wait_finished(self, run_id: str, timeout: float) -> None:
        event = self._finished.setdefault(run_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await event.wait()
        if not event.is_set() and self._finished.get(run_id) is event:
            del self._finished[run_id]  # ended on another replica, or not yet: re-read


async def _background(request: Request) -> BackgroundRuns:
    runs: BackgroundRuns = request.app.state.background_runs
    return runs


Background = Annotated[BackgroundRuns, Depends(_background)]


@router.post("", status_code=201)
async def create(body: s.BackgroundTaskRunCreate, orch: Orch, bg: Background) -> s.TaskRun:
    """Record a Scheduled run, then queue it (the store sweep queues it if Redis is away)."""
    keys.task_ready(body.task_key)  # refuses a task key Redis cannot hold, before writing

    def write() -> s.TaskRun:
        with orch.db.session() as session:
            return store.create(session, body)

    doc = await orch.in_thread(write)
    await bg.queue.enqueue(body.task_key, [doc.id], time.time())
    return doc


@router.post("/claim")
async def claim(body: s.TaskWorkerClaim, orch: Orch, bg: Background) -> s.TaskWorkerClaimed:
    """Claim up to ``max_runs`` runs of these tasks, waiting up to ``wait`` s for one."""
    deadline = time.monotonic() + body.wait
    names = [keys.task_wake_name(k) for k in body.task_keys]
    turn = 0
    while True:
        marks = {name: orch.wakeups.mark(name) for name in names}
        order = body.task_keys[turn:] + body.task_keys[:turn]  # the tasks take turns first
        turn = (turn + 1) % len(body.task_keys)
        now = time.time()
        until = now + orch.settings.claim_lease_seconds
        taken = await bg.queue.claim(order, body.worker_name, body.max_runs, now, until)
        if taken:
            won = await _finalize(orch, bg, taken, body.worker_name)
            if won:
                return s.TaskWorkerClaimed(runs=won)
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0 or orch.stopping:  # a stopping server answers its long-polls now
            return s.TaskWorkerClaimed()
        await _wait_any(orch, marks, remaining)


async def _finalize(
    orch: Orchestrator, bg: BackgroundRuns, taken: list[TaskClaim], worker: str
) -> list[s.ClaimedTaskRun]:
    def mark() -> list[s.ClaimedTaskRun]:
        with orch.db.session() as session:
            return store.mark_pending(session, taken, worker)

    won = await orch.in_thread(mark)
    won_ids = {claimed.run.id for claimed in won}
    for lost in (claim for claim in taken if claim.run_id not in won_ids):
        log.info("task_claim_lost", run_id=lost.run_id, task_key=lost.task_key)
        await bg.queue.release(lost.run_id, lost.token)
    return won


async def _wait_any(orch: Orchestrator, marks: dict[str, int], timeout: float) -> None:
    """Until any of these tasks is woken (or a wake came since its mark), or ``timeout``."""
    waits = [
        asyncio.ensure_future(orch.wakeups.wait(name, timeout, since=mark))
        for name, mark in marks.items()
    ]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in waits:
            pending.cancel()


@router.post("/heartbeat")
async def heartbeat(
    body: s.TaskWorkerHeartbeat, orch: Orch, bg: Background
) -> s.TaskWorkerHeartbeatAck:
    """Extend the leases of the runs the worker still holds; it learns which those are."""
    until = time.time() + orch.settings.claim_lease_seconds
    held = await bg.queue.extend([(r.id, r.token) for r in body.runs], until)
    return s.TaskWorkerHeartbeatAck(held=held)


@router.post("/{run_id}/state")
async def report_state(
    run_id: str, body: s.BackgroundStateReport, orch: Orch, bg: Background
) -> s.TaskRun:
    """Record a task worker's report (409 if its claim no longer holds the run)."""

    def write() -> s.TaskRun:
        with orch.db.session() as session:
            return store.report(session, run_id, body)

    doc = await orch.in_thread(write)
    if body.state.is_terminal:
        await bg.queue.release(run_id, body.token)
        bg.finished(run_id)
    return doc


async def set_state(
    orch: Orchestrator, bg: BackgroundRuns, run_id: str, body: s.TaskRunUpdate
) -> s.TaskRun:
    """A background run's state set through ``POST /api/task_runs/{id}/state``: the store
    first, then its queue and claim in Redis."""

    def write() -> tuple[s.TaskRun, store.QueueChange]:
        with orch.db.session() as session:
            return store.set_state(session, run_id, body)

    doc, change = await orch.in_thread(write)
    await bg.apply(change)
    return doc


@router.get("/{run_id}/wait")
async def wait(
    run_id: str,
    orch: Orch,
    bg: Background,
    timeout: Annotated[float, Query(ge=0, le=MAX_WAIT_SECONDS)] = 0.0,
) -> s.TaskRun:
    """The run once it is final, or as it is when ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout

    def read() -> s.TaskRun:
        with orch.db.read() as session:
            return store.read(session, run_id)

    while True:
        doc = await orch.in_thread(read)
        remaining = deadline - time.monotonic()
        if doc.state_type.is_terminal or remaining <= 0:
            return doc
        await bg.wait_finished(run_id, min(remaining, RECHECK_SECONDS))
