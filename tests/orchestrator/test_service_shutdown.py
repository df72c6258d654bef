"""Background tasks end when stopped, even the ones that swallow a cancellation."""

from __future__ import annotations

import asyncio

from flowyard.utilities.tasks import cancel_and_wait


def test_a_task_that_swallows_its_cancellation_is_cancelled_again_until_it_ends():
    """What Python 3.11's ``asyncio.wait_for`` does when the cancel lands as its inner call
    completes (redis-py runs every command through it): the loop carries on. A single
    ``cancel()`` then ``await`` would wait on it for ever."""
    swallowed = []

    async def service() -> None:
        while True:
            try:
                await asyncio.sleep(3600)  # noqa: TID251 - the service under test idles
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed.append(True)  # the first cancellation is lost, as in wait_for

    async def main() -> asyncio.Task[None]:
        task = asyncio.create_task(service())
        await asyncio.sleep(0)  # noqa: TID251 - a yield: it starts idling
        await asyncio.wait_for(cancel_and_wait([task]), timeout=30)
        return task

    task = asyncio.run(main())
    assert swallowed == [True]
    assert task.cancelled()
