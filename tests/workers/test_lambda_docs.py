"""docs/lambda-worker.md followed step by step with the ``flowyard`` command, against moto.

Package the flows, create the function, save the credentials block, create the pool from
the default template, ``flowyard deploy`` from the flows' folder (no ``--path``: a lambda
pool records none, so the function runs its packaged code), start the worker, run. The
flow's ``print()`` reaches the run's logs, and ``flowyard flow-run inspect`` shows the
function's CloudWatch log stream. A timeout past Lambda's 15 minutes is refused (422).
"""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path

import pytest

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess, WorkerProcess
from flowyard.client import FlowyardClient
from flowyard.errors import ApiError
from tests.e2e.conftest import FAST
from tests.helpers.cli import flowyard
from tests.moto_lambda import REGION, MotoLambda, moto_lambda  # noqa: F401 - fixture
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(300)

FLOWS = textwrap.dedent(
    """
    import sys

    from flowyard import flow, get_run_logger


    @flow(name="docs-hello")
    def hello(n: int = 1) -> int:
        get_run_logger().info("logged by the flow")
        print("printed in the function", n)
        print("a warning on stderr", file=sys.stderr)
        return n * 2
    """
)


def ok(api_url: str, *args: str, cwd: Path | None = None) -> str:
    done = flowyard(api_url, *args, cwd=cwd)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


