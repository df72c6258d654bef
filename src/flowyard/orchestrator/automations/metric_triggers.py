"""Metric triggers: what the server measures about deployments, work pools and work queues,
compared with a threshold on a period (Prefect Cloud's metric triggers, in the open server).

The evaluator calls ``evaluate`` every ``automation_metric_interval_seconds`` for each
metric trigger of each enabled automation (nested ones too, by their path). A call
selects the resources of the trigger's ``match``, measures the metric of all of them in
one grouped query per kind of resource, and keeps an ``AutomationMetricState`` row for
each resource whose condition holds: ``since`` when, and whether it has fired. A change is
returned when a resource starts firing (the condition held ``firing_for`` seconds) and,
once, when it stops holding after having fired.

Resources carry the labels of the server's own events about them (``events.changed``):
``flowyard.resource.id`` = ``flowyard.deployment.<id>``, ``flowyard.work-pool.<id>`` or
``flowyard.work-queue.<id>``, and ``flowyard.resource.name`` = the deployment's, pool's or
queue's own name. The runs of a pool are those of its queues.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import structlog
from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session

from flowyard.events.schemas import RESOURCE_ID, RESOURCE_NAME
from flowyard.orchestrator.automations.matching import spec_matches
from flowyard.schemas.automations import MetricQuery, MetricTrigger
from flowyard.states import TERMINAL_STATES, StateType
from flowyard.store import models as m

log = structlog.get_logger()

MAX_RESOURCES = 10_000
"""At most this many resources are measured per trigger and call (a warning beyond)."""
MAX_IN_LIST = 20
"""A measure names at most this many selected resources in SQL (their runs are then read
through the index of their key); beyond, it groups the runs of the whole range (read
through an index on the run's end or start time, if the store has one) and keeps the
selected resources'."""
LATE = "Late"
FAILURES = [StateType.FAILED, StateType.CRASHED]
COUNTS = frozenset({"late_runs", "queue_depth"})
"""Metrics that are 0 for a resource with no such run; the others have no value then."""
COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True)
class MetricChange:
    state: Literal["triggered", "resolved"]
    resource: dict[str, str]
    """Labels of the measured resource: ``flowyard.resource.id`` and ``.name``."""
    value: float


@dataclass(frozen=True)
class _Kind:
    """A kind of resource: its table and the column of a run that names it."""

    label: str
    model: type[m.WorkPool] | type[m.WorkQueue] | type[m.Deployment]
    through_queue: bool = False

    @property
    def prefix(self) -> str:
        return f"flowyard.{self.label}."

    def run_key(self) -> InstrumentedAttribute[Any]:
        if self.label == "deployment":
            return m.FlowRun.deployment_id
        return m.WorkQueue.pool_id if self.through_queue else m.FlowRun.queue_id


DEPLOYMENT = _Kind("deployment", m.Deployment)
KINDS = (DEPLOYMENT, _Kind("work-pool", m.WorkPool, True), _Kind("work-queue", m.WorkQueue))


def evaluate(
    session: Session, automation_id: str, path: str, trigger: MetricTrigger, now: datetime
) -> list[MetricChange]:
    """Measure the trigger's metric for every resource its ``match`` selects, compare with
    the threshold, update the ``AutomationMetricState`` rows (automation_id, trigger=path,
    resource_id) in ``session`` (the caller commits), and return the changes: 'triggered'
    once when the condition has held for ``firing_for`` seconds, 'resolved' once when it
    stops holding after having fired.

    An empty ``match`` selects every deployment. A resource without a value (no run ended,
    or started, in ``range`` for the rates and means) is not evaluated: its state is left
    as it is. A resource no longer selected (deleted, say) loses its state, resolving if it
    had fired."""
    resources, complete = _select(session, trigger.match)
    values = _values(session, resources, trigger.metric, now)
    rows = {
        row.resource_id: row
        for row in session.scalars(
            select(m.AutomationMetricState).where(
                m.AutomationMetricState.automation_id == automation_id,
                m.AutomationMetricState.trigger == path,
            )
        )
    }
    changes: list[MetricChange] = []
    for rid in sorted(resources.keys() | rows.keys()):
        row = rows.get(rid)
        if rid in values:
            if row is None:
                row = m.AutomationMetricState(
                    automation_id=automation_id, trigger=path, resource_id=rid, since=now
                )
            changes += _step(session, row, resources[rid], values[rid], trigger.metric, now)
        elif rid not in resources and complete and row is not None:
            changes += _forget(session, row, {RESOURCE_ID: rid})
        # else no value: the condition is not evaluated, the state stays as it is
    return changes


