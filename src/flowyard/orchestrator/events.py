"""Recording events: each is added to the session of the change it records.

``record(session, ...)`` adds one event row (and a row per related resource) to the
session, so it commits or rolls back with the change: no change without its event, no
event without its change. Events of a committed transaction are then handed to the
``sink`` installed for its database (``install``): the process's ``EventStream``, which
fans them out on Redis. Builders for the server's own events live here too, so that each
call site is one line.

Resource ids read ``flowyard.<kind>.<id>``: ``flow-run``, ``task-run``, ``flow``,
``deployment``, ``work-pool``, ``work-queue``, ``worker``, ``schedule``, ``api-key``, and
``tag.<tag>`` for tags.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import Engine, RowMapping, Table, bindparam, event, insert, select
from sqlalchemy.orm import Session

from flowyard.events.schemas import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE, Event
from flowyard.store import Database
from flowyard.store import models as m

Labels = dict[str, str]
Sink = Callable[[list[Event]], None]
"""Takes the events of a committed transaction."""

_PENDING = "flowyard.events"
_sinks: weakref.WeakKeyDictionary[Engine, Sink] = weakref.WeakKeyDictionary()


def resource(kind: str, ident: str, name: str | None = None, **labels: str) -> Labels:
    """The labels of a server resource: ``flowyard.<kind>.<ident>`` and its name."""
    out = {RESOURCE_ID: f"flowyard.{kind}.{ident}"}
    if name is not None:
        out[RESOURCE_NAME] = name
    out.update({f"flowyard.{k.replace('_', '-')}": v for k, v in labels.items()})
    return out


def related(role: str, kind: str, ident: str, name: str | None = None) -> Labels:
    return {**resource(kind, ident, name), RESOURCE_ROLE: role}


def tags(values: Iterable[str] | None) -> list[Labels]:
    return [
        {RESOURCE_ID: f"flowyard.tag.{tag}", RESOURCE_ROLE: "tag"} for tag in sorted(values or ())
    ]


def record(
    session: Session,
    name: str,
    about: Labels,
    related: Iterable[Labels] = (),
    payload: dict[str, Any] | None = None,
    *,
    occurred: datetime | None = None,
) -> Event:
    """Add a server event to ``session``: it is stored if and only if the session commits."""
    doc = Event.model_construct(
        id=uuid.uuid4(),
        occurred=occurred or datetime.now(UTC),
        event=name,
        resource=about,
        related=list(related),
        payload=payload or {},
        follows=None,
    )
    return add(session, doc)


def add(session: Session, doc: Event) -> Event:
    """Add ``doc`` (checked already) to ``session``'s transaction.

    Nothing is written yet: every event of the transaction is inserted just before it
    commits, in one statement (and one for their related resources)."""
    session.info.setdefault(_PENDING, []).append(doc)
    return doc


def document(row: m.Event) -> Event:
    return Event.model_validate(
        {
            "id": row.id,
            "occurred": row.occurred,
            "event": row.event,
            "resource": row.resource,
            "related": row.related,
            "payload": row.payload,
            "follows": row.follows,
        }
    )


# -- the server's own events -------------------------------------------------------------


def flow_run_labels(
    run_id: str,
    run_name: str,
    flow: tuple[str, str],
    deployment: tuple[str, str] | None,
    pool_queue: tuple[str, str, str, str] | None,
    run_tags: Iterable[str] | None,
) -> tuple[Labels, list[Labels]]:
    """A flow run's resource and related resources: its flow, deployment, pool, queue, tags."""
    found = [related("flow", "flow", *flow)]
    if deployment is not None:
        found.append(related("deployment", "deployment", *deployment))
    if pool_queue is not None:
        pool_id, pool, queue_id, queue = pool_queue
        found += [related("work-pool", "work-pool", pool_id, pool)]
        found += [related("work-queue", "work-queue", queue_id, queue)]
    return resource("flow-run", run_id, run_name), found + tags(run_tags)


def run_and_deployment_tags(
    run_tags: Iterable[str] | None, deployment_tags: Iterable[str] | None
) -> list[str]:
    """The tags a run's events name, as Prefect's: its own and its deployment's."""
    return sorted({*(run_tags or ()), *(deployment_tags or ())})


