"""Task runs: records (bulk upsert), one run's state, reads; a flow run's task graph and
its result reference.

The SDK chooses task-run ids and times itself and ships records in batches, so that a
flow of fast tasks costs one request per few hundred task runs instead of two per task.
A record upserts every field of its task run. A final state is never replaced by a
non-final one, by a record (it can arrive late, e.g. retried after an API outage) or by
``POST /api/task_runs/{id}/state`` (409): a task run that runs again is a new task run.
Background task runs (``Task.delay``) are the exception: the state route may queue a
final one again (``background_runs.set_state``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from sqlalchemy import and_, literal, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from flowyard import schemas as s
from flowyard.errors import Conflict, InvalidInput, NotFound
from flowyard.orchestrator import documents, events, runs
from flowyard.orchestrator.api import background_tasks as background
from flowyard.orchestrator.api.background_tasks import Background
from flowyard.orchestrator.graph import build_graph
from flowyard.orchestrator.runtime import Orch
from flowyard.states import TERMINAL_STATES, StateType
from flowyard.store import models as m

router = APIRouter(prefix="/api", tags=["task runs"])

MAX_RECORDS = 5_000

# Columns a later record of the same task run overwrites (never its id, run or creation).
_UPDATED = (
    "name", "task_key", "parameters", "state_type", "state_name", "message", "start_time",
    "end_time", "tags", "task_version", "task_inputs", "cache_key", "run_count", "result_ref",
)  # fmt: skip


@router.post("/task_runs/bulk")
async def upsert_task_runs(body: s.TaskRunBatch, orch: Orch) -> s.TaskRunUpsertResult:
    """Create or update task runs by id; records of unknown flow runs are left out."""
    if len(body) > MAX_RECORDS:
        raise InvalidInput(f"at most {MAX_RECORDS} task-run records per request")
    latest = {record.id: record for record in body}  # one row per id, the last record wins

    def write() -> s.TaskRunUpsertResult:
        with orch.db.session() as session:
            return upsert(session, list(latest.values()))

    return await orch.in_thread(write)


def upsert(session: Session, records: list[s.TaskRunRecord]) -> s.TaskRunUpsertResult:
    named = {record.flow_run_id for record in records}
    known = set(session.scalars(select(m.FlowRun.id).where(m.FlowRun.id.in_(named))))
    rows = [_row(record) for record in records if record.flow_run_id in known]
    if rows:
        before = _states(session, [row["id"] for row in rows])
        written = set(session.scalars(_upsert_statement(session).returning(m.TaskRun.id), rows))
        now = m.utcnow()
        for row in rows:
            was = before.get(row["id"])
            if row["id"] in written and was != (row["state_type"], row["state_name"]):
                events.task_run_state(session, row, was[0].value if was else None, now=now)
    return s.TaskRunUpsertResult(upserted=len(rows), unknown_flow_runs=sorted(named - known))


def _states(session: Session, ids: list[str]) -> dict[str, tuple[StateType, str | None]]:
    query = select(m.TaskRun.id, m.TaskRun.state_type, m.TaskRun.state_name)
    return {i: (t, n) for i, t, n in session.execute(query.where(m.TaskRun.id.in_(ids)))}


def _upsert_statement(session: Session) -> Any:
    """INSERT … ON CONFLICT (id) DO UPDATE, unless that would take a final state back or
    touch a task run of another flow run (or a background run, whose queue follows its
    state): a record only ever updates a task run of the flow run it names."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = m.TaskRun.__table__
    insert = dialect.insert(table)
    # literals, not bound lists: an IN list cannot expand inside an executemany
    final = [literal(state.value) for state in sorted(TERMINAL_STATES)]
    return insert.on_conflict_do_update(
        index_elements=["id"],
        set_={column: insert.excluded[column] for column in _UPDATED},
        where=and_(
            table.c.flow_run_id == insert.excluded.flow_run_id,
            or_(table.c.state_type.not_in(final), insert.excluded.state_type.in_(final)),
        ),
    )


def _row(record: s.TaskRunRecord) -> dict[str, Any]:
    inputs = {name: [i.model_dump() for i in ids] for name, ids in record.task_inputs.items()}
    return {
        "id": record.id,
        "flow_run_id": record.flow_run_id,
        "name": record.name,
        "task_key": record.task_key,
        "parameters": record.parameters,
        "state_type": record.state,
        "state_name": record.state_name,
        "message": record.message,
        "start_time": record.start_time,
        "end_time": record.end_time,
        "tags": record.tags,
        "task_version": record.task_version,
        "task_inputs": inputs,
        "cache_key": record.cache_key,
        "run_count": record.run_count,
        "result_ref": record.result.model_dump() if record.result else None,
        "created": m.utcnow(),
    }


