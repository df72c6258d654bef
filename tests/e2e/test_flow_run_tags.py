"""Flow runs' tags against a real server, as Prefect 3.9.1 has them.

The ports follow Prefect's ``tests/test_flows.py`` (``TestFlowRunTags``),
``tests/runtime/test_flow_run.py`` (``TestTags``) and ``tests/deployment/
test_flow_runs.py`` (``test_accepts_tags``); a deployment's run carries the deployment's
tags and the request's (Prefect's ``set(deployment.tags).union(flow_run.tags)``).
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from flowyard import flow, get_client, runtime, tags
from flowyard import schemas as s
from flowyard.deployments import run_deployment
from flowyard.errors import ApiError
from flowyard.states import StateType
from tests.servers import run_cli
from tests.waiting import wait_until


@pytest.fixture
def api_env(server, monkeypatch):
    """This process talks to the test server, as a script or a flow would."""
    monkeypatch.setenv("FLOWYARD_API_URL", server.url)


@flow
def tagged_subflow() -> tuple[str | None, list[str]]:
    return runtime.flow_run.id, runtime.flow_run.tags


@flow
def tagged_parent() -> tuple[str | None, list[str], tuple[str | None, list[str]]]:
    with tags("c", "d"):
        child = tagged_subflow()
    return runtime.flow_run.id, runtime.flow_run.tags, child


def test_a_flow_called_inside_tags_records_them_and_its_subflows_add_theirs(api_env, api):
    """``with tags("a", "b")`` around a flow's call tags its run; a subflow called inside
    ``with tags("c", "d")`` carries all four; ``runtime.flow_run.tags`` says the same, and
    is empty outside a run."""
    assert runtime.flow_run.tags == []
    with tags("a", "b"):
        run_id, own, (child_id, child_tags) = tagged_parent()
    assert runtime.flow_run.tags == []
    assert (own, child_tags) == (["a", "b"], ["a", "b", "c", "d"])
    assert api.read_flow_run(run_id).tags == ["a", "b"]
    assert api.read_flow_run(child_id).tags == ["a", "b", "c", "d"]


def test_a_flow_called_without_tags_has_none(api_env, api):
    """Outside any ``with tags(...)`` the run's tags are empty, not missing; the run is
    recorded as it ran (Running, then Completed: not left Pending)."""
    run_id, own, _ = tagged_parent()
    run = api.read_flow_run(run_id)
    assert own == [] and run.tags == []
    assert run.state.type is StateType.COMPLETED, run.state


def test_a_deployments_run_carries_its_tags_and_the_requests(api_env, api, deploy):
    """``run_deployment(tags=...)``, ``create_flow_run_from_deployment(tags=...)`` and
    ``flowyard deployment run --tag`` each add to the deployment's tags."""
    dep = deploy("noop", name=f"tagged-{uuid.uuid4().hex[:8]}", tags=["nightly"])
    run = run_deployment(dep.id, tags=["I", "love", "prefect"], timeout=0)
    assert sorted(run.tags) == ["I", "love", "nightly", "prefect"]
    assert api.read_flow_run(run.id).tags == sorted(run.tags)
    with get_client(sync_client=True) as client:
        scripted = client.create_flow_run_from_deployment(dep.id, tags=["scripted", "nightly"])
    assert scripted.tags == ["nightly", "scripted"]
    plain = api.run_deployment(dep.id, s.DeploymentRunRequest())
    assert plain.tags == ["nightly"]


def test_the_cli_tags_a_deployments_run(server, api, deploy):
    """``flowyard deployment run NAME --tag x --tag y``: the run has them and the
    deployment's."""
    dep = deploy("noop", name=f"cli-tagged-{uuid.uuid4().hex[:8]}", tags=["nightly"])
    done = run_cli(server, "deployment", "run", dep.id, "--tag", "x", "--tag", "y", "--json")
    assert done.returncode == 0, done.stderr
    [run] = api.list_flow_runs(deployment_id=dep.id)
    assert run.tags == ["nightly", "x", "y"]


def test_runs_are_filtered_by_every_tag_and_by_any_tag(api_env, api, deploy):
    """``tag`` (repeated) keeps the runs with every tag given, ``any_tag`` those with one
    at least, in the API and in ``read_flow_runs``; the deployment's tags count."""
    dep = deploy("noop", name=f"filtered-{uuid.uuid4().hex[:8]}", tags=["team"])
    made = {
        name: api.run_deployment(dep.id, s.DeploymentRunRequest(tags=extra)).id
        for name, extra in {"ab": ["a", "b"], "a": ["a"], "c": ["c"], "none": []}.items()
    }

    def found(**filters: list[str]) -> set[str]:
        runs = api.list_flow_runs(deployment_id=dep.id, **filters)  # type: ignore[arg-type]
        return {name for name, ident in made.items() if ident in {r.id for r in runs}}

    assert found(tags=["a"]) == {"ab", "a"}
    assert found(tags=["a", "b"]) == {"ab"}
    assert found(any_tags=["b", "c"]) == {"ab", "c"}
    assert found(tags=["team"], any_tags=["c", "zzz"]) == {"c"}
    assert found(tags=["zzz"]) == set()
    with get_client(sync_client=True) as client:
        scripted = client.read_flow_runs(deployment_id=dep.id, tags=["a", "b"])
    assert [r.id for r in scripted] == [made["ab"]]


