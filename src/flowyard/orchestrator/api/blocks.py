"""Blocks: typed documents saved by ``TYPE/NAME``, secret fields encrypted at rest.

Every answer masks secrets; ``GET /api/blocks/{type}/{name}?include_secrets=true`` is the
one way to read them in clear, for the worker or engine that needs them. Documents are
validated against their block type, so the server must have each type installed.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from fastapi import APIRouter
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from flowyard import schemas as s
from flowyard.blocks import core
from flowyard.blocks.encryption import load_key, seal, unseal
from flowyard.blocks.registry import block_types, load_block_type
from flowyard.errors import Conflict, InvalidInput, NotFound
from flowyard.orchestrator.runtime import Orch, Orchestrator
from flowyard.store import models as m

router = APIRouter(prefix="/api", tags=["blocks"])


@cache
def _fernet(secret_key: str | None, home: Path) -> Fernet:
    return Fernet(load_key(secret_key, home))


def fernet_of(orch: Orchestrator) -> Fernet:
    key = orch.settings.secret_key
    return _fernet(key.get_secret_value() if key else None, orch.settings.home)


@router.get("/block_types")
async def list_block_types() -> list[s.BlockType]:
    return [
        s.BlockType(
            slug=slug,
            name=block_type.__name__,
            description=(block_type.__doc__ or "").strip() or None,
            secret_fields=core.secret_fields(block_type),
            fields_schema=block_type.model_json_schema(),
        )
        for slug, block_type in block_types().items()
    ]


@router.get("/blocks")
async def list_blocks(orch: Orch, type: str | None = None) -> list[s.BlockDocument]:
    def read() -> list[s.BlockDocument]:
        query = select(m.Block).order_by(m.Block.type, m.Block.name)
        if type:
            query = query.where(m.Block.type == type)
        with orch.db.read() as session:
            fernet = fernet_of(orch)
            return [_document(row, unseal(fernet, row.secrets)) for row in session.scalars(query)]

    return await orch.in_thread(read)


@router.get("/blocks/{slug}/{name}")
async def read_block(
    slug: str, name: str, orch: Orch, include_secrets: bool = False
) -> s.BlockDocument:
    def read() -> s.BlockDocument:
        with orch.db.read() as session:
            row = _get(session, slug, name)
            secrets = unseal(fernet_of(orch), row.secrets)
            return _document(row, secrets, reveal=include_secrets)

    return await orch.in_thread(read)


@router.post("/blocks", status_code=201)
async def create_block(body: s.BlockCreate, orch: Orch) -> s.BlockDocument:
    def create() -> s.BlockDocument:
        with orch.db.session() as session:
            if _find(session, body.type, body.name):
                raise Conflict(f"block {body.type}/{body.name} already exists")
            row = m.Block(type=body.type, name=body.name)
            _store(orch, row, body.data)
            session.add(row)
            session.flush()
            return _document(row, unseal(fernet_of(orch), row.secrets))

    return await orch.in_thread(create)


@router.put("/blocks/{slug}/{name}")
async def save_block(slug: str, name: str, body: s.BlockSave, orch: Orch) -> s.BlockDocument:
    """Create or replace; a secret sent back masked keeps its stored value."""
    core.parse_ref(f"{slug}/{name}")

    def save() -> s.BlockDocument:
        with orch.db.session() as session:
            row = _find(session, slug, name) or m.Block(type=slug, name=name)
            _store(orch, row, body.data)
            session.add(row)
            session.flush()
            return _document(row, unseal(fernet_of(orch), row.secrets))

    return await orch.in_thread(save)


@router.delete("/blocks/{slug}/{name}", status_code=204)
async def delete_block(slug: str, name: str, orch: Orch) -> None:
    def delete() -> None:
        with orch.db.session() as session:
            session.delete(_get(session, slug, name))

    await orch.in_thread(delete)


def _store(orch: Orchestrator, row: m.Block, data: dict[str, Any]) -> None:
    """Validate ``data`` against the block type; keep public fields, encrypt the secrets."""
    block_type = load_block_type(row.type)
    names = core.secret_fields(block_type)
    fernet = fernet_of(orch)
    data = core.keep_masked_secrets(data, unseal(fernet, row.secrets), names)
    try:
        block = block_type.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or row.type
        raise InvalidInput(f"block {row.type}/{row.name}: {where}: {first['msg']}") from None
    public, secrets = core.split_secrets(core.reveal(block), names)
    row.data = public
    row.secrets = seal(fernet, secrets)


def _document(row: m.Block, secrets: dict[str, Any], *, reveal: bool = False) -> s.BlockDocument:
    names = _secret_names(row.type)
    if reveal:
        data = {**row.data, **{name: secrets.get(name) for name in names}}
    else:
        data = core.masked(row.data, secrets, names)
    return s.BlockDocument(
        id=row.id,
        type=row.type,
        name=row.name,
        data=data,
        secret_fields=names,
        created=row.created,
        updated=row.updated,
    )


def _secret_names(slug: str) -> list[str]:
    try:
        return core.secret_fields(load_block_type(slug))
    except InvalidInput:  # a type uninstalled since: mask nothing known, reveal nothing
        return []


def _find(session: Session, slug: str, name: str) -> m.Block | None:
    query = select(m.Block).where(m.Block.type == slug, m.Block.name == name)
    return session.scalars(query).first()


def _get(session: Session, slug: str, name: str) -> m.Block:
    row = _find(session, slug, name)
    if row is None:
        raise NotFound(f"block {slug}/{name} not found")
    return row
