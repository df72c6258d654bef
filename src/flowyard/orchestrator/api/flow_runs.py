"""Flow runs: read and filter, move through the state machine, cancel; their logs."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Literal, cast

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session

from flowyard import schemas as s
from flowyard.errors import Conflict, InvalidInput
from flowyard.orchestrator import (
    documents,
    lineage,
    pauses,
    queue_sync,
    run_inputs,
    run_pages,
    runs,
)
from flowyard.orchestrator.api.run_tokens import renewal
from flowyard.orchestrator.lookups import get_flow
from flowyard.orchestrator.run_search import tag_clauses
from flowyard.orchestrator.runtime import Orch, Orchestrator
from flowyard.orchestrator.transitions import Decision
from flowyard.states import StateType
from flowyard.store import models as m

router = APIRouter(prefix="/api", tags=["flow runs"])
RUNS = cast(Table, m.FlowRun.__table__)


@router.post("/flow_runs", status_code=201)
async def create_flow_run(body: s.FlowRunCreate, orch: Orch) -> s.FlowRun:
    """Record a run that is not dispatched through a pool (a flow called directly)."""

    def create() -> s.FlowRun:
        with orch.db.session() as session:
            flow = get_flow(session, body.flow_name, create=True)
            run = runs.new_run(
                session,
                flow=flow,
                now=datetime.now(UTC),
                parameters=body.parameters,
                name=body.name,
                state=body.state,
                parent_task_run_id=body.parent_task_run_id,
                tags=body.tags,
            )
            if body.heartbeat_seconds is not None:
                runs.heard_of(run, body.heartbeat_seconds)
            session.flush()
            return documents.flow_run(run)

    return await orch.in_thread(create)


NEXT_CURSOR = "Flowyard-Next-Cursor"
TagFilter = Annotated[list[str], Query(max_length=s.MAX_TAGS)]
MAX_IDS = 200
"""Run ids one list request may name (``id``, repeated)."""


@router.get("/flow_runs")
async def list_flow_runs(
    request: Request,
    response: Response,
    orch: Orch,
    state: str | None = Query(default=None, max_length=run_pages.MAX_FILTER_CHARS),
    flow: str | None = Query(default=None, max_length=run_pages.MAX_FILTER_CHARS),
    deployment: str | None = Query(default=None, max_length=run_pages.MAX_FILTER_CHARS),
    deployment_id: str | None = Query(default=None, max_length=run_pages.MAX_FILTER_CHARS),
    pool: str | None = Query(default=None, max_length=run_pages.MAX_FILTER_CHARS),
    tag: TagFilter = [],  # noqa: B006 - FastAPI reads the default, never mutates it
    any_tag: TagFilter = [],  # noqa: B006
    ids: Annotated[list[str], Query(alias="id", max_length=MAX_IDS)] = [],  # noqa: B006
    name: str | None = Query(default=None, max_length=run_pages.MAX_FILTER_CHARS),
    since: str | None = Query(default=None, max_length=64),
    until: str | None = Query(default=None, max_length=64),
    order: Literal[
        "newest", "oldest", "started", "started-earliest", "ended", "ended-earliest"
    ] = "newest",
    cursor: str | None = Query(default=None, max_length=512),
    limit: int = Query(default=50, ge=1, le=10_000),
) -> list[s.FlowRun]:
    """Runs matching every filter given, newest (or ``order=oldest``) first, by keyset
    pages: when more match, the ``Flowyard-Next-Cursor`` header holds the ``cursor`` that
    asks for the next page. ``since``/``until`` bound the creation time (ISO 8601).
    ``order=started`` / ``ended`` (latest first) or ``started-earliest`` /
    ``ended-earliest`` sort by start or end time instead: only runs that have that time.
    ``tag`` (repeated) keeps the runs carrying every tag given, ``any_tag`` (repeated)
    those carrying at least one; ``id`` (repeated) the runs of these ids."""
    _given_once(request, SINGLE_VALUED)
    where = run_pages.RunFilter.from_query(request.query_params, [state or ""])
    _bounded_tags([*tag, *any_tag])
    if any(not one or len(one) > run_pages.MAX_FILTER_CHARS for one in ids):
        raise InvalidInput(f"id: 1 to {run_pages.MAX_FILTER_CHARS} characters")

    def read() -> tuple[list[s.FlowRun], str | None]:
        with orch.db.read() as session:
            extra = [m.FlowRun.deployment_id == deployment_id] if deployment_id else []
            if ids:
                extra.append(m.FlowRun.id.in_(ids))
            more = [one for one in tag if one != where.tag]  # ``where`` has the last one
            extra += tag_clauses(session, more, any_tag)
            found, next_cursor = run_pages.page(
                session, where, limit=limit, cursor=cursor, extra=extra
            )
            return [documents.flow_run(r) for r in found], next_cursor

    found, next_cursor = await orch.in_thread(read)
    if next_cursor:
        response.headers[NEXT_CURSOR] = next_cursor
    return found


SINGLE_VALUED = (
    "state", "flow", "deployment", "deployment_id", "pool", "name", "since", "until", "order",
    "cursor", "limit",
)  # fmt: skip
"""The list's parameters that take one value: given twice, the request is refused rather
than one of them silently dropped."""


def _given_once(request: Request, names: tuple[str, ...]) -> None:
    for name in names:
        if len(request.query_params.getlist(name)) > 1:
            raise InvalidInput(f"{name}: give it once (the list filters by one {name})")


def _bounded_tags(tags: list[str]) -> None:
    for tag in tags:
        if not tag or len(tag) > run_pages.MAX_FILTER_CHARS:
            raise InvalidInput(f"tag: 1 to {run_pages.MAX_FILTER_CHARS} characters")


@router.get("/flow_runs/{ref}")
async def read_flow_run(ref: str, orch: Orch) -> s.FlowRun:
    def read() -> s.FlowRun:
        with orch.db.read() as session:
            return documents.flow_run(runs.get_run(session, ref))

    return await orch.in_thread(read)


@router.get("/flow_runs/{ref}/history")
async def read_history(ref: str, orch: Orch) -> s.FlowRunHistory:
    def read() -> s.FlowRunHistory:
        with orch.db.read() as session:
            run = runs.get_run(session, ref)
            rows = session.scalars(
                select(m.FlowRunState)
                .where(m.FlowRunState.flow_run_id == run.id)
                .order_by(m.FlowRunState.id)
            ).all()
            return s.FlowRunHistory(
                run=documents.flow_run(run), states=[documents.state_row(r) for r in rows]
            )

    return await orch.in_thread(read)


@router.post("/flow_runs/{ref}/state")
async def set_flow_run_state(ref: str, body: s.StateChange, orch: Orch) -> s.StateChangeResult:
    def change() -> tuple[s.StateChangeResult, runs.QueueEffect | None]:
        with orch.db.session() as session:
            run = runs.get_run(session, ref, for_update=True)
            if body.type is StateType.PAUSED and body.pause is not None and not body.force:
                decision, effect = pauses.pause(session, run, body, datetime.now(UTC))
            else:
                decision, effect = runs.set_state(
                    session,
                    run,
                    body.type,
                    now=datetime.now(UTC),
                    message=body.message,
                    token=body.token,
                    force=body.force,
                    scheduled_time=body.scheduled_time,
                )
            result = _change_result(run, decision)
            if body.with_run and decision.accepted and body.type is StateType.RUNNING:
                result.run, result.deployment = _started(orch, session, run)
                result.lineage = lineage.of(session, run)
            return result, effect

    result, effect = await orch.in_thread(change)
    await queue_sync.apply(orch, effect)
    return result


def _change_result(run: m.FlowRun, decision: Decision) -> s.StateChangeResult:
    return s.StateChangeResult(
        accepted=decision.accepted, state=documents.state(run), reason=decision.reason
    )


def _started(
    orch: Orchestrator, session: Session, run: m.FlowRun
) -> tuple[s.FlowRun, s.Deployment | None]:
    """What the engine reads to start a run: the run, and its deployment (cached)."""
    deployment = None
    if run.deployment is not None:
        deployment = orch.deployment_docs.get(session, run.deployment.id, run.deployment.updated)
    return documents.flow_run(run), deployment


@router.post("/flow_runs/{ref}/cancel")
async def cancel_flow_run(ref: str, orch: Orch) -> s.FlowRun:
    """Scheduled, Pending and suspended runs are Cancelled at once (as Prefect's
    BypassCancellingFlowRunsWithNoInfra); running ones go to Cancelling.

    So does a run awaiting a flow retry in its engine: its process is alive and holds it.
    """

    def cancel() -> tuple[s.FlowRun, runs.QueueEffect | None]:
        with orch.db.session() as session:
            run = runs.get_run(session, ref, for_update=True)
            if run.state_type is StateType.CANCELLING:
                return documents.flow_run(run), None
            if run.state_type.is_terminal:
                raise Conflict(f"flow run {run.id} is already {run.state_type.display_name}")
            immediate = run.state_type in (StateType.SCHEDULED, StateType.PENDING)
            immediate = immediate and not runs.waits_in_process(run)
            immediate = immediate or pauses.is_suspended(run)  # no process to stop
            target = StateType.CANCELLED if immediate else StateType.CANCELLING
            _, effect = runs.set_state(
                session,
                run,
                target,
                now=datetime.now(UTC),
                message="cancelled by request",
                force=True,
            )
            return documents.flow_run(run), effect

    doc, effect = await orch.in_thread(cancel)
    await queue_sync.apply(orch, effect)
    return doc


@router.post("/flow_runs/{ref}/infrastructure", status_code=204)
async def report_infrastructure(ref: str, body: s.InfrastructureReport, orch: Orch) -> None:
    """Record the run's infrastructure id (and details) for the claim that launched it.

    One UPDATE by id and claim token, the common case (one per launched run); a prefix, a
    missing run or another claim's token takes the ORM's path, which says which it was."""
    values: dict[str, object] = {"infrastructure_id": body.infrastructure_id}
    if body.details is not None:  # a report without details keeps earlier ones
        values["infrastructure_details"] = body.details

    def record() -> None:
        with orch.db.session() as session:
            if _set_infrastructure(session, ref, body.token, values):
                return
            run = runs.get_run(session, ref, for_update=True)  # 404, an ambiguous prefix
            if run.claim_token != body.token:
                raise Conflict("the claim token does not match: this run was claimed again")
            _set_infrastructure(session, run.id, body.token, values)

    await orch.in_thread(record)


def _set_infrastructure(
    session: Session, run_id: str, token: str, values: dict[str, object]
) -> bool:
    """One UPDATE of the run's infrastructure columns, if ``token`` is still its claim's."""
    query = update(RUNS).where(RUNS.c.id == run_id, RUNS.c.claim_token == token).values(values)
    return bool(session.connection().execute(query).rowcount == 1)


@router.post("/flow_runs/{ref}/suspend")
async def suspend_flow_run(ref: str, body: s.SuspendRequest, orch: Orch) -> s.StateChangeResult:
    """Suspend a Running run from outside it, as Prefect's ``suspend_flow_run(flow_run_id=
    ...)``: Paused (``Suspended``), its claim and slots let go; its engine leaves at its
    flow's next task call. Refused as a pause of the run itself would be (not running, a
    subflow, no deployment, a key that fired before)."""

    def suspend() -> tuple[s.StateChangeResult, runs.QueueEffect | None]:
        with orch.db.session() as session:
            run = runs.get_run(session, ref, for_update=True)
            decision, effect = pauses.suspend_from_outside(session, run, body, datetime.now(UTC))
            return _change_result(run, decision), effect

    result, effect = await orch.in_thread(suspend)
    await queue_sync.apply(orch, effect)
    return result


@router.post("/flow_runs/{ref}/resume")
async def resume_flow_run(ref: str, orch: Orch, body: s.ResumeRequest | None = None) -> s.FlowRun:
    """Resume a Paused run. A paused one goes back to Running: its engine, waiting in
    ``pause_flow_run``, carries on. A suspended one is Scheduled again (``Resuming``): a
    worker starts it from the top. A run waiting for input needs ``run_input`` that
    satisfies its schema (422 with the reason otherwise; the run stays Paused)."""

    def resume() -> tuple[s.FlowRun, runs.QueueEffect | None, str | None]:
        with orch.db.session() as session:
            run = runs.get_run(session, ref, for_update=True)
            given = body.run_input if body is not None else None
            effect, refused = pauses.resume(session, run, given, datetime.now(UTC))
            return documents.flow_run(run), effect, refused

    doc, effect, refused = await orch.in_thread(resume)
    await queue_sync.apply(orch, effect)
    if refused is not None:  # timed out: Failed, committed
        raise Conflict(refused)
    return doc


@router.post("/flow_runs/{ref}/messages", status_code=201)
async def create_flow_run_input(ref: str, body: s.FlowRunInputCreate, orch: Orch) -> None:
    """Send the run a message (``send_input``): a JSON object under a key new to the run
    (409 otherwise, or when the run is final or holds too many)."""

    def create() -> None:
        with orch.db.session() as session:
            run_inputs.create(session, runs.get_run(session, ref), body)

    await orch.in_thread(create)


@router.post("/flow_runs/{ref}/messages/filter")
async def filter_flow_run_input(
    ref: str, body: s.FlowRunInputFilter, orch: Orch
) -> list[s.FlowRunInput]:
    """The run's messages whose key starts with ``prefix``, oldest first, but the keys
    given in ``exclude_keys`` (those read already)."""

    def read() -> list[s.FlowRunInput]:
        with orch.db.read() as session:
            return run_inputs.matching(session, runs.get_run(session, ref), body)

    return await orch.in_thread(read)


@router.get("/flow_runs/{ref}/input/{key}")
async def read_run_input(ref: str, key: str, orch: Orch) -> s.RunInput:
    """A pause of the run by its key: its input schema, and the input it was resumed with."""

    def read() -> s.RunInput:
        with orch.db.read() as session:
            return pauses.run_input(runs.get_run(session, ref), key)

    return await orch.in_thread(read)


@router.post("/flow_runs/{ref}/heartbeat")
async def run_heartbeat(
    ref: str, body: s.RunHeartbeat, orch: Orch, request: Request
) -> s.RunHeartbeatAck:
    """The engine's heartbeat: keeps the run's lease alive while its flow runs.

    A run whose engine and worker both stop beating is Crashed by the reconciler. The answer
    tells the engine to stop when the run is being cancelled or was taken from it, and
    renews the engine's run token.
    """

    def read() -> tuple[str, StateType, str | None, str | None]:
        with orch.db.read() as session:
            run = runs.get_run(session, ref)
            pool = run.queue.pool.name if run.queue else None
            return run.id, run.state_type, run.claim_token, pool

    run_id, state, token, pool = await orch.in_thread(read)
    if token is None and body.token is None and pool is None:  # a flow called directly
        return s.RunHeartbeatAck(state=await _heard_of(orch, run_id, body), stop=False)
    if token != body.token:
        return s.RunHeartbeatAck(state=state, stop=True)
    if pool is not None and not state.is_terminal:
        until = time.time() + orch.settings.claim_lease_seconds
        await orch.queues.extend_leases(pool, [run_id], until)
    stop = state in (StateType.CANCELLING, StateType.CANCELLED) or state.is_terminal
    renewed = None if stop else renewal(orch, getattr(request.state, "api_key", None))
    return s.RunHeartbeatAck(state=state, stop=stop, run_token=renewed)


async def _heard_of(orch: Orchestrator, run_id: str, body: s.RunHeartbeat) -> StateType:
    """Push back a directly called run's deadline (while it is not final); its state."""
    interval = body.interval_seconds or orch.settings.run_heartbeat_seconds

    def write() -> StateType:
        with orch.db.session() as session:
            run = runs.get_run(session, run_id, for_update=True)
            if not run.state_type.is_terminal:
                runs.heard_of(run, interval)
            return run.state_type

    return await orch.in_thread(write)


# -- logs -----------------------------------------------------------------------------------


@router.post("/logs", status_code=201)
async def create_logs(body: s.LogBatch, orch: Orch) -> None:
    rows = [log.model_dump() for log in body]

    def write() -> None:
        # one executemany, not 1000 ORM objects: the store's write lock is held briefly
        with orch.db.session() as session:
            session.execute(insert(m.Log), rows)

    if body:
        async with orch.log_writes:
            await orch.in_thread(write)


@router.get("/flow_runs/{ref}/logs")
async def read_logs(
    orch: Orch,
    ref: str,
    after_id: int = Query(default=0, ge=0, le=2**63 - 1),
    limit: int = Query(default=1000, ge=1, le=10_000),
) -> list[s.Log]:
    def read() -> list[s.Log]:
        with orch.db.read() as session:
            run = runs.get_run(session, ref)
            query = (
                select(m.Log)
                .where(m.Log.flow_run_id == run.id, m.Log.id > after_id)
                .order_by(m.Log.id)
                .limit(limit)
            )
            return [documents.log(r) for r in session.scalars(query).all()]

    return await orch.in_thread(read)
