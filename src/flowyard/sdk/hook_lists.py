"""The hooks of a flow or task for one kind of state: a list that is also a decorator.

``@flow(on_failure=[notify])`` and ``@my_flow.on_failure`` both add to
``my_flow.on_failure``, as in Prefect; the engines iterate over it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from flowyard.sdk.hooks import Hook, as_hooks

H = TypeVar("H", bound=Hook)


class HookList(list[Hook]):
    """Hooks run in order; calling the list with a function adds it and returns it."""

    def __init__(self, hooks: Hook | Sequence[Hook] | None = None) -> None:
        if isinstance(hooks, HookList):  # a HookList is callable: not one hook but many
            hooks = list(hooks)
        super().__init__(as_hooks(hooks))

    def __call__(self, hook: H) -> H:
        if not callable(hook):
            raise TypeError(f"hooks must be callables, got {hook!r}")
        self.append(hook)
        return hook
