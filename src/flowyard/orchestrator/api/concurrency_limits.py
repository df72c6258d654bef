"""Tag concurrency limits: manage them, and take, renew and give back slots.

An engine asks for a slot of every tag of a task run before running it (``/acquire``);
tags without a limit are ignored, so asking costs one request and limits nothing. The
SDK's ``concurrency(names, occupy=N)`` asks for N slots of the limits so named, and
``rate_limit(names)`` for slots that decay instead of being given back (limits with a
``slot_decay_per_second`` only). An inactive limit is ignored, as if it did not exist.

Slots belong to who took them. The route, not the request, names the *owner*: a run
token's run (``run:ID``), a worker key (``worker:NAME``), the admin (``admin``), or
``local`` on a server without API keys (one user: nothing to separate). ``renew`` and
``release`` reach only the caller's own holders, so no key or token can free or extend
another's slot; 404 when the caller's holder holds none. A run token of a finished run
takes nothing (403: the token is read-only then, ``authority.py``). An operator sees who
holds a tag's slots (``GET /{tag}/holders``) and frees them (``POST /{tag}/reset``, admin
only): all, or an owner's, or one holder's. Leases are at most
``MAX_SLOT_LEASE_SECONDS``: holders renew.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import structlog
from fastapi import APIRouter, Request
from sqlalchemy import select

from flowyard import schemas as s
from flowyard.errors import Forbidden, InvalidInput, NotFound, QueueUnavailable
from flowyard.orchestrator.auth import KeyInfo
from flowyard.orchestrator.runtime import Orch, Orchestrator
from flowyard.store import models as m

log = structlog.get_logger()
router = APIRouter(prefix="/api/concurrency_limits", tags=["concurrency limits"])


async def _doc(
    orch: Orchestrator, row: m.ConcurrencyLimit, *, written: bool = False
) -> s.ConcurrencyLimit:
    """The limit with its slots in use; after a committed write (``written``) a Redis
    that is away shows 0 of them instead of failing a request whose change was made."""
    try:
        active = await orch.tag_slots.active(row.tag, time.time())
    except QueueUnavailable:
        if not written:
            raise
        active = 0
    return s.ConcurrencyLimit(
        tag=row.tag, limit=row.limit, slot_decay_per_second=row.slot_decay_per_second,
        active=row.active, active_slots=active, created=row.created, updated=row.updated,
    )  # fmt: skip


@router.post("", status_code=201)
async def set_limit(body: s.ConcurrencyLimitCreate, orch: Orch) -> s.ConcurrencyLimit:
    """Create or change a tag's limit; a changed limit applies to the next slot asked for."""

    def upsert() -> m.ConcurrencyLimit:
        with orch.db.session() as session:
            row = session.get(m.ConcurrencyLimit, body.tag) or m.ConcurrencyLimit(tag=body.tag)
            row.limit = body.limit
            row.slot_decay_per_second = body.slot_decay_per_second
            row.active = body.active
            session.add(row)
            session.flush()
            return row

    return await _doc(orch, await orch.in_thread(upsert), written=True)


@router.get("")
async def list_limits(orch: Orch) -> list[s.ConcurrencyLimit]:
    def read() -> list[m.ConcurrencyLimit]:
        with orch.db.read() as session:
            query = select(m.ConcurrencyLimit).order_by(m.ConcurrencyLimit.tag)
            return list(session.scalars(query))

    return [await _doc(orch, row) for row in await orch.in_thread(read)]


@router.post("/acquire")
async def acquire(body: s.SlotsRequest, request: Request, orch: Orch) -> s.SlotsResponse:
    """Take ``occupy`` slots of every limited tag for the caller's holder, all or none."""
    owner = slot_owner(_caller(request))
    rows = await orch.in_thread(_active_limits, orch, body.tags)
    limits = {row.tag: row.limit for row in rows}
    too_small = {tag: limit for tag, limit in limits.items() if limit < body.occupy}
    if too_small:
        tag, limit = min(too_small.items())
        raise InvalidInput(f"cannot occupy {body.occupy} slots of {tag!r}: its limit is {limit}")
    decay = None
    if body.mode == "rate_limit":
        decay = {row.tag: row.slot_decay_per_second or 0.0 for row in rows}
        if steady := sorted(tag for tag, per_second in decay.items() if not per_second):
            raise InvalidInput(
                f"concurrency limit {', '.join(map(repr, steady))} has no slot decay, so it "
                "cannot rate-limit: set one with `flowyard concurrency-limit update NAME "
                "--slot-decay-per-second N`"
            )
    full = await orch.tag_slots.acquire(
        limits, owner, body.holder, now=time.time(), lease_seconds=body.lease_seconds,
        occupy=body.occupy, decay=decay,
    )  # fmt: skip
    if full is None:
        return s.SlotsResponse(acquired=True, limited_tags=sorted(limits), owner=owner)
    return s.SlotsResponse(
        acquired=False, limited_tags=sorted(limits), full_tag=full.tag,
        retry_after=full.retry_after, owner=owner,
    )  # fmt: skip


