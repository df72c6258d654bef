"""Variables (Prefect's ``/variables``): named JSON values that flows read.

Operators write them; viewers and run tokens read them (a deployed flow reads its
configuration). A run token does not write them: a run could otherwise change what every
other flow reads. Names are unique: creating one that exists is a 409, also when two
creates race.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Query
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flowyard import schemas as s
from flowyard.errors import Conflict, NotFound
from flowyard.orchestrator.runtime import Orch
from flowyard.store import models as m

router = APIRouter(prefix="/api/variables", tags=["variables"])

MAX_PAGE = 200


def _doc(row: m.Variable) -> s.Variable:
    return s.Variable(
        id=row.id, name=row.name, value=json.loads(row.value_json), tags=row.tags,
        created=row.created, updated=row.updated,
    )  # fmt: skip


def _get(session: Session, name: str) -> m.Variable:
    row = session.scalar(select(m.Variable).where(m.Variable.name == name))
    if row is None:
        raise NotFound(f"variable {name!r} not found")
    return row


@router.post("", status_code=201)
async def create_variable(body: s.VariableCreate, orch: Orch) -> s.Variable:
    def create() -> s.Variable:
        try:
            with orch.db.session() as session:
                row = m.Variable(name=body.name, value_json=json.dumps(body.value), tags=body.tags)
                session.add(row)
                session.flush()
                return _doc(row)
        except IntegrityError as exc:
            raise Conflict(f"variable {body.name!r} already exists") from exc

    return await orch.in_thread(create)


@router.get("")
async def list_variables(
    orch: Orch,
    name_prefix: str | None = Query(default=None, max_length=255),
    limit: int = Query(default=50, ge=1, le=MAX_PAGE),
    offset: int = Query(default=0, ge=0, le=1_000_000),
) -> list[s.Variable]:
    """Variables by name; those whose name starts with ``name_prefix``."""

    def read() -> list[s.Variable]:
        query = select(m.Variable).order_by(m.Variable.name).limit(limit).offset(offset)
        if name_prefix:
            query = query.where(m.Variable.name.startswith(name_prefix, autoescape=True))
        with orch.db.read() as session:
            return [_doc(row) for row in session.scalars(query)]

    return await orch.in_thread(read)


@router.get("/{name}")
async def read_variable(name: str, orch: Orch) -> s.Variable:
    def read() -> s.Variable:
        with orch.db.read() as session:
            return _doc(_get(session, name))

    return await orch.in_thread(read)


@router.patch("/{name}")
async def update_variable(name: str, body: s.VariableUpdate, orch: Orch) -> s.Variable:
    """Change what the body gives: its value (null too), tags or name."""

    def update() -> s.Variable:
        try:
            with orch.db.session() as session:
                row = _get(session, name)
                given = body.model_fields_set
                if "value" in given:
                    row.value_json = json.dumps(body.value)
                row.name = body.name if "name" in given and body.name else row.name
                row.tags = body.tags if "tags" in given and body.tags is not None else row.tags
                session.flush()
                return _doc(row)
        except IntegrityError as exc:
            raise Conflict(f"variable {body.name!r} already exists") from exc

    return await orch.in_thread(update)


@router.delete("/{name}", status_code=204)
async def delete_variable(name: str, orch: Orch) -> None:
    def remove() -> None:
        with orch.db.session() as session:
            session.delete(_get(session, name))

    await orch.in_thread(remove)
