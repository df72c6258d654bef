"""The Lambda worker against moto's Lambda, whose functions really run on the local dockerd.

A real API server, a real ``flowyard worker start --type lambda`` process, moto's server on
loopback invoking ``flowyard.workers.aws_lambda.handler.handler`` in a container: the flow
runs inside the emulated function and reports to the API with its run-scoped token.
"""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess, WorkerProcess
from flowyard.client import FlowyardClient
from flowyard.workers.aws_lambda import LambdaWorker
from tests.e2e.conftest import FAST
from tests.moto_lambda import MotoLambda, code_zip, moto_lambda  # noqa: F401 - fixture
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(300)

LAMBDA_FLOWS = textwrap.dedent(
    """
    import os
    import time

    from flowyard import flow, get_run_logger, task


    @task
    def double(n: int) -> int:
        return n * 2


    @flow(name="lambda-hello")
    def hello(n: int = 1) -> int:
        get_run_logger().info("hello from lambda %s", os.environ["AWS_LAMBDA_FUNCTION_NAME"])
        get_run_logger().info("GREETING=%s", os.environ.get("GREETING"))
        get_run_logger().info("KEY_IN_ENV=%s", "FLOWYARD_API_KEY" in os.environ)
        return double(n)


    @flow(name="lambda-fails")
    def fails() -> None:
        raise ValueError("the data is wrong")


    @flow(name="lambda-sleeps")
    def sleeps(seconds: float = 120) -> None:
        get_run_logger().info("sleeping")
        time.sleep(seconds)


    @flow(name="lambda-dies")
    def dies() -> None:
        get_run_logger().info("about to be cut off")
        os._exit(3)  # as when Lambda ends the function at its time limit
    """
)

Deploy = Callable[..., s.Deployment]
StartWorker = Callable[..., WorkerProcess]


@pytest.fixture(scope="module")
def lambda_flows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("lambda-flows")
    (folder / "flows.py").write_text(LAMBDA_FLOWS)
    return folder


@pytest.fixture(scope="module")
def function_name(moto_lambda: MotoLambda, lambda_flows: Path) -> str:  # noqa: F811
    """A function running the Flowyard handler with the test flows as its code."""
    name = f"flowyard-{uuid.uuid4().hex[:6]}"
    moto_lambda.create_function(name, code_zip(lambda_flows))
    return name


@pytest.fixture
def lambda_pool(api: FlowyardClient, moto_lambda: MotoLambda) -> str:  # noqa: F811
    """A fresh lambda pool whose template points at moto through an aws-credentials block."""
    name = f"lambda-{uuid.uuid4().hex[:8]}"
    api.save_block("aws-credentials", name, moto_lambda.credentials())
    template = LambdaWorker.default_base_job_template()
    template["variables"]["properties"]["aws_credentials"]["default"] = (
        f"{{{{ block.aws-credentials/{name} }}}}"
    )
    api.create_work_pool(s.WorkPoolCreate(name=name, type="lambda", base_job_template=template))
    return name


@pytest.fixture
def deploy_lambda(
    api: FlowyardClient, lambda_pool: str, lambda_flows: Path, function_name: str
) -> Deploy:
    """Deploy a test flow to the lambda pool; it runs from the function's code (no path)."""
    from flowyard.sdk.parameters import parameter_schema
    from flowyard.sdk.sources import load_flow

    def make(function: str, **job_variables: object) -> s.Deployment:
        flow = load_flow(f"flows.py:{function}", lambda_flows)
        body = s.DeploymentCreate(
            name=f"{function}-{uuid.uuid4().hex[:6]}",
            flow_name=flow.name,
            entrypoint=f"flows.py:{function}",
            pool_name=lambda_pool,
            parameter_schema=parameter_schema(flow.fn),
            job_variables={"function_name": function_name, **job_variables},
        )
        return api.create_deployment(body)

    return make


