"""``@task``: a function whose calls are task runs, with retries, caching, futures and maps."""

from __future__ import annotations

import concurrent.futures as cf
import contextvars
import functools
import inspect
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any, Generic, ParamSpec, TypeVar, overload

from flowyard.errors import MappingLengthMismatch, MappingMissingIterable
from flowyard.sdk.annotations import unmapped
from flowyard.sdk.async_streams import run_async_generator
from flowyard.sdk.attempts import stream
from flowyard.sdk.caching import DEFAULT, CacheKeyFnPolicy, CachePolicy, StorageKeyPolicy, _None
from flowyard.sdk.context import get_flow_run_context
from flowyard.sdk.distributed_futures import PrefectDistributedFuture
from flowyard.sdk.futures import PrefectFutureList, TaskFuture, resolve, upstream_futures
from flowyard.sdk.hook_lists import HookList
from flowyard.sdk.hooks import Hook
from flowyard.sdk.pause import leave_if_suspended
from flowyard.sdk.result_refs import declared
from flowyard.sdk.results import (
    ResultStorage,
    ResultStore,
    Serializer,
    get_serializer,
    get_storage,
)
from flowyard.sdk.retries import RetryDelay, check_retry_options, delay_list
from flowyard.sdk.task_engine import TaskRunEngine
from flowyard.sdk.transactions import TransactionHook
from flowyard.states import State

P = ParamSpec("P")
R = TypeVar("R")


