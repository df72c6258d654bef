"""``get_client()``: the calls Prefect users script against, on Flowyard's API.

    async with get_client() as client:
        runs = await client.read_flow_runs(state="FAILED", limit=10)
        run = await client.create_flow_run_from_deployment(deployment.id, parameters={...})
        await client.set_flow_run_state(run.id, Cancelled(), force=True)

    with get_client(sync_client=True) as client:
        deployments = client.read_deployments()

As ``prefect.client.orchestration.get_client``: the async client by default, the sync one
with ``sync_client=True``; the API is the one ``FLOWYARD_API_URL`` (and
``FLOWYARD_API_KEY``) name. Documents are Flowyard's (``flowyard.schemas``).
``read_flow_runs`` filters by keyword, or by Prefect's filter objects
(``flowyard.client.schemas.filters``, Prefect's own too) as far as the API can.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Literal, ParamSpec, Self, TypeVar, overload

from flowyard import schemas as s
from flowyard.client.http import FlowyardClient
from flowyard.client.run_filters import flow_run_query
from flowyard.errors import InvalidInput
from flowyard.states import State

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_LIMIT = 200  # Prefect's page size when no limit is given
FILTER_NAMES = {"flow_filter", "flow_run_filter", "deployment_filter", "work_pool_filter"}


class SyncFlowyardClient:
    """Blocking calls; a context manager that closes its connections on exit."""

    def __init__(self, client: FlowyardClient | None = None) -> None:
        if client is None:
            from flowyard.settings import Settings

            client = FlowyardClient.from_settings(Settings())
        self.api = client

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.api.close()

    def read_flow_run(self, flow_run_id: str) -> s.FlowRun:
        return self.api.read_flow_run(str(flow_run_id))

    def read_flow_runs(
        self,
        *,
        state: str | None = None,
        deployment_id: str | None = None,
        work_pool_name: str | None = None,
        tags: Iterable[str] = (),
        any_tags: Iterable[str] = (),
        limit: int | None = None,
        offset: int = 0,
        sort: Any = None,
        **prefect_filters: Any,
    ) -> list[s.FlowRun]:
        """The newest runs first, filtered by state type, deployment, work pool, and tags:
        every one of ``tags`` (Prefect's ``tags.all_``), one of ``any_tags`` (``any_``).

        Or by Prefect's filter objects (``flow_filter``, ``flow_run_filter``,
        ``deployment_filter``, ``work_pool_filter``) with ``sort`` and ``offset``: what
        Flowyard's API cannot filter by is refused (``flowyard.client.run_filters``)."""
        keywords = (state, deployment_id, work_pool_name, *tags, *any_tags)
        if prefect_filters or sort is not None or offset:
            if any(value is not None for value in keywords):
                raise TypeError(
                    "read_flow_runs(): give Prefect's filter objects or Flowyard's keyword "
                    "filters (state=, deployment_id=, work_pool_name=, tags=, any_tags=), "
                    "not both"
                )
            return self._read_filtered(limit, offset, sort, prefect_filters)
        return self.api.list_flow_runs(
            state=state,
            deployment_id=None if deployment_id is None else str(deployment_id),
            pool=work_pool_name,
            tags=list(tags),
            any_tags=list(any_tags),
            limit=DEFAULT_LIMIT if limit is None else limit,
        )

    def _read_filtered(
        self, limit: int | None, offset: int, sort: Any, filters: dict[str, Any]
    ) -> list[s.FlowRun]:
        unknown = set(filters) - FILTER_NAMES
        given = sorted(name for name in unknown if filters[name] is not None)
        if given:
            raise InvalidInput(
                f"read_flow_runs(): Flowyard's API cannot filter flow runs by {', '.join(given)}"
            )
        query = flow_run_query(
            **{k: v for k, v in filters.items() if k in FILTER_NAMES},
            sort=sort,
            limit=DEFAULT_LIMIT if limit is None else limit,
            offset=offset,
        )
        if query.matches_nothing:
            return []
        return self.api.list_flow_runs(**query.params)[query.offset :]

    def read_deployment(self, deployment_id: str) -> s.Deployment:
        return self.api.read_deployment(str(deployment_id))

    def read_deployment_by_name(self, name: str) -> s.Deployment:
        """``"flow-name/deployment-name"``, as Prefect's."""
        return self.api.read_deployment(name)

    def read_deployments(self, *, limit: int | None = None) -> list[s.Deployment]:
        deployments = self.api.list_deployments()
        return deployments if limit is None else deployments[:limit]

    def create_flow_run_from_deployment(
        self,
        deployment_id: str,
        *,
        parameters: dict[str, Any] | None = None,
        name: str | None = None,
        job_variables: dict[str, Any] | None = None,
        scheduled_time: datetime | None = None,
        tags: Iterable[str] | None = None,
    ) -> s.FlowRun:
        """A new run of the deployment (Scheduled), for a worker of its pool to run; its
        tags are ``tags`` and the deployment's."""
        body = s.DeploymentRunRequest(
            parameters=parameters or {},
            name=name,
            job_variables=job_variables or {},
            scheduled_time=scheduled_time,
            tags=list(tags or []),
        )
        return self.api.run_deployment(str(deployment_id), body)

    def set_flow_run_state(
        self, flow_run_id: str, state: State[Any], force: bool = False
    ) -> s.StateChangeResult:
        """Propose ``state``; the answer says whether the API took it (``accepted``), the
        run's state after it, and why not. ``force=True`` skips the transition rules."""
        body = s.StateChange(type=state.type, message=state.message, force=force)
        return self.api.set_flow_run_state(str(flow_run_id), body)


class FlowyardAsyncClient:
    """The same calls, awaitable (each runs the blocking one in a worker thread)."""

    def __init__(self, client: FlowyardClient | None = None) -> None:
        self.sync = SyncFlowyardClient(client)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.sync.api.close()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        call = getattr(self.sync, name)
        if name.startswith("_") or not callable(call):
            raise AttributeError(name)
        return _awaitable(call)


def _awaitable(call: Callable[P, R]) -> Callable[P, Any]:
    @functools.wraps(call)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.to_thread(call, *args, **kwargs)

    return run


@overload
def get_client(sync_client: Literal[True]) -> SyncFlowyardClient: ...


@overload
def get_client(sync_client: Literal[False] = False) -> FlowyardAsyncClient: ...


def get_client(sync_client: bool = False) -> SyncFlowyardClient | FlowyardAsyncClient:
    """A client of the configured API: async by default, as Prefect's."""
    return SyncFlowyardClient() if sync_client else FlowyardAsyncClient()