def _step(
    session: Session,
    row: m.AutomationMetricState,
    labels: dict[str, str],
    value: float,
    metric: MetricQuery,
    now: datetime,
) -> list[MetricChange]:
    """One resource's new value: its state held (since when, fired?) or forgotten."""
    stored = row in session
    row.value = value
    if not COMPARE[metric.operator](value, metric.threshold):
        return _forget(session, row, labels) if stored else []
    if not stored:
        row.since, row.firing = now, False
        session.add(row)
    if row.firing or (now - row.since).total_seconds() < metric.firing_for:
        return []
    row.firing = True
    return [MetricChange("triggered", labels, value)]


def _forget(
    session: Session, row: m.AutomationMetricState, labels: dict[str, str]
) -> list[MetricChange]:
    """Delete the state of a resource whose condition stopped holding: resolved if it fired."""
    session.delete(row)
    if row.firing:
        return [MetricChange("resolved", labels, row.value if row.value is not None else 0.0)]
    return []


def _values(
    session: Session, resources: Mapping[str, object], metric: MetricQuery, now: datetime
) -> dict[str, float]:
    """The metric of the resources that have a value, by resource id."""
    values: dict[str, float] = {}
    for kind in KINDS:
        ids = [rid[len(kind.prefix) :] for rid in resources if rid.startswith(kind.prefix)]
        if ids:
            measured = _measure(session, kind, ids, metric, now)
            values.update({kind.prefix + key: value for key, value in measured.items()})
    return values


# -- selecting resources -----------------------------------------------------------------


def _select(
    session: Session, spec: Mapping[str, str | list[str]]
) -> tuple[dict[str, dict[str, str]], bool]:
    """The labels of the resources ``spec`` selects, by resource id, and whether that is
    all of them (not cut at ``MAX_RESOURCES``). SQL narrows by the patterns of
    ``flowyard.resource.id`` and ``.name`` when it can; ``spec_matches`` decides."""
    kinds = [DEPLOYMENT] if not spec else list(KINDS)
    found: dict[str, dict[str, str]] = {}
    for kind in kinds:
        by_id = _id_filter(kind, _patterns(spec, RESOURCE_ID))
        by_name = _column_filter(kind.model.name, _patterns(spec, RESOURCE_NAME))
        if by_id is None or by_name is None:
            continue  # no resource of this kind can match
        query = select(kind.model.id, kind.model.name).where(by_id, by_name)
        rows = session.execute(query.order_by(kind.model.id).limit(MAX_RESOURCES + 1)).all()
        for ident, name in rows:
            labels = {RESOURCE_ID: kind.prefix + ident, RESOURCE_NAME: name}
            if spec_matches(spec, labels):
                found[labels[RESOURCE_ID]] = labels
        if len(rows) > MAX_RESOURCES or len(found) > MAX_RESOURCES:
            log.warning("metric_trigger_too_broad", kind=kind.label, limit=MAX_RESOURCES)
            return dict(list(found.items())[:MAX_RESOURCES]), False
    return found, True


