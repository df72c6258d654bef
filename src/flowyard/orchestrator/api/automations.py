"""Automations: create, read, replace, pause or resume, delete; their firings; and the
automations a deployment's ``triggers:`` stand for.

The API only stores and reads: the evaluator watches the events and records firings, whose
actions run as RQ jobs. Every change is recorded as a ``flowyard.automation.<what>`` event in
its transaction. Replacing an automation forgets its open windows (buckets, waiting
children, metric states): they were counted for the trigger it had.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.exceptions import RequestValidationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from flowyard.errors import Conflict, NotFound
from flowyard.orchestrator import events
from flowyard.orchestrator.automations import checks
from flowyard.orchestrator.automations.evaluator import POSITION
from flowyard.orchestrator.lookups import get_deployment
from flowyard.orchestrator.runtime import Orch
from flowyard.schemas import automations as a
from flowyard.store import models as m

router = APIRouter(prefix="/api", tags=["automations"])

STORED = ("name", "description", "enabled", "trigger", "dedupe", *checks.ACTION_LISTS)
"""The columns an automation document sets."""
MAX_LIST = 200
MAX_FIRINGS = 200


@router.post("/automations", status_code=201)
async def create_automation(body: a.AutomationCreate, orch: Orch) -> a.Automation:
    def create() -> a.Automation:
        with orch.db.session() as session:
            checks.check(session, body)
            _name_free(session, body.name)
            row = m.Automation(**_columns(body))
            session.add(row)
            events.changed(session, "automation", row, "created", _about(row))
            session.flush()
            return document(row)

    return await orch.in_thread(create)


@router.get("/automations")
async def list_automations(
    orch: Orch,
    deployment_id: str | None = None,
    limit: int = Query(MAX_LIST, ge=1, le=MAX_LIST),
    offset: int = Query(0, ge=0),
) -> list[a.Automation]:
    """Automations by name; ``deployment_id``: only those of that deployment's triggers."""

    def read() -> list[a.Automation]:
        query = select(m.Automation).order_by(m.Automation.name).limit(limit).offset(offset)
        if deployment_id is not None:
            query = query.where(m.Automation.deployment_id == deployment_id)
        with orch.db.read() as session:
            return [document(row) for row in session.scalars(query)]

    return await orch.in_thread(read)


@router.get("/automations/{ref}/firings")
async def list_firings(
    ref: str, orch: Orch, limit: int = Query(20, ge=1, le=MAX_FIRINGS)
) -> list[a.Firing]:
    """The automation's latest firings, newest first, each with what its actions did."""

    def read() -> list[a.Firing]:
        with orch.db.read() as session:
            return firings(session, get_automation(session, ref).id, limit)

    return await orch.in_thread(read)


@router.get("/automations/{ref}")
async def read_automation(ref: str, orch: Orch) -> a.Automation:
    def read() -> a.Automation:
        with orch.db.read() as session:
            return document(get_automation(session, ref))

    return await orch.in_thread(read)


@router.put("/automations/{ref}")
async def replace_automation(ref: str, body: a.AutomationCreate, orch: Orch) -> a.Automation:
    """Replace the automation by ``body`` (its id, firings and owner stay)."""

    def replace() -> a.Automation:
        with orch.db.session() as session:
            row = get_automation(session, ref)
            checks.check(session, body)
            if body.name != row.name:
                _name_free(session, body.name)
            _replace(session, row, body)
            session.flush()
            return document(row)

    return await orch.in_thread(replace)


@router.patch("/automations/{ref}")
async def update_automation(ref: str, body: a.AutomationPatch, orch: Orch) -> a.Automation:
    """Pause (``enabled: false``) or resume an automation."""

    def update() -> a.Automation:
        with orch.db.session() as session:
            row = get_automation(session, ref)
            if row.enabled != body.enabled:
                row.enabled = body.enabled
                what = "resumed" if body.enabled else "paused"
                events.changed(session, "automation", row, what, _about(row))
                session.flush()
            return document(row)

    return await orch.in_thread(update)


@router.delete("/automations/{ref}", status_code=204)
async def delete_automation(ref: str, orch: Orch) -> None:
    """Delete an automation with its firings and windows."""

    def remove() -> None:
        with orch.db.session() as session:
            _delete(session, get_automation(session, ref))

    await orch.in_thread(remove)


@router.put("/deployments/{ref:path}/triggers")
async def replace_deployment_triggers(
    ref: str,
    orch: Orch,
    body: Annotated[list[a.DeploymentTrigger], Body(max_length=a.MAX_DEPLOYMENT_TRIGGERS)],
) -> list[a.Automation]:
    """Give the deployment exactly these triggers: one automation each, owned by the
    deployment, that runs it. Unchanged ones are kept as they are (with their windows);
    an empty list removes them all."""

    def replace() -> list[a.Automation]:
        with orch.db.session() as session:
            dep = get_deployment(session, ref)
            wanted = _deployment_automations(session, dep, body)
            return [document(row) for row in _own_exactly(session, dep, wanted)]

    return await orch.in_thread(replace)


# -- reading -----------------------------------------------------------------------------


def get_automation(session: Session, ref: str) -> m.Automation:
    """An automation by id or by name."""
    found = session.get(m.Automation, ref)
    if found is None:
        found = session.scalars(select(m.Automation).where(m.Automation.name == ref)).first()
    if found is None:
        raise NotFound(f"automation {ref!r} not found")
    return found


def document(row: m.Automation) -> a.Automation:
    return a.Automation.model_validate(
        {
            **{column: getattr(row, column) for column in STORED},
            "id": row.id,
            "created": row.created,
            "updated": row.updated,
            "deployment_id": row.deployment_id,
        }
    )


