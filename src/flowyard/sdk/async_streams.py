"""Async generator flows and tasks: the async twin of ``AttemptLoop.run_generator``.

Each value is asked for in an asyncio task of its own that runs in the run's context, so
the run's scope holds inside the body and the caller's code between two values is not
inside the run (as for sync generators). ``timeout_seconds`` covers a whole attempt, the
caller's time between values included; the value being made when it passes is cancelled.
The final state is left on the engine (``engine.state``): an async generator returns none.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

from flowyard.sdk.timeouts import timeout_error

if TYPE_CHECKING:
    from flowyard.sdk.attempts import AttemptLoop

T = TypeVar("T")


class _AsyncDeadline:
    """An async generator attempt's timeout, as ``timeouts.Deadline`` is a sync one's."""

    def __init__(self, seconds: float | None, kind: str) -> None:
        self.seconds, self.kind = seconds, kind
        self._at = None if seconds is None else time.monotonic() + seconds

    async def next_value(self, values: AsyncIterator[T], context: contextvars.Context) -> T:
        async def step() -> T:
            return await values.__anext__()

        task = asyncio.create_task(step(), context=context)
        if self._at is None or self.seconds is None:
            return await task
        try:
            return await asyncio.wait_for(task, max(self._at - time.monotonic(), 0))
        except TimeoutError:
            raise timeout_error(self.kind, self.seconds) from None


async def _in(context: contextvars.Context, awaitable: Awaitable[T]) -> T:
    async def wrapped() -> T:
        return await awaitable

    return await asyncio.create_task(wrapped(), context=context)


async def run_async_generator(  # noqa: C901 - one loop of attempts and values, as run_generator
    engine: AttemptLoop, collect: list[Any] | None = None, raise_failure: bool = True
) -> AsyncGenerator[Any, None]:
    """Run ``engine``'s async generator function, handing on each value as it is yielded;
    ``collect`` gathers them too. A run that did not complete raises its failure at the
    end when ``raise_failure``; a caller that stops early completes the run."""
    context = contextvars.copy_context()
    if context.run(engine._begin):
        scope = context.run(engine.enter_run_scope)
        try:
            while context.run(engine._attempt_starts):
                delay: float | None = None
                deadline = _AsyncDeadline(engine._timeout(), engine.label)
                values = context.run(engine._fn(), *engine.args, **engine.kwargs)
                while True:
                    try:
                        value = await deadline.next_value(values, context)
                    except StopAsyncIteration:
                        delay = context.run(engine._on_value, collect)
                        break
                    except Exception as exc:
                        await _in(context, values.aclose())
                        delay = context.run(engine._on_exception, exc)
                        break
                    if collect is not None:
                        collect.append(value)
                    try:
                        yield value
                    except GeneratorExit:  # the caller has what it wanted
                        await _in(context, values.aclose())
                        context.run(engine._on_value, None)
                        delay = None
                        break
                if delay is None:
                    break
                if delay:
                    await asyncio.sleep(delay)
        except BaseException as exc:
            context.run(engine._on_crash, exc)
            raise
        finally:
            context.run(scope.close)
    state = context.run(engine._finish)
    if raise_failure and not state.is_completed():
        state.result(_sync=True)


async def drain_async(engine: AttemptLoop) -> Any:
    """Run an async generator function to its end; its final state (the values as its
    result), as a submitted or ``return_state`` call gives it."""
    collected: list[Any] = []
    async for _ in run_async_generator(engine, collected, raise_failure=False):
        pass
    return engine.state
