"""The tests' own waiting helpers (tests/waiting.py)."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from tests.waiting import async_wait_until, wait_until


def test_wait_until_returns_the_first_truthy_value() -> None:
    """wait_until polls until the predicate is truthy and returns that value."""
    counter = itertools.count()
    assert wait_until(lambda: next(counter) >= 3 and "done", timeout=5) == "done"


def test_wait_until_fails_with_the_last_value_seen() -> None:
    """On timeout the failure names the last value the predicate returned."""
    with pytest.raises(AssertionError, match=r"queue empty within 0.05s; last value seen: \[\]"):
        wait_until(lambda: [], timeout=0.05, message="queue empty")


def test_async_wait_until_awaits_the_predicate() -> None:
    """The async twin awaits its predicate between polls."""
    counter = itertools.count()

    async def ready() -> int:
        return next(counter) if next(counter) > 4 else 0

    assert asyncio.run(async_wait_until(ready, timeout=5)) > 4
