"""The scheduler: materializes the next runs of every active deployment schedule.

Each pass, for each active schedule of a deployment that is not paused, the next
``scheduler_max_runs`` due times within ``scheduler_horizon_seconds`` become Scheduled runs,
then are queued. Slots missed while no scheduler ran (downtime) are written per the
deployment's catch-up policy (see ``catch_up``). A run is written
with ``INSERT … ON CONFLICT DO NOTHING`` against the store's unique constraint on
(deployment, schedule, scheduled time), so passes that overlap — a restart, two API
replicas — never create a slot twice: the loser of a race simply writes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, joinedload

from flowyard.orchestrator import events, queue_sync
from flowyard.orchestrator.catch_up import missed_slots
from flowyard.orchestrator.names import run_name
from flowyard.orchestrator.runs import QueueEffect
from flowyard.orchestrator.runtime import Orchestrator
from flowyard.orchestrator.schedules import ScheduleSpec, next_times
from flowyard.states import StateType
from flowyard.store import Database
from flowyard.store import models as m

log = structlog.get_logger()
Encoded = tuple[str, str, str]  # an event as the stream takes it: id, name, document

SLOT = ("deployment_id", "schedule_id", "scheduled_time")
RUNS = cast(Table, m.FlowRun.__table__)
STATES = cast(Table, m.FlowRunState.__table__)
INSERT_BATCH = 250
AUTO_SCHEDULED = "auto-scheduled"
"""The tag a scheduled run carries besides its deployment's, as in Prefect."""
"""Runs written per transaction at most: the store's writer is never held for long, so
claims and state changes get their turn between two batches."""
BATCH_PAUSE_SECONDS = 0.02
"""Between two batches on SQLite the pass steps aside at least this long (see Pacing)."""
# missed slots are looked for up to this many; the policy keeps at most the window's cap
MISSED_SCAN = 10_000
Version = tuple[datetime, datetime]


def spec_of(schedule: m.DeploymentSchedule) -> ScheduleSpec:
    return ScheduleSpec(schedule.kind, schedule.expression, schedule.timezone, schedule.anchor_date)


@dataclass(frozen=True)
class Window:
    """How far the scheduler looks: ``max_runs`` ahead within the horizon, and back."""

    max_runs: int
    horizon_seconds: float
    max_catch_up: int = 100
    max_per_pass: int = 5_000
    """Runs written per pass at most, the earliest due first; the next pass goes on."""


def _active_schedules(session: Session) -> list[m.DeploymentSchedule]:
    query = (
        select(m.DeploymentSchedule)
        .join(m.Deployment, m.DeploymentSchedule.deployment_id == m.Deployment.id)
        .where(m.DeploymentSchedule.active.is_(True), m.Deployment.paused.is_(False))
        .options(
            joinedload(m.DeploymentSchedule.deployment)
            .joinedload(m.Deployment.queue)
            .joinedload(m.WorkQueue.pool)
        )
        .order_by(m.DeploymentSchedule.id)
    )
    return list(session.scalars(query).unique().all())


def _last_slots(session: Session) -> dict[str, datetime]:
    """The latest scheduled time written for each schedule."""
    query = (
        select(m.FlowRun.schedule_id, func.max(m.FlowRun.scheduled_time))
        .where(m.FlowRun.schedule_id.is_not(None))
        .group_by(m.FlowRun.schedule_id)
    )
    return {sid: _aware(when) for sid, when in session.execute(query) if sid and when}