def flow_run_state(
    session: Session,
    run: m.FlowRun,
    previous: str | None,
    *,
    now: datetime,
) -> Event:
    """``flowyard.flow-run.<state name>`` for ``run``, which was just written in its new state."""
    flushed(session, run.flow)
    deployment = run.deployment
    queue = run.queue
    about, found = flow_run_labels(
        run.id,
        run.name,
        (run.flow.id, run.flow.name),
        (deployment.id, deployment.name) if deployment else None,
        (queue.pool.id, queue.pool.name, queue.id, queue.name) if queue else None,
        run_and_deployment_tags(run.tags, deployment.tags if deployment else None),
    )
    if run.worker_name and queue is not None:
        found.append(related("worker", "worker", f"{queue.pool.name}.{run.worker_name}"))
    payload = state_payload(previous, run.state_type.value, run.state_name, run.state_message, now)
    name = f"flowyard.flow-run.{run.state_name}"
    return record(session, name, about, found, payload, occurred=now)


def task_run_state(
    session: Session, row: m.TaskRun | dict[str, Any], previous: str | None, *, now: datetime
) -> Event:
    """``flowyard.task-run.<state name>`` for a task run (a row or a bulk record's values)."""
    get: Callable[[str], Any] = row.get if isinstance(row, dict) else partial(getattr, row)
    kind = get("state_type")
    kind = kind.value if hasattr(kind, "value") else str(kind)
    name = get("state_name") or kind.title()
    about = resource("task-run", get("id"), get("name"))
    run_id = get("flow_run_id")  # None for a background task run (Task.delay)
    found = [related("flow-run", "flow-run", run_id)] if run_id else []
    found += tags(get("tags"))
    payload = state_payload(previous, kind, name, get("message"), now)
    return record(session, f"flowyard.task-run.{name}", about, found, payload, occurred=now)


def worker_status(session: Session, worker: m.Worker, pool: m.WorkPool, status: str) -> Event:
    """``flowyard.worker.online`` / ``.offline``: its first heartbeat, or its silence."""
    flushed(session, worker)
    about = resource("worker", f"{pool.name}.{worker.name}", worker.name, worker_type=worker.type)
    found = [related("work-pool", "work-pool", pool.id, pool.name)]
    payload = {"last_heartbeat": worker.last_heartbeat.isoformat()}
    return record(session, f"flowyard.worker.{status}", about, found, payload)


def changed(
    session: Session, kind: str, row: Any, what: str, payload: dict[str, Any] | None = None,
    related_to: Iterable[Labels] = (),
) -> Event:  # fmt: skip
    """``flowyard.<kind>.<what>`` about a pool, queue, deployment, schedule or API key."""
    flushed(session, row)
    about = resource(kind, row.id, getattr(row, "name", None))
    return record(session, f"flowyard.{kind}.{what}", about, related_to, payload)


def deployment_related(dep: m.Deployment) -> list[Labels]:
    """A deployment's flow, pool, queue and tags."""
    queue = dep.queue
    return [
        related("flow", "flow", dep.flow.id, dep.flow.name),
        related("work-pool", "work-pool", queue.pool.id, queue.pool.name),
        related("work-queue", "work-queue", queue.id, queue.name),
        *tags(dep.tags),
    ]


def schedule(session: Session, row: m.DeploymentSchedule, what: str) -> Event:
    """``flowyard.schedule.<what>``: created, updated, paused, resumed, deleted."""
    dep = row.deployment
    payload = {"kind": row.kind, "expression": row.expression, "active": row.active}
    about = [related("deployment", "deployment", dep.id, dep.name)]
    return changed(session, "schedule", row, what, payload, about)


def pause_and_limit(
    session: Session,
    kind: str,
    row: m.WorkPool | m.WorkQueue | m.Deployment,
    before: tuple[bool, int | None],
    related_to: Iterable[Labels] = (),
) -> None:
    """``.paused`` / ``.resumed`` / ``.limit-changed`` for what an update changed of ``row``."""
    paused, limit = before
    if row.paused != paused:
        changed(session, kind, row, "paused" if row.paused else "resumed", None, related_to)
    if row.concurrency_limit != limit:
        payload = {"from": limit, "to": row.concurrency_limit}
        changed(session, kind, row, "limit-changed", payload, related_to)


def state_payload(
    previous: str | None, kind: str, name: str, message: str | None, now: datetime
) -> dict[str, Any]:
    return {
        "intended": {"from": previous, "to": kind},
        "validated_state": {
            "type": kind,
            "name": name,
            "message": message,
            "timestamp": now.isoformat(),
        },
    }


