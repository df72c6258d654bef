"""``flowyard task serve``: a task worker for the tasks of some files or modules."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import click

from flowyard.cli.common import start_logging
from flowyard.entrypoints import parse_entrypoint
from flowyard.errors import EntrypointError


@click.group()
def task() -> None:
    """Background task runs (Task.delay) and the workers that run them."""


@task.command("serve")
@click.argument("entrypoints", nargs=-1, required=True)
@click.option("--limit", type=int, default=10, show_default=True, help="Runs at once.")
@click.option(
    "--status-server-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Answer GET /status on 127.0.0.1:PORT with what the worker is doing.",
)
@click.option("--timeout", type=float, default=None, help="Stop after this many seconds.")
def serve(
    entrypoints: tuple[str, ...], limit: int, status_server_port: int | None, timeout: float | None
) -> None:
    """Run the background runs of tasks given as path/file.py:task or package.module:task."""
    from flowyard.sdk.task_worker import serve as serve_tasks

    start_logging()

    serve_tasks(
        *(load_task(entrypoint) for entrypoint in entrypoints),
        limit=limit,
        status_server_port=status_server_port,
        timeout=timeout,
    )


def load_task(entrypoint: str) -> Any:
    """The task at ``entrypoint``. A file is imported as the module its name says (its folder
    on the path), so that its tasks have the keys a producer importing it gives them."""
    from flowyard.sdk.tasks import Task

    where, attribute = parse_entrypoint(entrypoint)
    module_name = where
    if where.endswith(".py") or "/" in where:
        path = Path(where).resolve()
        if not path.is_file():
            raise EntrypointError(f"task file {where!r} not found")
        sys.path.insert(0, str(path.parent))
        module_name = path.stem
    else:
        sys.path.insert(0, str(Path.cwd()))
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise EntrypointError(f"cannot import {where!r}: {type(exc).__name__}: {exc}") from exc
    for part in attribute.split("."):
        obj = getattr(obj, part, None)
    if not isinstance(obj, Task):
        raise EntrypointError(f"{attribute!r} in {where!r} is not a task (use @task)")
    return obj
