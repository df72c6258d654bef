"""``DaskTaskRunner``: a flow run's submitted and mapped task runs execute on a Dask
cluster (as ``prefect_dask.DaskTaskRunner``); ``get_dask_client`` inside such a task.

An existing cluster by ``address`` (or a ``cluster`` object), or a temporary one made for
the flow run from ``cluster_class(**cluster_kwargs)`` (a ``distributed.LocalCluster`` by
default), scaled with ``adapt_kwargs``, and closed when the flow run ends. Each task run
travels as a ``remote_runs.RemoteCall`` and reports to the API from its Dask worker with
the flow run's own token. Dask is imported only when a runner is made (``flowyard[dask]``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from flowyard.sdk.remote_launcher import RemoteLauncher, Waiting
from flowyard.sdk.remote_runs import (
    LARGE_RESULT_BYTES,
    RemoteOutcome,
    check_result_limit,
    run_remote,
)

if TYPE_CHECKING:
    from distributed import Client

    from flowyard.sdk.context import FlowRunContext, Launcher

MISSING = "DaskTaskRunner needs Dask: pip install 'flowyard[dask]'"


def _require_dask() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ImportError(MISSING) from None


class DaskTaskRunner:
    """Runs task runs on a Dask cluster: ``address`` of a running one, a ``cluster`` object,
    or a temporary one per flow run (``cluster_class``, ``cluster_kwargs``, ``adapt_kwargs``).
    A result larger than ``large_result_bytes`` travels back through the flow's result
    storage."""

    def __init__(
        self,
        address: str | None = None,
        cluster: Any = None,
        cluster_class: str | type | None = None,
        cluster_kwargs: dict[str, Any] | None = None,
        adapt_kwargs: dict[str, Any] | None = None,
        client_kwargs: dict[str, Any] | None = None,
        large_result_bytes: int = LARGE_RESULT_BYTES,
    ) -> None:
        _require_dask()
        if (address or cluster) and (cluster_class or cluster_kwargs or adapt_kwargs):
            raise ValueError(
                "Cannot specify `address`/`cluster` and `cluster_class`/`cluster_kwargs`/"
                "`adapt_kwargs`: the first two use a running cluster, the others make one"
            )
        if address and cluster is not None:
            raise ValueError("Cannot specify both `address` and `cluster`")
        self.address = address
        self.cluster = cluster
        self.cluster_class = cluster_class
        self.cluster_kwargs = dict(cluster_kwargs or {})
        self.adapt_kwargs = dict(adapt_kwargs or {})
        self.client_kwargs = dict(client_kwargs or {})
        self.large_result_bytes = check_result_limit(large_result_bytes)

    def __repr__(self) -> str:
        where = self.address or ("a given cluster" if self.cluster is not None else "temporary")
        return f"DaskTaskRunner({where})"

    def duplicate(self) -> DaskTaskRunner:
        """A runner with the same options (Prefect's API)."""
        return DaskTaskRunner(
            self.address, self.cluster, self.cluster_class, self.cluster_kwargs,
            self.adapt_kwargs, self.client_kwargs, self.large_result_bytes,
        )  # fmt: skip

    def open(self, flow_run: FlowRunContext) -> Launcher:
        from distributed import Client

        temporary = None
        if self.address is not None:
            client = Client(self.address, **self.client_kwargs)
        else:
            if self.cluster is None:
                temporary = self._make_cluster()
            client = Client(self.cluster or temporary, **self.client_kwargs)
        return DaskLauncher(client, flow_run, temporary, self.large_result_bytes)

    def _make_cluster(self) -> Any:
        cluster_class = _cluster_class(self.cluster_class)
        cluster = cluster_class(**self.cluster_kwargs)
        if self.adapt_kwargs:
            cluster.adapt(**self.adapt_kwargs)
        return cluster


def _cluster_class(given: str | type | None) -> Any:
    if given is None:
        from distributed import LocalCluster

        return LocalCluster
    if isinstance(given, str):
        module, _, name = given.rpartition(".")
        if not module:
            raise ValueError(f"cluster_class {given!r} is not a dotted path (module.Class)")
        return getattr(importlib.import_module(module), name)
    return given


class DaskLauncher(RemoteLauncher):
    """One flow run's connection to its cluster; its task runs as Dask tasks."""

    engine_name = "Dask"

    def __init__(
        self, client: Client, flow_run: FlowRunContext, temporary: Any, large_result_bytes: int
    ) -> None:
        self.client = client
        self._temporary = temporary
        super().__init__(flow_run, large_result_bytes)

    def _send(self, batch: list[Waiting]) -> list[Any]:
        calls = [waiting.call for waiting in batch]
        keys = [f"{call.task_run_name}-{call.task_run_id}" for call in calls]
        return list(self.client.map(run_remote, calls, key=keys, pure=False))

    def _watch(self, handle: Any, ended: Callable[[], None]) -> None:
        handle.add_done_callback(lambda _: ended())

    def _gather(self, handles: list[Any]) -> list[RemoteOutcome]:
        return list(self.client.gather(handles))

    def _cancel(self, handles: list[Any]) -> None:
        self.client.cancel(handles, force=True)

    def shutdown(self) -> None:
        self._close()
        self.client.close()
        if self._temporary is not None:
            self._temporary.close()


@contextmanager
def get_dask_client(timeout: float | None = None, **client_kwargs: Any) -> Iterator[Client]:
    """A Dask client inside a task run by ``DaskTaskRunner``, for Dask work of its own
    (``with get_dask_client() as client: client.compute(...)``)."""
    _require_dask()
    from distributed import get_worker, worker_client

    try:
        get_worker()
    except ValueError:
        raise RuntimeError(
            "get_dask_client() works inside a task run by a DaskTaskRunner"
        ) from None
    with worker_client(timeout=timeout, separate_thread=True, **client_kwargs) as client:
        yield client
