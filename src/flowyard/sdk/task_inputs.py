"""Which upstream task runs fed a task run's inputs (Prefect's ``task_inputs``).

Each flow run keeps ``RunLinks``: what its task runs produced, so that a later call can
say where each of its arguments came from. A future knows its task run's id (fixed when
it was submitted, so even before it is done); a state and a plain result are known by
identity: the object a task run returned (or one of its items, one level down, so that
mapping over a result links each mapped run), passed on as it is. Values Python shares
between unrelated code (``None``, booleans, small integers, empty and one-character
strings) cannot be told apart that way and are not linked.

Inputs are found inside lists, tuples, sets and dict values, through ``unmapped`` and
``allow_failure``; ``quote`` turns the search off for what it wraps, as in Prefect.
Links hold the objects they link for the flow run's lifetime (as Prefect's do), so an
object's id cannot be reused by another while it is linked.
"""

from __future__ import annotations

import inspect
import itertools
import threading
from collections.abc import Iterable
from typing import Any

from flowyard.sdk.annotations import BaseAnnotation, quote
from flowyard.sdk.futures import TaskFuture
from flowyard.states import State

TaskInputs = dict[str, list[dict[str, str]]]
"""Parameter name (or ``wait_for``) → ``[{"input_type": "task_run", "id": …}, …]``."""

WAIT_FOR = "wait_for"
PARENTS = "__parents__"
"""The key of the task run a task was called from (a task calling a task), as in Prefect."""

_CONTAINERS = (list, tuple, set, frozenset)
MAX_LINKED_ITEMS = 10_000
"""Items of one result linked to its run, at most (a result's items are linked for map)."""


def _items(value: Any) -> Iterable[Any]:
    if isinstance(value, dict):
        return value.values()
    return value if isinstance(value, _CONTAINERS) else ()


def is_shared(value: Any) -> bool:
    """True for values that unrelated code may hold as the very same object."""
    if value is None or isinstance(value, bool):
        return True
    if type(value) is int:
        return -5 <= value <= 256
    if isinstance(value, str | bytes):
        return len(value) <= 1
    if isinstance(value, tuple | frozenset):
        return not value  # the empty ones are singletons
    return False


class RunLinks:
    """What one flow run's task runs produced, to link later inputs to them."""

    def __init__(self) -> None:
        self._by_identity: dict[int, tuple[object, str]] = {}
        self._lock = threading.Lock()

    def produced(self, task_run_id: str, state: State[Any]) -> None:
        """The run ended in ``state``: the state, and when it completed its result and the
        result's items (so that ``map`` over it links each mapped run), come from it."""
        with self._lock:
            self._by_identity[id(state)] = (state, task_run_id)
            if not state.is_completed():
                return
            self._link(state.data, task_run_id)
            for item in itertools.islice(_items(state.data), MAX_LINKED_ITEMS):
                if id(item) not in self._by_identity:  # an item passed through keeps its source
                    self._link(item, task_run_id)

    def _link(self, value: Any, task_run_id: str) -> None:
        if not is_shared(value):
            self._by_identity[id(value)] = (value, task_run_id)

    def source(self, value: Any) -> str | None:
        """The task run ``value`` (a future, state or result) came from, if any."""
        if isinstance(value, TaskFuture):
            return value.task_run_id
        found = self._by_identity.get(id(value))
        return found[1] if found is not None and found[0] is value else None

    def inputs(self, arguments: dict[str, Any], wait_for: Iterable[Any] | None) -> TaskInputs:
        """Each argument's upstream task runs, and ``wait_for``'s under its own key."""
        found = {name: self._upstreams(value) for name, value in arguments.items()}
        if wait_for:
            found[WAIT_FOR] = self._upstreams(list(wait_for))
        return found

    def _upstreams(self, value: Any) -> list[dict[str, str]]:
        ids: dict[str, None] = {}
        self._visit(value, ids)
        return [{"input_type": "task_run", "id": task_run_id} for task_run_id in ids]

    def _visit(self, value: Any, ids: dict[str, None]) -> None:
        if isinstance(value, quote):
            return
        if isinstance(value, BaseAnnotation):  # unmapped, allow_failure
            self._visit(value.value, ids)
            return
        if not isinstance(value, TaskFuture) and is_shared(value):
            return
        source = self.source(value)
        if source is not None:
            ids[source] = None
            return
        if isinstance(value, dict):
            for item in value.values():
                self._visit(item, ids)
        elif isinstance(value, _CONTAINERS):
            for item in value:
                self._visit(item, ids)


def call_inputs(
    links: RunLinks, signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> TaskInputs:
    """The inputs of a call (a subflow's) by parameter name; {} when the call cannot bind."""
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return {}
    return links.inputs(dict(bound.arguments), None)
