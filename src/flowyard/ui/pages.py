"""The web UI's routes: sign-in and sign-out, the flow-runs list, a flow run, the stream.

Pages are rendered on the server from the store (as the API's routes read it) and kept
live by ``stream``; what a page changes it asks of the JSON API from the browser, so that
``authority.guard`` decides it. Every route has its rule in ``authority.RULES``; none is in
the OpenAPI document (they answer HTML, not the API's JSON).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import structlog
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from flowyard import schemas as s
from flowyard.errors import InvalidInput, NotFound
from flowyard.orchestrator import documents, run_pages, runs
from flowyard.orchestrator import event_queries as queries
from flowyard.orchestrator.api.api_keys import identify
from flowyard.orchestrator.runtime import Orch
from flowyard.states import StateType
from flowyard.store import models as m
from flowyard.ui import (
    artifact_pages,
    automation_pages,
    block_pages,
    dashboard,
    deployment_pages,
    event_pages,
    limit_pages,
    pool_pages,
    run_view,
    task_graph,
    variable_pages,
    views,
)
from flowyard.ui.gate import store_of
from flowyard.ui.sessions import COOKIE, SIGN_IN_ROLES
from flowyard.ui.stream import stream

log = structlog.get_logger()


async def signed_in(request: Request, orch: Orch) -> None:
    """A second lock behind the session gate: with keys required, no page without a caller."""
    if orch.settings.api_key and getattr(request.state, "api_key", None) is None:
        raise HTTPException(401, "sign in to the web UI first")


open_router = APIRouter(include_in_schema=False)
router = APIRouter(prefix="/ui", include_in_schema=False, dependencies=[Depends(signed_in)])
router.add_api_route("/stream", stream, methods=["GET"])
pool_pages.add_routes(router)
deployment_pages.add_routes(router)
dashboard.add_routes(router)
limit_pages.add_routes(router)
variable_pages.add_routes(router)
block_pages.add_routes(router)
artifact_pages.add_routes(router)
automation_pages.add_routes(router)
event_pages.add_routes(router)
ROUTERS = (open_router, router)


@open_router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)


# -- signing in and out ------------------------------------------------------------------


@open_router.get("/ui/sign-in", response_class=HTMLResponse)
async def sign_in_form(request: Request, orch: Orch, next: str = "/ui/runs") -> Response:
    if not orch.settings.api_key:
        return RedirectResponse(_safe_next(next), status_code=303)
    context = views.page_context(request, next=_safe_next(next), error=None)
    return views.render(request, "sign_in.html", context)


@open_router.post("/ui/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request, orch: Orch) -> Response:
    """Trade an admin or viewer API key for a session; the key is not kept, only its hash."""
    if request.headers.get("sec-fetch-site") == "cross-site":  # no sign-in forged by a site
        raise HTTPException(403, "sign in from this server's own sign-in page")
    form = parse_qs((await request.body()).decode(errors="replace"), max_num_fields=10)
    key, target = form.get("key", [""])[0].strip(), _safe_next(form.get("next", [""])[0])
    admin_key = orch.settings.api_key
    if not admin_key:
        return RedirectResponse(target, status_code=303)
    info = await identify(orch, key, admin_key) if key else None
    error, status = None, 200
    if info is None:
        error, status = "That key is unknown, revoked or expired.", 401
    elif info.role not in SIGN_IN_ROLES:
        error, status = (
            "A worker key or a run token cannot sign in to the web UI: use an admin or "
            "viewer key (flowyard api-key create --role viewer).",
            403,
        )
    if info is None or error is not None:
        context = views.page_context(request, next=target, error=error)
        return views.render(request, "sign_in.html", context, status)
    store = store_of(request.app, orch.settings)
    if previous := request.cookies.get(COOKIE):  # a new session replaces this browser's old one
        await store.close(previous)
    session_id, _ = await store.open(info, key)
    log.info("ui_signed_in", key=info.name, role=info.role.value)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=int(orch.settings.ui_session_seconds),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@open_router.post("/ui/sign-out", status_code=204)
async def sign_out(request: Request, orch: Orch) -> Response:
    """End this browser's session (the gate checked its CSRF token)."""
    session_id = getattr(request.state, "ui_session_id", None)
    if session_id:
        await store_of(request.app, orch.settings).close(session_id)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/")
    return response


def _safe_next(target: str) -> str:
    """Back to a page of this UI only (never to another site)."""
    ok = target.startswith("/ui/") and "//" not in target and "\\" not in target
    return target if ok and not target.startswith("/ui/sign-") else "/ui/runs"


# -- pages -------------------------------------------------------------------------------


RUN_ORDERS = [
    ("", "newest first"),
    ("oldest", "oldest first"),
    ("started", "latest start first"),
    ("started-earliest", "earliest start first"),
    ("ended", "latest end first"),
    ("ended-earliest", "earliest end first"),
]
"""The runs list's ``order`` choices (``run_pages.ORDERS``) as the page names them."""