def _takes_final_back(current: StateType, proposed: StateType) -> bool:
    """Would moving a task run from ``current`` to ``proposed`` take a final state back?"""
    return current.is_terminal and not proposed.is_terminal


@router.post("/task_runs/{task_run_id}/state")
async def set_task_run_state(
    task_run_id: str, body: s.TaskRunUpdate, orch: Orch, bg: Background
) -> s.TaskRun:
    """Set a task run's state (409 if that would take a final state back); a background
    run's queue and claim follow its state."""

    def update() -> s.TaskRun | None:
        with orch.db.session() as session:
            row = session.get(m.TaskRun, task_run_id, with_for_update=True)
            if row is None:
                raise NotFound(f"task run {task_run_id!r} not found")
            if row.flow_run_id is None:
                return None  # a background run (Task.delay): its queue must follow
            if _takes_final_back(row.state_type, body.state):
                raise Conflict(
                    f"task run {row.id} is already {row.state_type.display_name}: a final "
                    f"state is not replaced by {body.state.display_name} (a task run that "
                    "runs again is a new task run)"
                )
            now, previous = datetime.now(UTC), row.state_type.value
            _set_state(row, body, now=now)
            events.task_run_state(session, row, previous, now=now)
            session.flush()
            return documents.task_run(row)

    doc = await orch.in_thread(update)
    return doc if doc is not None else await background.set_state(orch, bg, task_run_id, body)


def _set_state(row: m.TaskRun, body: s.TaskRunUpdate, *, now: datetime) -> None:
    row.state_type, row.message = body.state, body.message
    row.state_name = body.state_name
    row.run_count = body.run_count if body.run_count is not None else row.run_count
    row.cache_key = body.cache_key or row.cache_key
    row.result_ref = body.result.model_dump() if body.result else row.result_ref
    if body.state is StateType.RUNNING and row.start_time is None:
        row.start_time = now
    if body.state.is_terminal:
        row.end_time = now


@router.get("/task_runs/{task_run_id}")
async def read_task_run(task_run_id: str, orch: Orch) -> s.TaskRun:
    def read() -> s.TaskRun:
        with orch.db.read() as session:
            row = session.get(m.TaskRun, task_run_id)
            if row is None:
                raise NotFound(f"task run {task_run_id!r} not found")
            return documents.task_run(row)

    return await orch.in_thread(read)


@router.get("/flow_runs/{ref}/task_runs")
async def list_task_runs(ref: str, orch: Orch) -> list[s.TaskRun]:
    def read() -> list[s.TaskRun]:
        with orch.db.read() as session:
            run = runs.get_run(session, ref)
            query = (
                select(m.TaskRun).where(m.TaskRun.flow_run_id == run.id).order_by(m.TaskRun.created)
            )
            return [documents.task_run(r) for r in session.scalars(query).all()]

    return await orch.in_thread(read)


@router.get("/flow_runs/{ref}/graph")
async def read_flow_run_graph(ref: str, orch: Orch) -> s.FlowRunGraph:
    """The run's task runs and subflow runs (nodes) and which fed which (edges)."""

    def read() -> s.FlowRunGraph:
        with orch.db.read() as session:
            run = runs.get_run(session, ref)
            task_rows = session.scalars(
                select(m.TaskRun).where(m.TaskRun.flow_run_id == run.id).order_by(m.TaskRun.created)
            ).all()
            child_rows = (
                session.scalars(
                    select(m.FlowRun)
                    .options(*runs.load_options())
                    .join(m.TaskRun, m.TaskRun.id == m.FlowRun.parent_task_run_id)
                    .where(m.TaskRun.flow_run_id == run.id)
                )
                .unique()
                .all()
            )
            task_runs = [documents.task_run(row) for row in task_rows]
            subflows = [documents.flow_run(row) for row in child_rows]
        return build_graph(run.id, task_runs, subflows)

    return await orch.in_thread(read)


@router.put("/flow_runs/{ref}/result", status_code=204)
async def set_flow_run_result(ref: str, body: s.ResultRef, orch: Orch) -> None:
    """Record where the flow run's persisted return value is."""

    def write() -> None:
        with orch.db.session() as session:
            run = runs.get_run(session, ref, for_update=True)
            run.result_ref = body.model_dump()

    await orch.in_thread(write)
