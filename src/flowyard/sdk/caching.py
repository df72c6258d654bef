"""Cache policies: how a task run's cache key is computed (Prefect's ``cache_policies``).

A policy maps a task run (its task, inputs and flow run) to a key, or to ``None`` for "do
not cache". Policies combine with ``+`` (every part must give a key); ``INPUTS - "name"``
leaves an input out. ``cache_key_fn(context, parameters)`` is wrapped as a policy too.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import pickle
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any


def hash_objects(*objects: Any) -> str | None:
    """A stable hex digest of ``objects`` (JSON, else pickle); None when neither can encode them."""
    try:
        data = json.dumps(objects, sort_keys=True).encode()
    except (TypeError, ValueError):
        try:
            data = pickle.dumps(objects, protocol=4)
        except Exception:
            return None
    return hashlib.sha256(data).hexdigest()


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


@dataclass(frozen=True)
class CacheContext:
    """What a policy may look at."""

    task_run: Any  # the TaskRunContext: .task, .parameters, .flow_run_id
    inputs: dict[str, Any]
    flow_parameters: dict[str, Any]
    flow_run_id: str | None


class CachePolicy:
    """Base policy; subclasses implement ``compute_key``."""

    def compute_key(self, ctx: CacheContext) -> str | None:
        raise NotImplementedError

    def __add__(self, other: CachePolicy) -> CachePolicy:
        if isinstance(other, _NoCache):
            return self
        parts = _parts(self) + _parts(other)
        return CompoundCachePolicy(tuple(parts))


def _parts(policy: CachePolicy) -> list[CachePolicy]:
    return list(policy.policies) if isinstance(policy, CompoundCachePolicy) else [policy]


@dataclass(frozen=True)
class CompoundCachePolicy(CachePolicy):
    policies: tuple[CachePolicy, ...]

    def compute_key(self, ctx: CacheContext) -> str | None:
        keys = [policy.compute_key(ctx) for policy in self.policies]
        if any(key is None for key in keys):
            return None
        return hash_objects(*keys)


@dataclass(frozen=True)
class Inputs(CachePolicy):
    """The task run's inputs (minus ``exclude``)."""

    exclude: frozenset[str] = field(default_factory=frozenset)

    def compute_key(self, ctx: CacheContext) -> str | None:
        kept = {k: v for k, v in ctx.inputs.items() if k not in self.exclude}
        return hash_objects(kept)

    def __sub__(self, name: str | Iterable[str]) -> Inputs:
        names = {name} if isinstance(name, str) else set(name)
        return Inputs(self.exclude | names)


@dataclass(frozen=True)
class TaskSource(CachePolicy):
    """The task function's source code."""

    def compute_key(self, ctx: CacheContext) -> str | None:
        return task_source_hash(ctx.task_run.task.fn)


@dataclass(frozen=True)
class FlowParameters(CachePolicy):
    """The enclosing flow run's parameters."""

    def compute_key(self, ctx: CacheContext) -> str | None:
        return hash_objects(ctx.flow_parameters)


@dataclass(frozen=True)
class RunId(CachePolicy):
    """The enclosing flow run (so a cache never outlives its run)."""

    def compute_key(self, ctx: CacheContext) -> str | None:
        return ctx.flow_run_id


@dataclass(frozen=True)
class CacheKeyFnPolicy(CachePolicy):
    """A user's ``cache_key_fn(context, parameters)``."""

    fn: Callable[[Any, dict[str, Any]], str | None]

    def compute_key(self, ctx: CacheContext) -> str | None:
        return self.fn(ctx.task_run, ctx.inputs)


@dataclass(frozen=True)
class StorageKeyPolicy(CachePolicy):
    """A task's ``result_storage_key``: a template of the record's name, formatted with
    ``parameters`` (the inputs), ``task_run`` and ``flow_run`` (``"out-{parameters[x]}.pkl"``)."""

    template: str

    def compute_key(self, ctx: CacheContext) -> str | None:
        from flowyard.sdk.context import get_flow_run_context

        return self.template.format(
            parameters=ctx.inputs, task_run=ctx.task_run, flow_run=get_flow_run_context()
        )


@dataclass(frozen=True)
class _NoCache(CachePolicy):
    def compute_key(self, ctx: CacheContext) -> str | None:
        return None

    def __add__(self, other: CachePolicy) -> CachePolicy:
        return other


INPUTS = Inputs()
TASK_SOURCE = TaskSource()
FLOW_PARAMETERS = FlowParameters()
RUN_ID = RunId()
NONE: CachePolicy = _NoCache()
NO_CACHE = NONE
DEFAULT = INPUTS + TASK_SOURCE + RUN_ID
