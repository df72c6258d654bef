"""Web UI sessions: who signed in with which API key, kept in Redis.

Why Redis and not a signed cookie: a session held by the server ends when its holder signs
out (a copied cookie stops working too), and when its API key is revoked, because each
request derives the caller again from the key's hash (``caller``); every API replica sees
the same sessions. The browser holds only a random session id (256 bits) in an HttpOnly,
SameSite=Strict cookie, never the key; Redis holds the SHA-256 of that id, so a copy of
Redis gives no usable cookie.

Key schema (one key per session, so every command touches one slot of a Redis Cluster)::

    fy:ui:session:<sha256 of the session id>   JSON {name, role, digest, csrf, expires}
                                               expires with the session (EX)
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Awaitable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from flowyard.errors import QueueUnavailable
from flowyard.orchestrator.api.api_keys import stored_key
from flowyard.orchestrator.auth import KeyInfo, Role, key_hash, same_key
from flowyard.orchestrator.runtime import Orchestrator

COOKIE = "flowyard_session"
PREFIX = "fy:ui:session:"
SIGN_IN_ROLES = (Role.ADMIN, Role.VIEWER)
T = TypeVar("T")


@dataclass(frozen=True)
class Session:
    """A signed-in browser: the key it signed in with (by name and hash) and its CSRF token."""

    name: str
    role: str
    digest: str  # SHA-256 of the API key, to derive the caller again (revoked: signed out)
    csrf: str
    expires: float  # unix seconds

    def csrf_matches(self, presented: str | None) -> bool:
        return presented is not None and same_key(presented, self.csrf)


def _key(session_id: str) -> str:
    return PREFIX + hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    """Sessions in the orchestrator's Redis."""

    def __init__(self, redis: aioredis.Redis, lifetime: float) -> None:
        self._redis = redis
        self.lifetime = lifetime

    async def open(self, caller: KeyInfo, presented_key: str) -> tuple[str, Session]:
        """A new session for ``caller`` (an admin or viewer): its id (for the cookie) and it."""
        session_id = secrets.token_urlsafe(32)
        session = Session(
            name=caller.name,
            role=caller.role.value,
            digest=key_hash(presented_key),
            csrf=secrets.token_urlsafe(32),
            expires=time.time() + self.lifetime,
        )
        ttl = max(1, int(self.lifetime + 0.999))
        await self._call(self._redis.set(_key(session_id), json.dumps(asdict(session)), ex=ttl))
        return session_id, session

    async def find(self, session_id: str) -> Session | None:
        """The live session with this id (None: unknown, signed out or expired)."""
        if not session_id or len(session_id) > 100:
            return None
        raw: Any = await self._call(self._redis.get(_key(session_id)))
        if raw is None:
            return None
        session = Session(**json.loads(raw))
        return session if session.expires > time.time() else None

    async def close(self, session_id: str) -> None:
        await self._call(self._redis.delete(_key(session_id)))

    @staticmethod
    async def _call(awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except (RedisError, OSError) as exc:
            raise QueueUnavailable(f"sessions unavailable: {exc}") from exc


async def caller(orch: Orchestrator, session: Session, admin_key: str) -> KeyInfo | None:
    """Who a session acts for now: its key's current role, or None once the key is revoked
    (or no longer one that may sign in)."""
    if same_key(session.digest, key_hash(admin_key)):
        return KeyInfo("FLOWYARD_API_KEY", Role.ADMIN)
    info = await stored_key(orch, session.digest)
    if info is None or info.role not in SIGN_IN_ROLES:
        return None
    return info
