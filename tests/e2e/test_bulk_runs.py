"""Bulk run creation: many alike runs of a deployment in one request, each claimable once."""

from __future__ import annotations

import json
import uuid

import pytest

from flowyard import schemas as s
from tests.servers import run_cli

COUNT = 40


def _fresh(deploy) -> s.Deployment:
    """A deployment of its own (deployments are upserted by flow and name)."""
    return deploy("noop", name=f"bulk-{uuid.uuid4().hex[:8]}")


def _claim_all(api, pool: str) -> list[str]:
    """Every run the pool hands out, claimed until a claim comes back empty."""
    claimed: list[str] = []
    while runs := api.claim(pool, s.ClaimRequest(worker_name="bulk", max_runs=25)):
        claimed.extend(run.run.id for run in runs)
    return claimed


def test_bulk_runs_are_created_evented_and_claimed_exactly_once(api, pool, deploy):
    """``count`` Scheduled runs come back with the deployment's parameters, each with its
    own Scheduled event, and claims hand out each of them once, no more."""
    dep = _fresh(deploy)
    made = api.run_deployment_bulk(dep.id, s.DeploymentRunBulk(count=COUNT, parameters={"n": 3}))

    ids = [run.id for run in made]
    assert len(set(ids)) == COUNT
    assert {run.state.type.value for run in made} == {"SCHEDULED"}
    assert all(run.parameters == {"n": 3} and run.deployment_id == dep.id for run in made)
    for run_id in ids[:3]:  # as single creates write: one event per run
        page = api.list_events(resource_id=f"flowyard.flow-run.{run_id}")
        assert [e.event for e in page.events] == ["flowyard.flow-run.Scheduled"]

    claimed = _claim_all(api, pool)
    assert sorted(claimed) == sorted(ids)


@pytest.mark.parametrize("count", [0, -1, 1001, "5", True, 2.0, None])
def test_a_bad_count_is_refused_naming_it_and_creates_nothing(api, deploy, count):
    """Out of bounds, not a strict integer, or missing: 422 on ``count``, no run written."""
    dep = _fresh(deploy)
    body = {} if count is None else {"count": count}
    response = api._http.post(f"/api/deployments/{dep.id}/runs/bulk", json=body)
    assert response.status_code == 422, response.text
    assert any(error["loc"][-1] == "count" for error in response.json()["detail"])
    assert api.list_flow_runs(deployment_id=dep.id) == []


def test_bad_parameters_refuse_the_whole_bulk(api, deploy):
    """A parameter of the wrong type refuses the request (422): not one run is written."""
    dep = _fresh(deploy)
    response = api._http.post(
        f"/api/deployments/{dep.id}/runs/bulk", json={"count": 3, "parameters": {"n": "x"}}
    )
    assert response.status_code == 422, response.text
    assert api.list_flow_runs(deployment_id=dep.id) == []


def test_the_cli_creates_count_runs(server, api, deploy):
    """``flowyard deployment run NAME --count N --json`` creates N runs and lists them."""
    dep = _fresh(deploy)
    done = run_cli(
        server, "deployment", "run", f"{dep.flow_name}/{dep.name}", "--count", "3", "--json"
    )
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert len(listed) == 3
    stored = api.list_flow_runs(deployment_id=dep.id)
    assert sorted(run.id for run in stored) == sorted(run["id"] for run in listed)

    refused = run_cli(server, "deployment", "run", dep.id, "--count", "1001")
    assert refused.returncode != 0 and "--count" in refused.stderr
