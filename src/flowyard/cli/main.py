"""The ``flowyard`` command: thin click commands over the client.

Each subcommand's module is imported only when it runs (``LazyGroup``); a new command
group is one line in ``COMMANDS``.
"""

from __future__ import annotations

import click

from flowyard.cli.common import CliContext
from flowyard.cli.lazy_group import LazyCommand, LazyGroup

COMMANDS = {
    "api-key": LazyCommand(
        "flowyard.cli.api_keys:api_key",
        "Create, list and revoke API keys (needs the administrator's key).",
    ),
    "artifact": LazyCommand(
        "flowyard.cli.artifacts:artifact",
        "Read and delete the artifacts flow runs and task runs published.",
    ),
    "automation": LazyCommand(
        "flowyard.cli.automations:automation",
        "Automations: a trigger on events (or metrics) and the actions it takes.",
    ),
    "block": LazyCommand(
        "flowyard.cli.blocks:block",
        "Typed configuration documents (Docker hosts, credentials, secrets…).",
    ),
    "concurrency-limit": LazyCommand(
        "flowyard.cli.concurrency_limits:concurrency_limit",
        "Limit how many task runs with a tag run at once, everywhere.",
    ),
    "demo": LazyCommand(
        "flowyard.cli.demo:demo",
        "Start a server and a process worker, deploy and run the quick-start flow, then stop.",
    ),
    "deploy": LazyCommand(
        "flowyard.cli.deployments:deploy",
        "Deploy the flow at ENTRYPOINT (path/to/file.py:function) to a work pool",
    ),
    "deployment": LazyCommand(
        "flowyard.cli.deployments:deployment", "Inspect and run deployments."
    ),
    "events": LazyCommand(
        "flowyard.cli.events:events",
        "List and follow events: state changes, pools paused, what flows emitted.",
    ),
    "flow-run": LazyCommand(
        "flowyard.cli.flow_runs:flow_run",
        "List, inspect, graph, follow and cancel flow runs (by id or a unique id prefix).",
    ),
    "init": LazyCommand(
        "flowyard.cli.deployments:init", "Write a commented starter flowyard.yaml in this folder."
    ),
    "lambda": LazyCommand(
        "flowyard.cli.lambda_:lambda_", "Package flows for the AWS Lambda worker."
    ),
    "server": LazyCommand("flowyard.cli.server:server", "Run the Flowyard API server."),
    "task": LazyCommand(
        "flowyard.cli.tasks:task",
        "Background task runs (Task.delay) and the workers that run them.",
    ),
    "variable": LazyCommand(
        "flowyard.cli.variables:variable", "Named JSON values that flows read (Variable.get)."
    ),
    "webhook": LazyCommand(
        "flowyard.cli.webhooks:webhook",
        "Incoming webhooks: POST /hooks/<slug> turns a request into an event.",
    ),
    "work-pool": LazyCommand(
        "flowyard.cli.pools:work_pool", "Create, inspect and tune work pools."
    ),
    "work-queue": LazyCommand(
        "flowyard.cli.pools:work_queue", "Create, inspect and tune the queues of a work pool."
    ),
    "worker": LazyCommand("flowyard.cli.workers:worker", "Start workers and see which are online."),
}


@click.group(cls=LazyGroup, lazy=COMMANDS)
@click.option(
    "--api-url",
    envvar="FLOWYARD_API_URL",
    show_envvar=True,
    help="The Flowyard API (default: FLOWYARD_API_URL, else http://127.0.0.1:4200).",
)
@click.option(
    "--log-level",
    envvar="FLOWYARD_LOG_LEVEL",
    show_envvar=True,
    default="INFO",
    show_default=True,
    help="DEBUG, INFO, WARNING or ERROR: how much Flowyard's own logs say.",
)
@click.version_option(package_name="flowyard")
@click.pass_context
def cli(ctx: click.Context, api_url: str | None, log_level: str) -> None:
    """Flowyard: Python workflows on work pools and workers."""
    ctx.obj = CliContext(api_url=api_url, log_level=log_level)
