"""Artifacts in the web UI: a flow run's (with its task runs'), the artifacts page (the
latest artifact of each key and every unkeyed one, newest first, keyset pages) and one
key's history.

Each artifact is rendered by its type (``_artifact.html``): markdown through ``markdown``
(sanitised), a table as an escaped HTML table, progress as a bar, an image as an ``<img>``
of its http(s) URL that sends no referrer. Pages that show artifacts allow images from
any http(s) host in their Content-Security-Policy (``IMAGES_CSP``), and only those pages:
an image cannot run script, and scripts, styles, connections and frames stay this
server's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import ColumnElement, Select, and_, exists, or_, select
from sqlalchemy.orm import Session, aliased

from flowyard.errors import InvalidInput
from flowyard.orchestrator.api.artifacts import newest_first, parse_cursor
from flowyard.orchestrator.runtime import Orch
from flowyard.schemas import artifacts as a
from flowyard.store import models as m
from flowyard.ui import markdown, views

PAGE = 50
MAX_PAGE = 200
MAX_RUN_ARTIFACTS = 50  # the newest shown on a flow run's page (the artifacts page has all)
MAX_TABLE_ROWS = 200  # rows shown of a table artifact (the API has them all)
IMAGES_CSP = (
    "default-src 'self'; img-src 'self' data: https: http:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
A = m.Artifact


def render_with_images(
    request: Request, name: str, context: dict[str, Any], status: int = 200
) -> Response:
    """A page that shows artifacts: ``views.render``'s headers, images from http(s) hosts."""
    headers = {**views.SECURITY_HEADERS, "Content-Security-Policy": IMAGES_CSP}
    return views.templates.TemplateResponse(request, name, context, status, headers=headers)


# -- reading -----------------------------------------------------------------------------


def of_run(session: Session, run_id: str) -> tuple[list[a.Artifact], bool]:
    """The newest artifacts of a flow run and of its task runs, and whether it has more."""
    tasks = select(m.TaskRun.id).where(m.TaskRun.flow_run_id == run_id)
    query = select(A).where(or_(A.flow_run_id == run_id, A.task_run_id.in_(tasks)))
    found, more = newest_first(session, query, None, MAX_RUN_ARTIFACTS)
    return found, more is not None


@dataclass(frozen=True)
class ArtifactFilter:
    """The artifacts page's filter, as its query string gives it."""

    key: str = ""  # a key's beginning
    type: str = ""
    flow_run: str = ""

    @classmethod
    def from_query(cls, query: Any) -> ArtifactFilter:
        key, kind = query.get("key", "").strip(), query.get("type", "").strip()
        flow_run = query.get("flow_run", "").strip()
        if key and not re.fullmatch(r"[a-z0-9-]{1,100}", key):
            raise InvalidInput("key: lowercase letters, digits and dashes (a key's beginning)")
        if kind and kind not in a.CHECKS:
            raise InvalidInput(f"type: one of {', '.join(a.CHECKS)}, not {kind[:40]!r}")
        if len(flow_run) > 36:
            raise InvalidInput("flow_run: a flow run's id")
        return cls(key, kind, flow_run)

    def params(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v}

    def query(self) -> Select[m.Artifact]:
        """Of the artifacts that match, the latest of each key and every unkeyed one (so a
        flow run's filter shows its own latest version of a key a later run wrote too)."""
        newer = aliased(A)
        superseded = exists().where(
            newer.key == A.key,
            or_(newer.created > A.created, and_(newer.created == A.created, newer.id > A.id)),
            *self._matching(newer),
        )
        return select(A).where(or_(A.key.is_(None), ~superseded), *self._matching(A))

    def _matching(self, table: Any) -> list[ColumnElement[bool]]:
        where = []
        if self.key:
            where.append(table.key.startswith(self.key, autoescape=True))
        if self.type:
            where.append(table.type == self.type)
        if self.flow_run:
            where.append(table.flow_run_id == self.flow_run)
        return where


def _limit(raw: str | None) -> int:
    if not raw:
        return PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise InvalidInput(f"limit: a whole number from 1 to {MAX_PAGE}")
    return int(raw)


# -- pages -------------------------------------------------------------------------------


