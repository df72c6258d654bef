"""The live pages' wake-up: ``EventStream.wait_for_news`` returns as soon as this process
commits events, whatever stage its Redis watch (a blocking XREAD) has reached.

It watches both, and cancels the one that lost. On Python 3.11 redis-py can swallow that
cancel (see ``utilities/tasks``), and the wait then sat out the whole XREAD with the news
already here: an open page (the events page in CI) got its change up to 15 s late."""

from __future__ import annotations

import asyncio

from flowyard.orchestrator.event_stream import EventStream
from flowyard.pools.redis_server import connect

WATCH_SECONDS = 60.0  # how long the XREAD blocks: a wait that sits it out fails below
ANSWER_SECONDS = 10.0  # news must end the wait well before (a loaded machine's margin)
HOPS = 8  # loop turns before the news: the cancel lands at each stage of the XREAD


def test_news_ends_the_wait_at_every_stage_of_the_redis_watch(redis_url: str) -> None:
    """News that arrives 0..7 loop turns after the wait began (connecting, sending, or
    blocked in XREAD) ends it at once, each time."""

    async def scenario() -> list[int]:
        stream = EventStream(connect(redis_url), 1000)
        stream.start()
        loop = asyncio.get_running_loop()
        late: list[int] = []
        try:
            for turn in range(HOPS * 3):
                news = stream.news()

                def after(hops: int) -> None:
                    if hops:
                        loop.call_soon(after, hops - 1)
                    else:
                        stream.wake_followers()

                after(turn % HOPS)
                waiting = stream.wait_for_news(WATCH_SECONDS, since=news)
                try:
                    await asyncio.wait_for(waiting, ANSWER_SECONDS)
                except TimeoutError:
                    late.append(turn)
                    break
        finally:
            await stream.stop()
        return late

    assert asyncio.run(scenario()) == []
