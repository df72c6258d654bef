"""Tag concurrency limits and their slots."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    Field,
    StrictInt,
    model_validator,
)

from flowyard.schemas.base import Bool, Count, Doc, Float, Label, Tags


class ConcurrencyLimitCreate(Doc):
    """At most ``limit`` task runs tagged ``tag`` at once, everywhere (0 blocks them all).

    ``slot_decay_per_second`` lets ``rate_limit(tag)`` use it: at most ``limit`` callers at
    once, then that many a second. An inactive limit limits nothing.
    """

    tag: Label
    limit: Count
    slot_decay_per_second: Float | None = Field(default=None, gt=0, le=1_000_000)
    active: Bool = True


class ConcurrencyLimit(Doc):
    tag: str
    limit: int
    slot_decay_per_second: float | None = None
    active: bool = True
    active_slots: int
    created: datetime
    updated: datetime


MAX_SLOT_LEASE_SECONDS = 300.0
"""The longest lease of a tag concurrency slot: holders renew while they run (every third
of the lease), so a holder that dies frees its slots within this time."""


class SlotsRequest(Doc):
    """Take, renew or give back ``occupy`` slots of each limited tag, for ``holder`` (a
    task run, or a ``concurrency(...)`` block). The slots belong to the caller as well:
    only the key or run token that took them (or an admin, with ``reset``) frees them."""

    tags: Tags
    holder: Label
    lease_seconds: Float = Field(
        default=60.0,
        gt=0,
        le=MAX_SLOT_LEASE_SECONDS,
        description="How long the slots stay taken unless renewed (at most 300 s).",
    )
    occupy: StrictInt = Field(default=1, ge=1, le=1000)
    mode: Literal["concurrency", "rate_limit"] = Field(
        default="concurrency",
        description="rate_limit: the slots are not held but decay (limits with a slot decay)",
    )


class SlotsResponse(Doc):
    acquired: bool
    limited_tags: list[str] = Field(description="the tags of the request that have a limit")
    full_tag: str | None = Field(default=None, description="a tag whose limit is reached")
    retry_after: float | None = Field(
        default=None, description="seconds until decaying slots of the full tag make room"
    )
    owner: str | None = Field(
        default=None,
        description="who the slots belong to: 'run:ID', 'worker:KEY NAME', 'admin' or 'local'",
    )


class SlotHolder(Doc):
    """A holder of slots of one tag: whose they are, how many, until when unless renewed."""

    owner: str
    holder: str
    slots: int
    lease_expires: datetime


class SlotsReset(Doc):
    """Which slots of a tag an admin frees: all (held and decaying), or an owner's, or
    one holder of an owner."""

    owner: Annotated[Label, Field(max_length=300)] | None = None
    holder: Label | None = None

    @model_validator(mode="after")
    def _holder_needs_owner(self) -> SlotsReset:
        if self.holder is not None and self.owner is None:
            raise ValueError("a holder is named within its owner: give the owner too")
        return self


class SlotsFreed(Doc):
    freed: int = Field(description="how many slots were freed")
