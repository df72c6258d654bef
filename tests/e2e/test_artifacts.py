"""Artifacts on a real server: published by a deployed flow (process worker) and by a flow
called from a plain script, read back with their history; bad input refused with a 422."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from flowyard.cli.main import cli
from flowyard.client import FlowyardClient
from flowyard.client.transport import _error_message
from flowyard.errors import ApiError
from flowyard.schemas import artifacts as a
from flowyard.states import StateType
from tests.e2e.conftest import deploy_flow
from tests.helpers.artifact_flows import FLOWS
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("reporting")
    (folder / "flows.py").write_text(textwrap.dedent(FLOWS))
    return folder


def _key() -> str:
    return f"report-{uuid.uuid4().hex[:8]}"


def _completed(api: FlowyardClient, run_id: str) -> None:
    def final() -> str | None:
        state = api.read_flow_run(run_id).state.type
        return state.value if state.is_terminal else None

    assert wait_until(final, timeout=90, message=f"run {run_id} did not end") == "COMPLETED"


def _all_of_run(api: FlowyardClient, run_id: str, page: int) -> list[a.Artifact]:
    """Every artifact of the run, read ``page`` at a time through the cursors."""
    found: list[a.Artifact] = []
    cursor = None
    while True:
        listed = api.list_artifacts(flow_run_id=run_id, limit=page, cursor=cursor)
        found += listed.artifacts
        if listed.next_cursor is None:
            return found
        assert len(listed.artifacts) == page
        cursor = listed.next_cursor


def _check_run_artifacts(api: FlowyardClient, run_id: str, key: str, rows: int) -> None:
    """The five artifacts of one ``reporting`` run: types, data, run and task-run links."""
    found = _all_of_run(api, run_id, page=2)
    assert len(found) == len({x.id for x in found}) == 5
    assert [x.created for x in found] == sorted((x.created for x in found), reverse=True)
    by_key = {x.key: x for x in found}
    assert by_key[key].data == f"# Report\n\n{rows} rows"
    assert by_key[None].data == "[the data](https://example.com/data)"
    assert by_key[None].type == "markdown"
    assert by_key[f"{key}-chart"].data == "https://example.com/chart.png"
    progress = by_key[f"{key}-progress"]
    assert (progress.type, progress.data, progress.description) == ("progress", 100, "all done")
    assert progress.updated > progress.created
    table = by_key[f"{key}-table"]
    assert table.data[1] == {"n": 1, "half": None} and len(table.data) == rows
    assert table.task_run_id is not None
    assert all(x.task_run_id is None for x in found if x is not table)

    def recorded() -> list[str]:
        return [t.id for t in api.list_task_runs(run_id)]

    assert table.task_run_id in wait_until(recorded, timeout=30, message="no task-run record")


class TestDeployedFlow:
    def test_a_deployed_run_publishes_artifacts_and_a_key_keeps_its_history(
        self, api, pool, report_dir, start_worker
    ):
        """Two runs of a deployment on a process worker: each run's five artifacts are
        listed (paged) and read back, and the report key's history holds both versions,
        the second run's being the current one."""
        deployment = deploy_flow(api, pool, report_dir, "reporting")
        start_worker()
        key = _key()
        runs = []
        for rows in (2, 3):
            body = {"parameters": {"rows": rows, "key": key}}
            run = api.request("POST", f"/api/deployments/{deployment.id}/runs", json=body)
            _completed(api, run["id"])
            _check_run_artifacts(api, run["id"], key, rows)
            runs.append(run["id"])
        history = api.read_artifact_history(key)
        assert [v.flow_run_id for v in history.versions] == runs[::-1]
        assert history.latest == history.versions[0]
        assert history.latest.data == "# Report\n\n3 rows"
        assert api.read_artifact(history.versions[1].id).data == "# Report\n\n2 rows"
        one = api.read_artifact_history(key, limit=1)
        assert len(one.versions) == 1 and one.next_cursor is not None
        rest = api.read_artifact_history(key, limit=1, cursor=one.next_cursor)
        assert [v.id for v in one.versions + rest.versions] == [v.id for v in history.versions]
        assert rest.next_cursor is None