def _patterns(spec: Mapping[str, str | list[str]], label: str) -> list[str] | None:
    value = spec.get(label)
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _id_filter(kind: _Kind, patterns: list[str] | None) -> ColumnElement[bool] | None:
    """Patterns of ``flowyard.resource.id`` as a filter on ``kind``'s ids (``None``: no
    resource of this kind can match)."""
    if patterns is None or any(p.startswith("!") for p in patterns):
        return true()
    within = []
    for pattern in patterns:
        stem = pattern[:-1] if pattern.endswith("*") else None
        if stem is not None and kind.prefix.startswith(stem):
            return true()  # the whole kind
        if pattern.startswith(kind.prefix):
            within.append(pattern[len(kind.prefix) :])
    return _column_filter(kind.model.id, within) if within else None


def _column_filter(
    column: InstrumentedAttribute[str], patterns: list[str] | None
) -> ColumnElement[bool] | None:
    """Positive patterns as SQL (equal or starting with); negations are left to Python."""
    if patterns is None or any(p.startswith("!") for p in patterns):
        return true()
    if not patterns:
        return None
    return or_(
        *(
            column.startswith(p[:-1], autoescape=True) if p.endswith("*") else column == p
            for p in patterns
        )
    )


# -- measuring ---------------------------------------------------------------------------


def _measure(
    session: Session, kind: _Kind, ids: list[str], metric: MetricQuery, now: datetime
) -> dict[str, float]:
    """The metric of each of ``ids`` (resources of ``kind``), in one grouped query."""
    key = kind.run_key()
    aggregate, where = _definition(metric, now, session.get_bind().dialect.name)
    query: Select[Any] = select(key, aggregate).select_from(m.FlowRun)
    if kind.through_queue:
        query = query.join(m.WorkQueue, m.FlowRun.queue_id == m.WorkQueue.id)
    narrow = key.in_(ids) if len(ids) <= MAX_IN_LIST else key.is_not(None)
    query = query.where(where, narrow).group_by(key)
    selected = set(ids)
    values = {
        ident: float(value)
        for ident, value in session.execute(query)
        if ident in selected and value is not None
    }
    if metric.name in COUNTS:
        return {ident: values.get(ident, 0.0) for ident in ids}
    return values


def _definition(
    metric: MetricQuery, now: datetime, dialect: str
) -> tuple[ColumnElement[Any], ColumnElement[bool]]:
    """What a metric aggregates over a resource's runs, and which runs."""
    since = now - timedelta(seconds=metric.range)
    seconds = _sqlite_seconds if dialect == "sqlite" else _seconds_between
    run = m.FlowRun
    # Terminal runs are counted in the aggregate, not filtered in WHERE, so that an index on
    # end_time (not the one on state_type) serves the range.
    ended = and_(run.end_time > since, run.end_time <= now)
    terminal = run.state_type.in_(TERMINAL_STATES)
    if metric.name in ("successes", "failures"):
        wanted = FAILURES if metric.name == "failures" else [StateType.COMPLETED]
        hits = func.sum(case((run.state_type.in_(wanted), 1), else_=0))
        total = func.sum(case((terminal, 1), else_=0))
        return hits * 1.0 / func.nullif(total, 0), ended
    if metric.name == "duration":
        run_time = seconds(run.end_time, run.start_time)
        return func.avg(case((and_(terminal, run.start_time.is_not(None)), run_time))), ended
    if metric.name == "lateness":
        delay = seconds(run.start_time, run.scheduled_time)
        started = and_(run.start_time > since, run.start_time <= now)
        return func.avg(case((delay > 0, delay), else_=0.0)), started
    if metric.name == "late_runs":
        return func.count(), and_(run.state_type == StateType.SCHEDULED, run.state_name == LATE)
    # queue_depth: due, and not held by a claim (a retry waiting in its engine)
    waiting = and_(
        run.state_type == StateType.SCHEDULED,
        run.scheduled_time <= now,
        run.claim_token.is_(None),
    )
    return func.count(), waiting


def _seconds_between(later: Any, earlier: Any) -> ColumnElement[Any]:
    return func.extract("epoch", later - earlier)


def _sqlite_seconds(later: Any, earlier: Any) -> ColumnElement[Any]:
    """SQLite stores times as ISO text: Julian days apart, in seconds."""
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0
