"""The ``flowyard`` command: thin click commands over the client."""

from __future__ import annotations

import click

from flowyard.cli.api_keys import api_key
from flowyard.cli.artifacts import artifact
from flowyard.cli.automations import automation
from flowyard.cli.blocks import block
from flowyard.cli.common import FlowyardGroup
from flowyard.cli.concurrency_limits import concurrency_limit
from flowyard.cli.demo import demo
from flowyard.cli.deployments import deploy, deployment, init
from flowyard.cli.events import events
from flowyard.cli.flow_runs import flow_run
from flowyard.cli.lambda_ import lambda_
from flowyard.cli.pools import work_pool, work_queue
from flowyard.cli.server import server
from flowyard.cli.tasks import task
from flowyard.cli.webhooks import webhook
from flowyard.cli.workers import worker
from flowyard.log_config import configure_logging
from flowyard.settings import Settings


@click.group(cls=FlowyardGroup)
@click.option(
    "--api-url", envvar="FLOWYARD_API_URL", help="The Flowyard API (default http://127.0.0.1:4200)."
)
@click.option("--log-level", envvar="FLOWYARD_LOG_LEVEL", default="INFO", show_default=True)
@click.version_option(package_name="flowyard")
@click.pass_context
def cli(ctx: click.Context, api_url: str | None, log_level: str) -> None:
    """Flowyard: Python workflows on work pools and workers."""
    overrides = {"log_level": log_level, **({"api_url": api_url} if api_url else {})}
    settings = Settings().model_copy(update=overrides)
    configure_logging(settings.log_level)
    ctx.obj = {"settings": settings}


for command in (
    server,
    work_pool,
    work_queue,
    deploy,
    deployment,
    init,
    flow_run,
    worker,
    block,
    api_key,
    concurrency_limit,
    demo,
    lambda_,
    task,
    events,
    artifact,
    automation,
    webhook,
):
    cli.add_command(command)
