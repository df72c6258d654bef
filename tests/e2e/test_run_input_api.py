"""Pauses and run input through the API, on a real server: the orchestration rules of
Prefect 3.9.1's ``HandlePausingFlows`` (``tests/server/orchestration/test_core_policy.py``)
and the resume checks of ``TestResumeFlowrun`` (``tests/server/orchestration/api/
test_flow_runs.py``), with Flowyard's bounds on what a resume may carry."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from flowyard import schemas as s
from flowyard.cli.main import cli
from flowyard.errors import ApiError
from flowyard.schemas.pauses import MAX_RUN_INPUT_BYTES
from flowyard.states import StateType

SCHEMA = {
    "type": "object",
    "properties": {"approved": {"type": "boolean"}},
    "required": ["approved"],
    "additionalProperties": False,
}


def _running(api) -> str:
    """A run recorded as a directly called flow's (no claim token): Running."""
    return api.create_flow_run(s.FlowRunCreate(flow_name="pausing")).id


def _pause(api, run_id: str, key: str = "1", schema=None, reschedule=False):
    pause = s.PauseRequest(key=key, input_schema=schema, reschedule=reschedule)
    return api.set_flow_run_state(run_id, s.StateChange(type=StateType.PAUSED, pause=pause))


def test_a_pause_key_fires_once_and_only_running_runs_pause(api):
    """As test_does_not_permit_repeat_pauses and test_can_only_pause_running_flows."""
    run_id = _running(api)
    assert _pause(api, run_id, key="hello").accepted
    again = _pause(api, run_id, key="hello")
    assert (again.accepted, again.reason) == (
        False,
        "Cannot pause flows that are not currently running.",
    )
    assert again.state.type is StateType.PAUSED
    api.resume_flow_run(run_id)
    repeat = _pause(api, run_id, key="hello")
    assert (repeat.accepted, repeat.state.type) == (False, StateType.RUNNING)
    assert repeat.reason == "This pause has already fired."
    assert _pause(api, run_id, key="other").accepted


def test_a_suspension_needs_a_deployment(api):
    """As test_can_not_nonblocking_pause_flows_with_deployments_with_reschedule_flag."""
    refused = _pause(api, _running(api), reschedule=True)
    assert not refused.accepted
    assert refused.reason == "Cannot suspend flows without a deployment."
    assert refused.state.type is StateType.RUNNING


def test_resuming_checks_the_input_against_the_schema_the_flow_sent(api):
    """As test_resume_flow_run_waiting_for_input_without_input_fails_if_required,
    ..._schema_fails_validation and ..._valid_data; and with defaults, an empty input."""
    run_id = _running(api)
    _pause(api, run_id, schema=SCHEMA)
    with pytest.raises(ApiError, match="'approved' is a required property"):
        api.resume_flow_run(run_id)
    with pytest.raises(ApiError, match="'not a bool!' is not of type 'boolean'"):
        api.resume_flow_run(run_id, run_input={"approved": "not a bool!"})
    assert api.read_flow_run(run_id).state.type is StateType.PAUSED
    assert api.resume_flow_run(run_id, run_input={"approved": True}).state.type is StateType.RUNNING
    assert api.read_run_input(run_id, "1").run_input == {"approved": True}

    defaults = {"type": "object", "properties": {"note": {"type": "string", "default": "-"}}}
    other = _running(api)
    _pause(api, other, schema=defaults)
    assert api.resume_flow_run(other).state.type is StateType.RUNNING
    assert api.read_run_input(other, "1").run_input == {}


def test_run_input_is_bounded_and_only_for_runs_waiting_for_it(server, api):
    """The server's own bounds (sent raw, past the client's checks), then the CLI's."""
    run_id = _running(api)
    _pause(api, run_id)
    with pytest.raises(ApiError, match="is not waiting for input"):
        api.resume_flow_run(run_id, run_input={"approved": True})
    waiting = _running(api)
    _pause(api, waiting, schema={"type": "object"})
    path = f"/api/flow_runs/{waiting}/resume"
    with pytest.raises(ApiError, match=f"at most {MAX_RUN_INPUT_BYTES} are taken"):
        api.request("POST", path, json={"run_input": {"text": "x" * MAX_RUN_INPUT_BYTES}})
    deep: dict = {}
    for _ in range(40):
        deep = {"d": deep}
    with pytest.raises(ApiError, match="nested deeper than"):
        api.request("POST", path, json={"run_input": deep})
    too_big = {"enum": ["x" * MAX_RUN_INPUT_BYTES]}
    body = {"type": "PAUSED", "pause": {"key": "2", "input_schema": too_big}}
    with pytest.raises(ApiError, match="at most"):
        api.request("POST", f"/api/flow_runs/{_running(api)}/state", json=body)
    with pytest.raises(ApiError, match="has no pause 'nope'"):
        api.read_run_input(waiting, "nope")
    for timeout in (False, "60", -1, 10**12):  # a pause's timeout is a number of seconds
        body = {"type": "PAUSED", "pause": {"key": "3", "timeout_seconds": timeout}}
        with pytest.raises(ApiError, match="timeout_seconds"):
            api.request("POST", f"/api/flow_runs/{_running(api)}/state", json=body)

    big = CliRunner().invoke(
        cli,
        ["--api-url", server.url, "flow-run", "resume", waiting, "--input",
         json.dumps({"text": "x" * MAX_RUN_INPUT_BYTES})],
    )  # fmt: skip
    assert big.exit_code != 0 and "--input is" in big.output and "bytes of JSON" in big.output
    assert "Traceback" not in big.output
    assert api.read_flow_run(waiting).state.type is StateType.PAUSED  # nothing lost
    assert api.resume_flow_run(waiting, run_input={"ok": 1}).state.type is StateType.RUNNING
