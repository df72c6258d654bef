"""``flowyard api-key …``."""

from __future__ import annotations

import click

from flowyard import schemas as s
from flowyard.cli.common import client, json_option
from flowyard.cli.output import emit_json, table


@click.group("api-key")
def api_key() -> None:
    """Create, list and revoke API keys (needs the administrator's key)."""


@api_key.command("create")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(["worker", "viewer", "admin"]),
    default="worker",
    show_default=True,
    help="worker: its pools' runs; viewer: reads everything but secrets; admin: everything.",
)
@click.option(
    "--pool", "pools", multiple=True, help="Worker keys: a pool it may serve (repeatable)."
)
@json_option
def create(name: str, role: str, pools: tuple[str, ...], as_json: bool) -> None:
    """Create key NAME and print its secret, once."""
    with client() as api:
        created = api.create_api_key(s.ApiKeyCreate(name=name, role=role, pools=list(pools)))  # type: ignore[arg-type]
    if as_json:
        emit_json(created)
        return
    scope = ", ".join(created.pools) or "all pools"
    click.echo(
        f"Created {created.role} key {name!r} ({scope}). Store it now; it is not shown again:"
    )
    click.echo(created.key)
    if not created.enforced:
        click.echo(
            "Warning: this server requires no API key, so keys are not enforced (any or no "
            "key is accepted) until it is started with FLOWYARD_API_KEY set.",
            err=True,
        )


@api_key.command("ls")
@json_option
def list_keys(as_json: bool) -> None:
    """List keys (never their secrets)."""
    with client() as api:
        keys = api.list_api_keys()
    if as_json:
        emit_json(keys)
        return
    table(
        ["name", "role", "pools", "prefix", "created", "revoked"],
        [
            (k.name, k.role, ", ".join(k.pools) or "all", k.prefix + "…", k.created, k.revoked)
            for k in keys
        ],
    )


@api_key.command("revoke")
@click.argument("name")
def revoke(name: str) -> None:
    """Revoke key NAME; it stops working within seconds on every server."""
    with client() as api:
        api.revoke_api_key(name)
    click.echo(f"Revoked API key {name!r}.")
