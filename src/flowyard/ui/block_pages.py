"""Blocks (``/ui/blocks``): the list, one block, and a form to create or edit one,
generated from its block type's schema (``param_form``).

Secrets never reach the browser: a page is given each block's public fields and, for each
secret field, only whether it is set (the values are decrypted on the server only to learn
which are set, and dropped there). A secret field's input starts empty; left empty, it
sends ``core.MASK``, which the API reads as "keep the stored value"; typed into, it sends
the new value (``PUT /api/blocks/{type}/{name}``, whose answer is masked too).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from flowyard.blocks import core
from flowyard.blocks.encryption import unseal
from flowyard.blocks.registry import block_types, load_block_type
from flowyard.errors import InvalidInput, NotFound
from flowyard.orchestrator.api.blocks import fernet_of
from flowyard.orchestrator.runtime import Orch, Orchestrator
from flowyard.store import models as m
from flowyard.ui import param_form, views

LISTED = 1000  # blocks on the list page at most


@dataclass
class BlockView:
    """A block as a page may show it: public fields, and which secrets are set."""

    type: str
    name: str
    public: dict[str, Any]
    secrets_set: dict[str, bool]
    updated: datetime


def _type_info(slug: str) -> tuple[dict[str, Any], list[str], str]:
    block_type = load_block_type(slug)
    doc = (block_type.__doc__ or "").strip().split("\n\n")[0]
    return block_type.model_json_schema(), core.secret_fields(block_type), doc


def _form(slug: str, values: dict[str, Any], secrets_set: dict[str, bool]) -> list[Any]:
    """The type's fields filled with the public values; secret fields empty, with whether
    they are set."""
    schema, names, _ = _type_info(slug)
    fields = param_form.fields(schema, values, prefix="data", values_are_defaults=False)
    for field in fields:
        name = field.path.removeprefix("data.")
        if name in names:
            field.kind, field.value = "secret", ""
            field.secret_set = secrets_set.get(name, False)
            field.clearable = field.secret_set and not field.required
            field.required = field.required and not field.secret_set
    return fields


def _view(orch: Orchestrator, row: m.Block) -> BlockView:
    try:
        names = core.secret_fields(load_block_type(row.type))
    except InvalidInput:  # a type uninstalled since: no secret field known
        names = []
    stored = unseal(fernet_of(orch), row.secrets)
    return BlockView(
        type=row.type,
        name=row.name,
        public={k: v for k, v in row.data.items() if k not in names},
        secrets_set={name: name in stored for name in names},
        updated=row.updated,
    )


async def blocks_page(request: Request, orch: Orch) -> Response:
    def read() -> list[tuple[str, str, datetime]]:
        with orch.db.read() as session:
            query = (
                select(m.Block.type, m.Block.name, m.Block.updated)
                .order_by(m.Block.type, m.Block.name)
                .limit(LISTED)
            )
            return [(t, n, u) for t, n, u in session.execute(query)]

    rows = await orch.in_thread(read)
    context = views.page_context(
        request, nav="blocks", rows=rows, types=sorted(block_types()), listed=LISTED
    )
    return views.render(request, "blocks.html", context)


async def new_block_page(request: Request, orch: Orch) -> Response:
    slug = request.query_params.get("type", "")
    fields: list[Any] = []
    description = ""
    if slug:
        try:
            fields = _form(slug, {}, {})
            description = _type_info(slug)[2]
        except InvalidInput as exc:
            context = views.page_context(request, nav="blocks", message=str(exc))
            return views.render(request, "not_found.html", context, 404)
    context = views.page_context(
        request, nav="blocks", slug=slug, fields=fields, types=sorted(block_types()),
        description=description, mask=core.MASK,
    )  # fmt: skip
    return views.render(request, "block_new.html", context)


async def block_page(request: Request, slug: str, name: str, orch: Orch) -> Response:
    def read() -> BlockView:
        with orch.db.read() as session:
            query = select(m.Block).where(m.Block.type == slug, m.Block.name == name)
            row = session.scalars(query).first()
            if row is None:
                raise NotFound(f"block {slug}/{name} not found")
            return _view(orch, row)

    try:
        block = await orch.in_thread(read)
    except NotFound as exc:
        context = views.page_context(request, nav="blocks", message=str(exc))
        return views.render(request, "not_found.html", context, 404)
    try:
        fields = _form(slug, block.public, block.secrets_set)
        description = _type_info(slug)[2]
    except InvalidInput:
        fields, description = [], "This block's type is not installed on the server."
    context = views.page_context(
        request, nav="blocks", block=block, fields=fields, description=description,
        mask=core.MASK,
    )  # fmt: skip
    return views.render(request, "block.html", context)


def add_routes(router: APIRouter) -> None:
    """Add the pages to the UI's router (``pages.router``: its /ui prefix, its sign-in check)."""
    for path, page in (
        ("/blocks", blocks_page),
        ("/blocks/new", new_block_page),
        ("/blocks/{slug}/{name}", block_page),
    ):
        router.add_api_route(path, page, methods=["GET"], response_class=HTMLResponse)