BAD_TAGS = {
    "too long": ["x" * 201],
    "a control character": ["bad\x07tag"],
    "empty": [""],
    "too many": [f"t{i}" for i in range(101)],
}


@pytest.mark.parametrize("why", BAD_TAGS)
def test_bad_tags_get_a_clear_422_and_nothing_is_written(server, api, deploy, why):
    """A run request, or a direct run's record, with a tag the API cannot take is refused
    with a 422 that names the field; no run is made."""
    dep = deploy("noop", name=f"bad-{uuid.uuid4().hex[:8]}")
    with httpx.Client(base_url=server.url) as http:
        answer = http.post(f"/api/deployments/{dep.id}/runs", json={"tags": BAD_TAGS[why]})
        direct = http.post("/api/flow_runs", json={"flow_name": "f", "tags": BAD_TAGS[why]})
    assert (answer.status_code, direct.status_code) == (422, 422)
    assert "tags" in answer.text and "tags" in direct.text
    assert api.list_flow_runs(deployment_id=dep.id) == []


def test_a_run_may_not_pass_the_tag_bound_with_its_deployments(api, deploy):
    """100 tags is the bound of a run's tags, the deployment's included: one more is a 422
    that says so."""
    dep = deploy("noop", name=f"full-{uuid.uuid4().hex[:8]}", tags=[f"d{i}" for i in range(99)])
    assert len(api.run_deployment(dep.id, s.DeploymentRunRequest(tags=["one"])).tags) == 100
    with pytest.raises(ApiError, match="at most 100 tags") as refused:
        api.run_deployment(dep.id, s.DeploymentRunRequest(tags=["one", "two"]))
    assert refused.value.status_code == 422
    assert len(api.list_flow_runs(deployment_id=dep.id)) == 1


def test_a_filter_tag_is_bounded(server):
    """A filter tag longer than a label is a 422, not a query."""
    with httpx.Client(base_url=server.url) as http:
        answer = http.get("/api/flow_runs", params={"any_tag": "x" * 201})
    assert answer.status_code == 422 and "tag" in answer.text


def test_the_runs_page_shows_and_filters_by_tags(server, api, deploy):
    """The UI's run list has a Tags column and its Tag filter reads the run's own tags;
    the run's page lists them."""
    dep = deploy("noop", name=f"ui-{uuid.uuid4().hex[:8]}")
    marker = f"only-{uuid.uuid4().hex[:8]}"
    tagged = api.run_deployment(dep.id, s.DeploymentRunRequest(tags=[marker]))
    untagged = api.run_deployment(dep.id, s.DeploymentRunRequest())
    with httpx.Client(base_url=server.url) as http:
        listed = http.get("/ui/runs", params={"tag": marker})
        page = http.get(f"/ui/runs/{tagged.id}")
    assert listed.status_code == 200 and page.status_code == 200
    assert tagged.id in listed.text and untagged.id not in listed.text
    assert f"<td>{marker}</td>" in listed.text
    assert marker in page.text


def test_a_deployed_runs_task_runs_carry_its_tags(api, deploy, start_worker):
    """A deployed run's task runs carry the run's tags, the request's among them (a tag
    limit on them holds those task runs; Prefect's carry only a ``with tags`` of the code)."""
    dep = deploy("noop", name=f"worked-{uuid.uuid4().hex[:8]}", tags=["nightly"])
    run = api.run_deployment(dep.id, s.DeploymentRunRequest(tags=["adhoc"]))
    start_worker()
    wait_until(lambda: api.read_flow_run(run.id).state.type.is_terminal, timeout=120)
    assert api.read_flow_run(run.id).state.type.value == "COMPLETED"
    [task_run] = api.list_task_runs(run.id)
    assert task_run.tags == ["adhoc", "nightly"]


def test_a_runs_events_name_its_tags(api, deploy):
    """As Prefect's, a run's state events are related to its own tags and its
    deployment's (``flowyard.tag.<tag>``)."""
    dep = deploy("noop", name=f"evented-{uuid.uuid4().hex[:8]}", tags=["nightly"])
    run = api.run_deployment(dep.id, s.DeploymentRunRequest(tags=["adhoc"]))
    api.cancel_flow_run(run.id)
    events = api.list_events(resource_id=[f"flowyard.flow-run.{run.id}"]).events
    assert {e.event for e in events} >= {"flowyard.flow-run.Scheduled"}
    assert len(events) >= 2
    for event in events:
        named = {
            r["flowyard.resource.id"]
            for r in event.related
            if r.get("flowyard.resource.role") == "tag"
        }
        assert named == {"flowyard.tag.adhoc", "flowyard.tag.nightly"}, event.event
