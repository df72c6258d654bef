"""Artifacts: created by flow and task runs, read by people; a key keeps its history.

The artifacts sharing a key are its versions; the newest is the key's current artifact
(``GET /keys/{key}``). Lists are newest first and paged by keyset: each page ends with an
opaque ``next_cursor`` that names the last artifact shown, so a page is as fast as the
first however far back it is, and artifacts created meanwhile do not shift it. Data is
stored as given (markdown too: whoever renders it sanitises it); ``schemas.artifacts``
bounds it. Updating an artifact (a progress figure) changes it in place, as in Prefect:
it does not add a version.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from sqlalchemy import Select, and_, delete, or_, select
from sqlalchemy.orm import Session

from flowyard.errors import InvalidInput, NotFound
from flowyard.orchestrator.runtime import Orch
from flowyard.schemas import artifacts as a
from flowyard.store import models as m

router = APIRouter(prefix="/api/artifacts", tags=["artifacts"])

MAX_PAGE = 200


@router.post("", status_code=201)
async def create_artifact(body: a.ArtifactCreate, orch: Orch) -> a.Artifact:
    """Publish an artifact for a flow run (and task run), or for no run (admin keys)."""

    def create() -> a.Artifact:
        with orch.db.session() as session:
            if body.flow_run_id and session.get(m.FlowRun, body.flow_run_id) is None:
                raise InvalidInput(f"flow_run_id: no flow run {body.flow_run_id!r}")
            row = m.Artifact(**body.model_dump())
            session.add(row)
            session.flush()
            return a.Artifact.model_validate(row)

    return await orch.in_thread(create)


@router.patch("/{artifact_id}")
async def update_artifact(artifact_id: str, body: a.ArtifactUpdate, orch: Orch) -> a.Artifact:
    """Replace an artifact's data (of its own type) and its description, each when given."""

    def update() -> a.Artifact:
        with orch.db.session() as session:
            row = _get(session, artifact_id)
            if body.data is not None:
                try:
                    a.check_data(row.type, body.data)
                except ValueError as exc:
                    raise InvalidInput(f"data: {exc}") from exc
                row.data = body.data
            if body.description is not None:
                row.description = body.description
            row.updated = m.utcnow()
            session.flush()
            return a.Artifact.model_validate(row)

    return await orch.in_thread(update)


@router.get("")
async def list_artifacts(
    orch: Orch,
    key: str | None = None,
    flow_run_id: str | None = None,
    task_run_id: str | None = None,
    type: str | None = None,
    cursor: str | None = None,
    limit: int = Query(default=50, ge=1, le=MAX_PAGE),
) -> a.ArtifactPage:
    """Artifacts newest first, filtered by key, flow run, task run and type."""
    after = parse_cursor(cursor)

    def read() -> a.ArtifactPage:
        query = select(m.Artifact)
        for column, value in (
            (m.Artifact.key, key), (m.Artifact.flow_run_id, flow_run_id),
            (m.Artifact.task_run_id, task_run_id), (m.Artifact.type, type),
        ):  # fmt: skip
            if value is not None:
                query = query.where(column == value)
        with orch.db.read() as session:
            found, next_cursor = newest_first(session, query, after, limit)
        return a.ArtifactPage(artifacts=found, next_cursor=next_cursor)

    return await orch.in_thread(read)


@router.get("/keys/{key}")
async def read_key_history(
    key: str,
    orch: Orch,
    cursor: str | None = None,
    limit: int = Query(default=50, ge=1, le=MAX_PAGE),
) -> a.ArtifactHistory:
    """A key's current artifact and its versions, newest first."""
    after = parse_cursor(cursor)

    def read() -> a.ArtifactHistory:
        with orch.db.read() as session:
            query = select(m.Artifact).where(m.Artifact.key == key)
            latest, _ = newest_first(session, query, None, 1)
            if not latest:
                raise NotFound(f"no artifact with key {key!r}")
            versions, next_cursor = newest_first(session, query, after, limit)
        return a.ArtifactHistory(
            key=key, latest=latest[0], versions=versions, next_cursor=next_cursor
        )

    return await orch.in_thread(read)


@router.get("/{artifact_id}")
async def read_artifact(artifact_id: str, orch: Orch) -> a.Artifact:
    def read() -> a.Artifact:
        with orch.db.read() as session:
            return a.Artifact.model_validate(_get(session, artifact_id))

    return await orch.in_thread(read)


@router.delete("/{artifact_id}", status_code=204)
async def delete_artifact(artifact_id: str, orch: Orch) -> None:
    def remove() -> None:
        with orch.db.session() as session:
            session.delete(_get(session, artifact_id))

    await orch.in_thread(remove)


@router.delete("/keys/{key}", status_code=204)
async def delete_key(key: str, orch: Orch) -> None:
    """Delete every version of a key."""

    def remove() -> None:
        with orch.db.session() as session:
            gone = session.execute(delete(m.Artifact).where(m.Artifact.key == key))
            if not getattr(gone, "rowcount", 0):
                raise NotFound(f"no artifact with key {key!r}")

    await orch.in_thread(remove)


# -- helpers -----------------------------------------------------------------------------


def _get(session: Session, artifact_id: str) -> m.Artifact:
    row = session.get(m.Artifact, artifact_id)
    if row is None:
        raise NotFound(f"artifact {artifact_id!r} not found")
    return row


def newest_first(
    session: Session,
    query: Select[m.Artifact],
    after: tuple[datetime, str] | None,
    limit: int,
) -> tuple[list[a.Artifact], str | None]:
    """Up to ``limit`` artifacts of ``query`` older than ``after``, newest first, and the
    cursor of the next page (None when this one is the last)."""
    if after is not None:
        created, artifact_id = after
        query = query.where(
            or_(
                m.Artifact.created < created,
                and_(m.Artifact.created == created, m.Artifact.id < artifact_id),
            )
        )
    query = query.order_by(m.Artifact.created.desc(), m.Artifact.id.desc()).limit(limit + 1)
    rows = list(session.scalars(query))
    more, rows = len(rows) > limit, rows[:limit]
    found = [a.Artifact.model_validate(row) for row in rows]
    return found, (_cursor(rows[-1]) if more else None)


def _cursor(row: m.Artifact) -> str:
    return f"{row.created.isoformat()}~{row.id}"


def parse_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if cursor is None:
        return None
    stamp, _, artifact_id = cursor.partition("~")
    try:
        created = datetime.fromisoformat(stamp)
    except ValueError as exc:
        raise InvalidInput(f"cursor: {cursor!r} is not a cursor this API gave") from exc
    if created.tzinfo is None or not artifact_id:
        raise InvalidInput(f"cursor: {cursor!r} is not a cursor this API gave")
    return created, artifact_id
