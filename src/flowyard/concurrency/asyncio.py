"""``async with concurrency(...)`` and ``await rate_limit(...)``: the same slots as
``flowyard.concurrency.sync``, for async code (waiting and releasing happen in a worker
thread, off the event loop)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from flowyard.concurrency.sync import concurrency as sync_concurrency
from flowyard.concurrency.sync import rate_limit as sync_rate_limit
from flowyard.errors import ConcurrencySlotAcquisitionError

__all__ = ["ConcurrencySlotAcquisitionError", "concurrency", "rate_limit"]


@contextlib.asynccontextmanager
async def concurrency(
    names: str | list[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    max_retries: int | None = None,
    lease_duration: float = 300,
    strict: bool = False,
    holder: object = None,
) -> AsyncIterator[None]:
    """Hold ``occupy`` slots of each limit in ``names`` while the block runs."""
    block = sync_concurrency(
        names, occupy, timeout_seconds, max_retries, lease_duration, strict, holder
    )
    await asyncio.to_thread(block.__enter__)
    try:
        yield
    except BaseException as exc:
        if not await asyncio.to_thread(block.__exit__, type(exc), exc, exc.__traceback__):
            raise
    else:
        await asyncio.to_thread(block.__exit__, None, None, None)


async def rate_limit(
    names: str | list[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    strict: bool = False,
) -> None:
    """Wait for ``occupy`` decaying slots of each limit in ``names`` (see the sync one)."""
    await asyncio.to_thread(sync_rate_limit, names, occupy, timeout_seconds, strict)
