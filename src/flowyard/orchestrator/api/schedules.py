"""A deployment's schedules: list, add, pause or resume, delete.

Pausing or deleting a schedule deletes its runs that are still Scheduled (and takes them
out of their queue); resuming lets the scheduler materialize runs again on its next pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from fastapi import APIRouter
from sqlalchemy import select
from sqlalchemy.orm import Session

from flowyard import schemas as s
from flowyard.errors import Conflict, NotFound
from flowyard.orchestrator import documents, events, queue_sync
from flowyard.orchestrator.lookups import get_deployment
from flowyard.orchestrator.runs import QueueEffect
from flowyard.orchestrator.runtime import Orch, Orchestrator
from flowyard.orchestrator.schedules import ScheduleSpec, validate
from flowyard.orchestrator.services.scheduler import clear_future_runs
from flowyard.store import models as m

router = APIRouter(prefix="/api/deployments", tags=["deployments"])
UPCOMING = 5  # next due times shown with each schedule


def new_schedules(bodies: Iterable[s.ScheduleCreate]) -> list[m.DeploymentSchedule]:
    """Schedule rows for ``bodies``, each checked first (``InvalidInput`` names the field)."""
    rows = []
    for body in bodies:
        validate(ScheduleSpec(body.kind, body.expression, body.timezone, body.anchor_date))
        rows.append(m.DeploymentSchedule(**body.model_dump()))
    return rows


def replace_schedules(
    session: Session, dep: m.Deployment, bodies: list[s.ScheduleCreate]
) -> list[QueueEffect]:
    """Give ``dep`` exactly these schedules; the old ones and their future runs go."""
    rows = new_schedules(bodies)
    old = list(_schedules(session, dep.id))
    effects = clear_future_runs(session, [sch.id for sch in old])
    for sch in old:
        events.schedule(session, sch, "deleted")
        session.delete(sch)
    for row in rows:
        row.deployment = dep
        session.add(row)
        events.schedule(session, row, "created")
    return effects


def _schedules(session: Session, deployment_id: str) -> list[m.DeploymentSchedule]:
    query = select(m.DeploymentSchedule).where(m.DeploymentSchedule.deployment_id == deployment_id)
    return list(session.scalars(query.order_by(m.DeploymentSchedule.created)).all())


MIN_PREFIX = 4


def _get_schedule(session: Session, ref: str, schedule_id: str) -> m.DeploymentSchedule:
    """The deployment's schedule by id, or by a unique prefix of its id (listings show 8
    characters; at least 4 are needed)."""
    dep = get_deployment(session, ref)
    found = session.get(m.DeploymentSchedule, schedule_id)
    if found is not None and found.deployment_id == dep.id:
        return found
    return by_prefix(_schedules(session, dep.id), schedule_id, ref)


def by_prefix(
    schedules: Sequence[m.DeploymentSchedule], prefix: str, ref: str
) -> m.DeploymentSchedule:
    """The one schedule whose id starts with ``prefix`` (``Conflict`` naming the matches
    when several do; ``NotFound`` when none does or the prefix is too short)."""
    matches = [sch for sch in schedules if sch.id.startswith(prefix)]
    if len(prefix) < MIN_PREFIX or not matches:
        raise NotFound(f"schedule {prefix!r} of deployment {ref!r} not found")
    if len(matches) > 1:
        ids = ", ".join(sch.id for sch in matches)
        raise Conflict(
            f"schedule prefix {prefix!r} of deployment {ref!r} is ambiguous "
            f"(matches {ids}); give more characters"
        )
    return matches[0]


async def _apply(orch: Orchestrator, effects: list[QueueEffect]) -> None:
    await queue_sync.apply_many(orch, effects)


@router.get("/{ref:path}/schedules")
async def list_schedules(ref: str, orch: Orch) -> list[s.Schedule]:
    def read() -> list[s.Schedule]:
        with orch.db.read() as session:
            dep = get_deployment(session, ref)
            return [
                documents.schedule(sch, upcoming=UPCOMING) for sch in _schedules(session, dep.id)
            ]

    return await orch.in_thread(read)


@router.post("/{ref:path}/schedules", status_code=201)
async def create_schedule(ref: str, body: s.ScheduleCreate, orch: Orch) -> s.Schedule:
    def create() -> s.Schedule:
        with orch.db.session() as session:
            dep = get_deployment(session, ref)
            (row,) = new_schedules([body])
            row.deployment = dep
            session.add(row)
            events.schedule(session, row, "created")
            session.flush()
            return documents.schedule(row, upcoming=UPCOMING)

    return await orch.in_thread(create)


@router.patch("/{ref:path}/schedules/{schedule_id}")
async def update_schedule(
    ref: str, schedule_id: str, body: s.ScheduleUpdate, orch: Orch
) -> s.Schedule:
    """Pause (``active: false``), resume, or edit a schedule in place.

    Any change deletes the schedule's runs that have not started; the scheduler's next
    pass writes the new ones (at once when the API wakes it, within its interval anyway).
    """

    def update() -> tuple[s.Schedule, list[QueueEffect]]:
        with orch.db.session() as session:
            row = _get_schedule(session, ref, schedule_id)
            changes = {
                field: value
                for field, value in body.model_dump(exclude_unset=True).items()
                if value is not None or field == "anchor_date"
            }
            edited = {**s.ScheduleCreate.model_validate(row).model_dump(), **changes}
            validate(
                ScheduleSpec(
                    edited["kind"], edited["expression"], edited["timezone"], edited["anchor_date"]
                )
            )
            was_active = row.active
            for field, value in changes.items():
                setattr(row, field, value)
            flipped = "resumed" if row.active else "paused"
            events.schedule(session, row, "updated" if row.active == was_active else flipped)
            effects = clear_future_runs(session, [row.id])
            session.flush()
            return documents.schedule(row, upcoming=UPCOMING), effects

    doc, effects = await orch.in_thread(update)
    await _apply(orch, effects)
    return doc


@router.delete("/{ref:path}/schedules/{schedule_id}", status_code=204)
async def delete_schedule(ref: str, schedule_id: str, orch: Orch) -> None:
    def remove() -> list[QueueEffect]:
        with orch.db.session() as session:
            row = _get_schedule(session, ref, schedule_id)
            effects = clear_future_runs(session, [row.id])
            events.schedule(session, row, "deleted")
            session.delete(row)
            return effects

    await _apply(orch, await orch.in_thread(remove))
