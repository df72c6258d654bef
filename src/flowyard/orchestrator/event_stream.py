"""Fanning committed events out on a Redis stream, and waking those who follow them.

The store is the truth about events; the stream (``keys.EVENTS_STREAM``) is a fan-out for
live readers and automations. ``committed`` is called (from any thread) with the events of
each committed transaction; one task per API process XADDs them, capped with MAXLEN ~. A
batch Redis refuses is dropped from the stream only (logged): readers catch up from the
store by position, so a Redis outage delays them and loses nothing.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import structlog
from redis.exceptions import RedisError

from flowyard.events.schemas import Event, dumps
from flowyard.pools import keys
from flowyard.pools.redis_server import Client
from flowyard.utilities.tasks import cancel_and_wait

log = structlog.get_logger()


class EventStream:
    """The process's publisher of committed events."""

    def __init__(self, redis: Client, maxlen: int) -> None:
        self._redis = redis
        self.maxlen = maxlen
        self._pending: deque[Event] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._woken = False  # a wake-up is on its way to the loop: later commits need none
        self._news = asyncio.Event()  # set (and replaced) whenever this process commits events
        self._task: asyncio.Task[None] | None = None
        self.published = self.dropped = 0

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            await self.flush()
            await cancel_and_wait([self._task])

    def committed(self, events: list[Event]) -> None:
        """Queue committed events for the stream; safe from any thread. Commits made
        before the publisher takes its next batch share one wake-up of the loop."""
        self._pending.extend(events)
        if self._woken or self._loop is None or self._loop.is_closed():
            return
        self._woken = True
        self._loop.call_soon_threadsafe(self._wake.set)

    async def flush(self) -> None:
        """Publish what is queued now (the publishing task does this by itself)."""
        batch = [self._pending.popleft() for _ in range(len(self._pending))]
        if batch:
            await self._publish(batch)
        self.wake_followers()

    def wake_followers(self) -> None:
        """Wake whoever waits for news (they read again what they follow)."""
        news, self._news = self._news, asyncio.Event()
        news.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._woken = False  # before the batch is taken: a later commit wakes us again
            await self.flush()

    async def _publish(self, batch: list[Event]) -> None:
        await self.publish_encoded([(str(event.id), event.event, dumps(event)) for event in batch])

    async def publish_encoded(self, batch: list[tuple[str, str, str]]) -> None:
        """XADD events already encoded as (id, name, ``dumps`` of the event): those another
        process committed (the scheduler's, services/materializer.py)."""
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for event_id, name, doc in batch:
                    fields: dict[Any, Any] = {"id": event_id, "event": name, "doc": doc}
                    pipe.xadd(keys.EVENTS_STREAM, fields, maxlen=self.maxlen, approximate=True)
                await pipe.execute()
            self.published += len(batch)
        except (RedisError, OSError) as exc:
            self.dropped += len(batch)
            log.warning("events_not_streamed", events=len(batch), error=str(exc))

    def news(self) -> asyncio.Event:
        """What the next publication of this replica's events sets: taken before reading
        the store and handed to ``wait_for_news``, no commit in between goes unnoticed."""
        return self._news

    async def wait_for_news(self, timeout: float, since: asyncio.Event | None = None) -> None:
        """Return once events were committed (by any replica, seen on the stream; by this
        one, seen directly, since ``since`` was taken) or after ``timeout`` seconds. With
        Redis away, only this replica's events wake the caller early; the store still has
        every event."""
        local = asyncio.ensure_future((since or self._news).wait())
        remote = asyncio.ensure_future(self._stream_moved(timeout))
        try:
            await asyncio.wait({local, remote}, timeout=timeout, return_when="FIRST_COMPLETED")
        finally:
            # cancelled again until they end: a cancel redis-py swallows (see cancel_and_wait)
            # would leave this waiting out the blocking XREAD, with news already here
            await cancel_and_wait([local, remote])

    async def _stream_moved(self, timeout: float) -> None:
        try:
            # at least 1 ms: XREAD's BLOCK 0 would wait for ever (a tiny ``wait`` hung a follow)
            block = max(1, int(timeout * 1000))
            await self._redis.xread({keys.EVENTS_STREAM: "$"}, count=1, block=block)
        except (RedisError, OSError):
            await asyncio.sleep(timeout)  # Redis is away: only local news (or time) wakes us