def firings(session: Session, automation_id: str, limit: int) -> list[a.Firing]:
    """The latest ``limit`` firings of an automation, newest first, with their actions."""
    query = (
        select(m.AutomationFiring)
        .where(m.AutomationFiring.automation_id == automation_id)
        .order_by(m.AutomationFiring.fired.desc(), m.AutomationFiring.id.desc())
        .limit(limit)
    )
    rows = list(session.scalars(query))
    actions: dict[str, list[a.ActionRecord]] = {row.id: [] for row in rows}
    found = select(m.AutomationAction).where(m.AutomationAction.firing_id.in_(list(actions)))
    ordered = found.order_by(m.AutomationAction.when.desc(), m.AutomationAction.index)
    for action in session.scalars(ordered):
        actions[action.firing_id].append(
            a.ActionRecord(
                index=action.index,
                when=action.when,  # type: ignore[arg-type]
                type=str(action.action.get("type", "")),
                status=action.status,  # type: ignore[arg-type]
                attempts=action.attempts,
                error=action.error,
                finished=action.finished,
            )
        )
    return [
        a.Firing(
            id=row.id,
            automation_id=row.automation_id,
            fired=row.fired,
            state=row.state,  # type: ignore[arg-type]
            suppressed=row.suppressed,
            triggering_event=row.triggering_event,
            labels=row.labels or {},
            actions=actions[row.id],
        )
        for row in rows
    ]


# -- changing ----------------------------------------------------------------------------


def _columns(doc: a.AutomationCore) -> dict[str, Any]:
    dumped = doc.model_dump(mode="json")
    return {column: dumped[column] for column in STORED}


def _about(row: m.Automation) -> dict[str, Any]:
    return {"trigger": row.trigger.get("type", "event"), "deployment_id": row.deployment_id}


def _name_free(session: Session, name: str) -> None:
    if session.scalars(select(m.Automation.id).where(m.Automation.name == name)).first():
        raise Conflict(f"an automation named {name!r} exists already")


def _replace(session: Session, row: m.Automation, doc: a.AutomationCore) -> None:
    """Set ``row`` to ``doc`` and forget the windows counted for its old trigger."""
    hold_evaluator(session)
    for column, value in _columns(doc).items():
        setattr(row, column, value)
    clear_windows(session, row.id)
    events.changed(session, "automation", row, "updated", _about(row))


def hold_evaluator(session: Session) -> None:
    """Wait for a trigger evaluation in progress, and keep the next one out until this
    transaction ends. Deleting or replacing an automation locks its rows and cascades to
    its windows and firings, which an evaluation locks in the other order: without this,
    PostgreSQL finds a deadlock. The evaluator takes this row first, so both go in one
    order. (SQLite writes one transaction at a time and ignores the lock.)"""
    session.execute(
        select(m.EvaluatorPosition.name)
        .where(m.EvaluatorPosition.name == POSITION)
        .with_for_update()
    )


def _delete(session: Session, row: m.Automation) -> None:
    hold_evaluator(session)
    events.changed(session, "automation", row, "deleted", _about(row))
    session.delete(row)


def clear_windows(session: Session, automation_id: str) -> None:
    """Delete the evaluator's open windows of an automation."""
    for table in (m.AutomationBucket, m.AutomationChildFiring, m.AutomationMetricState):
        session.execute(delete(table).where(table.automation_id == automation_id))


# -- a deployment's triggers -------------------------------------------------------------


def _deployment_automations(
    session: Session, dep: m.Deployment, triggers: list[Any]
) -> list[a.AutomationCreate]:
    """The automations ``triggers`` stand for, checked (a 422 names the trigger's field)."""
    wanted, errors, names = [], [], set()
    for n, trigger in enumerate(triggers):
        default = f"{dep.flow.name}.{dep.name}.trigger-{n + 1}"[-200:]
        doc = a.deployment_automation(trigger, deployment_id=dep.id, default_name=default)
        if doc.name in names:
            errors.append({"loc": ["body", n, "name"], "msg": "names repeat", "type": "unique"})
        names.add(doc.name)
        # the one action is the trigger's own parameters and job variables
        errors += [_trigger_loc(error) for error in checks.template_errors(doc, ("body", n))]
        wanted.append(doc)
    if errors:
        raise RequestValidationError(errors)
    return wanted


def _trigger_loc(error: dict[str, Any]) -> dict[str, Any]:
    loc = list(error["loc"])
    if loc[2:4] == ["actions", 0]:
        loc = loc[:2] + loc[4:]
    return {**error, "loc": loc}


def _own_exactly(
    session: Session, dep: m.Deployment, wanted: list[a.AutomationCreate]
) -> list[m.Automation]:
    """Make ``wanted`` the automations ``dep`` owns: matched by name, changed ones replaced,
    new ones created, the rest deleted."""
    hold_evaluator(session)
    query = select(m.Automation).where(m.Automation.deployment_id == dep.id)
    owned = {row.name: row for row in session.scalars(query)}
    keep = {doc.name for doc in wanted}
    for name in [name for name in owned if name not in keep]:
        _delete(session, owned.pop(name))
    session.flush()
    rows = []
    for doc in wanted:
        row = owned.get(doc.name)
        if row is None:
            _name_free(session, doc.name)
            row = m.Automation(**_columns(doc), deployment_id=dep.id)
            session.add(row)
            events.changed(session, "automation", row, "created", _about(row))
        elif {column: getattr(row, column) for column in STORED} != _columns(doc):
            _replace(session, row, doc)
        rows.append(row)
    session.flush()
    return rows
