"""End-to-end fixtures: a real API server and real worker processes on loopback."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess, WorkerProcess
from flowyard.client import FlowyardClient
from flowyard.workers.process import ProcessWorker
from tests.servers import keyed_server, running_server

# Short leases and fast heartbeats, so that fault tests end quickly.
FAST = {
    "FLOWYARD_CLAIM_LEASE_SECONDS": "4",
    "FLOWYARD_WORKER_HEARTBEAT_SECONDS": "1",
    "FLOWYARD_RUN_HEARTBEAT_SECONDS": "1",
    "FLOWYARD_RECONCILE_INTERVAL_SECONDS": "0.5",
    "FLOWYARD_DISPATCH_INTERVAL_SECONDS": "0.5",
}

FLOWS = textwrap.dedent(
    """
    import os
    import time
    from pathlib import Path

    from flowyard import flow, task


    @task
    def double(n: int) -> int:
        return n * 2


    @flow(name="noop")
    def noop(n: int = 1) -> int:
        return double(n)


    @flow(name="marker")
    def marker(folder: str) -> None:
        run_id = os.environ["FLOWYARD_FLOW_RUN_ID"]
        with open(Path(folder) / run_id, "a") as fh:
            fh.write("ran\\n")


    @flow(name="credentials")
    def credentials(folder: str) -> None:
        # what a flow's code can see of the credential its engine was given
        seen = os.environ.get("FLOWYARD_API_KEY", "")
        Path(folder, os.environ["FLOWYARD_FLOW_RUN_ID"]).write_text(seen)


    @flow(name="loads-secrets")
    def loads_secrets(folder: str) -> None:
        from flowyard.blocks import Secret

        found = []
        for name in ("declared", "undeclared"):
            try:
                found.append(f"{name}={Secret.load(name).get()}")
            except Exception as exc:
                found.append(f"{name} refused: {exc}")
        Path(folder, os.environ["FLOWYARD_FLOW_RUN_ID"]).write_text(" | ".join(found))


    @flow(name="crash")
    def crash() -> None:
        os._exit(3)


    @flow(name="quits")
    def quits() -> None:
        os._exit(0)  # exit 0 without a final state: not the engine's own exit 0


    @flow(name="sleeper")
    def sleeper(folder: str, seconds: float = 600) -> None:
        # written whole, then renamed: a test that sees the file can read the pid
        pid_file = Path(folder, os.environ["FLOWYARD_FLOW_RUN_ID"] + ".pid")
        pid_file.with_suffix(".tmp").write_text(str(os.getpid()))
        pid_file.with_suffix(".tmp").rename(pid_file)
        time.sleep(seconds)


    @flow(name="fails")
    def fails() -> None:
        raise ValueError("the data is wrong")
    """
)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One API server (SQLite + managed Redis) shared by the end-to-end tests."""
    with running_server(tmp_path_factory.mktemp("server-home"), FAST) as process:
        yield process


@pytest.fixture
def api(server: ServerProcess) -> Iterator[FlowyardClient]:
    with server.client() as client:
        yield client


KEYED_ADMIN = "admin-secret-for-keyed-end-to-end-tests-0123456789"


@pytest.fixture(scope="session")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One API server that requires keys (the admin's: ``KEYED_ADMIN``), shared by the
    end-to-end tests of what each credential may do."""
    with keyed_server(tmp_path_factory.mktemp("keyed-home"), KEYED_ADMIN) as process:
        yield process


@pytest.fixture
def keyed_admin(keyed: ServerProcess) -> Iterator[FlowyardClient]:
    with FlowyardClient(keyed.url, KEYED_ADMIN) as client:
        yield client


@pytest.fixture(scope="session")
def flows_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("flows")
    (folder / "flows.py").write_text(FLOWS)
    return folder


def create_process_pool(api: FlowyardClient, name: str) -> str:
    template = ProcessWorker.default_base_job_template()
    api.create_work_pool(s.WorkPoolCreate(name=name, type="process", base_job_template=template))
    return name


def deploy_flow(
    api: FlowyardClient, pool: str, flows_dir: Path, function: str, **fields: object
) -> s.Deployment:
    """Deploy ``flows.py:<function>`` of the test flows to ``pool``."""
    from flowyard.sdk.parameters import parameter_schema
    from flowyard.sdk.sources import load_flow

    entrypoint = f"flows.py:{function}"
    flow = load_flow(entrypoint, flows_dir)
    body = s.DeploymentCreate(
        name=fields.pop("name", function),
        flow_name=flow.name,
        entrypoint=entrypoint,
        path=str(flows_dir),
        pool_name=pool,
        parameter_schema=parameter_schema(flow.fn),
        **fields,  # type: ignore[arg-type]
    )
    return api.create_deployment(body)


@pytest.fixture
def pool(api: FlowyardClient) -> str:
    """A fresh process pool for this test."""
    return create_process_pool(api, f"pool-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def deploy(api: FlowyardClient, pool: str, flows_dir: Path) -> Callable[..., s.Deployment]:
    """Deploy a flow of the test flows file to this test's pool."""

    def make(function: str, **fields: object) -> s.Deployment:
        return deploy_flow(api, pool, flows_dir, function, **fields)

    return make


@pytest.fixture
def start_worker(
    server: ServerProcess, pool: str, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start ``flowyard worker start --pool <pool> …`` processes, stopped after the test."""
    started: list[WorkerProcess] = []

    def start(*args: str) -> WorkerProcess:
        worker = WorkerProcess(server.url, pool, tmp_path, *args, env=FAST)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop(timeout=30)


def run_states(api: FlowyardClient, run_ids: list[str]) -> dict[str, str]:
    return {run_id: api.read_flow_run(run_id).state.type.value for run_id in run_ids}
