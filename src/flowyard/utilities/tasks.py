"""Stopping background asyncio tasks for certain.

On Python 3.11, ``asyncio.wait_for`` returns its inner call's result, and drops the
cancellation, when the cancel lands just as that call completes (gh-86296, fixed in
3.12). redis-py awaits ``wait_for`` inside every command, so a service loop cancelled
mid-command can carry on as if nothing happened, and whoever awaits it waits for ever
(a server's shutdown hung that way). ``cancel_and_wait`` cancels again until the tasks end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

RECANCEL_SECONDS = 0.2


async def cancel_and_wait(tasks: Collection[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and return once every one has ended (their outcomes are dropped),
    cancelling again the ones that swallowed the cancellation."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_SECONDS)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved: no "exception was never retrieved" warning
