"""AWS Lambda for the tests: moto's server on loopback, running functions on our dockerd.

moto runs an invoked function as a container of ``MOTO_DOCKER_LAMBDA_IMAGE:<runtime>``
with ``[handler, event_json]`` as its command and the function's zip in ``/var/task``
(copied there through a ``busybox`` container), then answers with the container's last
stdout line. No registry is reachable, so both images are made locally: the runtime
image is the Flowyard test image (``flowyard-test:latest``, Flowyard installed) plus a
small bootstrap, and ``busybox:latest`` is a tag of the local Debian image. Containers
use the host's network, so the handler reaches the API on loopback.

    with MotoLambda(engine, folder) as moto:   # or the ``moto_lambda`` fixture
        moto.create_function("flows", zip_bytes)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowyard.cli.processes import free_port
from tests.docker_engine import BASE_IMAGE, TEST_IMAGE, DockerEngine
from tests.waiting import wait_until

RUNTIME_REPOSITORY = "flowyard-test/lambda-python"
RUNTIME = "python3.11"
HANDLER = "flowyard.workers.aws_lambda.handler.handler"
REGION = "us-east-1"
ROLE = "flowyard-lambda"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

BOOTSTRAP = '''\
"""Runs ``handler`` with ``event_json`` as Lambda would; prints the JSON result last.

The handler runs in a child process, so that one that exits (``os._exit``, a crash) ends
with Lambda's ``Runtime.ExitError`` rather than no answer at all.
"""
import importlib, json, os, sys, time, traceback, uuid

sys.path.insert(0, "/var/task")
os.chdir("/var/task")
handler_name, event = sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
module_name, function_name = handler_name.rsplit(".", 1)


class Context:
    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
    aws_request_id = str(uuid.uuid4())
    log_group_name = "/aws/lambda/" + function_name
    log_stream_name = time.strftime("%Y/%m/%d/") + "[$LATEST]" + uuid.uuid4().hex

    def get_remaining_time_in_millis(self):
        return int(float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "900")) * 1000)


def invoke(write_end):
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
        answer, code = json.dumps(handler(event, Context())), 0
    except Exception as exc:
        traceback.print_exc()
        answer, code = json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__}), 1
    sys.stdout.flush()
    os.write(write_end, answer.encode())
    os._exit(code)


read_end, write_end = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(read_end)
    invoke(write_end)
os.close(write_end)
with os.fdopen(read_end, "rb") as pipe:
    answer = pipe.read().decode()
code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
if not answer:
    message = f"Runtime exited with error: exit status {code}"
    answer, code = json.dumps({"errorMessage": message, "errorType": "Runtime.ExitError"}), 1
print(answer, flush=True)
sys.exit(1 if code else 0)
'''

DOCKERFILE = f"""\
FROM {TEST_IMAGE}
USER root
RUN mv /opt/flowyard /var/lang
COPY bootstrap.py /bootstrap.py
WORKDIR /var/task
ENV LAMBDA_TASK_ROOT=/var/task PYTHONUNBUFFERED=1 PATH=/var/lang/bin:$PATH
ENTRYPOINT ["/var/lang/bin/python", "/bootstrap.py"]
"""
"""Python and Flowyard move to ``/var/lang``, as in Lambda's runtime: moto mounts a layers
volume over ``/opt``, and concurrent invokes would race to copy the image's ``/opt`` in."""


def build_runtime_image(engine: DockerEngine) -> str:
    """The runtime image moto runs functions in, and ``busybox:latest`` (a local tag)."""
    with tempfile.TemporaryDirectory() as context, contextlib.closing(engine.client()) as docker:
        Path(context, "bootstrap.py").write_text(BOOTSTRAP)
        Path(context, "Dockerfile").write_text(DOCKERFILE)
        image, _ = docker.images.build(path=context, tag=f"{RUNTIME_REPOSITORY}:{RUNTIME}", rm=True)
        docker.images.get(BASE_IMAGE).tag("busybox", "latest")
    return f"{RUNTIME_REPOSITORY}:{RUNTIME}"


def code_zip(folder: Path) -> bytes:
    """The flows of ``folder`` as a function's deployment zip (Flowyard is in the image)."""
    from flowyard.workers.aws_lambda.package import write_zip

    with tempfile.TemporaryDirectory() as work:
        output = Path(work) / "function.zip"
        write_zip(folder, output)
        return output.read_bytes()


class MotoLambda:
    """``moto_server`` on a free loopback port, its Lambda functions run by ``engine``."""

    def __init__(self, engine: DockerEngine, folder: Path) -> None:
        self.engine = engine
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> MotoLambda:
        build_runtime_image(self.engine)
        env = {
            **os.environ,
            "DOCKER_HOST": self.engine.url,
            "MOTO_DOCKER_LAMBDA_IMAGE": RUNTIME_REPOSITORY,
            "MOTO_DOCKER_NETWORK_MODE": "host",
            "MOTO_PORT": str(self.port),
        }
        log = open(self.folder / "moto.log", "ab")  # noqa: SIM115 - owned by the child
        self._process = subprocess.Popen(
            [moto_server_command(), "-H", "127.0.0.1", "-p", str(self.port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_until(self._answers, timeout=timeout, interval=0.05, message="moto did not start")
        return self

    def _answers(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            raise RuntimeError(f"moto_server exited:\n{self.log_tail()}")
        try:
            return httpx.get(f"{self.url}/moto-api/", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __enter__(self) -> MotoLambda:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            text = (self.folder / "moto.log").read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return ""

    def credentials(self) -> dict[str, str]:
        """The data of an ``aws-credentials`` block pointing at this emulation."""
        return {**CREDENTIALS, "region_name": REGION, "endpoint_url": self.url}

    def client(self, service: str = "lambda") -> Any:
        import boto3

        return boto3.client(service, **self.credentials())

    def role(self) -> str:
        """An IAM role Lambda may assume (moto checks that the role exists)."""
        iam = self.client("iam")
        statement = {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
        trust = json.dumps({"Statement": [statement]})
        try:
            return str(iam.get_role(RoleName=ROLE)["Role"]["Arn"])
        except iam.exceptions.NoSuchEntityException:
            return str(
                iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
            )

    def create_function(
        self, name: str, code: bytes, *, handler: str = HANDLER, **options: Any
    ) -> str:
        """Create (or replace) a function running ``handler``; returns its ARN."""
        client = self.client()
        with contextlib.suppress(client.exceptions.ResourceNotFoundException):
            client.delete_function(FunctionName=name)
        created = client.create_function(
            FunctionName=name,
            Runtime=RUNTIME,
            Role=self.role(),
            Handler=handler,
            Code={"ZipFile": code},
            Timeout=options.pop("Timeout", 900),
            MemorySize=options.pop("MemorySize", 512),
            **options,
        )
        return str(created["FunctionArn"])


def moto_server_command() -> str:
    """``moto_server`` of this Python (PATH may hold a shim of another one)."""
    beside = Path(sys.executable).with_name("moto_server")
    return str(beside) if beside.exists() else (shutil.which("moto_server") or "moto_server")


@pytest.fixture(scope="module")
def moto_lambda(
    docker_engine: DockerEngine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MotoLambda]:
    """moto's server with Lambda functions that really run, for this test module."""
    with MotoLambda(docker_engine, tmp_path_factory.mktemp("moto")) as moto:
        yield moto
