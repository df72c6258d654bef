"""Run tokens over HTTP: minting them for workers, and renewing them for engines.

A worker gets a token for each run it claims (in the claim's answer, when the server has
API keys) and hands it to the run's engine instead of any key of its own; ``POST
/api/flow_runs/{id}/token`` mints another for a run the worker serves (AWS Lambda asks
for one that outlives an asynchronous invocation's wait). The engine's heartbeat answer
carries a fresh token once half of its current one's lifetime has passed, so tokens stay
short-lived however long the run takes. What a token may do is ``authority.py``'s rule.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from flowyard.blocks.encryption import load_key
from flowyard.errors import Conflict
from flowyard.orchestrator import run_tokens as tokens
from flowyard.orchestrator import runs
from flowyard.orchestrator.auth import KeyInfo, Role
from flowyard.orchestrator.runtime import Orch, Orchestrator
from flowyard.settings import Settings

router = APIRouter(prefix="/api", tags=["flow runs"])


class RunTokenRequest(BaseModel):
    ttl_seconds: float | None = Field(
        default=None,
        gt=0,
        le=tokens.MAX_TTL_SECONDS,
        description="Lifetime; default 1800 s, at most 6 hours.",
    )


class RunToken(BaseModel):
    """A token for one run; shown in this answer only, never stored."""

    run_id: str
    token: str
    expires: datetime


def signing_key(settings: Settings) -> bytes:
    """The key run tokens are signed with, derived from the server's secret."""
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    return tokens.signing_key(load_key(secret, settings.home))


def issue(
    orch: Orchestrator, run_id: str, claim: str | None, ttl_seconds: float | None = None
) -> str:
    """A token for ``run_id`` under claim fingerprint ``claim``, signed with this server's
    key."""
    key = orch.run_token_key
    ttl = tokens.clamp_ttl(ttl_seconds)
    return tokens.mint(key, run_id, now=time.time(), ttl_seconds=ttl, claim=claim)


def renewal(orch: Orchestrator, caller: KeyInfo | None) -> str | None:
    """A fresh token for a run token past half its life (None for any other caller)."""
    if caller is None or caller.role is not Role.RUN or caller.run_id is None:
        return None
    if caller.expires is not None and caller.expires - time.time() > tokens.DEFAULT_TTL_SECONDS / 2:
        return None
    return issue(orch, caller.run_id, caller.claim)


@router.post("/flow_runs/{ref}/token", status_code=201)
async def mint_run_token(
    ref: str, request: Request, orch: Orch, body: RunTokenRequest | None = None
) -> RunToken:
    """Mint a token acting for this (unfinished) run only."""

    def check() -> tuple[str, str | None]:
        with orch.db.read() as session:
            run = runs.get_run(session, ref)
            if run.state_type.is_terminal:
                raise Conflict(f"flow run {run.id} is already {run.state_type.display_name}")
            return run.id, tokens.claim_fingerprint(run.claim_token)

    run_id, claim = await orch.in_thread(check)
    ttl = tokens.clamp_ttl(body.ttl_seconds if body else None)
    token = issue(orch, run_id, claim, ttl)
    expires = datetime.fromtimestamp(int(time.time() + ttl), UTC)
    return RunToken(run_id=run_id, token=token, expires=expires)
