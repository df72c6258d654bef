"""Per-pool wake-ups for long-polling claimers, from one pub/sub listener per process.

:class:`PoolQueues` publishes on ``fy:{pool}:wake`` when a run is enqueued, a slot
is freed or the configuration changes. One task here pattern-subscribes to every
pool's channel and wakes all the waiters of that pool at once. If the connection
drops it reconnects with backoff and wakes everyone, since messages may be lost.

To never miss a wake that lands between an empty claim and the wait, take a
:meth:`Wakeups.mark` *before* claiming and pass it to :meth:`Wakeups.wait`::

    mark = wakeups.mark(pool)
    result = await queues.claim(pool, ...)
    if not result.claims:
        await wakeups.wait(pool, timeout, since=mark)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import structlog
from redis import exceptions as redis_errors
from redis.asyncio.client import PubSub

from flowyard.pools import keys
from flowyard.pools.redis_server import Client, translated
from flowyard.utilities.tasks import cancel_and_wait

log = structlog.get_logger()

_DISCONNECTS = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)


class Wakeups:
    """Wake the waiters of a pool when its wake channel gets a message."""

    def __init__(
        self,
        redis: Client,
        *,
        ping_interval: float = 10.0,
        min_backoff: float = 0.05,
        max_backoff: float = 2.0,
    ) -> None:
        self._redis = redis
        self._ping_interval = ping_interval
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._events: dict[str, asyncio.Event] = {}
        self._generations: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    def mark(self, pool: str) -> int:
        """How many wakes the pool has had so far; pass it to :meth:`wait` as ``since``."""
        return self._generations.get(pool, 0)

    async def wait(self, pool: str, timeout: float, *, since: int | None = None) -> bool:
        """Wait until the pool is woken (True) or ``timeout`` seconds pass (False).

        With ``since``, returns True at once if a wake came after that mark.
        """
        if since is not None and self.mark(pool) != since:
            return True
        event = self._events.setdefault(pool, asyncio.Event())
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                await event.wait()
        except TimeoutError:
            return False
        return True

    async def start(self) -> None:
        """Subscribe, then keep listening in a background task; raises QueueUnavailable."""
        if self._task is not None:
            return
        with translated(self._redis):
            pubsub = await self._subscribe()
        self._task = asyncio.create_task(self._run(pubsub), name="flowyard-wakeups")

    async def stop(self) -> None:
        """Stop listening and release every waiter."""
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait([task])
        self.wake_all()

    # -- the listener ------------------------------------------------------------

    async def _run(self, pubsub: PubSub | None) -> None:
        backoff = self._min_backoff
        while True:
            try:
                if pubsub is None:
                    pubsub = await self._subscribe()
                    log.info("wakeups_reconnected")
                    self.wake_all()  # wakes published while we were away are lost
                    backoff = self._min_backoff
                await self._listen(pubsub)
            except _DISCONNECTS as exc:
                log.warning("wakeups_disconnected", error=str(exc), retry_in=backoff)
                if pubsub is not None:  # waiters re-check (and learn Redis is gone) once
                    await _close(pubsub)
                    pubsub = None
                    self.wake_all()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
            except asyncio.CancelledError:
                await _close(pubsub)
                raise

    async def _subscribe(self) -> PubSub:
        """Pattern-subscribe and wait for the server's confirmation."""
        pubsub = self._redis.pubsub()
        try:
            await pubsub.psubscribe(keys.WAKE_PATTERN)
            async with asyncio.timeout(self._ping_interval):
                while True:
                    message = await pubsub.get_message(timeout=self._ping_interval)
                    if message and _text(message["type"]) == "psubscribe":
                        return pubsub
        except (*_DISCONNECTS, TimeoutError):
            await _close(pubsub)
            raise redis_errors.ConnectionError("wake-up subscription was not confirmed") from None

    async def _listen(self, pubsub: PubSub) -> None:
        """Dispatch messages; ping when idle, and give up on a silent connection."""
        last_heard = time.monotonic()
        while True:
            message = await pubsub.get_message(timeout=self._ping_interval)
            now = time.monotonic()
            if message is not None:
                last_heard = now
                self._dispatch(message)
            elif now - last_heard > 2 * self._ping_interval:
                raise redis_errors.ConnectionError("wake-up connection went silent")
            else:
                await pubsub.ping()

    def _dispatch(self, message: dict[str, Any]) -> None:
        if _text(message["type"]) != "pmessage":
            return
        pool = keys.pool_from_wake_channel(_text(message["channel"]))
        if pool is not None:
            self._wake(pool)

    def _wake(self, pool: str) -> None:
        self._generations[pool] = self._generations.get(pool, 0) + 1
        event = self._events.pop(pool, None)
        if event is not None:
            event.set()

    def wake(self, pool: str) -> None:
        """Wake this process's waiters of the pool (they check again what they wait for)."""
        self._wake(pool)

    def wake_all(self) -> None:
        """Wake every waiter (they check again what they wait for)."""
        for pool in set(self._events) | set(self._generations):
            self._wake(pool)


async def _close(pubsub: PubSub | None) -> None:
    if pubsub is not None:
        with contextlib.suppress(*_DISCONNECTS):
            await pubsub.aclose()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
