"""``flowyard demo``: the quick-start, end to end, on the embedded defaults."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import click

from flowyard import examples
from flowyard import schemas as s
from flowyard.cli.common import start_logging
from flowyard.cli.processes import ServerProcess, WorkerProcess
from flowyard.cli.watch import FinalState, watch_run
from flowyard.sdk.parameters import parameter_schema
from flowyard.sdk.sources import load_flow
from flowyard.states import StateType
from flowyard.workers.process import ProcessWorker

POOL = "demo-pool"
PACKAGED_ENTRYPOINT = "etl.py:etl_flow"


def demo_flow(entrypoint: str | None) -> tuple[str, Path]:
    """The entrypoint and the folder it is relative to: the user's, or the packaged example."""
    if entrypoint is not None:
        return entrypoint, Path.cwd()
    return PACKAGED_ENTRYPOINT, Path(examples.__file__).resolve().parent


@click.command("demo")
@click.option(
    "--entrypoint",
    help="Flow to deploy, FILE:FUNCTION relative to the current directory "
    "(default: the ETL flow shipped with Flowyard).",
)
@click.option("--keep", is_flag=True, help="Keep the demo's data folder.")
def demo(entrypoint: str | None, keep: bool) -> None:
    """Start a server and a process worker, deploy and run the quick-start flow, then stop."""
    start_logging()
    entrypoint, folder = demo_flow(entrypoint)
    flow = load_flow(entrypoint, folder)
    home = Path(tempfile.mkdtemp(prefix="flowyard-demo-"))
    click.echo(f"Starting a Flowyard server (SQLite + managed Redis) in {home} …")
    server = ServerProcess(home)
    worker: WorkerProcess | None = None
    final = FinalState(type=StateType.CRASHED, message="the demo did not finish")
    try:
        server.wait_ready()
        with server.client() as api:
            template = ProcessWorker.default_base_job_template()
            api.create_work_pool(
                s.WorkPoolCreate(name=POOL, type="process", base_job_template=template)
            )
            worker = WorkerProcess(server.url, POOL, home, "--limit", "4")
            deployment = api.create_deployment(
                s.DeploymentCreate(
                    name="demo",
                    flow_name=flow.name,
                    entrypoint=entrypoint,
                    path=str(folder),
                    pool_name=POOL,
                    parameter_schema=parameter_schema(flow.fn),
                )
            )
            click.echo(f"Deployed {deployment.flow_name}/{deployment.name}; running it …")
            run = api.run_deployment(deployment.id, s.DeploymentRunRequest())
            click.echo(f"Watch it in the web UI: {server.url}/ui/runs/{run.id}")
            final = watch_run(api, run.id)
        click.echo(f"Final state: {final.type.display_name}")
    finally:
        if worker is not None:
            worker.stop()
        server.stop()
        if keep:
            click.echo(f"Data kept in {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
    if not final.is_completed:
        raise SystemExit(1)
