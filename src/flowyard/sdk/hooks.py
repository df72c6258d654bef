"""State-change hooks: called with (task or flow, run, state); a raising hook is only logged."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from flowyard.sdk.logs import get_run_logger

Hook = Callable[..., object]  # (flow or task, run, state); a transaction hook: (transaction)


def run_hooks(hooks: Sequence[Hook], owner: Any, run: Any, state: Any) -> None:
    """Call each hook in order; an exception is logged with its traceback and ignored."""
    for hook in hooks:
        name = getattr(hook, "__name__", repr(hook))
        logger = get_run_logger()
        try:
            hook(owner, run, state)
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
