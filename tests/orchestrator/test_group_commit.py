"""GroupCommit: concurrent submissions share one call of the work, each gets its own result."""

from __future__ import annotations

import asyncio

import pytest

from flowyard.orchestrator.group_commit import GroupCommit


def test_submissions_made_during_a_call_share_the_next_call() -> None:
    calls: list[list[int]] = []

    async def main() -> list[int]:
        group: GroupCommit[int, int] = GroupCommit()
        first_started = asyncio.Event()
        release = asyncio.Event()

        async def work(items: list[int]) -> list[int]:
            calls.append(items)
            first_started.set()
            await release.wait()
            return [item * 10 for item in items]

        first = asyncio.create_task(group.submit(1, work))
        await first_started.wait()
        rest = [asyncio.create_task(group.submit(n, work)) for n in (2, 3, 4)]
        await asyncio.sleep(0)  # noqa: TID251 - a yield: they queue behind the running call
        release.set()
        return await asyncio.gather(first, *rest)

    assert asyncio.run(main()) == [10, 20, 30, 40]
    assert calls == [[1], [2, 3, 4]]


def test_a_failure_reaches_its_batch_only() -> None:
    async def main() -> tuple[list[BaseException | int], int]:
        group: GroupCommit[int, int] = GroupCommit()

        async def work(items: list[int]) -> list[int]:
            if 0 in items:
                raise RuntimeError("store down")
            return items

        failed = await asyncio.gather(group.submit(0, work), return_exceptions=True)
        return failed, await group.submit(7, work)

    failed, later = asyncio.run(main())
    assert isinstance(failed[0], RuntimeError) and later == 7


def test_a_submitter_that_goes_away_does_not_cancel_the_others() -> None:
    async def main() -> int:
        group: GroupCommit[int, int] = GroupCommit()
        started = asyncio.Event()
        release = asyncio.Event()

        async def work(items: list[int]) -> list[int]:
            started.set()
            await release.wait()
            return items

        gone = asyncio.create_task(group.submit(1, work))
        await started.wait()
        stays = asyncio.create_task(group.submit(2, work))
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        release.set()
        return await stays

    assert asyncio.run(main()) == 2
