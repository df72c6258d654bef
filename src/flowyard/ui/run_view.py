"""What the flow-run page shows, read from the store in one transaction: the run, its
state history, its task runs and a page of its logs. Every part is bounded, so that a
page (and a live message) stays small whatever the run did."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from flowyard import schemas as s
from flowyard.orchestrator import documents, pauses, runs
from flowyard.store import models as m
from flowyard.ui import param_form, views

MAX_STATES = 500  # the latest transitions shown (a run retried for days has more)
MAX_TASK_RUNS = 500  # the first task runs shown (the graph and Gantt views come later)
LOG_PAGE = 200
MAX_CHILDREN = 100  # subflow runs linked from the page
MAX_BACKGROUND = 100  # background task runs (``.delay()``) listed on the page
MAX_SEARCH = 200  # characters of a log search
DOWNLOAD_CHUNK = 2_000  # logs read per query while a download streams
MAX_DOWNLOAD = 500_000  # log lines in one download (the API pages through the rest)


@dataclass(frozen=True)
class RunView:
    run: s.FlowRun
    tags: list[str]
    states: list[s.StateDoc]
    earlier_states: bool  # older transitions exist beyond MAX_STATES
    task_runs: list[s.TaskRun]
    more_task_runs: bool
    parent: RunLink | None = None  # the run whose task called this one as a subflow
    children: tuple[RunLink, ...] = ()  # the subflow runs this run's tasks called (the first)
    pause: s.RunInput | None = None  # the pause a Paused run is in (its input schema, if any)
    background: tuple[s.TaskRun, ...] = ()  # the background task runs it made (the first)
    more_background: bool = False

    @property
    def input_fields(self) -> list[param_form.FormField]:
        """The resume form's fields, from the input schema of the pause the run is in."""
        schema = self.pause.input_schema if self.pause is not None else None
        return param_form.fields(schema, {}, prefix="run_input")


@dataclass(frozen=True)
class RunLink:
    id: str
    name: str
    state: str  # its state's name


def _tags(row: m.FlowRun) -> list[str]:
    """The run's tags; for a run made before runs had tags (NULL), its deployment's."""
    if row.tags is not None:
        return list(row.tags)
    return list(row.deployment.tags or []) if row.deployment else []


def _link(row: m.FlowRun) -> RunLink:
    return RunLink(row.id, row.name, row.state_name or row.state_type.value.title())


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
        tags=_tags(row),
        states=[documents.state_row(r) for r in reversed(states[:MAX_STATES])],
        earlier_states=len(states) > MAX_STATES,
        task_runs=[documents.task_run(t) for t in tasks[:MAX_TASK_RUNS]],
        more_task_runs=len(tasks) > MAX_TASK_RUNS,
        parent=_parent(session, row.parent_task_run_id),
        pause=pauses.current(row),
        **_background(session, row.id),
        children=tuple(
            _link(child)
            for child in session.scalars(
                select(m.FlowRun)
                .join(m.TaskRun, m.TaskRun.id == m.FlowRun.parent_task_run_id)
                .where(m.TaskRun.flow_run_id == row.id)
                .order_by(m.FlowRun.created)
                .limit(MAX_CHILDREN)
            )
        ),
    )


def _background(session: Session, run_id: str) -> dict[str, Any]:
    """The background task runs ``.delay()`` made inside the run (``caller_flow_run_id``)."""
    rows = session.scalars(
        select(m.TaskRun)
        .where(m.TaskRun.caller_flow_run_id == run_id)
        .order_by(m.TaskRun.created, m.TaskRun.id)
        .limit(MAX_BACKGROUND + 1)
    ).all()
    return {
        "background": tuple(documents.task_run(r) for r in rows[:MAX_BACKGROUND]),
        "more_background": len(rows) > MAX_BACKGROUND,
    }


def _parent(session: Session, task_run_id: str | None) -> RunLink | None:
    if task_run_id is None:
        return None
    row = session.scalars(
        select(m.FlowRun)
        .join(m.TaskRun, m.TaskRun.flow_run_id == m.FlowRun.id)
        .where(m.TaskRun.id == task_run_id)
    ).first()
    return _link(row) if row is not None else None


def read_logs(
    session: Session,
    run_id: str,
    *,
    after: int,
    level: int,
    limit: int = LOG_PAGE,
    containing: str = "",
) -> tuple[list[s.Log], bool]:
    """Up to ``limit`` logs of the run at ``level`` or above after log id ``after`` (and
    with ``containing`` in their message, if given), oldest first, and whether more follow
    (a keyset page on the ``(flow_run_id, id)`` index)."""
    query = select(m.Log).where(m.Log.flow_run_id == run_id, m.Log.id > after, m.Log.level >= level)
    if containing:
        query = query.where(m.Log.message.contains(containing, autoescape=True))
    query = query.order_by(m.Log.id).limit(limit + 1)
    rows = session.scalars(query).all()
    return [documents.log(r) for r in rows[:limit]], len(rows) > limit


def log_chunk(session: Session, run_id: str, *, after: int) -> list[tuple[int, str]]:
    """The next ``DOWNLOAD_CHUNK`` logs of the run after log id ``after``, as text lines."""
    rows = session.execute(
        select(m.Log.id, m.Log.timestamp, m.Log.level, m.Log.message)
        .where(m.Log.flow_run_id == run_id, m.Log.id > after)
        .order_by(m.Log.id)
        .limit(DOWNLOAD_CHUNK)
    ).all()
    return [
        (r.id, f"{views.when(r.timestamp)} {views.level_name(r.level)} {r.message}\n") for r in rows
    ]
