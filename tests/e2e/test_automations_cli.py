"""Automations from the ``flowyard`` command (a real subprocess), from Python, and from a
deployment's ``triggers:`` in flowyard.yaml, against a real server."""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path

import pytest

from flowyard.automations import Automation, DeploymentEventTrigger, EventTrigger, RunDeployment
from flowyard.errors import ApiError
from tests.e2e.conftest import FLOWS
from tests.servers import run_cli


def _name() -> str:
    return f"cli-{uuid.uuid4().hex[:8]}"


def test_the_cli_creates_lists_inspects_pauses_resumes_and_deletes(server, api, tmp_path):
    """Two automations from one YAML file; ls shows them; inspect prints the document;
    pause and resume switch it; delete removes it."""
    first, second = _name(), _name()
    path = tmp_path / "automations.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            automations:
              - name: {first}
                trigger:
                  expect: ["flowyard.flow-run.Failed"]
                  threshold: 3
                  within: 600
                actions: [{{type: do-nothing}}]
              - name: {second}
                trigger: {{type: sequence, triggers: [{{expect: [a]}}, {{expect: [b]}}]}}
                actions: [{{type: do-nothing}}]
            """
        )
    )
    created = run_cli(server, "automation", "create", "--file", str(path))
    assert created.returncode == 0, created.stderr
    assert f"Created automation {first!r}" in created.stdout
    listed = run_cli(server, "automation", "ls").stdout
    line = next(line for line in listed.splitlines() if line.startswith(second))
    assert line.split()[1:4] == ["yes", "sequence", "-"]
    inspected = run_cli(server, "automation", "inspect", first)
    assert "threshold: 3" in inspected.stdout and "firings: (none yet)" in inspected.stdout
    assert run_cli(server, "automation", "pause", first).returncode == 0
    assert api.read_automation(first).enabled is False
    assert run_cli(server, "automation", "resume", first).returncode == 0
    assert api.read_automation(first).enabled is True
    as_json = json.loads(run_cli(server, "automation", "inspect", second, "--json").stdout)
    assert as_json["trigger"]["type"] == "sequence" and as_json["firings"] == []
    deleted = run_cli(server, "automation", "delete", first)
    assert deleted.returncode == 0 and f"Deleted automation {first!r}" in deleted.stdout
    assert first not in run_cli(server, "automation", "ls").stdout


def test_a_malformed_file_names_the_field_and_sends_nothing(server, api, tmp_path):
    """A proactive window under a second, and an unknown action field: the file, the
    automation and the fields are named; exit 1; neither automation of the file is stored."""
    good, bad = _name(), _name()
    path = tmp_path / "bad.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            automations:
              - {{name: {good}, trigger: {{expect: [a]}}, actions: [{{type: do-nothing}}]}}
              - name: {bad}
                trigger: {{posture: Proactive, expect: [a], within: 0.5}}
                actions: [{{type: run-deployment, deployment: x/y, bogus: 1}}]
            """
        )
    )
    result = run_cli(server, "automation", "create", "--file", str(path))
    assert result.returncode == 1
    where = f"bad.yaml: automation {bad!r}: trigger.within"
    assert f"{where}: a proactive trigger's window" in result.stderr
    assert "actions[0].bogus: Extra inputs are not permitted" in result.stderr
    assert {good, bad}.isdisjoint(auto.name for auto in api.list_automations())


def test_the_servers_refusal_is_printed_readably(server, tmp_path):
    """A selected deployment that does not exist: the server's 422 names the action's field."""
    path = tmp_path / "missing.json"
    doc = {
        "name": _name(),
        "trigger": {"expect": ["a"]},
        "actions": [{"type": "run-deployment", "deployment": "no/such"}],
    }
    path.write_text(json.dumps(doc))
    result = run_cli(server, "automation", "create", "--file", str(path))
    assert result.returncode == 1
    assert f"missing.json: automation {doc['name']!r}: " in result.stderr
    assert "actions.0.deployment: deployment 'no/such' not found" in result.stderr


def test_python_automations_round_trip(api, deploy):
    """``Automation(...).create()`` stores it; read, pause, resume, update and delete work
    on the stored one."""
    dep = deploy("noop")
    auto = Automation(
        name=_name(),
        trigger=EventTrigger(expect=["upstream.done"], match={"flowyard.resource.id": "x.*"}),
        actions=[RunDeployment(deployment=dep.id, parameters={"n": "{{ event.payload.n }}"})],
    ).create(client=api)
    assert auto.id is not None and auto.created is not None
    read = Automation.read(auto.name, client=api)
    assert read.id == auto.id and read.trigger == auto.trigger
    assert read.pause(client=api).enabled is False
    assert Automation.read(auto.id, client=api).enabled is False
    read.resume(client=api)
    read.description = "reruns noop"
    read.update(client=api)
    assert api.read_automation(auto.id).description == "reruns noop"
    read.delete(client=api)
    with pytest.raises(ApiError):
        api.read_automation(auto.id)


