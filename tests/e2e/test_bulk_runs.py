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


def test_parameter_sets_make_one_run_each_over_the_shared_parameters(api, deploy):
    """``parameter_sets``: run i gets set i over ``parameters``, in the order given."""
    dep = _fresh(deploy)
    sets = [{"n": i} for i in range(5)]
    body = s.DeploymentRunBulk(count=5, parameters={"n": 99}, parameter_sets=sets)
    made = api.run_deployment_bulk(dep.id, body)

    assert [run.parameters for run in made] == sets
    stored = {run.id: run.parameters for run in api.list_flow_runs(deployment_id=dep.id)}
    assert stored == {run.id: run.parameters for run in made}


def test_one_bad_parameter_set_refuses_all_naming_its_index_and_field(api, deploy):
    """Set 2 of 4 is mistyped: 422 naming ``parameter_sets[2]`` and ``n``; nothing written."""
    dep = _fresh(deploy)
    sets = [{"n": 1}, {"n": 2}, {"n": "three"}, {"n": 4}]
    response = api._http.post(
        f"/api/deployments/{dep.id}/runs/bulk", json={"count": 4, "parameter_sets": sets}
    )
    assert response.status_code == 422, response.text
    assert "parameter_sets[2]" in response.text and "'n'" in response.text
    assert api.list_flow_runs(deployment_id=dep.id) == []


@pytest.mark.parametrize(
    "sets", [[], [{"n": 1}], [{"n": 1}] * 3, [1, 2], [{"n": 1}] * (s.MAX_BULK_RUNS + 1)]
)
def test_parameter_sets_must_be_objects_one_per_run(api, deploy, sets):
    """Empty, not as many as ``count``, not objects, or too many: 422 on ``parameter_sets``."""
    dep = _fresh(deploy)
    body = {"count": 2, "parameter_sets": sets}
    response = api._http.post(f"/api/deployments/{dep.id}/runs/bulk", json=body)
    assert response.status_code == 422, response.text
    assert any("parameter_sets" in error["loc"] for error in response.json()["detail"])
    assert api.list_flow_runs(deployment_id=dep.id) == []


def test_runs_of_a_missing_deployment_are_refused(api):
    """An unknown deployment: 404 for the single and the bulk create alike."""
    for path, body in [("runs", {}), ("runs/bulk", {"count": 2})]:
        response = api._http.post(f"/api/deployments/{uuid.uuid4()}/{path}", json=body)
        assert response.status_code == 404, response.text


def test_the_cli_creates_a_run_per_parameter_set(server, api, deploy, tmp_path):
    """``--parameter-sets FILE`` creates one run per object in the file, each with its set;
    a file that is not a list of objects is refused before any request."""
    dep = _fresh(deploy)
    sets = tmp_path / "sets.json"
    sets.write_text(json.dumps([{"n": 1}, {"n": 2}, {"n": 3}]))
    ref = f"{dep.flow_name}/{dep.name}"
    done = run_cli(server, "deployment", "run", ref, "--parameter-sets", str(sets), "--json")
    assert done.returncode == 0, done.stderr
    assert sorted(run["parameters"]["n"] for run in json.loads(done.stdout)) == [1, 2, 3]

    sets.write_text(json.dumps({"n": 1}))
    refused = run_cli(server, "deployment", "run", ref, "--parameter-sets", str(sets))
    assert refused.returncode != 0 and "--parameter-sets" in refused.stderr
    assert len(api.list_flow_runs(deployment_id=dep.id)) == 3


def test_ids_only_answers_the_new_runs_ids_in_order(api, deploy):
    """``?ids_only=true`` answers a list of the created runs' ids (one per parameter set,
    in order), and those runs are stored and queued like any bulk's."""
    dep = _fresh(deploy)
    sets = [{"n": i} for i in range(4)]
    ids = api.run_deployment_bulk_ids(dep.id, s.DeploymentRunBulk(count=4, parameter_sets=sets))

    assert len(set(ids)) == 4
    assert [api.read_flow_run(run_id).parameters["n"] for run_id in ids] == [0, 1, 2, 3]
    response = api._http.post(f"/api/deployments/{dep.id}/runs/bulk?ids_only=1", json={"count": 2})
    assert response.status_code == 201, response.text
    assert all(isinstance(run_id, str) for run_id in response.json())


def test_the_answer_is_what_reading_the_runs_back_gives(api, deploy):
    """The documents of a bulk (and of a single create), encoded without validating each,
    equal the runs as read back from the store, field for field."""
    dep = _fresh(deploy)
    made = api._http.post(
        f"/api/deployments/{dep.id}/runs/bulk", json={"count": 2, "parameters": {"n": 7}}
    )
    one = api._http.post(f"/api/deployments/{dep.id}/runs", json={"priority": 3})
    assert made.status_code == one.status_code == 201, made.text + one.text

    for answered in [*made.json(), one.json()]:
        stored = api.read_flow_run(answered["id"]).model_dump(mode="json")
        assert s.FlowRun.model_validate(answered).model_dump(mode="json") == stored
        assert set(answered) == set(s.FlowRun.model_fields)


def test_the_cli_prints_the_count_without_asking_for_documents(server, api, deploy):
    """``deployment run --count N`` without ``--json`` says how many runs it made."""
    dep = _fresh(deploy)
    done = run_cli(server, "deployment", "run", dep.id, "--count", "5")
    assert done.returncode == 0, done.stderr
    assert "Created 5 flow runs" in done.stdout
    assert len(api.list_flow_runs(deployment_id=dep.id)) == 5
