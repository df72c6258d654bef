"""Waiting helpers for tests: poll a predicate against a monotonic deadline, never sleep blindly."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def _fail(timeout: float, last: object, message: str | None) -> AssertionError:
    what = message or "condition was not met"
    return AssertionError(f"{what} within {timeout}s; last value seen: {last!r}")


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.01,
    message: str | None = None,
) -> T:
    """Return the first truthy ``predicate()`` value; after ``timeout`` fail with the last one."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()  # waits without time.sleep, which tests may not call
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise _fail(timeout, last, message)
        pause.wait(interval)


async def async_wait_until(
    predicate: Callable[[], Awaitable[T]],
    timeout: float = 10.0,
    interval: float = 0.01,
    message: str | None = None,
) -> T:
    """The asyncio twin of :func:`wait_until`, for an awaitable predicate."""
    deadline = time.monotonic() + timeout
    while True:
        last = await predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise _fail(timeout, last, message)
        await asyncio.sleep(interval)
