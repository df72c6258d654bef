"""Run-scoped tokens: short-lived bearer tokens that act for one flow run only (pure).

A worker that launches infrastructure it does not control (an AWS Lambda function) hands
the engine there a token instead of its own API key. The token names one run and an
expiry, signed with HMAC-SHA256 under a key derived from the server's secret
(``FLOWYARD_SECRET_KEY`` or ``<home>/secret.key``, which API replicas already share), so
any replica verifies it without a store read and nothing is stored::

    fyrt_<base64url(JSON {"r": run id, "e": expiry, "c": claim})>.<base64url(HMAC)>

``c`` fingerprints the claim the token was minted under (``claim_fingerprint``): once the
run's claim is taken back (its lease expired and it was scheduled again), the token no
longer writes for it, whoever holds it.

What a token may reach is ``authority.py``'s rule: its run, the child runs below it, their
task runs and logs, read-only once its run is final. Tokens are short-lived and renewed by
the engine's heartbeat (``api/run_tokens.py``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

PREFIX = "fyrt_"
DEFAULT_TTL_SECONDS = 1800.0
"""Lambda's 15-minute limit plus room for an asynchronous invocation to wait in line."""
MAX_TTL_SECONDS = 6 * 3600.0
"""Lambda keeps an asynchronous event at most six hours; no run token lives longer."""
_CONTEXT = b"flowyard run token v1"


class InvalidRunToken(ValueError):
    """Raised when a presented run token is malformed, forged or expired."""


@dataclass(frozen=True)
class RunClaims:
    """What a valid token says: the run it acts for, and until when (unix seconds)."""

    run_id: str
    expires: float
    claim: str | None = None


def signing_key(server_secret: bytes) -> bytes:
    """A key for run tokens only, derived from the server's secret (never the secret itself)."""
    return hmac.new(server_secret, _CONTEXT, hashlib.sha256).digest()


def is_run_token(presented: str) -> bool:
    return presented.startswith(PREFIX)


def clamp_ttl(ttl_seconds: float | None) -> float:
    """The lifetime to give a token: the default when unset, at most ``MAX_TTL_SECONDS``."""
    if ttl_seconds is None:
        return DEFAULT_TTL_SECONDS
    if ttl_seconds <= 0:
        raise ValueError("a run token's lifetime must be positive")
    return min(float(ttl_seconds), MAX_TTL_SECONDS)


def claim_fingerprint(claim_token: str | None) -> str | None:
    """What a token keeps of the claim it was minted under (never the claim itself)."""
    if claim_token is None:
        return None
    return hashlib.sha256(claim_token.encode()).hexdigest()[:16]


def mint(
    key: bytes, run_id: str, *, now: float, ttl_seconds: float, claim: str | None = None
) -> str:
    """A token for ``run_id`` valid until ``now + ttl_seconds``, under claim fingerprint
    ``claim``."""
    claims: dict[str, object] = {"r": run_id, "e": int(now + ttl_seconds)}
    if claim is not None:
        claims["c"] = claim
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{PREFIX}{body}.{_b64(_sign(key, body))}"


def verify(key: bytes, token: str, *, now: float) -> RunClaims:
    """The claims of a genuine, unexpired token; ``InvalidRunToken`` otherwise."""
    if not is_run_token(token):
        raise InvalidRunToken("not a run token")
    body, dot, signature = token[len(PREFIX) :].partition(".")
    if not dot or not hmac.compare_digest(_unb64(signature), _sign(key, body)):
        raise InvalidRunToken("the run token's signature does not match")
    try:
        claims = json.loads(_unb64(body))
        run_id, expires = str(claims["r"]), float(claims["e"])
        claim = claims.get("c")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidRunToken("the run token is malformed") from exc
    if expires <= now:
        raise InvalidRunToken("the run token has expired")
    return RunClaims(run_id=run_id, expires=expires, claim=str(claim) if claim else None)


def _sign(key: bytes, body: str) -> bytes:
    return hmac.new(key, body.encode(), hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return b""