def _table(model: type[m.Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


EVENTS, RELATED = _table(m.Event), _table(m.EventRelated)
_INSERT_EVENTS, _INSERT_RELATED = insert(EVENTS), insert(RELATED)
RUNS, FLOWS = _table(m.FlowRun), _table(m.Flow)
DEPLOYMENTS, QUEUES, POOLS = _table(m.Deployment), _table(m.WorkQueue), _table(m.WorkPool)
RUN_LABELS = (
    RUNS.c.id, RUNS.c.name, RUNS.c.state_type, RUNS.c.state_name, RUNS.c.state_message,
    RUNS.c.state_timestamp, RUNS.c.worker_name, RUNS.c.tags, FLOWS.c.id.label("flow_id"),
    FLOWS.c.name.label("flow_name"), DEPLOYMENTS.c.id.label("deployment_id"),
    DEPLOYMENTS.c.name.label("deployment_name"), DEPLOYMENTS.c.tags.label("deployment_tags"),
    POOLS.c.id.label("pool_id"), POOLS.c.name.label("pool_name"),
    QUEUES.c.id.label("queue_id"), QUEUES.c.name.label("queue_name"),
)  # fmt: skip
"""What a flow run's state event names, by these labels (a query joining the run's flow,
deployment, queue and pool may select them and hand its rows to ``flow_run_rows``)."""
_RUN_LABELS = (
    select(*RUN_LABELS)
    .join(FLOWS, RUNS.c.flow_id == FLOWS.c.id)
    .outerjoin(DEPLOYMENTS, RUNS.c.deployment_id == DEPLOYMENTS.c.id)
    .outerjoin(QUEUES, RUNS.c.queue_id == QUEUES.c.id)
    .outerjoin(POOLS, QUEUES.c.pool_id == POOLS.c.id)
    .where(RUNS.c.id.in_(bindparam("run_ids", expanding=True)))
)


def flow_run_states(
    session: Session, run_ids: Iterable[str], previous: str | None, *, now: datetime
) -> None:
    """``flow_run_state`` for runs changed by SQL core (late runs, the scheduler)."""
    ids = list(run_ids)
    if ids:
        rows = session.connection().execute(_RUN_LABELS, {"run_ids": ids}).mappings().all()
        flow_run_rows(session, rows, previous)


def flow_run_rows(session: Session, rows: Iterable[RowMapping], previous: str | None) -> None:
    """``flow_run_state`` from rows that carry ``RUN_LABELS`` (the claim's own query)."""
    for r in rows:
        about, found = flow_run_labels(
            r["id"],
            r["name"],
            (r["flow_id"], r["flow_name"]),
            (r["deployment_id"], r["deployment_name"]) if r["deployment_id"] else None,
            (r["pool_id"], r["pool_name"], r["queue_id"], r["queue_name"])
            if r["queue_id"]
            else None,
            run_and_deployment_tags(r["tags"], r["deployment_tags"]),
        )
        if r["worker_name"] and r["pool_name"]:
            found.append(related("worker", "worker", f"{r['pool_name']}.{r['worker_name']}"))
        when, name = r["state_timestamp"], r["state_name"]
        payload = state_payload(previous, r["state_type"].value, name, r["state_message"], when)
        record(session, f"flowyard.flow-run.{name}", about, found, payload, occurred=when)


def flushed(session: Session, *rows: Any) -> None:
    """Flush when a row is new and its id not yet given (the events must name it)."""
    if any(getattr(row, "id", "") is None for row in rows):
        session.flush()


# -- after commit ------------------------------------------------------------------------


def install(db: Database, sink: Sink) -> None:
    """Hand the events of every committed transaction on ``db`` to ``sink``."""
    _sinks[db.engine] = sink


@event.listens_for(Session, "before_commit")
def _write(session: Session) -> None:
    """Insert the transaction's events, inside it, as it commits."""
    docs: list[Event] = session.info.get(_PENDING, [])
    if not docs:
        return
    received = datetime.now(UTC)
    connection = session.connection()  # SQL core: cheaper than the ORM's execute
    connection.execute(_INSERT_EVENTS, [_row(doc, received) for doc in docs])
    related = [
        {"event_id": str(doc.id), "resource_id": r[RESOURCE_ID], "role": r.get(RESOURCE_ROLE, "")}
        for doc in docs
        for r in doc.related
    ]
    if related:
        connection.execute(_INSERT_RELATED, related)


def _row(doc: Event, received: datetime) -> dict[str, Any]:
    occurred = doc.occurred if doc.occurred.tzinfo else doc.occurred.replace(tzinfo=UTC)
    return {
        "id": str(doc.id),
        "occurred": occurred,
        "event": doc.event,
        "resource_id": doc.resource.get(RESOURCE_ID, ""),
        "resource_name": doc.resource.get(RESOURCE_NAME),
        "resource": doc.resource,
        "related": doc.related,
        "payload": doc.payload,
        "follows": str(doc.follows) if doc.follows else None,
        "received": received,
    }


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    docs: list[Event] = session.info.pop(_PENDING, [])
    if not docs:
        return
    bind = session.get_bind()
    sink = _sinks.get(bind) if isinstance(bind, Engine) else None
    if sink is not None:
        sink(docs)


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)
