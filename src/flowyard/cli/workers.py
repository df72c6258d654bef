"""``flowyard worker …``."""

from __future__ import annotations

import signal
from types import FrameType

import click

from flowyard.cli.common import client, json_option, settings
from flowyard.cli.output import emit_json, table
from flowyard.client.retries import WORKER
from flowyard.workers import load_worker_type, require_installed


@click.group("worker")
def worker() -> None:
    """Start workers and see which are online."""


@worker.command("start")
@click.option("--pool", "-p", required=True, envvar="FLOWYARD_POOL", help="Work pool to serve.")
@click.option("--type", "type_", default="process", show_default=True, help="Worker type.")
@click.option("--name", "-n", help="Worker name; default: type, host and a random suffix.")
@click.option("--limit", "-l", type=click.IntRange(min=1), help="Runs at once in this worker.")
@click.option("--work-queue", "-q", "queues", multiple=True, help="Only these queues (repeatable).")
@click.option(
    "--prefetch-seconds",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Claim runs this many seconds before they are due.",
)
@click.option("--run-once", is_flag=True, help="Claim once, run what came, and exit.")
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
    pool: str,
    type_: str,
    name: str | None,
    limit: int | None,
    queues: tuple[str, ...],
    prefetch_seconds: float,
    run_once: bool,
    metrics_port: int | None,
    grace_seconds: float,
) -> None:
    """Serve a work pool: claim its runs and launch them (creates the pool if missing)."""
    cfg = settings()
    worker_type = load_worker_type(type_)
    require_installed(worker_type)
    api = client(retry=WORKER)  # a server restarting is waited out
    instance = worker_type(
        api,
        pool,
        name=name,
        limit=limit,
        queues=list(queues),
        prefetch_seconds=prefetch_seconds,
        heartbeat_seconds=cfg.worker_heartbeat_seconds,
        grace_seconds=grace_seconds,
        metrics_port=metrics_port,
    )

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if instance.stopping:  # the second signal: no more waiting
            click.echo(f"Received {name} again: killing the runs left now.", err=True)
            instance.stop_now()
            return
        click.echo(
            f"Received {name}: finishing runs (grace period {grace_seconds:g} s), then "
            "stopping; press Ctrl-C again to kill them now.",
            err=True,
        )
        instance.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if instance.ensure_pool():
        click.echo(f"Created work pool {pool!r} of type {type_!r}: it did not exist.")
    click.echo(f"Worker {instance.name!r} serving work pool {pool!r} (type {type_}).")
    try:
        instance.run(once=run_once)
    finally:
        api.close()


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