def slots_due(
    schedule: m.DeploymentSchedule,
    last: datetime | None,
    now: datetime,
    window: Window,
    upcoming_by_spec: dict[ScheduleSpec, list[datetime]] | None = None,
) -> list[datetime]:
    """The slots of ``schedule`` to write: missed ones per the catch-up policy, then the next.

    Slots before the schedule's last change (created, edited, resumed) or its deployment's
    (e.g. resumed) were not missed: nothing was meant to run then.
    """
    spec = spec_of(schedule)
    since = max(filter(None, [last, _aware(schedule.updated), _aware(schedule.deployment.updated)]))
    missed: list[datetime] = []
    if since < now:
        everything = next_times(spec, since, count=MISSED_SCAN, until=now)
        missed = missed_slots(everything, schedule.deployment.catch_up, cap=window.max_catch_up)
    upcoming_by_spec = {} if upcoming_by_spec is None else upcoming_by_spec
    upcoming = upcoming_by_spec.get(spec)
    if upcoming is None:  # many deployments share an expression ("0 * * * *")
        until = now + timedelta(seconds=window.horizon_seconds)
        upcoming = upcoming_by_spec[spec] = next_times(
            spec, now, count=window.max_runs, until=until
        )
    return missed + [when for when in upcoming if last is None or when > last]


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _run_row(schedule: m.DeploymentSchedule, when: datetime, now: datetime) -> dict[str, Any]:
    dep = schedule.deployment
    return {
        "id": m.new_id(),
        "name": run_name(),
        "flow_id": dep.flow_id,
        "deployment_id": dep.id,
        "queue_id": dep.queue_id,
        "schedule_id": schedule.id,
        "parameters": {**dep.parameters, **schedule.parameters},
        "job_variables": {},
        "state_type": StateType.SCHEDULED,
        "state_name": StateType.SCHEDULED.display_name,
        "state_timestamp": now,
        "scheduled_time": when,
        "priority": dep.priority,
        "tags": sorted({AUTO_SCHEDULED, *dep.tags}),
        "created": now,
    }


def _insert_runs(session: Session, rows: list[dict[str, Any]], now: datetime) -> set[str]:
    """Write the rows whose slot is free (the store refuses a second run per slot).

    One statement executed over all rows: SQLAlchemy batches it into multi-row INSERTs
    with RETURNING ("insertmanyvalues"), compiled once.
    """
    if not rows:
        return set()
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(RUNS).on_conflict_do_nothing(index_elements=list(SLOT)).returning(RUNS.c.id)
    )
    written = set(session.execute(statement, rows).scalars())
    history = [
        {"flow_run_id": run_id, "type": StateType.SCHEDULED, "name": "Scheduled", "timestamp": now}
        for run_id in written
    ]
    if history:
        session.execute(insert(STATES), history)
        events.flow_run_states(session, written, None, now=now)
    return written


def materialize(
    db: Database,
    now: datetime,
    window: Window,
    on_batch: Callable[[list[QueueEffect]], None] | None = None,
    pacing: Pacing | None = None,
) -> list[QueueEffect]:
    """Write the missing runs of every active schedule; returns what to queue (and hands
    ``on_batch`` what each committed batch wrote, as it commits). ``pacing``: paced on
    SQLite unless given.

    The slots are worked out from a read, then written earliest first in transactions of
    at most ``INSERT_BATCH`` runs (paced on SQLite), at most ``window.max_per_pass`` a
    pass: however many schedules or missed slots there are, the writer is held briefly and
    claims go on between batches (a first pass over 100 schedules of 1,000 runs each once
    held it for 48 s). A
    schedule or deployment changed (edited, paused) between the read and a batch gets
    nothing from that batch: each checks, under a share lock, that its schedules are
    still as they were read.
    """
    slots: list[tuple[datetime, m.DeploymentSchedule]] = []
    read_versions: dict[str, Version] = {}
    upcoming: dict[ScheduleSpec, list[datetime]] = {}
    with db.read() as session:
        last = _last_slots(session)
        for schedule in _active_schedules(session):
            try:
                due = slots_due(schedule, last.get(schedule.id), now, window, upcoming)
            except Exception:
                log.exception("schedule_unreadable", schedule_id=schedule.id)
                continue
            read_versions[schedule.id] = (schedule.updated, schedule.deployment.updated)
            slots.extend((when, schedule) for when in due)
        slots.sort(key=lambda slot: slot[0])  # the earliest first (stable); rows for this pass
        rows = [_run_row(schedule, when, now) for when, schedule in slots[: window.max_per_pass]]
        queues = {
            row["id"]: (schedule.deployment.queue.pool.name, schedule.deployment.queue.name)
            for row, (_, schedule) in zip(rows, slots, strict=False)
        }
    effects: list[QueueEffect] = []
    pacing = pacing or Pacing(paced=db.is_sqlite)
    start = 0
    while start < len(rows):
        if start:
            pacing.pause()
        batch = rows[start : start + pacing.size]
        start += len(batch)
        began = time.monotonic()
        with db.session() as session:
            current = _current_versions(session, sorted({row["schedule_id"] for row in batch}))
            batch = [
                row
                for row in batch
                if current.get(row["schedule_id"]) == read_versions[row["schedule_id"]]
            ]
            written = _insert_runs(session, batch, now)
        pacing.wrote(time.monotonic() - began)
        done = [_to_queue(row, queues[row["id"]]) for row in batch if row["id"] in written]
        effects.extend(done)
        if on_batch is not None:
            on_batch(done)
    return effects


