"""Run tokens over HTTP: the route that mints them and the check that admits them.

``POST /api/flow_runs/{id}/token`` gives a worker (admin key, or a worker key serving the
run's pool) a token that acts for that run only, for infrastructure the worker does not
control (AWS Lambda). Without API keys on the server the route still answers: the token
is then simply not needed.

With API keys, ``install`` puts the run-token check in front of the API-key check. A
bearer that looks like a run token is verified here (signature, expiry), its route must
be one an engine uses (``auth.authorize_run``), and the run the request names — in the
path, or in the body for task runs, logs and child flow runs — must be the token's run or
one of its child runs (looked up in the store). A request that passes is admitted into the
key cache as ``Role.RUN`` for the API-key check behind; anything else is 401 or 403 here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from flowyard.blocks.encryption import load_key
from flowyard.errors import Conflict, Forbidden
from flowyard.orchestrator import run_tokens as tokens
from flowyard.orchestrator import runs
from flowyard.orchestrator.auth import KeyInfo, Role, authorize_run, key_hash, pool_scope
from flowyard.orchestrator.runtime import Orch, Orchestrator
from flowyard.settings import Settings
from flowyard.store import models as m

router = APIRouter(prefix="/api", tags=["flow runs"])
MAX_CHILD_DEPTH = 16
"""How far up the parent chain a child run may sit below the token's run."""


class RunTokenRequest(BaseModel):
    ttl_seconds: float | None = Field(
        default=None, gt=0, description="Lifetime; default 1800 s, at most 6 hours."
    )


class RunToken(BaseModel):
    """A token for one run; shown in this answer only, never stored."""

    run_id: str
    token: str
    expires: datetime


def _signing_key(settings: Settings) -> bytes:
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    return tokens.signing_key(load_key(secret, settings.home))


@router.post("/flow_runs/{ref}/token", status_code=201)
async def mint_run_token(
    ref: str, request: Request, orch: Orch, body: RunTokenRequest | None = None
) -> RunToken:
    """Mint a token acting for this (unfinished) run only."""

    def check() -> str:
        with orch.db.read() as session:
            run = runs.get_run(session, ref)
            if run.state_type.is_terminal:
                raise Conflict(f"flow run {run.id} is already {run.state_type.display_name}")
            caller: KeyInfo | None = getattr(request.state, "api_key", None)
            pool = run.queue.pool.name if run.queue else None
            if caller is not None and caller.role is Role.WORKER:
                reason = pool_scope(caller, pool or "")
                if reason:
                    raise Forbidden(reason)
            return run.id

    run_id = await orch.in_thread(check)
    now = time.time()
    ttl = tokens.clamp_ttl(body.ttl_seconds if body else None)
    token = tokens.mint(_signing_key(orch.settings), run_id, now=now, ttl_seconds=ttl)
    expires = datetime.fromtimestamp(int(now + ttl), UTC)
    return RunToken(run_id=run_id, token=token, expires=expires)


def install(app: FastAPI, settings: Settings) -> None:
    """Add the mint route; with API keys, also the run-token check (call after the key check)."""
    app.include_router(router)
    if settings.api_key:
        _install_check(app, _signing_key(settings))


def _install_check(app: FastAPI, key: bytes) -> None:
    @app.middleware("http")
    async def check_run_token(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not tokens.is_run_token(presented):
            return await call_next(request)
        try:
            claims = tokens.verify(key, presented, now=time.time())
        except tokens.InvalidRunToken as exc:
            return JSONResponse({"detail": str(exc)}, status_code=401)
        method, path = request.method, request.url.path
        reason = authorize_run(method, path)
        if reason is None:
            body = await request.body() if method == "POST" else b""
            orch: Orchestrator = request.app.state.orchestrator
            reason = await orch.in_thread(_run_scope, orch, claims.run_id, method, path, body)
        if reason is not None:
            return JSONResponse({"detail": reason}, status_code=403)
        info = KeyInfo(f"run token for {claims.run_id}", Role.RUN, run_id=claims.run_id)
        digest = key_hash(presented)
        request.app.state.orchestrator.key_cache.admit_run_token(
            digest, info, claims.expires - time.time()
        )
        return await call_next(request)


# -- which runs a request names ---------------------------------------------------------------


def _run_scope(orch: Orchestrator, run_id: str, method: str, path: str, raw: bytes) -> str | None:
    """None when every run the request names is ``run_id`` or below it, else why not."""
    refused = f"a run token may only act for its own flow run: it cannot {method} {path}"
    parts = path.strip("/").split("/")[1:]  # after "api"
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        return refused
    with orch.db.read() as session:
        if parts[0] == "flow_runs" and len(parts) > 1:
            ok = _run_below(session, parts[1], run_id)
        elif parts[0] == "flow_runs":
            parent = body.get("parent_task_run_id") if isinstance(body, dict) else None
            ok = isinstance(parent, str) and _task_below(session, parent, run_id)
        elif parts == ["task_runs", "bulk"]:
            named = {e.get("flow_run_id") for e in body if isinstance(e, dict)} if body else set()
            ok = isinstance(body, list) and all(_run_below(session, r, run_id) for r in named)
        elif parts[0] == "task_runs" and len(parts) > 1:
            ok = _task_below(session, parts[1], run_id)
        elif parts[0] == "task_runs":
            ok = isinstance(body, dict) and _run_below(session, body.get("flow_run_id"), run_id)
        elif parts[0] == "logs":
            named = {e.get("flow_run_id") for e in body if isinstance(e, dict)} if body else set()
            ok = isinstance(body, list) and all(_run_below(session, r, run_id) for r in named)
        elif parts[0] == "deployments":
            run = session.get(m.FlowRun, run_id)
            ok = run is not None and parts[1] == run.deployment_id
        else:  # tag slots name no run: any task run of the token's run may hold them
            ok = parts == ["health"] or parts[0] == "concurrency_limits"
    return None if ok else refused


def _run_below(session: Session, candidate: Any, root: str) -> bool:
    """True when ``candidate`` is ``root`` or a child run (at any depth) of it."""
    current = candidate if isinstance(candidate, str) else None
    for _ in range(MAX_CHILD_DEPTH):
        if current is None:
            return False
        if current == root:
            return True
        run = session.get(m.FlowRun, current)
        if run is None or run.parent_task_run_id is None:
            return False
        parent = session.get(m.TaskRun, run.parent_task_run_id)
        current = parent.flow_run_id if parent else None
    return False


def _task_below(session: Session, task_run_id: str, root: str) -> bool:
    task = session.get(m.TaskRun, task_run_id)
    return task is not None and _run_below(session, task.flow_run_id, root)
