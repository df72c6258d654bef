"""``flowyard work-pool …`` and ``flowyard work-queue …``.

Listing and showing read the API's JSON as it came (``reader()``); the commands that
change something build the API's documents, imported when they run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from flowyard.cli.common import client, json_option, reader
from flowyard.cli.output import details, emit_json, table
from flowyard.errors import InvalidInput


@click.group("work-pool")
def work_pool() -> None:
    """Create, inspect and tune work pools."""


def _show_pool(pool: dict[str, Any]) -> None:
    limit = pool.get("concurrency_limit")
    details(
        [
            ("name", pool["name"]),
            ("type", pool["type"]),
            ("status", pool.get("status")),
            ("concurrency limit", limit if limit is not None else "unlimited"),
            ("paused", pool.get("paused")),
            ("description", pool.get("description")),
            ("id", pool["id"]),
        ]
    )


@work_pool.command("create")
@click.argument("name")
@click.option("--type", "type_", default="process", show_default=True, help="Worker type.")
@click.option(
    "--concurrency-limit", type=click.IntRange(min=0), help="Runs at once across the pool."
)
@click.option(
    "--base-job-template",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON file; default: the worker type's template.",
)
@click.option("--description", help="What the pool or queue is for.")
@click.option("--paused", is_flag=True, help="Create the pool paused.")
@json_option
def create_pool(
    name: str,
    type_: str,
    concurrency_limit: int | None,
    base_job_template: Path | None,
    description: str | None,
    paused: bool,
    as_json: bool,
) -> None:
    """Create a work pool NAME."""
    from flowyard import schemas as s

    if base_job_template:
        try:
            template = json.loads(base_job_template.read_text())
        except ValueError as exc:
            raise InvalidInput(f"{base_job_template} is not valid JSON: {exc}") from exc
    else:
        from flowyard.workers import load_worker_type  # the worker types: only to create

        template = load_worker_type(type_).default_base_job_template()
    body = s.WorkPoolCreate(
        name=name,
        type=type_,
        concurrency_limit=concurrency_limit,
        paused=paused,
        description=description,
        base_job_template=template,
    )
    with client() as api:
        pool = api.create_work_pool(body)
    if as_json:
        emit_json(pool)
    else:
        click.echo(f"Created work pool {pool.name!r} of type {pool.type!r}.")


@work_pool.command("ls")
@json_option
def list_pools(as_json: bool) -> None:
    """List work pools."""
    with reader() as api:
        pools = api.get("work_pools")
    if as_json:
        emit_json(pools)
        return
    table(
        ["name", "type", "status", "limit", "paused"],
        [
            (p["name"], p["type"], p.get("status"), p.get("concurrency_limit"), p.get("paused"))
            for p in pools
        ],
    )


@work_pool.command("inspect")
@click.argument("name")
@json_option
def inspect_pool(name: str, as_json: bool) -> None:
    """Show a work pool and its queues."""
    with reader() as api:
        pool = api.get("work_pools", name)
        queues = api.get("work_pools", name, "queues")
    if as_json:
        emit_json({"pool": pool, "queues": queues})
        return
    _show_pool(pool)
    click.echo("")
    _queue_table(queues)


def _update_pool(name: str, message: str, **changes: Any) -> None:
    from flowyard import schemas as s

    with client() as api:
        api.update_work_pool(name, s.WorkPoolUpdate(**changes))
    click.echo(message)


@work_pool.command("update")
@click.argument("name")
@click.option(
    "--base-job-template",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON file replacing the pool's base job template.",
)
@click.option("--description", help="What the pool or queue is for.")
@click.option(
    "--concurrency-limit", type=click.IntRange(min=0), help="At most this many runs at once."
)
def update_pool(
    name: str,
    base_job_template: Path | None,
    description: str | None,
    concurrency_limit: int | None,
) -> None:
    """Change a pool's base job template, description or concurrency limit."""
    template = _read_template(base_job_template) if base_job_template else None
    given: dict[str, Any] = {"base_job_template": template, "description": description}
    changes = {key: value for key, value in given.items() if value is not None}
    if concurrency_limit is not None:
        changes["concurrency_limit"] = concurrency_limit
    if not changes:
        raise click.UsageError(
            "give at least one of --base-job-template, --description, --concurrency-limit"
        )
    _update_pool(name, f"Updated work pool {name!r}.", **changes)


