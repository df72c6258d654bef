"""``@flow``: the unit that runs as a flow run: locally, through the API, or in the engine."""

from __future__ import annotations

import functools
import inspect
import time
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from flowyard.sdk.async_streams import drain_async, run_async_generator
from flowyard.sdk.attempts import stream
from flowyard.sdk.context import FlowRunContext, TaskRunner, ThreadPoolTaskRunner
from flowyard.sdk.hook_lists import HookList
from flowyard.sdk.hooks import Hook
from flowyard.sdk.parameters import parameter_schema
from flowyard.sdk.results import ResultStorage, Serializer
from flowyard.sdk.retries import RetryDelay, check_retry_options, delay_list
from flowyard.states import State

if TYPE_CHECKING:
    from flowyard.runner.serving import RunnerDeployment
    from flowyard.sdk.sources import FlowSource, GitRepository

P = ParamSpec("P")
R = TypeVar("R")


class Flow(Generic[P, R]):
    """A flow: call it to run it (``await`` it when it is ``async def``)."""

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        version: str | None = None,
        flow_run_name: str | Callable[..., str] | None = None,
        retries: int | None = None,
        retry_delay_seconds: RetryDelay | None = None,
        task_runner: TaskRunner | None = None,
        description: str | None = None,
        timeout_seconds: float | None = None,
        validate_parameters: bool = True,
        persist_result: bool | None = None,
        result_storage: str | ResultStorage | None = None,
        result_serializer: str | Serializer | None = None,
        cache_result_in_memory: bool = True,
        log_prints: bool | None = None,
        on_completion: Hook | Sequence[Hook] | None = None,
        on_failure: Hook | Sequence[Hook] | None = None,
        on_cancellation: Hook | Sequence[Hook] | None = None,
        on_crashed: Hook | Sequence[Hook] | None = None,
        on_running: Hook | Sequence[Hook] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        check_retry_options(retries, None)
        delay_list(retry_delay_seconds, retries or 0)  # a number or a list, as for tasks
        self._binding = "static" if isinstance(fn, staticmethod) else None
        if isinstance(fn, classmethod | staticmethod):
            self._binding = self._binding or "class"
            fn = fn.__func__
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.is_async = inspect.iscoroutinefunction(fn)
        self.is_async_generator = inspect.isasyncgenfunction(fn)
        self.is_generator = inspect.isgeneratorfunction(fn) or self.is_async_generator
        self.name = name or fn.__name__.replace("_", "-")
        self.description = description or inspect.getdoc(getattr(fn, "__func__", fn))
        self.version = version
        self.flow_run_name = flow_run_name
        self.retries = retries or 0
        self.retry_delay_seconds: RetryDelay = (
            float(retry_delay_seconds or 0)
            if isinstance(retry_delay_seconds, int | float | None)
            else retry_delay_seconds
        )
        self.task_runner: TaskRunner = task_runner or ThreadPoolTaskRunner()
        self.timeout_seconds = timeout_seconds
        self.should_validate_parameters = validate_parameters
        self.persist_result = persist_result
        self.result_storage = result_storage
        self.result_serializer = result_serializer
        self.log_prints = log_prints  # None: as the parent flow run says
        self.on_completion = HookList(on_completion)
        self.on_failure = HookList(on_failure)
        self.on_cancellation = HookList(on_cancellation)
        self.on_crashed = HookList(on_crashed)
        self.on_running = HookList(on_running)
        self._options = {k: v for k, v in locals().items() if k not in ("self", "fn", "__class__")}
        self._sleep = sleep
        self._signature = inspect.signature(fn)
        self.source: FlowSource | None = None  # set by from_source: where deployments get it

    def __repr__(self) -> str:
        return f"Flow(name={self.name!r})"

    def with_options(self, **options: Any) -> Flow[P, R]:
        """A copy of this flow with some options changed (hooks added since are kept)."""
        return self._copy(self.fn, **options)

    def _copy(self, fn: Callable[..., Any], **options: Any) -> Flow[P, R]:
        hooks = {kind: list(getattr(self, kind)) for kind in _HOOK_KINDS}
        copy: Flow[P, R] = Flow(fn, **{**self._options, **hooks, **options})
        copy.source = self.source
        return copy

    @classmethod
    def from_source(cls, source: str | Path | GitRepository, entrypoint: str) -> Flow[..., Any]:
        """The flow ``entrypoint`` (``path/file.py:function``) of a git repository (a URL or
        a ``flowyard.runner.storage.GitRepository``) or of a local folder; its
        ``deploy()`` makes each run fetch the code from there."""
        from flowyard.sdk.sources import load_from_source

        return load_from_source(source, entrypoint)

    def __get__(self, instance: object, owner: type | None = None) -> Flow[P, R]:
        """A flow defined in a class binds like the method it decorates."""
        if self._binding == "static" or (instance is None and self._binding is None):
            return self
        target = owner if self._binding == "class" else instance
        bound = types.MethodType(self.fn, target)
        return self._copy(bound, name=self.name)

    @property
    def parameters(self) -> dict[str, Any]:
        """The JSON schema of this flow's parameters."""
        return parameter_schema(self.fn)

    def deploy(self, name: str, work_pool_name: str, **options: Any) -> str:
        """Create or update this flow's deployment ``name`` on a work pool; returns its id.

        Options: ``cron``/``interval``/``rrule``/``timezone``, ``parameters``,
        ``job_variables``, ``tags``, ``image``, … (see ``flowyard.deployments.deploy``).
        """
        from flowyard.runner.deployments import deploy

        return deploy(self, name, work_pool_name, **options)

    def to_deployment(self, name: str, **options: Any) -> RunnerDeployment:
        """This flow's deployment ``name``, to hand to ``flowyard.serve`` (or ``.apply()``),
        as Prefect's ``to_deployment``. Options: ``interval``, ``cron``, ``rrule``,
        ``timezone``, ``paused``, ``concurrency_limit``, ``parameters``, ``triggers``,
        ``description``, ``tags``, ``version``, ``work_pool_name``, ``work_queue_name``,
        ``job_variables``; nothing is sent to the API yet."""
        from flowyard.runner.serving import RunnerDeployment

        return RunnerDeployment(self, name, **options)

    def serve(self, name: str, **options: Any) -> None:
        """Deploy this flow and run its runs in this process until stopped (no pool to set
        up); see ``flowyard.deployments.serve``."""
        from flowyard.runner.deployments import serve

        serve(self, name, **options)

    def __call__(self, *args: Any, return_state: bool = False, wait_for: Any = None,
                 **kwargs: Any) -> Any:  # fmt: skip
        """Run the flow: its result, or its final state with ``return_state=True``.

        ``wait_for`` (futures or states) must all complete first; if one did not, the run
        does not start and ends ``NotReady``, as in Prefect."""
        from flowyard.sdk.flow_engine import FlowRunEngine

        engine = FlowRunEngine(self, args, kwargs, wait_for=wait_for)
        if self.is_async_generator:  # ``async for`` over it; its state is awaited
            return drain_async(engine) if return_state else run_async_generator(engine)
        if self.is_async:
            return _finish_async(engine, return_state)
        if self.is_generator and not return_state:  # values as they are yielded
            return stream(engine.run_generator())
        state = engine.run()
        return state if return_state else engine.result()


_HOOK_KINDS = ("on_completion", "on_failure", "on_cancellation", "on_crashed", "on_running")


async def _finish_async(engine: Any, return_state: bool) -> Any:
    state = await engine.run_async()
    return state if return_state else engine.result()


def run_flow(
    flow: Flow[..., Any], context: FlowRunContext, parameters: dict[str, Any]
) -> State[Any]:
    """Run ``flow`` as the existing flow run ``context`` describes (the engine's way in).

    The caller reports the run's states; the final one is returned.
    """
    from flowyard.sdk.flow_engine import FlowRunEngine

    return FlowRunEngine(flow, (), parameters, context=context).run()


@overload
def flow(fn: Callable[P, R], /) -> Flow[P, R]: ...


@overload
def flow(
    *,
    name: str | None = None,
    version: str | None = None,
    flow_run_name: str | Callable[..., str] | None = None,
    retries: int | None = None,
    retry_delay_seconds: RetryDelay | None = None,
    task_runner: TaskRunner | None = None,
    description: str | None = None,
    timeout_seconds: float | None = None,
    validate_parameters: bool = True,
    persist_result: bool | None = None,
    result_storage: str | ResultStorage | None = None,
    result_serializer: str | Serializer | None = None,
    cache_result_in_memory: bool = True,
    log_prints: bool | None = None,
    on_completion: Hook | Sequence[Hook] | None = None,
    on_failure: Hook | Sequence[Hook] | None = None,
    on_cancellation: Hook | Sequence[Hook] | None = None,
    on_crashed: Hook | Sequence[Hook] | None = None,
    on_running: Hook | Sequence[Hook] | None = None,
) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def flow(fn: Callable[P, R] | None = None, /, **options: Any) -> Any:
    """Mark a function as a flow: ``@flow`` or ``@flow(name=..., retries=..., ...)``."""
    if fn is None:
        return lambda f: Flow(f, **options)
    return Flow(fn, **options)


flow.from_source = Flow.from_source  # type: ignore[attr-defined]  # as Prefect's ``flow.from_source``
