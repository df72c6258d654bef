"""``flowyard.get_client()`` against a real server: the calls Prefect users script with.

Each follows a test of Prefect's ``tests/client/test_prefect_client.py``
(``test_read_deployment_by_name``, ``test_create_flow_run_from_deployment``,
``test_read_flow_runs_without_filter``, ``test_set_then_read_flow_run_state``), sync and
async, as ``get_client(sync_client=True)`` and ``get_client()``.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from flowyard import get_client
from flowyard.client.orchestration import FlowyardAsyncClient, SyncFlowyardClient
from flowyard.errors import InvalidInput
from flowyard.states import Cancelled


@pytest.fixture
def deployment(deploy, server, monkeypatch):
    monkeypatch.setenv("FLOWYARD_API_URL", server.url)
    return deploy("noop", name=f"scripted-{uuid.uuid4().hex[:8]}")


def test_the_sync_client_reads_runs_and_moves_one(deployment):
    with get_client(sync_client=True) as client:
        assert isinstance(client, SyncFlowyardClient)
        assert client.read_deployment_by_name(f"noop/{deployment.name}").id == deployment.id
        assert deployment.id in {d.id for d in client.read_deployments()}
        run = client.create_flow_run_from_deployment(
            deployment.id, parameters={"n": 3}, name="from-a-script"
        )
        assert (run.name, run.parameters) == ("from-a-script", {"n": 3})
        assert run.state.type == "SCHEDULED"
        assert [r.id for r in client.read_flow_runs(deployment_id=deployment.id)] == [run.id]
        answer = client.set_flow_run_state(run.id, Cancelled(message="not today"), force=True)
        assert answer.accepted and answer.state.type == "CANCELLED"
        assert client.read_flow_run(run.id).state.message == "not today"
        cancelled = client.read_flow_runs(state="CANCELLED", deployment_id=deployment.id, limit=5)
        assert [r.id for r in cancelled] == [run.id]


def test_the_async_client_makes_the_same_calls(deployment):
    async def script() -> tuple[str, str, str]:
        async with get_client() as client:
            assert isinstance(client, FlowyardAsyncClient)
            found = await client.read_deployment(deployment.id)
            run = await client.create_flow_run_from_deployment(found.id)
            runs = await client.read_flow_runs(deployment_id=found.id)
            answer = await client.set_flow_run_state(run.id, Cancelled(), force=True)
            return runs[0].id, run.id, answer.state.type

    first, created, state = asyncio.run(script())
    assert first == created and state == "CANCELLED"


def test_a_filter_that_is_not_a_filter_object_is_refused_by_name(deployment):
    """Filter objects are taken (tests/sdk/test_client_filters.py); anything else is not."""
    with get_client(sync_client=True) as client:
        with pytest.raises(InvalidInput, match="flow_run_filter: a filter object, not object"):
            client.read_flow_runs(flow_run_filter=object())


def test_a_name_too_long_for_a_url_is_a_clear_error_and_sends_nothing(deployment):
    """A 100,000-character name cannot make a URL: InvalidInput, not httpx's own error."""
    with get_client(sync_client=True) as client, pytest.raises(InvalidInput, match="URL too long"):
        client.read_deployment_by_name("x" * 100_000)
