"""``PATCH /api/deployments/{ref}``: a deployment's concurrency limit changed after it was
created holds at the next claims; bad input is refused, naming the field, and changes
nothing."""

from __future__ import annotations

import httpx
import pytest

from flowyard import schemas as s
from flowyard.states import StateType


def _patch(server, ref: str, body: object) -> httpx.Response:
    return httpx.patch(f"{server.url}/api/deployments/{ref}", json=body, timeout=15)


def _claim(api, pool: str) -> list[str]:
    request = s.ClaimRequest(worker_name="patcher", max_runs=10)
    return [claim.run.id for claim in api.claim(pool, request)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"concurrency_limit": -1}, "concurrency_limit"),
        ({"concurrency_limit": 10**18}, "concurrency_limit"),
        ({"concurrency_limit": "2"}, "concurrency_limit"),
        ({"concurrency_limit": True}, "concurrency_limit"),
        ({"concurrency_limit": 1.5}, "concurrency_limit"),
        ({"clear_concurrency_limit": 0}, "clear_concurrency_limit"),
        ({"paused": True}, "paused"),
        ({"concurrency_limit": 1, "clear_concurrency_limit": True}, "not both"),
    ],
)
def test_bad_input_is_a_422_naming_the_field_and_changes_nothing(server, api, deploy, body, field):
    """Negative, huge, text, boolean or fractional limits, unknown fields and a limit both set
    and cleared are refused; the deployment keeps its limit."""
    dep = deploy("noop", concurrency_limit=3)
    answer = _patch(server, dep.id, body)
    assert answer.status_code == 422, answer.text
    assert field in answer.text
    assert api.read_deployment(dep.id).concurrency_limit == 3


def test_an_unknown_deployment_is_a_404(server):
    """A deployment that does not exist is named in a 404."""
    answer = _patch(server, "no-such-flow/no-such-deployment", {"concurrency_limit": 1})
    assert answer.status_code == 404
    assert "no-such-deployment" in answer.text


def test_a_limit_set_after_creation_holds_at_the_next_claims_and_clearing_it_frees_them(
    server, api, pool, deploy
):
    """Limit 1 set by PATCH (by flow/name): of two due runs one is claimed and the other
    waits while the first holds its slot; clearing the limit lets the second be claimed.
    Each change is an event."""
    dep = deploy("noop", description="before")
    answer = _patch(server, f"{dep.flow_name}/{dep.name}", {"concurrency_limit": 1})
    assert answer.status_code == 200, answer.text
    assert answer.json()["concurrency_limit"] == 1
    assert answer.json()["description"] == "before"  # what was not given is kept
    first, second = (api.run_deployment(dep.id, s.DeploymentRunRequest()) for _ in range(2))

    assert _claim(api, pool) == [first.id]
    assert _claim(api, pool) == []
    assert api.read_flow_run(second.id).state.type is StateType.SCHEDULED

    cleared = _patch(server, dep.id, {"clear_concurrency_limit": True, "description": "after"})
    assert cleared.json()["concurrency_limit"] is None
    assert cleared.json()["description"] == "after"
    assert _claim(api, pool) == [second.id]

    about = f"flowyard.deployment.{dep.id}"
    changes = api.list_events(event="flowyard.deployment.limit-changed", resource_id=about)
    newest = [e.payload for e in changes.events][:2]  # the fixture's upserts changed it too
    assert newest == [{"from": 1, "to": None}, {"from": None, "to": 1}]