@router.get("/runs", response_class=HTMLResponse)
async def runs_page(request: Request, orch: Orch) -> Response:
    """Flow runs, newest first, filtered by the query string; a cursor for the next page."""
    query = request.query_params
    try:
        where = run_pages.RunFilter.from_query(query, query.getlist("state"))
        limit = _limit(query.get("limit"))
    except InvalidInput as exc:
        context = views.page_context(request, nav="runs", error=str(exc), **_empty_list())
        return views.render(request, "runs.html", context, 422)
    cursor = query.get("cursor") or None

    def read() -> dict[str, Any]:
        with orch.db.read() as session:
            after = queries.latest(session)  # first: changes from here on come live
            found, next_cursor = run_pages.page(session, where, limit=limit, cursor=cursor)
            return {
                "runs": [documents.flow_run(r) for r in found],
                "next_cursor": next_cursor,
                "after": after,
                "choices": _choices(session),
            }

    try:
        data = await orch.in_thread(read)
    except InvalidInput as exc:
        context = views.page_context(request, nav="runs", error=str(exc), **_empty_list())
        return views.render(request, "runs.html", context, 422)
    extra = {"limit": str(limit)} if query.get("limit") else {}
    context = views.page_context(
        request,
        nav="runs",
        error=None,
        filter=where,
        filter_qs=where.query_string(),
        first_qs=where.query_string(**extra),
        next_qs=where.query_string(**extra, cursor=data["next_cursor"] or ""),
        first_page=cursor is None,
        state_types=[t.value for t in StateType],
        orders=RUN_ORDERS,
        **data,
    )
    return views.render(request, "runs.html", context)


def _limit(raw: str | None) -> int:
    if not raw:
        return run_pages.PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= run_pages.MAX_PAGE:
        raise InvalidInput(f"limit: a whole number from 1 to {run_pages.MAX_PAGE}")
    return int(raw)


def _empty_list() -> dict[str, Any]:
    return {
        "runs": [], "next_cursor": None, "after": "", "choices": {},
        "filter": run_pages.RunFilter(), "filter_qs": "", "first_qs": "", "next_qs": "",
        "first_page": True, "orders": RUN_ORDERS,
        "state_types": [t.value for t in StateType],
    }  # fmt: skip


def _choices(session: Session) -> dict[str, list[str]]:
    """Names the filter's fields suggest (a few hundred at most each)."""

    def names(column: Any) -> list[str]:
        return list(session.scalars(select(column).distinct().order_by(column).limit(300)))

    return {
        "flows": names(m.Flow.name),
        "deployments": names(m.Deployment.name),
        "pools": names(m.WorkPool.name),
    }


@router.get("/runs/{ref}", response_class=HTMLResponse)
async def run_page(request: Request, ref: str, orch: Orch) -> Response:
    """One flow run: its summary, timeline, parameters, task runs and a page of its logs."""
    query = request.query_params
    level_name = query.get("level", "INFO").upper()
    level = views.LEVELS.get(level_name, 20)
    after_raw = query.get("logs_after", "0")
    logs_after = int(after_raw) if after_raw.isdigit() and len(after_raw) < 19 else 0
    search = query.get("q", "")
    if len(search) > run_view.MAX_SEARCH:
        context = views.page_context(
            request, nav="runs", message=f"q: at most {run_view.MAX_SEARCH} characters"
        )
        return views.render(request, "not_found.html", context, 422)

    def read() -> dict[str, Any]:
        with orch.db.read() as session:
            after = queries.latest(session)
            view = run_view.read_run(session, ref)
            logs, more = run_view.read_logs(
                session, view.run.id, after=logs_after, level=level, containing=search
            )
            artifacts, more_artifacts = artifact_pages.of_run(session, view.run.id)
            graph = task_graph.read(session, view.run.id)
            return {"view": view, "logs": logs, "more_logs": more, "after": after,
                    "artifacts": artifacts, "more_artifacts": more_artifacts,
                    "graph": graph}  # fmt: skip

    try:
        data = await orch.in_thread(read)
    except NotFound as exc:
        context = views.page_context(request, nav="runs", message=str(exc))
        return views.render(request, "not_found.html", context, 404)
    logs_last = data["logs"][-1].id if data["logs"] else logs_after
    context = views.page_context(
        request,
        nav="runs",
        level_name=level_name if level_name in views.LEVELS else "INFO",
        logs_after=logs_after,
        logs_last=logs_last,
        search=search,
        **data,
    )
    return artifact_pages.render_with_images(request, "run.html", context)


@router.get("/runs/{ref}/logs.txt")
async def run_logs_download(ref: str, orch: Orch) -> Response:
    """All the run's logs (up to ``run_view.MAX_DOWNLOAD`` lines) as a text file, read
    and sent a chunk at a time, so that neither the server nor the page holds them all."""

    def find() -> s.FlowRun:
        with orch.db.read() as session:
            return documents.flow_run(runs.get_run(session, ref))

    try:
        run = await orch.in_thread(find)
    except NotFound as exc:
        return Response(str(exc), status_code=404, media_type="text/plain")

    def chunk(after: int) -> list[tuple[int, str]]:
        with orch.db.read() as session:
            return run_view.log_chunk(session, run.id, after=after)

    async def lines() -> AsyncIterator[str]:
        after, sent = 0, 0
        while sent < run_view.MAX_DOWNLOAD:
            found = await orch.in_thread(chunk, after)
            if not found:
                return
            found = found[: run_view.MAX_DOWNLOAD - sent]
            yield "".join(text for _, text in found)
            after, sent = found[-1][0], sent + len(found)
        yield f"… cut at {run_view.MAX_DOWNLOAD} lines: GET /api/flow_runs/{run.id}/logs pages on\n"

    filename = re.sub(r"[^A-Za-z0-9._-]", "_", run.name)[:100] + "-logs.txt"
    return StreamingResponse(
        lines(),
        media_type="text/plain; charset=utf-8",
        headers={
            **views.SECURITY_HEADERS,
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )
