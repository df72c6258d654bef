"""``@flow``: the unit that runs as a flow run, locally or in the engine."""

from __future__ import annotations

import functools
import inspect
import time
import uuid
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar, overload

from tenacity import RetryCallState, Retrying, stop_after_attempt, wait_fixed

from flowyard.sdk.context import FlowRunContext, flow_run_scope, get_flow_run_context
from flowyard.sdk.logs import get_run_logger, log_prints
from flowyard.sdk.parameters import parameter_schema

P = ParamSpec("P")
R = TypeVar("R")


class Flow(Generic[P, R]):
    """A flow: call it to run it. Outside the engine a call is a local run that records nothing."""

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        version: str | None = None,
        retries: int = 0,
        retry_delay_seconds: float = 0,
        log_prints: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if inspect.iscoroutinefunction(fn):
            raise TypeError(f"async flows are not supported yet: {fn.__qualname__}")
        if retries < 0:
            raise ValueError("retries must be >= 0")
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = name or fn.__name__.replace("_", "-")
        self.description = description or inspect.getdoc(fn)
        self.version = version
        self.retries = retries
        self.retry_delay_seconds = retry_delay_seconds
        self.log_prints = log_prints
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"Flow(name={self.name!r})"

    @property
    def parameters(self) -> dict[str, Any]:
        """The JSON schema of this flow's parameters."""
        return parameter_schema(self.fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if get_flow_run_context() is not None:
            # A flow called inside a flow run runs inline for now (no child flow run yet).
            return self.fn(*args, **kwargs)
        run_id = str(uuid.uuid4())
        context = FlowRunContext(flow_run_id=run_id, flow_run_name=run_id[:8])
        return self._run(context, args, kwargs)

    def _run(self, context: FlowRunContext, args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        with flow_run_scope(context), log_prints(self.log_prints):
            logger = get_run_logger()
            logger.info("Beginning flow run %r for flow %r", context.flow_run_name, self.name)
            retrying = Retrying(
                stop=stop_after_attempt(self.retries + 1),
                wait=wait_fixed(self.retry_delay_seconds),
                before_sleep=self._log_retry,
                sleep=self._sleep,
                reraise=True,
            )
            result = retrying(self.fn, *args, **kwargs)
            logger.info("Finished in state Completed()")
            return result

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        get_run_logger().warning(
            "Flow run failed with exception %r - Retry %d/%d will start %s second(s) from now",
            exc,
            state.attempt_number,
            self.retries,
            self.retry_delay_seconds,
        )


def run_flow(flow: Flow[..., R], context: FlowRunContext, parameters: dict[str, Any]) -> R:
    """Run ``flow`` as the flow run ``context`` describes (the engine's way in)."""
    return flow._run(context, (), parameters)


@overload
def flow(fn: Callable[P, R], /) -> Flow[P, R]: ...


@overload
def flow(
    *,
    name: str | None = None,
    description: str | None = None,
    version: str | None = None,
    retries: int = 0,
    retry_delay_seconds: float = 0,
    log_prints: bool = False,
) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def flow(fn: Callable[P, R] | None = None, /, **options: Any) -> Any:
    """Mark a function as a flow: ``@flow`` or ``@flow(name=..., retries=..., ...)``."""
    if fn is None:
        return lambda f: Flow(f, **options)
    return Flow(fn, **options)
