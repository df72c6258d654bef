"""API keys and the callers they identify.

When the server has a key (``FLOWYARD_API_KEY``, required to listen beyond loopback),
every ``/api`` and ``/metrics`` request must carry ``Authorization: Bearer <key>``. That key
is the administrator's. Keys made with ``flowyard api-key create`` are stored as SHA-256
hashes (they are 256-bit random tokens, so a slow hash adds nothing) and shown once; their
role is ``admin``, ``viewer`` or ``worker`` (scoped to the pools it names). A run token
(``run_tokens.py``) identifies as ``Role.RUN`` for one flow run. What each may do is
``authority.py``'s to decide.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    VIEWER = "viewer"
    WORKER = "worker"
    RUN = "run"


@dataclass(frozen=True)
class KeyInfo:
    """What a presented key may do."""

    name: str
    role: Role
    pools: tuple[str, ...] = ()
    run_id: str | None = None  # the run a run token acts for
    expires: float | None = None  # when a run token stops working (unix seconds)
    claim: str | None = None  # the claim a run token was minted under (its fingerprint)


def new_key() -> str:
    """A fresh key: a recognisable prefix and 256 random bits."""
    return "fy_" + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def same_key(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


class KeyCache:
    """Recently verified keys, so that a request costs no store read; entries live ``ttl`` s.

    A revoked key stops working in this process at once and in other replicas within ``ttl``.
    """

    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[KeyInfo | None, float]] = {}

    def get(self, digest: str) -> tuple[bool, KeyInfo | None]:
        entry = self._entries.get(digest)
        if entry is None or entry[1] < time.monotonic():
            return False, None
        return True, entry[0]

    def put(self, digest: str, info: KeyInfo | None) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[digest] = (info, time.monotonic() + self.ttl)

    def clear(self) -> None:
        self._entries.clear()