@dataclass
class Pacing:
    """SQLite (one writer for all): batches sized to hold the writer about
    ``hold_seconds`` each, and pauses that leave it free ``1 - duty`` of the time, so a
    claim waiting for the writer waits for one short batch, never for a pass
    (bench/scheduler_stall.py: claim p99 604 ms with batches of 250, 221 ms paced).
    PostgreSQL writers do not wait for each other: full batches, no pause."""

    paced: bool
    hold_seconds: float = 0.01
    duty: float = 1 / 3
    size: int = 50
    min_size: int = 10
    _last: float = 0.0

    def __post_init__(self) -> None:
        if not self.paced:
            self.size = INSERT_BATCH

    def wrote(self, seconds: float) -> None:
        self._last = seconds
        if self.paced:
            wanted = int(self.size * self.hold_seconds / max(seconds, 1e-4))
            self.size = max(self.min_size, min(INSERT_BATCH, wanted, self.size * 2))

    def pause(self) -> None:
        if self.paced:
            time.sleep(max(BATCH_PAUSE_SECONDS, self._last * (1 / self.duty - 1)))


def _to_queue(row: dict[str, Any], queue: tuple[str, str]) -> QueueEffect:
    return QueueEffect(
        *queue,
        row["id"],
        enqueue_at=row["scheduled_time"].timestamp(),
        deployment_id=row["deployment_id"],
        priority=row["priority"],
    )


def _current_versions(session: Session, schedule_ids: list[str]) -> dict[str, Version]:
    """(schedule, deployment) last changes of those still active, share-locked till commit."""
    found: dict[str, Version] = {}
    for start in range(0, len(schedule_ids), INSERT_BATCH):
        query = (
            select(m.DeploymentSchedule.id, m.DeploymentSchedule.updated, m.Deployment.updated)
            .join(m.Deployment, m.DeploymentSchedule.deployment_id == m.Deployment.id)
            .where(
                m.DeploymentSchedule.id.in_(schedule_ids[start : start + INSERT_BATCH]),
                m.DeploymentSchedule.active.is_(True),
                m.Deployment.paused.is_(False),
            )
            .with_for_update(read=True)
        )
        found.update(
            (sid, (s_updated, d_updated)) for sid, s_updated, d_updated in session.execute(query)
        )
    return found


def clear_future_runs(session: Session, schedule_ids: Iterable[str]) -> list[QueueEffect]:
    """Delete the not-yet-started Scheduled runs of these schedules; returns what to unqueue."""
    ids = list(schedule_ids)
    if not ids:
        return []
    query = (
        select(m.FlowRun)
        .where(
            m.FlowRun.schedule_id.in_(ids),
            m.FlowRun.state_type == StateType.SCHEDULED,
            m.FlowRun.claim_token.is_(None),  # not a run awaiting a retry in its engine
        )
        .options(joinedload(m.FlowRun.queue).joinedload(m.WorkQueue.pool))
    )
    found = session.scalars(query).all()
    effects = [
        QueueEffect(run.queue.pool.name, run.queue.name, run.id, unqueue=True)
        for run in found
        if run.queue is not None
    ]
    run_ids = [run.id for run in found]
    if run_ids:
        session.execute(delete(m.FlowRun).where(m.FlowRun.id.in_(run_ids)))
    return effects


async def schedule_once(orch: Orchestrator) -> int:
    """Materialize and queue the next runs of every active schedule; returns how many.

    The pass runs in the scheduler's own process when there is one (services/
    materializer.py): its CPU then never stalls this process's requests.
    """
    settings = orch.settings
    window = Window(
        settings.scheduler_max_runs,
        settings.scheduler_horizon_seconds,
        settings.scheduler_max_catch_up_runs,
    )
    now = datetime.now(UTC)
    if orch.materializer is None:
        effects = await orch.in_thread(materialize, orch.db, now, window)
        await queue_sync.apply_many(orch, effects)
        count = len(effects)
    else:

        async def queue_and_stream(effects: list[QueueEffect], encoded: list[Encoded]) -> None:
            await queue_sync.apply_many(orch, effects)
            if encoded:
                await orch.event_stream.publish_encoded(encoded)
                orch.event_stream.wake_followers()

        count = await orch.materializer.run_pass(now, window, queue_and_stream)
    if count:
        log.info("runs_materialized", count=count)
    return count
