"""``flowyard concurrency-limit …``: limits on task runs by tag, across every flow run."""

from __future__ import annotations

import click

from flowyard.cli.common import client, json_option
from flowyard.cli.output import details, emit_json, table


@click.group("concurrency-limit")
def concurrency_limit() -> None:
    """Limit how many task runs with a tag run at once, everywhere."""


@concurrency_limit.command("create")
@click.argument("tag")
@click.argument("limit", type=click.IntRange(0))
@json_option
def create(tag: str, limit: int, as_json: bool) -> None:
    """At most LIMIT task runs tagged TAG at once (create, or change an existing limit)."""
    with client() as api:
        created = api.set_concurrency_limit(tag, limit)
    if as_json:
        emit_json(created)
        return
    click.echo(f"Task runs tagged {tag!r}: at most {limit} at once.")


@concurrency_limit.command("ls")
@json_option
def list_limits(as_json: bool) -> None:
    """List the limits, with the slots in use now."""
    with client() as api:
        found = api.list_concurrency_limits()
    if as_json:
        emit_json(found)
        return
    table(["tag", "limit", "in use"], [(x.tag, x.limit, x.active_slots) for x in found])


@concurrency_limit.command("inspect")
@click.argument("tag")
@json_option
def inspect(tag: str, as_json: bool) -> None:
    """Show one tag's limit."""
    with client() as api:
        found = api.read_concurrency_limit(tag)
    if as_json:
        emit_json(found)
        return
    details([("tag", found.tag), ("limit", found.limit), ("in use", found.active_slots)])


@concurrency_limit.command("delete")
@click.argument("tag")
def delete(tag: str) -> None:
    """Remove a tag's limit; its task runs are no longer held back."""
    with client() as api:
        api.delete_concurrency_limit(tag)
    click.echo(f"Deleted the concurrency limit of tag {tag!r}.")
