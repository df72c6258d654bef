"""Timeouts for sync and async run bodies.

A sync body with a timeout runs on a helper thread (with the caller's context); when the
deadline passes the caller gets ``TimeoutError`` at once, and the helper thread is
asked to stop by an exception raised in it at its next Python instruction (a blocking C
call finishes first). An async body is cancelled by ``asyncio.wait_for``.

A generator body's timeout covers its whole attempt (``Deadline``): each value is made
as a sync body is, with the time left.

The error is ``TaskRunTimeoutError`` or ``FlowRunTimeoutError``, both ``TimeoutError``s as
in Prefect; a run that ends by any ``TimeoutError`` ends in a ``TimedOut`` (Failed) state.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextvars
import ctypes
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from flowyard.errors import FlowRunTimeoutError, TaskRunTimeoutError

T = TypeVar("T")


class _Abandoned(BaseException):
    """Raised inside a timed-out body's thread to unwind it."""


def timeout_error(kind: str, seconds: float) -> TimeoutError:
    error = FlowRunTimeoutError if kind == "Flow" else TaskRunTimeoutError
    return error(f"{kind} run exceeded timeout of {float(seconds)} second(s)")


def timed_out_message(kind: str, exc: TimeoutError) -> str:
    """A TimedOut state's message (Prefect's): the run's own timeout, or the user's error."""
    if isinstance(exc, TaskRunTimeoutError | FlowRunTimeoutError):
        return str(exc)
    return f"{kind} run failed due to timeout: {exc!r}"


def call_with_timeout(
    fn: Callable[..., T], seconds: float | None, kind: str, /, *args: Any, **kwargs: Any
) -> T:
    """``fn(*args, **kwargs)``, raising ``TimeoutError`` if it takes longer than ``seconds``."""
    if seconds is None:
        return fn(*args, **kwargs)
    box: cf.Future[T] = cf.Future()
    context = contextvars.copy_context()

    def target() -> None:
        try:
            box.set_result(context.run(fn, *args, **kwargs))
        except BaseException as exc:
            box.set_exception(exc)

    thread = threading.Thread(target=target, name=f"flowyard-{kind.lower()}", daemon=True)
    thread.start()
    try:
        return box.result(timeout=seconds)
    except cf.TimeoutError:
        _interrupt(thread)
        raise timeout_error(kind, seconds) from None


class Deadline:
    """A generator run's timeout: its whole attempt, the caller's time between values
    included, as in Prefect. Each value is asked for with what time is left."""

    def __init__(self, seconds: float | None, kind: str) -> None:
        self.seconds, self.kind = seconds, kind
        self._at = None if seconds is None else time.monotonic() + seconds

    def next_value(self, values: Iterator[T]) -> T:
        """``next(values)``; ``TimeoutError`` once the deadline has passed (a value being
        made then is abandoned as a timed-out body is)."""
        if self._at is None or self.seconds is None:
            return next(values)
        left = self._at - time.monotonic()
        if left <= 0:
            raise timeout_error(self.kind, self.seconds)

        def step() -> T:
            return next(values)

        try:
            return call_with_timeout(step, left, self.kind)
        except (TaskRunTimeoutError, FlowRunTimeoutError):  # its message names the whole timeout
            raise timeout_error(self.kind, self.seconds) from None


def _interrupt(thread: threading.Thread) -> None:
    if thread.ident is not None and thread.is_alive():
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread.ident), ctypes.py_object(_Abandoned)
        )


async def await_with_timeout(awaitable: Awaitable[T], seconds: float | None, kind: str) -> T:
    if seconds is None:
        return await awaitable
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except TimeoutError:
        raise timeout_error(kind, seconds) from None