class Task(Generic[P, R]):
    """A task: call it, ``submit`` it to the flow run's task runner, or ``map`` it."""

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        version: str | None = None,
        cache_policy: CachePolicy | None = None,
        cache_key_fn: Callable[[Any, dict[str, Any]], str | None] | None = None,
        cache_expiration: timedelta | None = None,
        task_run_name: str | Callable[..., str] | None = None,
        retries: int | None = None,
        retry_delay_seconds: RetryDelay | None = None,
        retry_jitter_factor: float | None = None,
        persist_result: bool | None = None,
        result_storage: str | ResultStorage | None = None,
        result_storage_key: str | None = None,
        result_serializer: str | Serializer | None = None,
        cache_result_in_memory: bool = True,
        timeout_seconds: float | None = None,
        log_prints: bool | None = None,
        refresh_cache: bool | None = None,
        on_completion: Hook | Sequence[Hook] | None = None,
        on_failure: Hook | Sequence[Hook] | None = None,
        on_running: Hook | Sequence[Hook] | None = None,
        on_commit: TransactionHook | Sequence[TransactionHook] | None = None,
        on_rollback: TransactionHook | Sequence[TransactionHook] | None = None,
        retry_condition_fn: Callable[[Any, Any, State[Any]], bool] | None = None,
        viz_return_value: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        check_retry_options(retries, retry_jitter_factor)
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.is_async = inspect.iscoroutinefunction(fn)
        self.is_async_generator = inspect.isasyncgenfunction(fn)
        self.is_generator = inspect.isgeneratorfunction(fn) or self.is_async_generator
        self.name = name or fn.__name__
        self.description = description or inspect.getdoc(fn)
        self.tags = frozenset(tags or ())
        self.version = version
        self.task_key = f"{fn.__module__}.{fn.__qualname__}"
        self.cache_policy = cache_policy
        self.cache_key_fn = cache_key_fn
        self.cache_expiration = cache_expiration
        self.refresh_cache = bool(refresh_cache)
        self.task_run_name = task_run_name
        self.retries = retries or 0
        self.retry_delay_seconds = retry_delay_seconds or 0
        self.retry_delays = delay_list(retry_delay_seconds, self.retries)
        self.retry_jitter_factor = retry_jitter_factor
        self.retry_condition_fn = retry_condition_fn
        self.persist_result = persist_result
        self.result_storage = result_storage
        self.result_storage_key = result_storage_key
        self.result_serializer = result_serializer
        self.cache_result_in_memory = cache_result_in_memory
        self.timeout_seconds = timeout_seconds
        self.log_prints = log_prints
        self.on_completion = HookList(on_completion)
        self.on_failure = HookList(on_failure)
        self.on_running = HookList(on_running)
        self.on_commit = HookList(on_commit)  # (transaction) -> None; see sdk.transactions
        self.on_rollback = HookList(on_rollback)
        self._options = {k: v for k, v in locals().items() if k not in ("self", "fn", "__class__")}
        self._sleep = sleep
        self._signature = inspect.signature(fn)
        self._store: ResultStore | None = None
        self._store_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Task(name={self.name!r})"

    def __getstate__(self) -> dict[str, Any]:
        """What a task is when it travels to another process (a Dask worker): its lock,
        result store and signature are made again there."""
        state = dict(self.__dict__)
        for local in ("_store", "_store_lock", "_signature"):
            state.pop(local, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._store, self._store_lock = None, threading.Lock()
        self._signature = inspect.signature(self.fn)

    @property
    def on_commit_hooks(self) -> HookList:
        return self.on_commit

    @property
    def on_rollback_hooks(self) -> HookList:
        return self.on_rollback

    def with_options(self, **options: Any) -> Task[P, R]:
        """A copy of this task with some options changed (hooks added since are kept)."""
        hooks = {kind: list(getattr(self, kind)) for kind in _HOOK_KINDS}
        return Task(self.fn, **{**self._options, **hooks, **options})

    # -- options derived -------------------------------------------------------------------

    @property
    def effective_cache_policy(self) -> CachePolicy | None:
        """The policy in force; None means no cache (and no persisted result).

        ``persist_result=False`` turns caching off; otherwise ``result_storage_key`` wins,
        then ``cache_key_fn``, then ``cache_policy``; with none of them,
        ``persist_result=True`` caches with ``DEFAULT`` (inputs, source, flow run).
        """
        if self.persist_result is False or self.is_generator:  # values streamed, not kept
            return None
        if self.result_storage_key is not None:
            return StorageKeyPolicy(template=self.result_storage_key)
        if self.cache_key_fn is not None:
            return CacheKeyFnPolicy(cache_key_fn=self.cache_key_fn)
        if self.cache_policy is None:
            return DEFAULT if self.persist_result else None
        return None if isinstance(self.cache_policy, _None) else self.cache_policy

    @property
    def should_persist(self) -> bool:
        if self.is_generator:
            return False
        if self.persist_result is not None:
            return self.persist_result
        return self.effective_cache_policy is not None

    def result_store(self) -> ResultStore:
        with self._store_lock:
            if self._store is None:
                storage = declared(get_storage(self.result_storage))
                self._store = ResultStore(storage, get_serializer(self.result_serializer))
            return self._store

    # -- running ---------------------------------------------------------------------------

    def __call__(self, *args: Any, return_state: bool = False, wait_for: Any = None,
                 **kwargs: Any) -> Any:  # fmt: skip
        """Run the task now; its result (or its state with ``return_state=True``)."""
        leave_if_suspended()
        engine = TaskRunEngine(self, args, kwargs, wait_for=wait_for)
        if self.is_async:
            return _finish_async(engine, return_state)
        if self.is_async_generator:  # ``async for`` over it, as in Prefect (state or not)
            return run_async_generator(engine)
        if self.is_generator:  # values as they are yielded, as in Prefect (state or not)
            return stream(engine.run_generator())
        state = engine.run_sync()
        return state if return_state else state.result(_sync=True)

    def submit(self, *args: Any, wait_for: Any = None, return_state: bool = False,
               **kwargs: Any) -> TaskFuture[R]:  # fmt: skip
        """Run the task on the flow run's task runner once its upstream futures are done.

        Only inside a flow run, as in Prefect: there is no task runner outside one."""
        if get_flow_run_context() is None:
            raise RuntimeError(
                "Unable to determine task runner to use for submission. If you are"
                " submitting a task outside of a flow, please use `.delay`"
                " to submit the task run for deferred execution."
            )
        leave_if_suspended()
        engine = TaskRunEngine(self, args, kwargs, wait_for=wait_for)
        outer: cf.Future[State[R]] = cf.Future()
        future: TaskFuture[R] = TaskFuture(outer, engine.default_name, engine.context.task_run_id)
        flow_run = engine.flow_run
        assert flow_run is not None  # checked above
        flow_run.track(outer)
        launcher, context = flow_run.launcher(), contextvars.copy_context()

        def launch() -> None:
            inner = launcher.submit(engine, context)
            inner.add_done_callback(lambda done: _copy(done, outer))

        _when_done(upstream_futures([*args, *kwargs.values(), *(wait_for or ())]), launch)
        return _state_or_future(future, return_state)

    def map(self, *args: Any, wait_for: Any = None, return_state: bool = False,
            deferred: bool = False, **kwargs: Any) -> PrefectFutureList[R]:  # fmt: skip
        """Submit one task run per element of the iterable arguments (``unmapped`` kept whole).

        ``deferred=True``: one background run per element instead (``apply_async``, for a
        task worker; also outside a flow), as Prefect's; their futures come back."""
        if not deferred and get_flow_run_context() is None:
            raise RuntimeError(
                "Unable to determine task runner to use for mapped task runs. If you are"
                " mapping a task outside of a flow, please provide `deferred=True` to submit"
                " the mapped task runs for deferred execution."
            )
        items = self._mapped_items(self._signature.bind_partial(*args, **kwargs).arguments)
        futures: PrefectFutureList[R] = PrefectFutureList(
            self.apply_async(kwargs=item, wait_for=wait_for)  # type: ignore[misc]  # a future too
            if deferred
            else self.submit(**item, wait_for=wait_for)
            for item in items
        )
        if return_state:  # as in Prefect: wait, and give the states
            futures.wait()
            return [f.state for f in futures]  # type: ignore[return-value]
        return futures

    @staticmethod
    def _mapped_items(bound: dict[str, Any]) -> list[dict[str, Any]]:
        """The arguments of each mapped run: the iterables' i-th elements, the rest whole."""
        # the futures of an earlier map are mapped over as they are: each run waits for its
        # own, and the item whose upstream failed ends NotReady (as in Prefect)
        values = {k: v if _futures_only(v) else resolve(v, []) for k, v in bound.items()}
        mapped = {k: list(v) for k, v in values.items() if _is_mappable(bound[k], v)}
        if not mapped:
            raise MappingMissingIterable(
                "No iterable parameters were received. Parameters for map must include at "
                f"least one iterable. Parameters: {bound}"
            )
        lengths = {k: len(v) for k, v in mapped.items()}
        if len(set(lengths.values())) > 1:
            raise MappingLengthMismatch(
                "Received iterable parameters with different lengths. "
                f"Parameters for map must all be the same length. Got lengths: {lengths}"
            )
        static = {k: _unwrap(v) for k, v in values.items() if k not in mapped}
        count = next(iter(lengths.values()))
        return [{**static, **{k: v[i] for k, v in mapped.items()}} for i in range(count)]

    # -- background runs (task workers) ----------------------------------------------------

    def apply_async(
        self,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        wait_for: Iterable[Any] | None = None,
    ) -> PrefectDistributedFuture[R]:
        """Create a background run of this task for a task worker; its future, at once."""
        from flowyard.sdk.background import apply_async

        return apply_async(self, tuple(args or ()), dict(kwargs or {}), wait_for)

    def delay(self, *args: Any, **kwargs: Any) -> PrefectDistributedFuture[R]:
        """``apply_async`` with the task's own call signature."""
        return self.apply_async(args, kwargs)

    def serve(self, *, limit: int | None = 10, timeout: float | None = None) -> None:
        """Run this task's background runs here until interrupted (``task_worker.serve``)."""
        from flowyard.sdk.task_worker import serve

        serve(self, limit=limit, timeout=timeout)


_HOOK_KINDS = ("on_completion", "on_failure", "on_running", "on_commit", "on_rollback")


def _state_or_future(future: TaskFuture[R], return_state: bool) -> TaskFuture[R]:
    """``submit(return_state=True)`` waits and gives the final state, as in Prefect."""
    if not return_state:
        return future
    future.wait()
    return future.state  # type: ignore[return-value]  # a state, as Prefect's submit(return_state=True)


def _is_mappable(original: Any, value: Any) -> bool:
    if isinstance(original, unmapped) or isinstance(value, str | bytes):
        return False
    try:
        iter(value)
    except TypeError:
        return False
    return True


def _futures_only(value: Any) -> bool:
    return (
        isinstance(value, list | tuple)
        and bool(value)
        and all(isinstance(v, TaskFuture) for v in value)
    )


def _unwrap(value: Any) -> Any:
    return value.value if isinstance(value, unmapped) else value


async def _finish_async(engine: TaskRunEngine, return_state: bool) -> Any:
    state = await engine.run_async()
    return state if return_state else state.result(_sync=True)


def _copy(source: cf.Future[Any], target: cf.Future[Any]) -> None:
    exc = source.exception()
    if exc is not None:
        target.set_exception(exc)
    else:
        target.set_result(source.result())


def _when_done(futures: list[TaskFuture[Any]], then: Callable[[], None]) -> None:
    """Call ``then`` once every future is done (no thread waits for them meanwhile)."""
    pending = [f for f in futures if not f.done()]
    if not pending:
        then()
        return
    remaining = [len(pending)]
    lock = threading.Lock()

    def one_done(_: TaskFuture[Any]) -> None:
        with lock:
            remaining[0] -= 1
            last = remaining[0] == 0
        if last:
            then()

    for future in pending:
        future.add_done_callback(one_done)


@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...


@overload
def task(
    *,
    name: str | None = None,
    description: str | None = None,
    tags: Iterable[str] | None = None,
    version: str | None = None,
    cache_policy: CachePolicy | None = None,
    cache_key_fn: Callable[[Any, dict[str, Any]], str | None] | None = None,
    cache_expiration: timedelta | None = None,
    task_run_name: str | Callable[..., str] | None = None,
    retries: int | None = None,
    retry_delay_seconds: RetryDelay | None = None,
    retry_jitter_factor: float | None = None,
    persist_result: bool | None = None,
    result_storage: str | ResultStorage | None = None,
    result_storage_key: str | None = None,
    result_serializer: str | Serializer | None = None,
    cache_result_in_memory: bool = True,
    timeout_seconds: float | None = None,
    log_prints: bool | None = None,
    refresh_cache: bool | None = None,
    on_completion: Hook | Sequence[Hook] | None = None,
    on_failure: Hook | Sequence[Hook] | None = None,
    on_running: Hook | Sequence[Hook] | None = None,
    on_commit: TransactionHook | Sequence[TransactionHook] | None = None,
    on_rollback: TransactionHook | Sequence[TransactionHook] | None = None,
    retry_condition_fn: Callable[[Any, Any, State[Any]], bool] | None = None,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(fn: Callable[P, R] | None = None, /, **options: Any) -> Any:
    """Mark a function as a task: ``@task`` or ``@task(name=..., retries=..., ...)``."""
    if fn is None:
        return lambda f: Task(f, **options)
    return Task(fn, **options)