def _read_template(path: Path) -> dict[str, object]:
    try:
        template = json.loads(path.read_text())
    except ValueError as exc:
        raise InvalidInput(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(template, dict):
        raise InvalidInput(f"{path} must hold a JSON object")
    return template


@work_pool.command("pause")
@click.argument("name")
def pause_pool(name: str) -> None:
    """Stop workers from claiming runs of the pool."""
    _update_pool(name, f"Paused work pool {name!r}.", paused=True)


@work_pool.command("resume")
@click.argument("name")
def resume_pool(name: str) -> None:
    """Let workers claim runs of the pool again."""
    _update_pool(name, f"Resumed work pool {name!r}.", paused=False)


@work_pool.command("set-concurrency-limit")
@click.argument("name")
@click.argument("limit", type=click.IntRange(min=0))
def set_pool_limit(name: str, limit: int) -> None:
    """Allow at most LIMIT runs of the pool at once (applies at the next claim)."""
    _update_pool(name, f"Set the limit of {name!r} to {limit}.", concurrency_limit=limit)


@work_pool.command("clear-concurrency-limit")
@click.argument("name")
def clear_pool_limit(name: str) -> None:
    """Remove the pool's concurrency limit."""
    _update_pool(name, f"Cleared the limit of {name!r}.", clear_concurrency_limit=True)


@work_pool.command("delete")
@click.argument("name")
def delete_pool(name: str) -> None:
    """Delete a work pool (it must have no deployments)."""
    with client() as api:
        api.delete_work_pool(name)
    click.echo(f"Deleted work pool {name!r}.")


@work_pool.command("get-default-base-job-template")
@click.option("--type", "type_", default="process", show_default=True, help="The worker type.")
def default_template(type_: str) -> None:
    """Print a worker type's default base job template as JSON."""
    from flowyard.workers import load_worker_type

    click.echo(json.dumps(load_worker_type(type_).default_base_job_template(), indent=2))


# -- work queues -------------------------------------------------------------------------------

pool_option = click.option("--pool", "-p", required=True, help="The work pool.")


@click.group("work-queue")
def work_queue() -> None:
    """Create, inspect and tune the queues of a work pool."""


QUEUE_COLUMNS = ("priority", "concurrency_limit", "paused", "fair", "ready", "running")


def _queue_table(queues: list[dict[str, Any]]) -> None:
    table(
        ["queue", "priority", "limit", "paused", "fair", "ready", "running"],
        [(q["name"], *(q.get(column) for column in QUEUE_COLUMNS)) for q in queues],
    )


@work_queue.command("create")
@click.argument("name")
@pool_option
@click.option(
    "--priority",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Lower is served first, strictly.",
)
@click.option(
    "--concurrency-limit", type=click.IntRange(min=0), help="At most this many runs at once."
)
@click.option(
    "--fair", is_flag=True, help="Deployments take turns instead of first come first served."
)
@click.option("--description", help="What the pool or queue is for.")
@json_option
def create_queue(
    name: str,
    pool: str,
    priority: int,
    concurrency_limit: int | None,
    fair: bool,
    description: str | None,
    as_json: bool,
) -> None:
    """Create a work queue NAME in a pool."""
    from flowyard import schemas as s

    body = s.WorkQueueCreate(
        name=name,
        priority=priority,
        concurrency_limit=concurrency_limit,
        fair=fair,
        description=description,
    )
    with client() as api:
        queue = api.create_work_queue(pool, body)
    if as_json:
        emit_json(queue)
    else:
        click.echo(f"Created work queue {name!r} in pool {pool!r} with priority {queue.priority}.")


@work_queue.command("ls")
@pool_option
@json_option
def list_queues(pool: str, as_json: bool) -> None:
    """List the queues of a pool, highest priority first."""
    with reader() as api:
        queues = api.get("work_pools", pool, "queues")
    if as_json:
        emit_json(queues)
    else:
        _queue_table(queues)


@work_queue.command("inspect")
@click.argument("name")
@pool_option
@json_option
def inspect_queue(name: str, pool: str, as_json: bool) -> None:
    """Show one queue."""
    with reader() as api:
        queue = api.get("work_pools", pool, "queues", name)
    if as_json:
        emit_json(queue)
        return
    details(
        [
            ("queue", queue["name"]),
            ("pool", queue.get("pool_name")),
            ("priority", queue.get("priority")),
            ("concurrency limit", queue.get("concurrency_limit")),
            ("paused", queue.get("paused")),
            ("fair", queue.get("fair")),
            ("ready", queue.get("ready")),
            ("running", queue.get("running")),
            ("id", queue["id"]),
        ]
    )


def _update_queue(name: str, pool: str, message: str, **changes: Any) -> None:
    from flowyard import schemas as s

    with client() as api:
        api.update_work_queue(pool, name, s.WorkQueueUpdate(**changes))
    click.echo(message)


@work_queue.command("set-priority")
@click.argument("name")
@click.argument("priority", type=click.IntRange(min=0))
@pool_option
def set_priority(name: str, priority: int, pool: str) -> None:
    """Change a queue's priority (lower is served first); applies at once."""
    _update_queue(name, pool, f"Set the priority of {name!r} to {priority}.", priority=priority)


@work_queue.command("set-concurrency-limit")
@click.argument("name")
@click.argument("limit", type=click.IntRange(min=0))
@pool_option
def set_queue_limit(name: str, limit: int, pool: str) -> None:
    """Allow at most LIMIT runs of the queue at once."""
    _update_queue(name, pool, f"Set the limit of {name!r} to {limit}.", concurrency_limit=limit)


@work_queue.command("clear-concurrency-limit")
@click.argument("name")
@pool_option
def clear_queue_limit(name: str, pool: str) -> None:
    """Remove a queue's concurrency limit."""
    message = f"Cleared the limit of {name!r}."
    _update_queue(name, pool, message, clear_concurrency_limit=True)


@work_queue.command("pause")
@click.argument("name")
@pool_option
def pause_queue(name: str, pool: str) -> None:
    """Stop workers from claiming runs of this queue."""
    _update_queue(name, pool, f"Paused work queue {name!r}.", paused=True)


@work_queue.command("resume")
@click.argument("name")
@pool_option
def resume_queue(name: str, pool: str) -> None:
    """Let workers claim runs of this queue again."""
    _update_queue(name, pool, f"Resumed work queue {name!r}.", paused=False)


@work_queue.command("set-fair")
@click.argument("name")
@click.argument("fair", type=click.Choice(["on", "off"]))
@pool_option
def set_fair(name: str, fair: str, pool: str) -> None:
    """Make deployments take turns in a queue (on) or go first come first served (off).

    Applies to runs as they become due; no restart.
    """
    _update_queue(name, pool, f"Fairness of work queue {name!r}: {fair}.", fair=fair == "on")


@work_queue.command("delete")
@click.argument("name")
@pool_option
def delete_queue(name: str, pool: str) -> None:
    """Delete a queue (not the pool's default queue)."""
    with client() as api:
        api.delete_work_queue(pool, name)
    click.echo(f"Deleted work queue {name!r}.")