@router.post("/renew")
async def renew(body: s.SlotsRequest, request: Request, orch: Orch) -> s.SlotsResponse:
    """Push back the leases of the caller's holder; 404 when it holds none of them."""
    owner = slot_owner(_caller(request))
    until = time.time() + body.lease_seconds
    if not await orch.tag_slots.renew(body.tags, owner, body.holder, until, body.occupy):
        raise NotFound(_holds_none(owner, body))
    return s.SlotsResponse(acquired=True, limited_tags=sorted(body.tags), owner=owner)


@router.post("/release")
async def release(body: s.SlotsRequest, request: Request, orch: Orch) -> s.SlotsResponse:
    """Give back the slots of the caller's holder; 404 when it holds none of them."""
    owner = slot_owner(_caller(request))
    if not await orch.tag_slots.release(body.tags, owner, body.holder, body.occupy):
        raise NotFound(_holds_none(owner, body))
    return s.SlotsResponse(acquired=False, limited_tags=sorted(body.tags), owner=owner)


@router.get("/{tag}/holders")
async def list_holders(tag: str, orch: Orch) -> list[s.SlotHolder]:
    """Who holds slots of ``tag`` now (slots taken by ``rate_limit`` have no holder)."""
    await orch.in_thread(_get, orch, tag)
    return [
        s.SlotHolder(
            owner=found.owner,
            holder=found.holder,
            slots=found.slots,
            lease_expires=datetime.fromtimestamp(found.expires, UTC),
        )  # fmt: skip
        for found in await orch.tag_slots.holders(tag, time.time())
    ]


@router.post("/{tag}/reset")
async def reset(tag: str, orch: Orch, body: s.SlotsReset | None = None) -> s.SlotsFreed:
    """Free slots of ``tag`` whoever holds them (admins only): all, an owner's, or a
    holder's."""
    await orch.in_thread(_get, orch, tag)
    wanted = body or s.SlotsReset()
    freed = await orch.tag_slots.reset(tag, wanted.owner, wanted.holder)
    return s.SlotsFreed(freed=freed)


@router.get("/{tag}")
async def read_limit(tag: str, orch: Orch) -> s.ConcurrencyLimit:
    return await _doc(orch, await orch.in_thread(_get, orch, tag))


@router.delete("/{tag}", status_code=204)
async def delete_limit(tag: str, orch: Orch) -> None:
    def remove() -> None:
        with orch.db.session() as session:
            row = session.get(m.ConcurrencyLimit, tag)
            if row is None:
                raise NotFound(f"no concurrency limit for tag {tag!r}")
            session.delete(row)

    await orch.in_thread(remove)
    try:
        await orch.tag_slots.clear(tag)
    except QueueUnavailable:  # committed; its slots' leases run out by themselves
        log.warning("tag_slots_left", tag=tag)


def _get(orch: Orchestrator, tag: str) -> m.ConcurrencyLimit:
    with orch.db.read() as session:
        row = session.get(m.ConcurrencyLimit, tag)
        if row is None:
            raise NotFound(f"no concurrency limit for tag {tag!r}")
        return row


def _active_limits(orch: Orchestrator, tags: list[str]) -> list[m.ConcurrencyLimit]:
    if not tags:
        return []
    with orch.db.read() as session:
        query = select(m.ConcurrencyLimit).where(
            m.ConcurrencyLimit.tag.in_(tags), m.ConcurrencyLimit.active
        )
        return list(session.scalars(query))


# -- whose slots ----------------------------------------------------------------------------

ADMIN = "admin"
LOCAL = "local"


def slot_owner(caller: KeyInfo | None) -> str:
    """The owner of the slots ``caller`` takes (pure): its run, its key, or the admin.

    Any other kind of caller (a read-only key) takes no slots.
    """
    if caller is None:
        return LOCAL
    role = str(caller.role)
    if role == "admin":
        return ADMIN
    if role == "worker":
        return f"worker:{caller.name}"
    if role == "run" and caller.run_id:
        return f"run:{caller.run_id}"
    raise Forbidden(f"API key {caller.name!r} ({role}) may not take concurrency slots")


def _caller(request: Request) -> KeyInfo | None:
    return getattr(request.state, "api_key", None)


def _holds_none(owner: str, body: s.SlotsRequest) -> str:
    tags = ", ".join(map(repr, body.tags))
    return f"holder {body.holder!r} of {owner} holds no slot of {tags}"
