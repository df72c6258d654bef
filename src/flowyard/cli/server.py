"""``flowyard server start`` and ``flowyard server migrate``."""

from __future__ import annotations

import click

from flowyard.cli.common import settings


@click.group("server")
def server() -> None:
    """Run the Flowyard API server."""


@server.command("start")
@click.option(
    "--host", help="Interface to listen on (default 127.0.0.1; others need FLOWYARD_API_KEY)."
)
@click.option("--port", type=int, help="Port (default 4200).")
def start(host: str | None, port: int | None) -> None:
    """Start the API with its services; SQLite and a managed Redis unless configured otherwise."""
    from flowyard.orchestrator.server import serve

    cfg = settings()
    updates = {k: v for k, v in (("server_host", host), ("server_port", port)) if v is not None}
    cfg = cfg.model_copy(update=updates)
    banner = (
        f"Flowyard API on http://{cfg.server_host}:{cfg.server_port} (docs at /docs); "
        f"data in {cfg.home}. Ctrl-C to stop."
    )
    try:
        serve(cfg, announce=lambda: click.echo(banner))
    except KeyboardInterrupt:  # Ctrl-C is how it is stopped: exit 0, not click's "Aborted!"
        click.echo("Flowyard API stopped.")


@server.command("migrate")
def migrate() -> None:
    """Bring the database schema to the newest revision and exit (for deploy hooks)."""
    from flowyard.store import Database

    cfg = settings()
    database = Database(cfg.resolved_database_url)
    try:
        database.migrate()
    finally:
        database.dispose()
    click.echo(
        f"Database {cfg.resolved_database_url.split('@')[-1]} is at the newest schema revision."
    )
