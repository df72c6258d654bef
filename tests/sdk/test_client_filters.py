"""``get_client().read_flow_runs`` with Prefect's filter objects, sort, limit and offset:
the same runs as Prefect 3.9.1 gives for the same program (a real server), and a clear
refusal for what Flowyard's API cannot filter by."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from flowyard import flow, get_client, tags
from flowyard.client.run_filters import flow_run_query
from flowyard.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterName,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
    WorkPoolFilter,
    WorkPoolFilterName,
)
from flowyard.client.schemas.sorting import FlowRunSort
from flowyard.errors import ApiError, InvalidInput
from flowyard.states import StateType


@flow(flow_run_name="alpha-{n}")
def alpha(n: int) -> int:
    if n == 2:
        raise ValueError("two")
    return n


@flow(flow_run_name="beta-{n}")
def beta(n: int) -> int:
    return n


@pytest.fixture
def tagged_runs(api) -> str:
    """alpha 1-3 (2 fails; 1 and 2 also tagged x) and beta 7, all tagged with a fresh tag."""
    tag = f"t-{uuid.uuid4().hex[:8]}"
    with tags(tag):
        for n in (1, 2, 3):
            with tags(*(["x"] if n != 3 else [])):
                alpha(n, return_state=True)
        beta(7, return_state=True)
    return tag


def shown(runs) -> list[tuple[str, str, list[str]]]:
    return sorted((r.name, r.state.type.value, sorted(r.tags)) for r in runs)


def test_filters_give_prefects_runs(tagged_runs):
    """Each filter below gave these runs on Prefect 3.9.1 for the same flows."""
    tag = tagged_runs
    mine = FlowRunFilterTags(all_=[tag])
    failed = FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.FAILED]))
    not_failed = FlowRunFilterState(type=FlowRunFilterStateType(not_any_=["FAILED"]))
    with get_client(sync_client=True) as client:

        def read(**filters):
            return client.read_flow_runs(**filters)

        assert shown(read(flow_run_filter=FlowRunFilter(tags=mine))) == [
            ("alpha-1", "COMPLETED", sorted([tag, "x"])),
            ("alpha-2", "FAILED", sorted([tag, "x"])),
            ("alpha-3", "COMPLETED", [tag]),
            ("beta-7", "COMPLETED", [tag]),
        ]
        assert [r.name for r in read(flow_run_filter=FlowRunFilter(tags=mine, state=failed))] == [
            "alpha-2"
        ]
        assert sorted(
            r.name for r in read(flow_run_filter=FlowRunFilter(tags=mine, state=not_failed))
        ) == ["alpha-1", "alpha-3", "beta-7"]
        both = FlowRunFilter(tags=FlowRunFilterTags(all_=[tag, "x"]))
        assert sorted(r.name for r in read(flow_run_filter=both)) == ["alpha-1", "alpha-2"]
        like = FlowRunFilter(tags=mine, name=FlowRunFilterName(like_="ETA"))
        assert [r.name for r in read(flow_run_filter=like)] == ["beta-7"]
        betas = read(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["beta"])),
            flow_run_filter=FlowRunFilter(tags=mine),
        )
        assert [r.name for r in betas] == ["beta-7"]
        one = read(flow_run_filter=FlowRunFilter(tags=mine), limit=1)[0]
        by_id = read(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[uuid.UUID(one.id)])))
        assert [r.id for r in by_id] == [one.id]
        page = read(
            flow_run_filter=FlowRunFilter(tags=mine),
            sort=FlowRunSort.START_TIME_ASC,
            limit=2,
            offset=1,
        )
        assert [r.name for r in page] == ["alpha-2", "alpha-3"]
        ended = read(flow_run_filter=FlowRunFilter(tags=mine), sort=FlowRunSort.END_TIME_DESC)
        assert [r.name for r in ended] == ["beta-7", "alpha-3", "alpha-2", "alpha-1"]
        assert read(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[]))) == []


def test_the_async_client_takes_them_too(tagged_runs):
    """``await client.read_flow_runs(flow_run_filter=...)``, as Prefect's default client."""

    async def failed_names() -> list[str]:
        async with get_client() as client:
            state = FlowRunFilterState(type=FlowRunFilterStateType(any_=["FAILED"]))
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    tags=FlowRunFilterTags(all_=[tagged_runs]), state=state
                )
            )
            return [r.name for r in runs]

    assert asyncio.run(failed_names()) == ["alpha-2"]


def test_what_the_api_cannot_filter_by_is_refused(api):
    """A filter is never dropped silently: each of these raises, naming what it cannot do,
    before any request; keyword filters and filter objects do not mix."""
    refused = {
        "flow_run_filter.start_time": dict(
            flow_run_filter=FlowRunFilter(start_time={"after_": "2026-01-01"})
        ),
        "flow_run_filter.name.any_": dict(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=["a"]))
        ),
        "combines filters with and_": dict(flow_run_filter=FlowRunFilter(operator="or_")),
        "by one value here, not 2": dict(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["a", "b"]))
        ),
        "sort 'NAME_ASC'": dict(sort=FlowRunSort.NAME_ASC),
        "task_run_filter": dict(task_run_filter=object()),
        "at most 10000": dict(offset=9_990, limit=20, flow_run_filter=FlowRunFilter()),
    }
    with get_client(sync_client=True) as client:
        for message, filters in refused.items():
            with pytest.raises(InvalidInput, match=message):
                client.read_flow_runs(**filters)
        with pytest.raises(TypeError, match="not both"):
            client.read_flow_runs(state="FAILED", flow_run_filter=FlowRunFilter())


def test_filters_become_the_apis_query_parameters():
    """The mapping itself: each filter to ``GET /api/flow_runs``'s parameter."""
    query = flow_run_query(
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(
                type=FlowRunFilterStateType(any_=["FAILED", "CRASHED"], not_any_=["CRASHED"])
            ),
            tags=FlowRunFilterTags(all_=["a"], any_=["b", "c"]),
        ),
        deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["nightly"])),
        work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=["local"])),
        sort=FlowRunSort.START_TIME_DESC,
        limit=5,
        offset=2,
    )
    assert query.params == {
        "state": "FAILED",
        "tags": ["a"],
        "any_tags": ["b", "c"],
        "deployment": "nightly",
        "pool": "local",
        "order": "started",
        "limit": 7,
    }
    assert (query.offset, query.matches_nothing) == (2, False)
    with pytest.raises(InvalidInput, match="at most 200 ids"):
        flow_run_query(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(range(201)))), limit=1
        )


def test_the_api_bounds_its_id_filter(api):
    """``GET /api/flow_runs?id=…``: at most 200 ids, each 1 to 200 characters (422); a
    filter of one value given twice is refused, not half dropped."""
    for query in (
        {"id": [str(uuid.uuid4()) for _ in range(201)]},
        {"id": ["x" * 201]},
        {"flow": ["alpha", "beta"]},
    ):
        with pytest.raises(ApiError) as refused:
            api.list_flow_runs(**query)
        assert refused.value.status_code == 422, query
