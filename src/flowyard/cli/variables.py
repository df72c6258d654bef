"""``flowyard variable …``: named JSON values flows read (``flowyard.variables``), as
Prefect's ``prefect variable`` commands."""

from __future__ import annotations

import json
from typing import Any

import click

from flowyard import schemas as s
from flowyard.cli.common import client, json_option
from flowyard.cli.output import details, emit_json, table
from flowyard.errors import ApiError


@click.group("variable")
def variable() -> None:
    """Named JSON values that flows read (Variable.get)."""


def _parsed(text: str) -> Any:
    """VALUE as JSON when it is JSON (3, true, [1, 2], {"a": 1}, "quoted"), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


@variable.command("set")
@click.argument("name")
@click.argument("value")
@click.option("--tag", "tags", multiple=True, help="A tag of the variable (repeatable).")
@click.option("--overwrite", is_flag=True, help="Change the variable if it exists.")
@json_option
def set_(name: str, value: str, tags: tuple[str, ...], overwrite: bool, as_json: bool) -> None:
    """Set NAME to VALUE (read as JSON when it is JSON, else as text)."""
    parsed = _parsed(value)
    with client() as api:
        try:
            made = api.create_variable(s.VariableCreate(name=name, value=parsed, tags=list(tags)))
        except ApiError as exc:
            if exc.status_code != 409 or not overwrite:
                raise
            made = api.update_variable(name, s.VariableUpdate(value=parsed, tags=list(tags)))
    if as_json:
        emit_json(made)
        return
    click.echo(f"Set variable {made.name!r}.")


@variable.command("get")
@click.argument("name")
def get(name: str) -> None:
    """Print NAME's value as JSON."""
    with client() as api:
        found = api.read_variable(name)
    if found is None:
        raise click.ClickException(f"variable {name!r} not found")
    click.echo(json.dumps(found.value))


@variable.command("inspect")
@click.argument("name")
@json_option
def inspect(name: str, as_json: bool) -> None:
    """Show NAME: its value, tags and when it was made and changed."""
    with client() as api:
        found = api.read_variable(name)
    if found is None:
        raise click.ClickException(f"variable {name!r} not found")
    if as_json:
        emit_json(found)
        return
    details(
        [
            ("name", found.name),
            ("value", json.dumps(found.value)),
            ("tags", ", ".join(found.tags) or "-"),
            ("created", found.created),
            ("updated", found.updated),
        ]
    )


@variable.command("ls")
@click.option("--prefix", help="Only the variables whose name starts with this.")
@click.option(
    "--limit",
    type=click.IntRange(1, 200),
    default=50,
    show_default=True,
    help="At most this many variables.",
)
@json_option
def list_variables(prefix: str | None, limit: int, as_json: bool) -> None:
    """List variables by name."""
    with client() as api:
        found = api.list_variables(name_prefix=prefix, limit=limit)
    if as_json:
        emit_json(found)
        return
    table(
        ["name", "value", "tags", "updated"],
        [(x.name, _short(json.dumps(x.value)), ", ".join(x.tags), x.updated) for x in found],
    )


@variable.command("unset")
@click.argument("name")
def unset(name: str) -> None:
    """Delete NAME."""
    with client() as api:
        api.delete_variable(name)
    click.echo(f"Deleted variable {name!r}.")


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
