"""Group commit: what concurrent requests submit while a transaction runs goes in the next one.

SQLite has one writer at a time, so N claim requests that each commit their own small
transaction queue up behind one another; one transaction for all N costs little more
than one. The first submitter starts a drain task that runs ``work`` on everything waiting,
again and again until nothing waits; each submitter gets its own item's result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

Work = Callable[[list[Item]], Awaitable[list[Result]]]


@dataclass
class GroupCommit(Generic[Item, Result]):
    """Batches the items submitted meanwhile into one call of ``work`` (one result per item)."""

    max_batch: int = 256
    _waiting: list[tuple[Item, asyncio.Future[Result]]] = field(default_factory=list)
    _drain: asyncio.Task[None] | None = None

    async def submit(self, item: Item, work: Work[Item, Result]) -> Result:
        done: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._drain is None or self._drain.done():
            self._drain = asyncio.create_task(self._drain_all(work))
        # a submitter that goes away cancels only its own future, never the drain
        return await done

    async def _drain_all(self, work: Work[Item, Result]) -> None:
        while self._waiting:
            batch = self._waiting[: self.max_batch]
            del self._waiting[: self.max_batch]
            try:
                results = await work([item for item, _ in batch])
            except BaseException as exc:  # every submitter of the batch sees the failure
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc) if isinstance(exc, Exception) else done.cancel()
                if not isinstance(exc, Exception):
                    raise
                continue
            for (_, done), result in zip(batch, results, strict=True):
                if not done.done():
                    done.set_result(result)