@pytest.fixture(scope="module")
def docs_pool(
    server: ServerProcess,
    moto_lambda: MotoLambda,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[str, Path]:
    """Steps 1-4 of the docs' set-up: the pool's name and the flows' folder."""
    work = tmp_path_factory.mktemp("lambda-docs")
    flows = work / "flows"
    flows.mkdir()
    (flows / "flows.py").write_text(FLOWS)
    # 1. the function's code (Flowyard is in the emulation's runtime image: --code-only)
    ok(server.url, "lambda", "package", str(flows), "-o", str(work / "function.zip"), "--code-only")
    # 2. the function, as the console or Terraform would create it
    function = f"flowyard-docs-{uuid.uuid4().hex[:6]}"
    moto_lambda.create_function(function, (work / "function.zip").read_bytes())
    # 3. the worker's credentials (moto's endpoint and test keys beside the region)
    block = f"aws-credentials/docs-{uuid.uuid4().hex[:6]}"
    fields = {**moto_lambda.credentials(), "region_name": REGION}
    ok(server.url, "block", "create", block, *(f"--field={k}={v}" for k, v in fields.items()))
    # 4. the pool, from the default template pointed at the function
    template = json.loads(
        ok(server.url, "work-pool", "get-default-base-job-template", "--type", "lambda")
    )
    properties = template["variables"]["properties"]
    properties["function_name"]["default"] = function
    properties["aws_credentials"]["default"] = f"{{{{ block.{block} }}}}"
    (work / "lambda.json").write_text(json.dumps(template))
    pool = f"lambda-docs-{uuid.uuid4().hex[:6]}"
    ok(
        server.url, "work-pool", "create", pool, "--type", "lambda",
        "--base-job-template", str(work / "lambda.json"),
    )  # fmt: skip
    return pool, flows


def test_the_docs_steps_run_a_flow_whose_prints_and_log_stream_reach_the_run(
    server: ServerProcess, api: FlowyardClient, docs_pool: tuple[str, Path], tmp_path: Path
):
    """Step 5 as written: deploy from the flows' folder, start the worker, run."""
    pool, flows = docs_pool
    ok(server.url, "deploy", "flows.py:hello", "--name", "hello", "--pool", pool, cwd=flows)
    deployment = api.read_deployment("docs-hello/hello")
    assert deployment.path is None, "a lambda pool runs the function's code, not this folder"
    worker = WorkerProcess(server.url, pool, tmp_path, "--type", "lambda", env=FAST)
    try:
        out = ok(server.url, "deployment", "run", "docs-hello/hello", "--param", "n=21", "--json")
        run_id = json.loads(out)["id"]
        done = wait_until(
            lambda: (run := api.read_flow_run(run_id)).state.type.is_terminal and run,
            timeout=120,
            interval=0.1,
            message="the run did not end",
        )
        lines = wait_until(
            lambda: (
                (got := [e.message for e in api.read_logs(run_id)])
                and "a warning on stderr" in got
                and got
            ),
            message="the flow's prints never reached the run's logs",
        )
    finally:
        worker.stop(timeout=30)
    assert done.state.type.value == "COMPLETED", (done.state.message, lines, worker.tail())
    assert lines.count("printed in the function 21") == 1, lines
    assert lines.count("logged by the flow") == 1, "a logged line is not also caught as printed"
    stream = done.infrastructure_details.get("log_stream", "")
    assert "[$LATEST]" in stream, done.infrastructure_details
    assert done.infrastructure_details["log_group"].startswith("/aws/lambda/flowyard-docs-")
    shown = ok(server.url, "flow-run", "inspect", run_id)
    assert f"infrastructure log_stream  {stream}" in shown, shown


def test_a_timeout_past_lambdas_15_minutes_is_refused_naming_the_field(
    server: ServerProcess, api: FlowyardClient, docs_pool: tuple[str, Path]
):
    """At deploy and at run time: 422 naming timeout_seconds, and nothing is created."""
    pool, flows = docs_pool
    refused = flowyard(
        server.url, "deploy", "flows.py:hello", "--name", "too-long", "--pool", pool,
        "--job-variable", "timeout_seconds=1000", cwd=flows,
    )  # fmt: skip
    assert refused.returncode != 0
    assert "timeout_seconds" in refused.stderr and "900" in refused.stderr, refused.stderr
    assert not [d for d in api.list_deployments() if d.name == "too-long"]
    ok(server.url, "deploy", "flows.py:hello", "--name", "bounded", "--pool", pool, cwd=flows)
    deployment = api.read_deployment("docs-hello/bounded")
    request = s.DeploymentRunRequest(job_variables={"timeout_seconds": 901})
    with pytest.raises(ApiError) as refused:
        api.run_deployment(deployment.id, request)
    assert refused.value.status_code == 422
    assert "'timeout_seconds': 901 is greater than the maximum of 900" in str(refused.value)
    assert not api.list_flow_runs(deployment_id=deployment.id)


def test_deploy_records_the_folder_unless_path_is_given_or_the_pool_runs_packaged_code(
    server: ServerProcess, api: FlowyardClient, tmp_path: Path
):
    """A process pool's deployment runs from the folder deployed from; ``--path`` records
    the folder as the infrastructure sees it; a lambda pool's records none."""
    (tmp_path / "flows.py").write_text(FLOWS)
    for kind in ("process", "lambda"):
        api.create_work_pool(s.WorkPoolCreate(name=f"path-{kind}", type=kind))
    deploy = ("deploy", "flows.py:hello", "--pool")
    ok(server.url, *deploy, "path-process", "--name", "here", cwd=tmp_path)
    ok(server.url, *deploy, "path-process", "--name", "there", "--path", "/srv/flows", cwd=tmp_path)
    ok(server.url, *deploy, "path-lambda", "--name", "packaged", cwd=tmp_path)
    project = "deployments:\n"
    for name, pool in (("file-here", "path-process"), ("file-packaged", "path-lambda")):
        project += (
            f"  - {{name: {name}, entrypoint: flows.py:hello, work_pool: {{name: {pool}}}}}\n"
        )
    (tmp_path / "flowyard.yaml").write_text(project)
    ok(server.url, "deploy", "--all", cwd=tmp_path)
    names = ("here", "there", "packaged", "file-here", "file-packaged")
    paths = {name: api.read_deployment(f"docs-hello/{name}").path for name in names}
    assert paths == {
        "here": str(tmp_path.resolve()),
        "there": "/srv/flows",
        "packaged": None,
        "file-here": str(tmp_path.resolve()),
        "file-packaged": None,
    }