async def artifacts_page(request: Request, orch: Orch) -> Response:
    """The latest artifact of each key (and unkeyed ones), newest first, filtered."""
    query = request.query_params
    try:
        where = ArtifactFilter.from_query(query)
        limit = _limit(query.get("limit"))
        cursor = query.get("cursor") or None
        after = parse_cursor(cursor)
    except InvalidInput as exc:
        context = views.page_context(request, nav="artifacts", error=str(exc))
        context.update(filter=ArtifactFilter(), artifacts=[], next_cursor=None, first_page=True)
        return render_with_images(request, "artifacts.html", context, 422)

    def read() -> tuple[list[a.Artifact], str | None]:
        with orch.db.read() as session:
            return newest_first(session, where.query(), after, limit)

    found, next_cursor = await orch.in_thread(read)
    params = where.params() | ({"limit": str(limit)} if query.get("limit") else {})
    context = views.page_context(
        request,
        nav="artifacts",
        error=None,
        filter=where,
        artifacts=found,
        next_cursor=next_cursor,
        first_page=cursor is None,
        first_qs=urlencode(params),
        next_qs=urlencode(params | {"cursor": next_cursor or ""}),
    )
    return render_with_images(request, "artifacts.html", context)


async def artifact_key_page(request: Request, key: str, orch: Orch) -> Response:
    """One key's artifacts, newest first (the first is its current one), keyset pages."""
    query = request.query_params
    try:
        cursor = query.get("cursor") or None
        after = parse_cursor(cursor)
        limit = _limit(query.get("limit"))
    except InvalidInput as exc:
        context = views.page_context(request, nav="artifacts", message=str(exc))
        return views.render(request, "not_found.html", context, 422)

    def read() -> tuple[list[a.Artifact], str | None]:
        with orch.db.read() as session:
            return newest_first(session, select(A).where(A.key == key), after, limit)

    versions, next_cursor = await orch.in_thread(read)
    if not versions and cursor is None:
        context = views.page_context(
            request, nav="artifacts", message=f"No artifact has the key {key!r}."
        )
        return views.render(request, "not_found.html", context, 404)
    context = views.page_context(
        request,
        nav="artifacts",
        key=key,
        versions=versions,
        next_cursor=next_cursor,
        first_page=cursor is None,
    )
    return render_with_images(request, "artifact_key.html", context)


# -- rendering ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TableView:
    columns: list[str]
    rows: list[list[str]]
    hidden_rows: int


def table_view(data: Any) -> TableView:
    """A table artifact's data (rows as objects or lists, or an object of columns) as
    header and cells of text; Jinja escapes each cell."""
    if isinstance(data, dict):
        columns = [str(name) for name in data]
        height = max((len(c) for c in data.values() if isinstance(c, list)), default=0)
        cells = [
            [c[i] if isinstance(c, list) and i < len(c) else None for c in data.values()]
            for i in range(min(height, MAX_TABLE_ROWS))
        ]
        return TableView(columns, [[_cell(v) for v in row] for row in cells], height - len(cells))
    rows = data if isinstance(data, list) else []
    shown = rows[:MAX_TABLE_ROWS]
    if shown and all(isinstance(row, dict) for row in shown):
        names = list(dict.fromkeys(name for row in shown for name in row))
        body = [[_cell(row.get(name)) for name in names] for row in shown]
        return TableView([str(n) for n in names], body, len(rows) - len(shown))
    width = max((len(row) for row in shown if isinstance(row, list | dict)), default=0)
    body = []
    for row in shown:
        values = list(row.values()) if isinstance(row, dict) else list(row)
        body.append([_cell(v) for v in values] + [""] * (width - len(values)))
    return TableView([], body, len(rows) - len(shown))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return views.cut(value if isinstance(value, str) else views.pretty(value), 2000)


def progress(data: Any) -> float:
    return float(data) if isinstance(data, int | float) and 0 <= data <= 100 else 0.0


def names_by_id(items: list[Any]) -> dict[str, str]:
    return {item.id: item.name for item in items}


views.templates.env.filters.update(
    markdown=markdown.render, table_view=table_view, progress=progress, names_by_id=names_by_id
)
views.templates.env.globals.update(allowed_image=markdown.allowed_image)


def add_routes(router: APIRouter) -> None:
    """Add the pages to the UI's router (``pages.router``: its /ui prefix, its sign-in check)."""
    for path, page in (("/artifacts", artifacts_page), ("/artifacts/{key}", artifact_key_page)):
        router.add_api_route(path, page, methods=["GET"], response_class=HTMLResponse)