@pytest.fixture
def start_lambda_worker(
    server: ServerProcess, lambda_pool: str, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(*args: str) -> WorkerProcess:
        worker = WorkerProcess(
            server.url, lambda_pool, tmp_path, "--type", "lambda", *args, env=FAST
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop(timeout=30)


def final_state(api: FlowyardClient, run_id: str, timeout: float = 120) -> s.FlowRun:
    return wait_until(
        lambda: (run := api.read_flow_run(run_id)).state.type.is_terminal and run,
        timeout=timeout,
        interval=0.1,
        message=f"run {run_id} did not end",
    )


def log_lines(api: FlowyardClient, run_id: str) -> list[str]:
    return [entry.message for entry in api.read_logs(run_id)]


class TestLambdaRuns:
    @pytest.mark.parametrize("invocation_type", ["Event", "RequestResponse"])
    def test_flow_runs_inside_the_function_and_completes_with_its_logs(
        self,
        api: FlowyardClient,
        deploy_lambda: Deploy,
        start_lambda_worker: StartWorker,
        invocation_type: str,
    ):
        """A run on a lambda pool completes inside the function; its logs and task reach the API."""
        dep = deploy_lambda("hello", invocation_type=invocation_type, env={"GREETING": "hi"})
        worker = start_lambda_worker()
        run = api.run_deployment(dep.id, s.DeploymentRunRequest(parameters={"n": 21}))
        done = final_state(api, run.id)
        lines = log_lines(api, run.id)
        assert done.state.type.value == "COMPLETED", (done.state.message, lines, worker.tail())
        assert any(line.startswith("hello from lambda flowyard-") for line in lines), lines
        assert "GREETING=hi" in lines
        assert [t.state_type.value for t in api.list_task_runs(run.id)] == ["COMPLETED"]
        assert done.infrastructure_id, "the request id is recorded as the infrastructure id"

    def test_a_failing_flow_ends_failed_with_its_message(
        self,
        api: FlowyardClient,
        deploy_lambda: Deploy,
        start_lambda_worker: StartWorker,
    ):
        """A flow that raises inside the function is Failed, its traceback in the logs."""
        dep = deploy_lambda("fails")
        start_lambda_worker()
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        done = final_state(api, run.id)
        assert done.state.type.value == "FAILED"
        assert "the data is wrong" in (done.state.message or "")
        assert any("ValueError: the data is wrong" in line for line in log_lines(api, run.id))

    def test_a_function_error_ends_the_run_crashed_with_lambdas_reason(
        self,
        api: FlowyardClient,
        moto_lambda: MotoLambda,  # noqa: F811
        lambda_flows: Path,
        deploy_lambda: Deploy,
        start_lambda_worker: StartWorker,
    ):
        """A handler that cannot even start (a function error) ends the run Crashed, with why."""
        broken = f"broken-{uuid.uuid4().hex[:6]}"
        moto_lambda.create_function(broken, code_zip(lambda_flows), handler="flows.no_such_handler")
        dep = deploy_lambda("hello", function_name=broken, invocation_type="RequestResponse")
        start_lambda_worker()
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        done = final_state(api, run.id)
        assert done.state.type.value == "CRASHED"
        assert "the Lambda function failed" in (done.state.message or "")
        assert "no_such_handler" in (done.state.message or "")

    def test_a_function_cut_off_mid_run_is_crashed_once_its_heartbeat_stops(
        self,
        api: FlowyardClient,
        deploy_lambda: Deploy,
        start_lambda_worker: StartWorker,
    ):
        """A function cut off mid-run (the time limit): the reconciler Crashes its run."""
        dep = deploy_lambda("dies")
        start_lambda_worker()
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        done = final_state(api, run.id)
        assert done.state.type.value == "CRASHED"
        history = [st.type.value for st in api.read_flow_run_history(run.id).states]
        assert "RUNNING" in history, history
        assert "heartbeat" in (done.state.message or ""), done.state.message

    def test_a_cancelled_run_is_stopped_by_its_own_engine(
        self,
        api: FlowyardClient,
        deploy_lambda: Deploy,
        start_lambda_worker: StartWorker,
    ):
        """The worker cannot stop an invocation: the engine sees Cancelling, waits for a worker
        that cannot answer, and stops itself."""
        dep = deploy_lambda("sleeps")
        start_lambda_worker()
        run = api.run_deployment(dep.id, s.DeploymentRunRequest())
        wait_until(
            lambda: "sleeping" in log_lines(api, run.id),
            timeout=120,
            interval=0.1,
            message="the flow never started sleeping in the function",
        )
        api.cancel_flow_run(run.id)
        done = final_state(api, run.id, timeout=60)
        assert done.state.type.value == "CANCELLED"
        assert "the engine stopped itself" in (done.state.message or ""), done.state.message


ADMIN = "admin-secret-for-lambda-tests-0123456789"


@pytest.fixture(scope="module")
def locked_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server that requires API keys, so the function can only use its run token."""
    server = ServerProcess(
        tmp_path_factory.mktemp("locked"), env={**FAST, "FLOWYARD_API_KEY": ADMIN}
    )
    try:
        wait_until(lambda: _health(server), timeout=60, interval=0.05, message="no server")
        yield server
    finally:
        server.stop()


def _health(server: ServerProcess) -> bool:
    try:
        with FlowyardClient(server.url, ADMIN, retry_seconds=0) as admin:
            return admin.health()["status"] == "ok"
    except Exception:
        return False


def test_with_api_keys_the_function_reports_with_its_run_token_only(
    locked_server: ServerProcess,
    moto_lambda: MotoLambda,  # noqa: F811
    function_name: str,
    lambda_flows: Path,
    tmp_path: Path,
):
    """With API keys on, a worker key launches and the function needs only its run token."""
    with FlowyardClient(locked_server.url, ADMIN) as admin:
        admin.save_block("aws-credentials", "moto", moto_lambda.credentials())
        template = LambdaWorker.default_base_job_template()
        properties = template["variables"]["properties"]
        properties["aws_credentials"]["default"] = "{{ block.aws-credentials/moto }}"
        properties["function_name"]["default"] = function_name
        admin.create_work_pool(
            s.WorkPoolCreate(name="locked", type="lambda", base_job_template=template)
        )
        worker_key = admin.create_api_key(s.ApiKeyCreate(name="lambda", pools=["locked"])).key
        from flowyard.sdk.parameters import parameter_schema
        from flowyard.sdk.sources import load_flow

        flow = load_flow("flows.py:hello", lambda_flows)
        dep = admin.create_deployment(
            s.DeploymentCreate(
                name="hello",
                flow_name=flow.name,
                entrypoint="flows.py:hello",
                pool_name="locked",
                parameter_schema=parameter_schema(flow.fn),
            )
        )
        run = admin.run_deployment(dep.id, s.DeploymentRunRequest(parameters={"n": 2}))
        env = {**FAST, "FLOWYARD_API_KEY": worker_key}
        worker = WorkerProcess(locked_server.url, "locked", tmp_path, "--type", "lambda", env=env)
        try:
            done = final_state(admin, run.id)
        finally:
            worker.stop(timeout=30)
        lines = log_lines(admin, run.id)
        assert done.state.type.value == "COMPLETED", (done.state.message, lines, worker.tail())
        assert any(line.startswith("hello from lambda") for line in lines), lines
        assert [t.state_type.value for t in admin.list_task_runs(run.id)] == ["COMPLETED"]
        assert "KEY_IN_ENV=False" in lines, "the function must not get the worker's key"
        assert not any(worker_key in line for line in lines)
        worker_output = worker.output.read_text(errors="replace")
        assert "run_launched" in worker_output
        assert "fyrt_" not in worker_output and worker_key not in worker_output, "no secrets logged"
