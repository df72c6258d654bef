"""API keys: who may call what.

When the server has a key (``FLOWYARD_API_KEY``, required to listen beyond loopback),
every ``/api`` and ``/metrics`` request must carry ``Authorization: Bearer <key>``. That key
is the administrator's. Keys made with ``flowyard api-key create`` are stored as SHA-256
hashes (they are 256-bit random tokens, so a slow hash adds nothing) and shown once;
a ``worker`` key may only do what a worker and its engines do, for the pools it names.
Background task runs (``Task.delay``) may be created, claimed, reported and waited for by
admin and worker keys (a task worker serves tasks, not pools, so a worker key's pools do
not narrow it); run tokens may not touch them.

A run token (``run_tokens.py``, minted for a worker by ``POST /api/flow_runs/{id}/token``)
identifies as ``Role.RUN``: it reaches only the routes an engine uses for its own run
(``authorize``); which run a route names is checked against the token by the API
(``orchestrator/api/run_tokens.py``), since task runs, logs and child runs name it in
their bodies or through the store.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import unquote


class Role(StrEnum):
    ADMIN = "admin"
    WORKER = "worker"
    RUN = "run"


@dataclass(frozen=True)
class KeyInfo:
    """What a presented key may do."""

    name: str
    role: Role
    pools: tuple[str, ...] = ()
    run_id: str | None = None  # the run a run token acts for


def new_key() -> str:
    """A fresh key: a recognisable prefix and 256 random bits."""
    return "fy_" + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def same_key(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


# What a worker key may reach: its pools' worker routes, and the run routes its engines use.
_POOL_ROUTE = re.compile(r"^/api/work_pools/(?P<pool>[^/]+)(?P<rest>/.*)?$")
_WORKER_POOL_ROUTES = {
    ("GET", ""),
    ("GET", "/queues"),
    ("POST", "/claim"),
    ("POST", "/workers/heartbeat"),
}
_ENGINE_ROUTES = re.compile(
    r"^/api/(flow_runs/[^/]+(/(state|heartbeat|infrastructure|history|task_runs|logs|token"
    r"|result|graph))?"
    r"|task_runs(/[^/]+/state|/bulk)?|logs|health|concurrency_limits/(acquire|renew|release)"
    r"|background_task_runs(/claim|/heartbeat|/[^/]+/(state|wait))?)$"
)


def authorize(key: KeyInfo, method: str, path: str) -> str | None:
    """None when ``key`` may make this request, else the reason it may not (pure).

    Creating a pool is let through here for worker keys: the route checks the new pool's
    name with ``pool_scope`` (a worker creates its pool when it is missing).
    """
    if key.role is Role.ADMIN:
        return None
    if key.role is Role.RUN:
        return authorize_run(method, path)
    if method == "GET" and path.startswith(("/api/deployments/", "/api/blocks/")):
        return None  # an engine reads its run's deployment; a worker the blocks it launches with
    if method == "POST" and path == "/api/work_pools":
        return None
    match = _POOL_ROUTE.match(path)
    if match:
        pool, rest = unquote(match["pool"]), match["rest"] or ""
        if (method, rest) not in _WORKER_POOL_ROUTES:
            return f"API key {key.name!r} is a worker key: it cannot {method} {path}"
        return pool_scope(key, pool)
    if method == "GET" and path == "/api/flow_runs":
        return None
    if _ENGINE_ROUTES.match(path):
        return None
    return f"API key {key.name!r} is a worker key: it cannot {method} {path}"


# What a run token may reach: its run's own routes, and what its engine writes beside them.
_RUN_ROUTES = (
    ("GET", re.compile(r"^/api/flow_runs/[^/]+$")),
    ("POST", re.compile(r"^/api/flow_runs/[^/]+/(state|heartbeat|infrastructure)$")),
    ("POST", re.compile(r"^/api/flow_runs$")),  # child flow runs (checked by parent task run)
    ("POST", re.compile(r"^/api/task_runs(/[^/]+/state|/bulk)?$")),
    ("PUT", re.compile(r"^/api/flow_runs/[^/]+/result$")),  # where its return value is
    ("POST", re.compile(r"^/api/logs$")),
    ("GET", re.compile(r"^/api/deployments/[^/]+$")),  # the run's own deployment only
    ("GET", re.compile(r"^/api/health$")),
    ("POST", re.compile(r"^/api/concurrency_limits/(acquire|renew|release)$")),  # tag slots
)


def authorize_run(method: str, path: str) -> str | None:
    """None when a run token may make this kind of request (pure; the run is checked apart)."""
    if any(method == verb and pattern.match(path) for verb, pattern in _RUN_ROUTES):
        return None
    return f"a run token may only act for its own flow run: it cannot {method} {path}"


def pool_scope(key: KeyInfo, pool: str) -> str | None:
    """None when ``key`` may serve ``pool``, else why not."""
    if key.pools and pool not in key.pools:
        allowed = ", ".join(key.pools)
        return f"API key {key.name!r} may only serve the pools {allowed}, not {pool!r}"
    return None


class KeyCache:
    """Recently verified keys, so that a request costs no store read; entries live ``ttl`` s.

    A revoked key stops working in this process at once and in other replicas within ``ttl``.
    """

    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[KeyInfo | None, float]] = {}
        self._run_tokens: dict[str, tuple[KeyInfo, float]] = {}

    def get(self, digest: str) -> tuple[bool, KeyInfo | None]:
        entry = self._run_tokens.get(digest) or self._entries.get(digest)
        if entry is None or entry[1] < time.monotonic():
            return False, None
        return True, entry[0]

    def put(self, digest: str, info: KeyInfo | None) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[digest] = (info, time.monotonic() + self.ttl)

    def admit_run_token(self, digest: str, info: KeyInfo, seconds: float) -> None:
        """Make a run token, verified by its signature, known for ``seconds``.

        The API's run-token check verifies the HMAC and the run, then admits the token
        here so that the key check behind it identifies the token as ``Role.RUN``.
        Revoking API keys (``clear``) does not touch these: run tokens expire instead.
        """
        if len(self._run_tokens) > 10_000:
            self._run_tokens.clear()
        self._run_tokens[digest] = (info, time.monotonic() + min(seconds, self.ttl))

    def clear(self) -> None:
        self._entries.clear()
