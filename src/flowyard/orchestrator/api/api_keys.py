"""API keys: the routes that manage them and the middleware that checks them."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import select
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from flowyard import schemas as s
from flowyard.errors import Conflict, NotFound
from flowyard.orchestrator import events
from flowyard.orchestrator import run_tokens as tokens
from flowyard.orchestrator.auth import KeyCache, KeyInfo, Role, key_hash, new_key, same_key
from flowyard.orchestrator.runtime import Orch, Orchestrator
from flowyard.store import models as m

router = APIRouter(prefix="/api/api_keys", tags=["api keys"])
PROTECTED = ("/api/", "/metrics")


def _doc(row: m.ApiKey) -> s.ApiKey:
    return s.ApiKey(
        name=row.name,
        role=row.role,
        pools=row.pools or [],
        prefix=row.prefix,
        created=row.created,
        revoked=row.revoked,
    )


def _key_payload(row: m.ApiKey) -> dict[str, object]:
    """What an API key's events tell: never its secret or hash, only its prefix."""
    return {"role": row.role, "pools": row.pools or [], "prefix": row.prefix}


@router.post("", status_code=201)
async def create_key(body: s.ApiKeyCreate, orch: Orch) -> s.ApiKeyCreated:
    """Make a key; its secret is in this answer only."""
    key = new_key()

    def create() -> s.ApiKey:
        with orch.db.session() as session:
            if session.scalars(select(m.ApiKey).where(m.ApiKey.name == body.name)).first():
                raise Conflict(f"an API key named {body.name!r} already exists")
            row = m.ApiKey(
                name=body.name,
                role=body.role,
                pools=body.pools or None,
                key_hash=key_hash(key),
                prefix=key[:7],
            )
            session.add(row)
            session.flush()
            events.changed(session, "api-key", row, "created", _key_payload(row))
            return _doc(row)

    doc = await orch.in_thread(create)
    return s.ApiKeyCreated(**doc.model_dump(), key=key, enforced=bool(orch.settings.api_key))


@router.get("")
async def list_keys(orch: Orch) -> list[s.ApiKey]:
    def read() -> list[s.ApiKey]:
        with orch.db.read() as session:
            return [_doc(row) for row in session.scalars(select(m.ApiKey).order_by(m.ApiKey.name))]

    return await orch.in_thread(read)


@router.delete("/{name}", status_code=204)
async def revoke_key(name: str, orch: Orch) -> None:
    def revoke() -> None:
        with orch.db.session() as session:
            row = session.scalars(select(m.ApiKey).where(m.ApiKey.name == name)).first()
            if row is None:
                raise NotFound(f"API key {name!r} not found")
            if row.revoked is None:
                row.revoked = datetime.now(UTC)
                events.changed(session, "api-key", row, "revoked", _key_payload(row))

    await orch.in_thread(revoke)
    orch.key_cache.clear()


def _lookup(orch: Orchestrator, digest: str) -> KeyInfo | None:
    with orch.db.read() as session:
        row = session.scalars(select(m.ApiKey).where(m.ApiKey.key_hash == digest)).first()
        if row is None or row.revoked is not None:
            return None
        return KeyInfo(row.name, Role(row.role), tuple(row.pools or ()))


async def identify(orch: Orchestrator, presented: str, admin_key: str) -> KeyInfo | None:
    """The caller behind a bearer token: the administrator, a stored key, a run token, or
    None (unknown, revoked, forged or expired)."""
    if same_key(presented, admin_key):
        return KeyInfo("FLOWYARD_API_KEY", Role.ADMIN)
    if tokens.is_run_token(presented):
        try:
            claims = tokens.verify(orch.run_token_key, presented, now=time.time())
        except tokens.InvalidRunToken:
            return None
        name = f"run token for {claims.run_id}"
        return KeyInfo(
            name, Role.RUN, run_id=claims.run_id, expires=claims.expires, claim=claims.claim
        )
    return await stored_key(orch, key_hash(presented))


async def stored_key(orch: Orchestrator, digest: str) -> KeyInfo | None:
    """The stored, unrevoked key whose hash is ``digest`` (verdicts cached for a few seconds)."""
    cache: KeyCache = orch.key_cache
    known, info = cache.get(digest)
    if not known:
        info = await orch.in_thread(_lookup, orch, digest)
        cache.put(digest, info)
    return info


def install_auth(app: FastAPI, admin_key: str) -> None:
    """Require a key or run token on every ``/api`` and ``/metrics`` request (401 without a
    valid one); ``authority.guard`` then decides what the caller may do (403 beyond it)."""
    app.add_middleware(KeyCheck, admin_key=admin_key)


class KeyCheck:
    """ASGI middleware: the caller of a protected path, from its bearer token, is put on the
    request (``request.state.api_key``), or the answer is 401. Plain ASGI, not
    ``@app.middleware``: that costs every request a task and two streams."""

    def __init__(self, app: ASGIApp, admin_key: str) -> None:
        self.app = app
        self.admin_key = admin_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED):
            return await self.app(scope, receive, send)
        state = scope.setdefault("state", {})
        if state.get("api_key") is not None:  # a web UI session
            return await self.app(scope, receive, send)  # (flowyard.ui.gate checked its CSRF)
        scheme, _, presented = Headers(scope=scope).get("authorization", "").partition(" ")
        info = None
        if scheme.lower() == "bearer" and presented:
            info = await identify(scope["app"].state.orchestrator, presented, self.admin_key)
        if info is None:
            detail = "missing, unknown, revoked or expired API key or run token"
            return await JSONResponse({"detail": detail}, status_code=401)(scope, receive, send)
        state["api_key"] = info
        await self.app(scope, receive, send)
