"""Throttled invocations: retried with backoff, then the run Crashed with the reason.

moto cannot throttle (it ignores reserved concurrency on invoke and has no fault API for
Lambda), so this is a recorded contract test: a real HTTP server on loopback answers the
Lambda ``Invoke`` route with the shape AWS documents and sends for a throttle — status
429, ``x-amzn-ErrorType: TooManyRequestsException`` and the JSON body below — and the real
worker process, through real botocore, must read it as a throttle.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess, WorkerProcess
from flowyard.client import FlowyardClient
from flowyard.workers.aws_lambda import LambdaWorker
from tests.e2e.conftest import FAST
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(180)

THROTTLE_BODY = {
    "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
    "Type": "User",
    "message": "Rate Exceeded.",
}


class FakeLambda(ThreadingHTTPServer):
    """Answers ``throttles`` invokes with Lambda's throttle, then accepts Event invokes."""

    def __init__(self, throttles: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.throttles = throttles
        self.invokes: list[str] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeLambda

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.lock:
            self.server.invokes.append(self.path)
            throttled = len(self.server.invokes) <= self.server.throttles
        request_id = str(uuid.uuid4())
        if throttled:
            body = json.dumps(THROTTLE_BODY).encode()
            self.send_response(429)
            self.send_header("x-amzn-ErrorType", "TooManyRequestsException")
        else:
            body = b""
            self.send_response(202)
        self.send_header("x-amzn-RequestId", request_id)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return


@pytest.fixture
def fake_lambda(request: pytest.FixtureRequest) -> Iterator[FakeLambda]:
    server = FakeLambda(throttles=request.param)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _pool(api: FlowyardClient, endpoint: str) -> str:
    name = f"lambda-{uuid.uuid4().hex[:8]}"
    credentials = {
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "region_name": "us-east-1",
        "endpoint_url": endpoint,
    }
    api.save_block("aws-credentials", name, credentials)
    template = LambdaWorker.default_base_job_template()
    reference = f"{{{{ block.aws-credentials/{name} }}}}"
    template["variables"]["properties"]["aws_credentials"]["default"] = reference
    api.create_work_pool(s.WorkPoolCreate(name=name, type="lambda", base_job_template=template))
    return name


def _run(api: FlowyardClient, pool: str, **job_variables: object) -> str:
    dep = api.create_deployment(
        s.DeploymentCreate(
            name="throttled",
            flow_name=f"throttled-{pool}",
            entrypoint="flows.py:hello",
            pool_name=pool,
            job_variables=job_variables,
        )
    )
    return api.run_deployment(dep.id, s.DeploymentRunRequest()).id


def _final(api: FlowyardClient, run_id: str) -> s.FlowRun:
    return wait_until(
        lambda: (run := api.read_flow_run(run_id)).state.type.is_terminal and run,
        timeout=90,
        interval=0.1,
        message=f"run {run_id} did not end",
    )


@pytest.mark.parametrize("fake_lambda", [100], indirect=True)
def test_a_throttle_is_retried_then_the_run_is_crashed(
    api: FlowyardClient, server: ServerProcess, fake_lambda: FakeLambda, tmp_path: Path
):
    """Lambda's TooManyRequestsException is retried with backoff, then the run is Crashed."""
    pool = _pool(api, fake_lambda.url)
    run_id = _run(api, pool, function_name="busy", throttle_retries=2)
    worker = WorkerProcess(server.url, pool, tmp_path, "--type", "lambda", env=FAST)
    try:
        done = _final(api, run_id)
    finally:
        worker.stop(timeout=30)
    assert done.state.type.value == "CRASHED"
    message = done.state.message or ""
    assert "throttled the invocation of 'busy' 3 times" in message, message
    assert "TooManyRequestsException: Rate Exceeded." in message
    assert len(fake_lambda.invokes) == 3
    assert all(path.endswith("/functions/busy/invocations") for path in fake_lambda.invokes)


@pytest.mark.parametrize("fake_lambda", [2], indirect=True)
def test_an_invoke_accepted_after_throttles_but_never_started_is_crashed(
    api: FlowyardClient, server: ServerProcess, fake_lambda: FakeLambda, tmp_path: Path
):
    """Two throttles, then Lambda accepts the event; a function that never starts the run
    is Crashed once the start timeout has passed."""
    pool = _pool(api, fake_lambda.url)
    run_id = _run(api, pool, function_name="queued", start_timeout_seconds=3)
    worker = WorkerProcess(server.url, pool, tmp_path, "--type", "lambda", env=FAST)
    try:
        done = _final(api, run_id)
    finally:
        worker.stop(timeout=30)
    assert len(fake_lambda.invokes) == 3
    assert done.state.type.value == "CRASHED"
    assert "did not start the flow run within 3 s" in (done.state.message or "")
    assert done.infrastructure_id, "the accepted invoke's request id is recorded"
