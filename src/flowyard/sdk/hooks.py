"""State-change hooks: called with (task or flow, run, state); a raising hook is only logged.

An async hook (or any hook returning an awaitable) is awaited before the run goes on, as
in Prefect: on a fresh event loop, in a helper thread when the caller's thread already
runs one (an async flow), so the hook finishes before the next state.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextvars
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from flowyard.sdk.logs import get_run_logger

T = TypeVar("T")

Hook = Callable[..., object]  # (flow or task, run, state); a transaction hook: (transaction)


def run_hooks(hooks: Sequence[Hook], owner: Any, run: Any, state: Any) -> None:
    """Call each hook in order; an exception is logged with its traceback and ignored."""
    for hook in hooks:
        name = getattr(hook, "__name__", repr(hook))
        logger = get_run_logger()
        try:
            outcome = hook(owner, run, state)
            if inspect.isawaitable(outcome):
                wait_for_awaitable(outcome)
        except Exception:
            logger.error("An error was encountered while running hook %r", name, exc_info=True)
        else:
            logger.info("Hook %r finished running successfully", name)


def as_hooks(value: Hook | Sequence[Hook] | None) -> tuple[Hook, ...]:
    if value is None:
        return ()
    if callable(value):
        return (value,)
    hooks = tuple(value)
    for hook in hooks:
        if not callable(hook):
            raise TypeError(f"hooks must be callables, got {hook!r}")
    return hooks


def wait_for_awaitable(awaitable: Awaitable[T]) -> T:
    """The awaitable's result, from synchronous code (with the caller's context)."""

    async def outcome() -> T:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(outcome())
    context = contextvars.copy_context()
    with cf.ThreadPoolExecutor(1, thread_name_prefix="flowyard-hook") as pool:
        return pool.submit(context.run, asyncio.run, outcome()).result()
