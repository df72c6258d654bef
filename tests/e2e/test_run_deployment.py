"""``flowyard.deployments.run_deployment`` against a real server and process worker."""

from __future__ import annotations

import pytest

from flowyard.deployments import run_deployment
from flowyard.errors import ApiError


@pytest.fixture
def api_env(server, monkeypatch):
    """This process talks to the test server, as a script or a flow would."""
    monkeypatch.setenv("FLOWYARD_API_URL", server.url)


def test_waits_for_the_run_to_end(api_env, deploy, start_worker):
    """With a timeout, the call returns the run once it has ended, with its parameters."""
    dep = deploy("noop")
    start_worker()
    run = run_deployment(f"{dep.flow_name}/{dep.name}", {"n": 21}, timeout=120, poll_interval=0.2)
    assert run.state.type.value == "COMPLETED"
    assert run.parameters == {"n": 21} and run.deployment_id == dep.id


def test_timeout_zero_returns_at_once_and_a_failure_is_returned_not_raised(
    api_env, deploy, start_worker
):
    """``timeout=0`` gives the Scheduled run; waiting on a failing flow gives it Failed."""
    dep = deploy("fails")
    queued = run_deployment(dep.id, timeout=0, flow_run_name="right-away")
    assert queued.state.type.value == "SCHEDULED" and queued.name == "right-away"
    start_worker()
    failed = run_deployment(dep.id, timeout=120, poll_interval=0.2)
    assert failed.state.type.value == "FAILED"


def test_bad_parameters_and_unknown_deployments_raise(api_env, deploy):
    """A wrong parameter or an unknown deployment raises, naming it; nothing is queued."""
    dep = deploy("noop")
    with pytest.raises(ApiError, match="n") as caught:
        run_deployment(dep.id, {"n": "not a number"}, timeout=0)
    assert caught.value.status_code == 422
    with pytest.raises(ApiError) as missing:
        run_deployment("nope/nothing", timeout=0)
    assert missing.value.status_code == 404