def _project(folder: Path, pool: str, triggers: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "flows.py").write_text(FLOWS)
    path = folder / "flowyard.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            deployments:
              - name: {folder.name}
                entrypoint: flows.py:noop
                work_pool: {{name: {pool}}}
            """
        )
        + textwrap.indent(textwrap.dedent(triggers), "    ")
    )
    return path


def test_flowyard_yaml_triggers_are_the_deployments_automations(server, api, pool, tmp_path):
    """Deploying with ``triggers:`` creates an automation the deployment owns that runs it;
    deploying again without them removes it; a bad template stops the deploy."""
    triggers = """\
        triggers:
          - expect: ["upstream.done"]
            parameters: {n: "{{ event.payload.n }}"}
    """
    folder = tmp_path / f"yaml-{uuid.uuid4().hex[:6]}"
    path = _project(folder, pool, triggers)
    result = run_cli(server, "deploy", "--file", str(path), "--all")
    assert result.returncode == 0, result.stderr
    assert "with 1 trigger(s)" in result.stdout
    dep = api.read_deployment(f"noop/{folder.name}")
    (owned,) = api.list_automations(deployment_id=dep.id)
    assert owned.name == f"noop.{folder.name}.trigger-1"
    assert isinstance(owned.actions[0], RunDeployment) and owned.actions[0].deployment == dep.id
    _project(folder, pool, "")
    assert run_cli(server, "deploy", "--file", str(path), "--all").returncode == 0
    assert api.list_automations(deployment_id=dep.id) == []
    _project(folder, pool, triggers.replace("payload.n }}", "payload.n }"))
    refused = run_cli(server, "deploy", "--file", str(path), "--all")
    assert refused.returncode == 1
    assert "triggers[0].parameters.n: template error" in refused.stderr


def test_flow_deploy_takes_triggers(api, pool, flows_dir, monkeypatch, server):
    """``deploy(..., triggers=[DeploymentEventTrigger(...)])`` gives the deployment them."""
    from flowyard.deployments import deploy
    from flowyard.sdk.sources import load_flow

    monkeypatch.setenv("FLOWYARD_API_URL", server.url)
    flow = load_flow("flows.py:noop", flows_dir)
    name = f"py-{uuid.uuid4().hex[:6]}"
    trigger = DeploymentEventTrigger(name=f"{name}-on-upstream", expect=["upstream.done"])
    deployment_id = deploy(flow, name, pool, triggers=[trigger])
    (owned,) = api.list_automations(deployment_id=deployment_id)
    assert owned.name == f"{name}-on-upstream"


def test_firings_show_what_each_action_did(server, api):
    """Two firings recorded as the evaluator records them, one action failing: the API lists
    them newest first with the action's status, attempts and error; inspect prints them."""
    from datetime import UTC, datetime, timedelta

    from flowyard.orchestrator.automations import firings
    from flowyard.settings import Settings
    from flowyard.store import Database
    from flowyard.store import models as m

    auto = Automation(
        name=_name(), trigger=EventTrigger(expect=["x"]), actions=[{"type": "do-nothing"}]
    ).create(client=api)
    db = Database(Settings(home=server.home).resolved_database_url)
    now = datetime.now(UTC)
    try:
        with db.session() as session:
            row = session.get(m.Automation, auto.id)
            firings.record(session, row, "triggered", None, {}, now=now - timedelta(minutes=1))
            (action_id,) = firings.record(session, row, "triggered", None, {}, now=now)
            failed = session.get(m.AutomationAction, action_id)
            failed.status, failed.attempts, failed.error = "failed", 3, "the pool is gone"
    finally:
        db.dispose()
    latest, earlier = api.list_automation_firings(auto.name)
    assert latest.fired > earlier.fired
    (action,) = latest.actions
    assert (action.type, action.status, action.attempts) == ("do-nothing", "failed", 3)
    assert action.error == "the pool is gone" and earlier.actions[0].status == "pending"
    shown = run_cli(server, "automation", "inspect", auto.name).stdout
    assert "do-nothing: failed after 3 attempt(s) - the pool is gone" in shown
    listed = run_cli(server, "automation", "ls").stdout
    assert f"{now:%Y-%m-%d %H:%M}" in next(x for x in listed.splitlines() if auto.name in x)
