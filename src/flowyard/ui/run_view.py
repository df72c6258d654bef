"""What the flow-run page shows, read from the store in one transaction: the run, its
state history, its task runs and a page of its logs. Every part is bounded, so that a
page (and a live message) stays small whatever the run did."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from flowyard import schemas as s
from flowyard.orchestrator import documents, runs
from flowyard.store import models as m

MAX_STATES = 500  # the latest transitions shown (a run retried for days has more)
MAX_TASK_RUNS = 500  # the first task runs shown (the graph and Gantt views come later)
LOG_PAGE = 200


@dataclass(frozen=True)
class RunView:
    run: s.FlowRun
    tags: list[str]
    states: list[s.StateDoc]
    earlier_states: bool  # older transitions exist beyond MAX_STATES
    task_runs: list[s.TaskRun]
    more_task_runs: bool


def read_run(session: Session, ref: str) -> RunView:
    """The run ``ref`` (an id or a unique prefix; NotFound otherwise) and its history."""
    row = runs.get_run(session, ref)
    states = session.scalars(
        select(m.FlowRunState)
        .where(m.FlowRunState.flow_run_id == row.id)
        .order_by(m.FlowRunState.id.desc())
        .limit(MAX_STATES + 1)
    ).all()
    tasks = session.scalars(
        select(m.TaskRun)
        .where(m.TaskRun.flow_run_id == row.id)
        .order_by(m.TaskRun.created, m.TaskRun.id)
        .limit(MAX_TASK_RUNS + 1)
    ).all()
    return RunView(
        run=documents.flow_run(row),
        tags=list(row.deployment.tags or []) if row.deployment else [],
        states=[documents.state_row(r) for r in reversed(states[:MAX_STATES])],
        earlier_states=len(states) > MAX_STATES,
        task_runs=[documents.task_run(t) for t in tasks[:MAX_TASK_RUNS]],
        more_task_runs=len(tasks) > MAX_TASK_RUNS,
    )


def read_logs(
    session: Session, run_id: str, *, after: int, level: int, limit: int = LOG_PAGE
) -> tuple[list[s.Log], bool]:
    """Up to ``limit`` logs of the run at ``level`` or above after log id ``after``, oldest
    first, and whether more follow (a keyset page on the ``(flow_run_id, id)`` index)."""
    query = (
        select(m.Log)
        .where(m.Log.flow_run_id == run_id, m.Log.id > after, m.Log.level >= level)
        .order_by(m.Log.id)
        .limit(limit + 1)
    )
    rows = session.scalars(query).all()
    return [documents.log(r) for r in rows[:limit]], len(rows) > limit
