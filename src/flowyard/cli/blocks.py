"""``flowyard block …``: save, list, inspect and delete blocks; secrets are always masked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from flowyard.blocks import parse_ref
from flowyard.cli.common import client, json_option
from flowyard.cli.output import details, emit_json, parse_assignments, table
from flowyard.errors import InvalidInput


@click.group("block")
def block() -> None:
    """Typed configuration documents (Docker hosts, credentials, secrets…)."""


@block.group("type")
def block_type() -> None:
    """The block types the server knows."""


@block_type.command("ls")
@json_option
def list_types(as_json: bool) -> None:
    """List block types and their secret fields."""
    with client() as api:
        types = api.list_block_types()
    if as_json:
        emit_json(types)
        return
    table(
        ["type", "class", "secret fields", "fields"],
        [
            (t.slug, t.name, ", ".join(t.secret_fields), ", ".join(_fields(t.fields_schema)))
            for t in types
        ],
    )


@block.command("create")
@click.argument("ref", metavar="TYPE/NAME")
@click.option("--field", "fields", multiple=True, metavar="KEY=VALUE", help="A field (repeatable).")
@click.option(
    "--file",
    "file_",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Fields as a JSON object.",
)
@click.option("--overwrite", is_flag=True, help="Replace the block if it exists.")
@json_option
def create(
    ref: str, fields: tuple[str, ...], file_: Path | None, overwrite: bool, as_json: bool
) -> None:
    """Save a block TYPE/NAME, e.g. docker-host/prod --field base_url=unix:///run/docker.sock."""
    slug, name = parse_ref(ref)
    data = _read_file(file_) if file_ else {}
    data.update({k: _as_text(v) for k, v in parse_assignments(fields, "--field").items()})
    with client() as api:
        doc = api.save_block(slug, name, data, overwrite=overwrite)
    if as_json:
        emit_json(doc)
    else:
        click.echo(f"Saved block {doc.ref}.")


@block.command("ls")
@click.option("--type", "type_", help="Only blocks of this type.")
@json_option
def list_blocks(type_: str | None, as_json: bool) -> None:
    """List blocks."""
    with client() as api:
        docs = api.list_blocks(type_)
    if as_json:
        emit_json(docs)
        return
    table(["block", "type", "updated"], [(d.ref, d.type, d.updated) for d in docs])


@block.command("inspect")
@click.argument("ref", metavar="TYPE/NAME")
@json_option
def inspect(ref: str, as_json: bool) -> None:
    """Show a block; secret fields print masked."""
    slug, name = parse_ref(ref)
    with client() as api:
        doc = api.read_block(slug, name)
    if as_json:
        emit_json(doc)
        return
    details([("block", doc.ref), *sorted(doc.data.items()), ("id", doc.id)])


@block.command("delete")
@click.argument("ref", metavar="TYPE/NAME")
def delete(ref: str) -> None:
    """Delete a block."""
    slug, name = parse_ref(ref)
    with client() as api:
        api.delete_block(slug, name)
    click.echo(f"Deleted block {ref}.")


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise InvalidInput(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInput(f"{path} must hold a JSON object")
    return data


def _as_text(value: Any) -> Any:
    """``--field`` values parse as JSON, but a secret like ``123`` must stay a string."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _fields(schema: dict[str, Any]) -> list[str]:
    return list(schema.get("properties", {}))
