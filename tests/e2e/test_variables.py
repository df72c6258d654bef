"""Variables (Prefect's ``prefect.variables.Variable``) on a real server that requires keys:
the SDK's get/set/unset as Prefect 3.9.1 answers them (checked by running the same calls
on Prefect), the CLI, who may read and write them, hostile values and names, and a
deployed flow reading one with its run token (and refused a write)."""

from __future__ import annotations

import asyncio
import textwrap
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from flowyard import flow
from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess, WorkerProcess
from flowyard.client import FlowyardClient
from flowyard.states import StateType
from flowyard.variables import Variable
from tests.e2e.conftest import FAST, KEYED_ADMIN, create_process_pool, deploy_flow
from tests.helpers.cli import flowyard
from tests.waiting import wait_until


@pytest.fixture
def server(keyed: ServerProcess) -> ServerProcess:
    return keyed


@pytest.fixture
def admin(
    keyed: ServerProcess, keyed_admin: FlowyardClient, monkeypatch: pytest.MonkeyPatch
) -> FlowyardClient:
    """The admin's client, and the SDK's calls made with the admin's key too."""
    monkeypatch.setenv("FLOWYARD_API_URL", keyed.url)
    monkeypatch.setenv("FLOWYARD_API_KEY", KEYED_ADMIN)
    return keyed_admin


def _name() -> str:
    return f"v_{uuid.uuid4().hex[:10]}"


def test_values_round_trip_and_set_get_unset_answer_as_prefects(admin):
    """Every JSON kind comes back as it went; a second ``set`` needs ``overwrite``
    (Prefect's ValueError text); ``get`` of a missing one gives the default; ``unset``
    says whether there was one."""
    for value in ["text", 7, 2.5, True, None, {"a": [1, {"b": None}]}, [1, "x"]]:
        name = _name()
        made = Variable.set(name, value, tags=["t"])
        assert (made.name, made.value, made.tags) == (name, value, ["t"])
        assert Variable.get(name) == value
    with pytest.raises(
        ValueError, match=rf"Variable '{name}' already exists. Use `overwrite=True`"
    ):
        Variable.set(name, 1)
    assert Variable.set(name, {"k": 2}, overwrite=True).value == {"k": 2}
    assert admin.read_variable(name).tags == []  # as Prefect's: tags given again, or none
    assert Variable.get("missing_one", default=42) == 42
    assert Variable.unset(name) is True
    assert Variable.unset(name) is False
    assert Variable.get(name) is None


def test_an_async_flow_awaits_the_calls(admin):
    name = _name()

    @flow
    async def configured() -> list[object]:
        await Variable.set(name, [1, 2])
        got = await Variable.get(name)
        also = await Variable.aget(name)
        return [got, also, await Variable.aunset(name)]

    assert asyncio.run(configured()) == [[1, 2], [1, 2], True]


def test_names_and_values_beyond_the_bounds_are_refused_with_the_field(server, admin):
    """422 naming the field for names Prefect refuses too (capitals, spaces, 256
    characters) and for values no store keeps or beyond Prefect's 5,000 characters; two
    creates of one name racing give one 201 and 409s, never a 500."""
    url, headers = f"{server.url}/api/variables", {"Authorization": f"Bearer {KEYED_ADMIN}"}
    deep: object = 1
    for _ in range(40):
        deep = [deep]
    bad = [
        {"name": "Upper", "value": 1},
        {"name": "a b", "value": 1},
        {"name": "x" * 256, "value": 1},
        {"name": "ok", "value": "x" * 5000},
        {"name": "ok", "value": deep},
        {"name": "ok", "value": "nul\u0000"},
        {"name": "ok", "value": 1, "tags": ["t"] * 101},
        {"name": "ok", "value": 1, "extra": True},
    ]
    for body in bad:
        answer = httpx.post(url, json=body, headers=headers)
        assert answer.status_code == 422, (body, answer.text)
    big, json_type = _name(), headers | {"Content-Type": "application/json"}
    lone = b'{"name": "ok", "value": "\\ud800"}'
    assert httpx.post(url, content=lone, headers=json_type).status_code == 422
    kept = httpx.post(url, json={"name": big, "value": 10**400}, headers=headers)
    assert kept.status_code == 201 and admin.read_variable(big).value == 10**400  # no loss
    digits = b'{"name": "ok", "value": 1' + b"0" * 5000 + b"}"
    assert httpx.post(url, content=digits, headers=json_type).status_code in (400, 422)
    name = _name()
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(
            lambda _: httpx.post(url, json={"name": name, "value": 1}, headers=headers).status_code,
            range(8),
        ))  # fmt: skip
    assert sorted(codes) == [201] + [409] * 7
    assert admin.list_variables(name_prefix="ok") == []