class TestDirectScript:
    def test_a_script_run_stores_its_artifacts_through_the_configured_api(
        self, api, server, report_dir
    ):
        """``python flows.py`` with FLOWYARD_API_URL set: the flow run it records carries its
        artifacts, as a deployed run's would."""
        key = _key()
        env = {**os.environ, "FLOWYARD_API_URL": server.url}
        done = subprocess.run(
            [sys.executable, "flows.py", "4", key],
            cwd=report_dir, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        [latest] = api.read_artifact_history(key).versions
        run = api.read_flow_run(latest.flow_run_id or "")
        assert run.state.type is StateType.COMPLETED
        _check_run_artifacts(api, run.id, key, 4)


class TestBadInput:
    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({"type": "markdown", "data": "x", "key": "Not A Key"}, "is not an artifact key"),
            ({"type": "table", "data": [[0]] * 10_001}, "10001 rows; at most 10000"),
            ({"type": "table", "data": "nested"}, "nests more than 20 levels deep"),
            ({"type": "progress", "data": 250}, "a number from 0 to 100"),
            ({"type": "markdown", "data": "x", "flow_run_id": "nope"}, "no flow run 'nope'"),
        ],
    )
    def test_bad_input_gets_a_clear_422_and_the_listing_keeps_working(
        self, api, server, body, message
    ):
        """The refusal names the field and the bound; nothing is stored; listing and reading
        what was stored before still work."""
        if body["data"] == "nested":
            nested: list[object] = []
            for _ in range(30):  # past the artifacts' 20, within the door's 64
                nested = [nested]
            body = {**body, "data": [nested]}
        key = _key()
        kept = api.create_artifact(a.ArtifactCreate(type="markdown", data="kept", key=key))
        response = httpx.post(f"{server.url}/api/artifacts", json=body, timeout=30)
        assert response.status_code == 422, response.text
        refusal = _error_message(response)
        assert message in refusal and refusal.startswith(("data:", "key:", "flow_run_id:"))
        assert api.list_artifacts(limit=1).artifacts == [kept]
        assert api.read_artifact_history(key).latest == kept

    def test_an_update_must_fit_the_artifacts_type(self, api):
        """Progress updated with text, or past 100, is refused and the figure stays; an
        update of the description alone keeps the figure."""
        made = api.create_artifact(a.ArtifactCreate(type="progress", data=5, key=_key()))
        for data in ("half", 101):
            with pytest.raises(ApiError) as refused:
                api.update_artifact(made.id, a.ArtifactUpdate(data=data))
            assert refused.value.status_code == 422
            assert "number from 0 to 100" in str(refused.value)
        assert api.read_artifact(made.id).data == 5
        described = api.update_artifact(made.id, a.ArtifactUpdate(description="halfway"))
        assert (described.data, described.description) == (5, "halfway")

    def test_a_cursor_not_given_by_the_api_is_refused(self, server):
        """A made-up cursor is a 422 that says so, not a 500."""
        response = httpx.get(f"{server.url}/api/artifacts", params={"cursor": "yesterday"})
        assert response.status_code == 422
        assert "not a cursor this API gave" in _error_message(response)


class TestCli:
    def test_ls_inspect_and_delete(self, api, server):
        """``artifact ls --key`` lists a key's versions, ``inspect`` shows the current one
        in full and the history, ``delete`` removes them all."""
        key = _key()
        for n in (1, 2):
            api.create_artifact(a.ArtifactCreate(type="markdown", data=f"# v{n}", key=key))
        runner = CliRunner(env={"FLOWYARD_API_URL": server.url})
        listed = runner.invoke(cli, ["artifact", "ls", "--key", key, "--json"])
        assert listed.exit_code == 0, listed.output
        assert [x["data"] for x in json.loads(listed.output)["artifacts"]] == ["# v2", "# v1"]
        shown = runner.invoke(cli, ["artifact", "inspect", key])
        assert shown.exit_code == 0, shown.output
        head, history = shown.output.split("History:")
        assert "# v2" in head and "# v1" not in head
        assert history.index("# v2") < history.index("# v1")
        gone = runner.invoke(cli, ["artifact", "delete", key, "--yes"])
        assert gone.exit_code == 0 and f"Deleted the artifacts of key {key!r}" in gone.output
        missing = runner.invoke(cli, ["artifact", "inspect", key])
        assert missing.exit_code == 1 and f"no artifact with key {key!r}" in missing.output
