"""Tag concurrency limits: manage them, and take, renew and give back slots.

An engine asks for a slot of every tag of a task run before running it (``/acquire``);
tags without a limit are ignored, so asking costs one request and limits nothing. The
SDK's ``concurrency(names, occupy=N)`` asks for N slots of the limits so named, and
``rate_limit(names)`` for slots that decay instead of being given back (limits with a
``slot_decay_per_second`` only). An inactive limit is ignored, as if it did not exist.
"""

from __future__ import annotations

import time

from fastapi import APIRouter
from sqlalchemy import select

from flowyard import schemas as s
from flowyard.errors import InvalidInput, NotFound
from flowyard.orchestrator.runtime import Orch, Orchestrator
from flowyard.store import models as m

router = APIRouter(prefix="/api/concurrency_limits", tags=["concurrency limits"])


async def _doc(orch: Orchestrator, row: m.ConcurrencyLimit) -> s.ConcurrencyLimit:
    active = await orch.tag_slots.active(row.tag, time.time())
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

    return await _doc(orch, await orch.in_thread(upsert))


@router.get("")
async def list_limits(orch: Orch) -> list[s.ConcurrencyLimit]:
    def read() -> list[m.ConcurrencyLimit]:
        with orch.db.read() as session:
            query = select(m.ConcurrencyLimit).order_by(m.ConcurrencyLimit.tag)
            return list(session.scalars(query))

    return [await _doc(orch, row) for row in await orch.in_thread(read)]


@router.post("/acquire")
async def acquire(body: s.SlotsRequest, orch: Orch) -> s.SlotsResponse:
    """Take ``occupy`` slots of every limited tag for the holder, all or none."""
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
        limits, body.holder, now=time.time(), lease_seconds=body.lease_seconds,
        occupy=body.occupy, decay=decay,
    )  # fmt: skip
    if full is None:
        return s.SlotsResponse(acquired=True, limited_tags=sorted(limits))
    return s.SlotsResponse(
        acquired=False, limited_tags=sorted(limits), full_tag=full.tag,
        retry_after=full.retry_after,
    )  # fmt: skip


@router.post("/renew")
async def renew(body: s.SlotsRequest, orch: Orch) -> s.SlotsResponse:
    until = time.time() + body.lease_seconds
    await orch.tag_slots.renew(body.tags, body.holder, until, body.occupy)
    return s.SlotsResponse(acquired=True, limited_tags=sorted(body.tags))


@router.post("/release")
async def release(body: s.SlotsRequest, orch: Orch) -> s.SlotsResponse:
    await orch.tag_slots.release(body.tags, body.holder, body.occupy)
    return s.SlotsResponse(acquired=False, limited_tags=sorted(body.tags))


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
    await orch.tag_slots.clear(tag)


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