def test_viewers_read_workers_read_nothing_and_only_admins_write(server, admin):
    name = _name()
    admin.create_variable(s.VariableCreate(name=name, value="v"))
    viewer = admin.create_api_key(s.ApiKeyCreate(name=f"viewer-{name}", role="viewer")).key
    worker = admin.create_api_key(s.ApiKeyCreate(name=f"worker-{name}", pools=["p"])).key

    def call(key: str, method: str, path: str, **kw: object) -> int:
        headers = {"Authorization": f"Bearer {key}"}
        return httpx.request(method, f"{server.url}{path}", headers=headers, **kw).status_code

    assert call(viewer, "GET", f"/api/variables/{name}") == 200
    assert call(viewer, "PATCH", f"/api/variables/{name}", json={"value": 2}) == 403
    assert call(viewer, "DELETE", f"/api/variables/{name}") == 403
    assert call(worker, "GET", f"/api/variables/{name}") == 403
    assert call("not-a-key", "GET", f"/api/variables/{name}") == 401
    assert admin.read_variable(name).value == "v"


def test_the_cli_sets_reads_lists_and_unsets(server, admin):
    name = _name()
    run = lambda *args: flowyard(server.url, "variable", *args, key=KEYED_ADMIN)  # noqa: E731
    assert run("set", name, '{"rows": 3}', "--tag", "etl").returncode == 0
    assert run("get", name).stdout.strip() == '{"rows": 3}'
    again = run("set", name, "4")
    assert again.returncode != 0 and "already exists" in again.stderr + again.stdout
    assert run("set", name, "plain text", "--overwrite").returncode == 0
    assert admin.read_variable(name).value == "plain text"
    assert name in run("ls", "--prefix", name[:6]).stdout
    refused = run("set", "Bad Name", "1")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert run("unset", name).returncode == 0
    assert admin.read_variable(name) is None
    missing = run("get", name)
    assert missing.returncode != 0 and "not found" in missing.stderr


FLOWS = textwrap.dedent(
    """
    from pathlib import Path

    from flowyard import flow, runtime
    from flowyard.variables import Variable


    @flow
    def reads(name: str, folder: str) -> None:
        seen = Variable.get(name)
        try:
            Variable.set(name, "changed by a run", overwrite=True)
            wrote = "wrote"
        except Exception as exc:
            wrote = type(exc).__name__ + ": " + str(exc)
        Path(folder, runtime.flow_run.id).write_text(f"{seen}|{wrote}")
    """
)


def test_a_deployed_flow_reads_a_variable_with_its_run_token_and_may_not_write(
    server, admin, tmp_path: Path
):
    name = _name()
    admin.create_variable(s.VariableCreate(name=name, value=17))
    pool = create_process_pool(admin, f"vars-{uuid.uuid4().hex[:8]}")
    (tmp_path / "flows.py").write_text(FLOWS)
    deployment = deploy_flow(admin, pool, tmp_path, "reads")
    key = admin.create_api_key(s.ApiKeyCreate(name=f"w-{pool}", pools=[pool])).key
    worker = WorkerProcess(server.url, pool, tmp_path, env={**FAST, "FLOWYARD_API_KEY": key})
    try:
        params = {"name": name, "folder": str(tmp_path)}
        run_id = admin.run_deployment(deployment.id, s.DeploymentRunRequest(parameters=params)).id
        wait_until(lambda: admin.read_flow_run(run_id).state.type.is_terminal, timeout=120)
    finally:
        worker.stop(timeout=30)
    assert admin.read_flow_run(run_id).state.type is StateType.COMPLETED
    seen, wrote = (tmp_path / run_id).read_text().split("|", 1)
    assert seen == "17"
    assert wrote.startswith("ApiError") and "cannot POST /api/variables" in wrote, wrote
    assert admin.read_variable(name).value == 17
