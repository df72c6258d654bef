"""Cache policies: how a task run's cache key is computed (Prefect's ``cache_policies``).

A policy maps a task run (its context, inputs and flow parameters) to a key, or to
``None`` for "no key from me"; ``compute_key(task_ctx, inputs, flow_parameters)`` has
Prefect's signature, so a user's ``CachePolicy`` subclass written for Prefect works.
Arithmetic is Prefect's: ``a + b`` is a ``CompoundCachePolicy`` (flattened, with its
``Inputs`` parts merged into one) whose key hashes the keys of the parts that gave one;
``policy - "name"`` leaves an input out (``INPUTS``, or a compound holding inputs), and
is a no-op on the others; anything but a string is refused with ``TypeError``.
``policy.configure(isolation_level=..., lock_manager=...)`` makes a copy whose task runs
lock their cache key (``cache_locks.py``); added policies keep the configuration of both
and refuse two different ones, as Prefect's.
Inputs that cannot be serialized make ``Inputs`` raise ``ValueError`` (the engine logs
it and runs the task without a cache key). ``cache_key_fn(context, parameters)`` is
wrapped as a policy too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

_UNHASHABLE_HINT = (
    "This often occurs when task inputs contain objects that cannot be cached "
    "like locks, file handles, or other system resources.\n\n"
    "To resolve this, you can:\n"
    "  1. Exclude these arguments by defining a custom `cache_key_fn`\n"
    "  2. Disable caching by passing `cache_policy=NO_CACHE`\n"
)


def hash_objects(*objects: Any, raise_on_failure: bool = False) -> str | None:
    """A stable hex digest of ``objects`` (JSON, else pickle: a pandas DataFrame, which
    JSON refuses, is hashed by its pickle as Prefect's is, the same in every process).
    When neither can encode them: None, or with ``raise_on_failure`` a ``ValueError``
    giving both reasons."""
    try:
        return hashlib.sha256(json.dumps(objects, sort_keys=True).encode()).hexdigest()
    except (TypeError, ValueError) as exc:
        json_error = str(exc)
    try:
        return hashlib.sha256(pickle.dumps(objects, protocol=4)).hexdigest()
    except Exception as exc:
        pickle_error = str(exc)
    if not raise_on_failure:
        return None
    raise ValueError(
        "Unable to create hash - objects could not be serialized.\n"
        f"  JSON error: {json_error}\n"
        f"  Pickle error: {pickle_error}"
    )


def task_source_hash(fn: Callable[..., Any]) -> str:
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        source = code.co_code.hex() if code is not None else repr(fn)
    return hashlib.sha256(source.encode()).hexdigest()


def task_input_hash(context: Any, arguments: dict[str, Any]) -> str | None:
    """Prefect's ``task_input_hash``: the task's identity, its code and its inputs."""
    task = context.task
    return hash_objects(task.task_key, task.fn.__code__.co_code.hex(), arguments)


def _only_a_name(other: object) -> str:
    if not isinstance(other, str):
        raise TypeError("Can only subtract strings from key policies.")
    return other


def _joined(one: CachePolicy, two: CachePolicy) -> dict[str, Any]:
    """The configuration of ``one + two``; ``ValueError`` when they differ (Prefect's)."""
    for name, what in (
        ("lock_manager", "lock implementations"),
        ("isolation_level", "isolation levels"),
    ):
        mine, theirs = getattr(one, name), getattr(two, name)
        if mine is not None and theirs is not None and mine != theirs:
            raise ValueError(f"Cannot add CachePolicies with different {what}.")
    return {
        "lock_manager": one.lock_manager or two.lock_manager,
        "isolation_level": one.isolation_level or two.isolation_level,
    }


@dataclass
class CachePolicy:
    """Base policy; subclasses implement ``compute_key``."""

    isolation_level: Any = field(default=None, kw_only=True)  # "SERIALIZABLE": lock the key
    lock_manager: Any = field(default=None, kw_only=True)  # a flowyard.locking manager

    def configure(self, lock_manager: Any = None, isolation_level: Any = None) -> Self:
        """A copy of this policy whose task runs take their key's lock with
        ``lock_manager`` under ``isolation_level`` (None: unchanged)."""
        changes = {"lock_manager": lock_manager, "isolation_level": isolation_level}
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def compute_key(
        self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:  # fmt: skip
        raise NotImplementedError

    def __add__(self, other: CachePolicy) -> CachePolicy:
        if isinstance(other, _None):
            return self
        return CompoundCachePolicy(policies=[self, other], **_joined(self, other))

    def __sub__(self, other: str) -> CachePolicy:
        """No input to leave out: the same policy (as Prefect's)."""
        _only_a_name(other)
        return self


@dataclass
class CompoundCachePolicy(CachePolicy):
    """Two or more policies: the hash of the keys of the parts that gave one (None when
    none did). Nested compounds are flattened and ``Inputs`` parts merged into one, last."""

    policies: list[CachePolicy] = field(default_factory=list)

    def __post_init__(self) -> None:
        flat = [
            part
            for policy in self.policies
            for part in (policy.policies if isinstance(policy, CompoundCachePolicy) else [policy])
        ]
        inputs = [p for p in flat if isinstance(p, Inputs)]
        self.policies = [p for p in flat if not isinstance(p, Inputs)]
        if inputs:
            self.policies.append(Inputs(exclude=sorted({n for p in inputs for n in p.exclude})))

    def compute_key(
        self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:  # fmt: skip
        keys = [
            key
            for policy in self.policies
            if (key := policy.compute_key(task_ctx, inputs, flow_parameters, **kwargs)) is not None
        ]
        return hash_objects(*keys, raise_on_failure=True) if keys else None

    def __add__(self, other: CachePolicy) -> CachePolicy:
        """Unlike the base, adding ``NO_CACHE`` keeps it as a part (it gives no key)."""
        return CompoundCachePolicy(policies=[*self.policies, other], **_joined(self, other))

    def __sub__(self, other: str) -> CachePolicy:
        name = _only_a_name(other)
        if not any(isinstance(p, Inputs) for p in self.policies):
            return self
        return dataclasses.replace(self, policies=[*self.policies, Inputs(exclude=[name])])


@dataclass
class Inputs(CachePolicy):
    """The task run's inputs (minus ``exclude``); no key when it has none."""

    exclude: list[str] = field(default_factory=list)

    def compute_key(
        self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:  # fmt: skip
        if not inputs:
            return None
        kept = {k: v for k, v in inputs.items() if k not in self.exclude}
        try:
            return hash_objects(kept, raise_on_failure=True)
        except ValueError as exc:
            raise ValueError(f"{exc}\n\n{_UNHASHABLE_HINT}") from exc

    def __sub__(self, other: str) -> CachePolicy:
        return dataclasses.replace(self, exclude=[*self.exclude, _only_a_name(other)])


@dataclass
class TaskSource(CachePolicy):
    """The task function's source code."""

    def compute_key(
        self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:  # fmt: skip
        if not task_ctx:
            return None
        task = task_ctx.task
        return task_source_hash(getattr(task, "fn", task))  # a Task, or a bare function


@dataclass
class FlowParameters(CachePolicy):
    """The enclosing flow run's parameters (no key when there are none)."""

    def compute_key(
        self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:  # fmt: skip
        if not flow_parameters:
            return None
        return hash_objects(flow_parameters, raise_on_failure=True)


@dataclass
class RunId(CachePolicy):
    """The enclosing flow run, or outside a flow the task run itself (so a cache never
    outlives its run)."""

    def compute_key(
        self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:  # fmt: skip
        if not task_ctx:
            return None
        run = task_ctx.task_run
        run_id = run.flow_run_id if run.flow_run_id is not None else run.id
        return str(run_id)


@dataclass
class CacheKeyFnPolicy(CachePolicy):
    """A user's ``cache_key_fn(context, parameters)``."""

    cache_key_fn: Callable[[Any, dict[str, Any]], str | None] | None = None

    def compute_key(
        self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:  # fmt: skip
        return self.cache_key_fn(task_ctx, inputs) if self.cache_key_fn else None


@dataclass
class StorageKeyPolicy(CachePolicy):
    """A task's ``result_storage_key``: a template of the record's name, formatted as
    Prefect's with ``parameters`` (the inputs) and ``flowyard.runtime``'s ``flow_run``,
    ``task_run`` and ``deployment`` (``"{flow_run.flow_name}-{parameters[x]}.pkl"``;
    ``{flowyard.runtime.flow_run.flow_version}`` too)."""

    template: str = ""

    def compute_key(
        self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:  # fmt: skip
        import flowyard.runtime  # for "{flowyard.runtime.flow_run.flow_version}"
        from flowyard.sdk import runtime

        return self.template.format(
            parameters=inputs, flow_run=runtime.flow_run, task_run=runtime.task_run,
            deployment=runtime.deployment, flowyard=flowyard,
        )  # fmt: skip


@dataclass
class _None(CachePolicy):
    """No key: no cache, and no persisted result unless asked for."""

    def compute_key(
        self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:  # fmt: skip
        return None

    def __add__(self, other: CachePolicy) -> CachePolicy:
        return other


INPUTS = Inputs()
TASK_SOURCE = TaskSource()
FLOW_PARAMETERS = FlowParameters()
RUN_ID = RunId()
NONE: CachePolicy = _None()
NO_CACHE: CachePolicy = _None()
DEFAULT = INPUTS + TASK_SOURCE + RUN_ID
