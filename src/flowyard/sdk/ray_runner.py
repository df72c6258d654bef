"""``RayTaskRunner``: a flow run's submitted and mapped task runs execute as Ray tasks (as
``prefect_ray.RayTaskRunner``).

A running Ray cluster by ``address`` (``"auto"``, ``"ray://head:10001"``, a GCS address),
or, without one, a temporary local Ray instance started by ``ray.init(**init_kwargs)``
and shut down when the last flow run using it ends. A process that is connected to Ray
already (its own ``ray.init``) keeps its connection: the runner uses it and leaves it
open. Each task run travels as a ``remote_runs.RemoteCall`` and reports to the API from
its Ray worker with the flow run's own token. Ray is imported only when a runner is made
(``flowyard[ray]``).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from flowyard.sdk.remote_launcher import RemoteLauncher, Waiting
from flowyard.sdk.remote_runs import (
    LARGE_RESULT_BYTES,
    RemoteOutcome,
    check_result_limit,
    run_remote,
)

if TYPE_CHECKING:
    from flowyard.sdk.context import FlowRunContext, Launcher

MISSING = "RayTaskRunner needs Ray: pip install 'flowyard[ray]'"


def _require_ray() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        raise ImportError(MISSING) from None


class RayTaskRunner:
    """Runs task runs on Ray: ``address`` of a running cluster, or a temporary local
    instance made with ``ray.init(**init_kwargs)``. A result larger than
    ``large_result_bytes`` travels back through the flow's result storage."""

    def __init__(
        self,
        address: str | None = None,
        init_kwargs: dict[str, Any] | None = None,
        large_result_bytes: int = LARGE_RESULT_BYTES,
    ) -> None:
        _require_ray()
        self.address = address
        self.init_kwargs = dict(init_kwargs or {})
        self.large_result_bytes = check_result_limit(large_result_bytes)
        if "address" in self.init_kwargs:
            raise ValueError("Give the address as `address=`, not in `init_kwargs`")

    def __repr__(self) -> str:
        return f"RayTaskRunner({self.address or 'temporary'})"

    def duplicate(self) -> RayTaskRunner:
        """A runner with the same options (Prefect's API)."""
        return RayTaskRunner(self.address, self.init_kwargs, self.large_result_bytes)

    def open(self, flow_run: FlowRunContext) -> Launcher:
        _connection.acquire(self.address, self.init_kwargs)
        return RayLauncher(flow_run, self.large_result_bytes)


class _Connection:
    """This process's one connection to Ray (Ray allows one), counted by the flow runs
    using it; shut down after the last one only if a runner opened it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._owned = False

    def acquire(self, address: str | None, init_kwargs: dict[str, Any]) -> None:
        import ray

        with self._lock:
            if self._users == 0 and not ray.is_initialized():
                ray.init(address=address, **init_kwargs)
                self._owned = True
            self._users += 1

    def release(self) -> None:
        import ray

        with self._lock:
            self._users -= 1
            if self._users == 0 and self._owned:
                self._owned = False
                ray.shutdown()


_remote_options: ContextVar[dict[str, Any] | None] = ContextVar("ray_options", default=None)


@contextmanager
def remote_options(**options: Any) -> Iterator[None]:
    """Ray's options for the task runs submitted inside (``prefect_ray.context``'s):
    ``num_cpus``, ``num_gpus``, ``resources``, ``memory``, ``max_retries``, … — any of
    ``ray.remote``'s. An inner one adds to (and overrides) the outer one's. Ray checks
    them here, so that a misspelt option fails at the ``with``, not in a task run."""
    _require_ray()
    merged = {**(_remote_options.get() or {}), **options}
    _remote().options(**merged)  # Ray's own check: ValueError naming what is wrong
    token = _remote_options.set(merged)
    try:
        yield
    finally:
        _remote_options.reset(token)


_connection = _Connection()
_remote_run: Any = None


def _remote() -> Any:
    """``run_remote`` as a Ray remote function, made once per process."""
    global _remote_run
    if _remote_run is None:
        import ray

        _remote_run = ray.remote(run_remote)
    return _remote_run


class RayLauncher(RemoteLauncher):
    """One flow run's task runs as Ray tasks."""

    engine_name = "Ray"

    def _send(self, batch: list[Waiting]) -> list[Any]:
        remote = _remote()
        return [
            remote.options(**{"name": waiting.call.task_run_name, **waiting.options}).remote(
                waiting.call
            )
            for waiting in batch
        ]

    def _options(self, context: contextvars.Context) -> dict[str, Any]:
        return context.get(_remote_options) or {}

    def _watch(self, handle: Any, ended: Callable[[], None]) -> None:
        handle.future().add_done_callback(lambda _: ended())

    def _gather(self, handles: list[Any]) -> list[RemoteOutcome]:
        import ray

        return list(ray.get(handles))

    def _cancel(self, handles: list[Any]) -> None:
        import ray

        for ref in handles:
            ray.cancel(ref, force=True)

    def shutdown(self) -> None:
        self._close()
        _connection.release()
