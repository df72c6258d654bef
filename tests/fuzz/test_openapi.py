"""Fuzz the whole published OpenAPI spec against a real server (schemathesis, every check).

The run fails on any 5xx, any response that breaks the spec (body schema, undocumented
status, content type, headers, ``Allow``) and any request the spec calls invalid that the
server accepts. It is bounded (examples per operation, deterministic generation: the same
cases every run) so that it takes about a minute on two cores.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess
from flowyard.client import FlowyardClient
from flowyard.workers.process import ProcessWorker
from tests.postgres import fresh_database
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
MAX_EXAMPLES = {"sqlite": 50, "postgresql": 30}
"""Examples per operation in the fuzzing phase. The coverage phase (every boundary value of
every field) runs whole on both stores; PostgreSQL's own refusals (NUL characters, over-long
values) come from it, so that run generates fewer random cases to stay within CI's time."""
# Every check is on (schemathesis' default) but positive_data_acceptance: JSON the spec allows
# may still be refused for its meaning (a cron expression, a block type's own fields).
CONFIG = r"""workers = 2
request-timeout = 30
continue-on-failure = true
headers = {{ Authorization = "Bearer {key}" }}

[generation]
max-examples = {examples}
deterministic = true

[checks]
positive_data_acceptance.enabled = false
# an invalid request too large to read is refused with 413 (FLOWYARD_MAX_REQUEST_BYTES)
negative_data_rejection.expected-statuses = [
    400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429
]

# Claims, waits and event follows long-poll: their coverage phase (boundary values, which
# hooks do not see) is skipped and tests/fuzz/hooks.py shortens the fuzzing phase's waits.
[[operations]]
include-path-regex = '/(claim|wait|follow)$'
phases.coverage.enabled = false

# These paths are also records of a route with a parameter: a deployment's ref may hold a
# slash (GET /api/deployments/a/pause reads the deployment "a/pause"), a concurrency limit may
# be tagged "acquire", a task run's id be "bulk". So GET answers there (404 when no such
# record), and Allow says so, though the spec cannot show those overlaps.
[[operations]]
include-path-regex = '^/api/deployments/\{{ref\}}/'
checks.unsupported_method.enabled = false
checks.allow_header_conformance.enabled = false

[[operations]]
include-path-regex = '^/api/(concurrency_limits/(acquire|renew|release)|task_runs/bulk)$'
checks.unsupported_method.enabled = false
checks.allow_header_conformance.enabled = false
{operations}"""
OPERATION = """
[[operations]]
include-path-regex = '{path}'
exclude-method = "DELETE"
parameters = {{ {parameters} }}
"""


@pytest.fixture(scope="module")
def admin_key() -> str:
    return "fy-admin-" + secrets.token_hex(16)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, admin_key: str
) -> Iterator[ServerProcess]:
    """A real server on loopback that asks for an API key, as one exposed to a network; on
    SQLite and on PostgreSQL (which refuses more: NUL characters, over-long values)."""
    env = {"FLOWYARD_API_KEY": admin_key}
    if request.param == "postgresql":
        postgres = request.getfixturevalue("postgres_server")
        env["FLOWYARD_DATABASE_URL"] = fresh_database(postgres, "flowyard_fuzz")
    process = ServerProcess(tmp_path_factory.mktemp("fuzz-server"), env=env)
    try:
        wait_until(lambda: _healthy(process.url, admin_key), timeout=60, message="no server")
        yield process
    finally:
        process.stop()


def _healthy(url: str, key: str) -> bool:
    try:
        return httpx.get(f"{url}/api/health", headers={"Authorization": f"Bearer {key}"}).is_success
    except httpx.HTTPError:
        return False


def seed_resources(api: FlowyardClient) -> dict[str, dict[str, str]]:
    """Records for the fuzzer to reach past 404: path pattern → path parameter values."""
    template = ProcessWorker.default_base_job_template()
    api.create_work_pool(s.WorkPoolCreate(name="fuzz", base_job_template=template))
    deployment = api.create_deployment(
        s.DeploymentCreate(name="fuzz", flow_name="fuzz", entrypoint="flows.py:f", pool_name="fuzz")
    )
    schedule = api.create_schedule(
        deployment.id, s.ScheduleCreate(kind="interval", expression="3600")
    )
    run = api.run_deployment(deployment.id, s.DeploymentRunRequest())
    task_run = {"id": str(uuid.uuid4()), "flow_run_id": run.id, "name": "t-0", "task_key": "t",
                "state": "RUNNING"}  # fmt: skip
    assert api.upsert_task_runs([task_run]).upserted == 1
    background = api.create_background_task_run(
        s.BackgroundTaskRunCreate(task_key="fuzz", name="fuzz-0")
    )
    return {
        r"^/api/background_task_runs/\{run_id\}": {"run_id": background.id},
        r"^/api/deployments/\{ref\}/schedules/": {"ref": deployment.id, "schedule_id": schedule.id},
        r"^/api/deployments/\{ref\}": {"ref": deployment.id},
        r"^/api/flow_runs/\{ref\}": {"ref": run.id},
        r"^/api/task_runs/\{task_run_id\}": {"task_run_id": task_run["id"]},
        r"^/api/work_pools/\{pool_name\}": {"pool_name": "fuzz"},
    }


def write_config(folder: Path, key: str, seeded: dict[str, dict[str, str]], examples: int) -> Path:
    operations = "".join(
        OPERATION.format(
            path=path,
            parameters=", ".join(f'"path.{name}" = "{value}"' for name, value in values.items()),
        )
        for path, values in seeded.items()
    )
    config = folder / "schemathesis.toml"
    config.write_text(CONFIG.format(key=key, examples=examples, operations=operations))
    return config


@pytest.mark.timeout(660)
def test_the_api_answers_every_generated_request_as_its_spec_says(
    server: ServerProcess, admin_key: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """No 5xx, no response outside the spec, no invalid request accepted, over every route."""
    with FlowyardClient(server.url, admin_key) as api:
        seeded = seed_resources(api)
    store = request.node.callspec.params["server"]
    config = write_config(tmp_path, admin_key, seeded, MAX_EXAMPLES[store])
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--no-color",
        "--config-file",
        str(config),
        "run",
        f"{server.url}/openapi.json",
        "--phases",
        "examples,coverage,fuzzing",
    ]
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks", "PYTHONPATH": path}
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    output = done.stdout + done.stderr
    (tmp_path / "schemathesis.txt").write_text(output)
    operations = re.search(r"Tested: (\d+)", output)
    cases = re.search(r"(\d+) generated", output)
    print(f"fuzzed {operations and operations[1]} operations with {cases and cases[1]} cases")
    assert done.returncode == 0, _failures(output)
    assert operations and int(operations[1]) >= 60, output[-5_000:]


def _failures(output: str) -> str:
    """The report from its failures on, each line cut short (bodies may be megabytes)."""
    start = min(
        (i for i in (output.find("ERRORS ==="), output.find("FAILURES ===")) if i >= 0), default=0
    )
    return "\n".join(line[:300] for line in output[start:].splitlines())[:30_000]
