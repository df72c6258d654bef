"""``flowyard worker …``."""

from __future__ import annotations

import re
import signal
from types import FrameType
from typing import Any

import click

from flowyard.cli.common import client, json_option, settings
from flowyard.cli.output import emit_json, table
from flowyard.client.retries import WORKER
from flowyard.schemas.base import NAME_PATTERN
from flowyard.workers import BaseWorker, load_worker_type, require_installed
from flowyard.workers.group import WorkerGroup
from flowyard.workers.status import WorkerMetrics


@click.group("worker")
def worker() -> None:
    """Start workers and see which are online."""


class PoolNames(click.ParamType[list[str]]):
    """Work pool names: ``--pool`` is repeatable, and each value (``FLOWYARD_POOL`` too)
    may list several, separated by commas (which no pool name holds)."""

    name = "pool"
    envvar_list_splitter = ","

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> list[str]:
        names = [part.strip() for part in str(value).split(",") if part.strip()]
        for found in names:
            if not re.fullmatch(NAME_PATTERN, found):
                self.fail(f"{found[:100]!r} is not a valid work pool name", param, ctx)
        return names


@worker.command("start")
@click.option(
    "--pool",
    "-p",
    "pool_lists",
    type=PoolNames(),
    multiple=True,
    required=True,
    envvar="FLOWYARD_POOL",
    help="Work pool to serve; repeat it, or separate names by commas (FLOWYARD_POOL too), "
    "to serve several pools of this type from this process, one worker each.",
)
@click.option("--type", "type_", default="process", show_default=True, help="Worker type.")
@click.option(
    "--name",
    "-n",
    help="Worker name; default: type, host and a random suffix. With several pools each "
    "pool's worker is named NAME-POOL.",
)
@click.option(
    "--limit",
    "-l",
    type=click.IntRange(min=1),
    help="Runs at once in this worker (with several pools: in each pool).",
)
@click.option(
    "--work-queue",
    "-q",
    "queues",
    multiple=True,
    help="Only these queues (repeatable; in every pool).",
)
@click.option(
    "--prefetch-seconds",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Claim runs this many seconds before they are due.",
)
@click.option(
    "--run-once", is_flag=True, help="Claim once (in each pool), run what came, and exit."
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    envvar="FLOWYARD_WORKER_METRICS_PORT",
    help="Serve /health and /metrics on this port (all interfaces).",
)
@click.option(
    "--grace-seconds",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="On shutdown, how long runs may finish before they are killed.",
)
def start(
    pool_lists: tuple[list[str], ...],
    type_: str,
    name: str | None,
    limit: int | None,
    queues: tuple[str, ...],
    prefetch_seconds: float,
    run_once: bool,
    metrics_port: int | None,
    grace_seconds: float,
) -> None:
    """Serve work pools: claim their runs and launch them (creates a pool if missing)."""
    cfg = settings()
    worker_type = load_worker_type(type_)
    require_installed(worker_type)
    pools = [pool for names in pool_lists for pool in names]
    api = client(retry=WORKER)  # a server restarting is waited out

    def make(pool: str, worker_name: str, metrics: WorkerMetrics) -> BaseWorker[Any, Any]:
        return worker_type(
            api,
            pool,
            name=worker_name,
            limit=limit,
            queues=list(queues),
            prefetch_seconds=prefetch_seconds,
            heartbeat_seconds=cfg.worker_heartbeat_seconds,
            grace_seconds=grace_seconds,
            metrics=metrics,
        )

    try:
        group = WorkerGroup(make, pools, name=name, worker_type=type_, metrics_port=metrics_port)
        serve(group, type_, grace_seconds, run_once)
    finally:
        api.close()


def serve(group: WorkerGroup, type_: str, grace_seconds: float, run_once: bool) -> None:
    """Check and create the pools, stop on signals, and run the workers."""

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if group.stopping:  # the second signal: no more waiting
            click.echo(f"Received {name} again: killing the runs left now.", err=True)
            group.stop_now()
            return
        click.echo(
            f"Received {name}: finishing runs (grace period {grace_seconds:g} s), then "
            "stopping; press Ctrl-C again to kill them now.",
            err=True,
        )
        group.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for pool in group.ensure_pools():
        click.echo(f"Created work pool {pool!r} of type {type_!r}: it did not exist.")
    for instance in group.workers:
        click.echo(f"Worker {instance.name!r} serving work pool {instance.pool!r} (type {type_}).")
    group.run(once=run_once)


@worker.command("ls")
@click.option("--pool", "-p", help="Only workers of this pool.")
@json_option
def list_workers(pool: str | None, as_json: bool) -> None:
    """List workers and whether they are online."""
    with client() as api:
        workers = api.list_workers(pool)
    if as_json:
        emit_json(workers)
        return
    table(
        ["worker", "pool", "type", "status", "last heartbeat"],
        [(w.name, w.pool_name, w.type, w.status, w.last_heartbeat) for w in workers],
    )
