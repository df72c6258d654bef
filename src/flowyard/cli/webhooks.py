"""``flowyard webhook …``: incoming webhooks; a secret prints only when made (create, rotate)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import BaseModel, ValidationError

from flowyard import schemas as s
from flowyard.cli.common import client, json_option, settings
from flowyard.cli.output import details, emit_json, table

AUTH = click.Choice(["secret", "hmac-sha256"])
D = TypeVar("D", bound=BaseModel)


@click.group("webhook")
def webhook() -> None:
    """Incoming webhooks: POST /hooks/<slug> turns a request into an event."""


def _template(value: str | None) -> str | None:
    """TEXT, or @FILE for the text of FILE."""
    if value is None or not value.startswith("@"):
        return value
    path = Path(value[1:])
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"cannot read {path}: {exc}", param_hint="--template") from exc


def _document(model: type[D], **fields: Any) -> D:
    """The request document, or the first field it refuses as a clean usage error."""
    try:
        return model(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        where = "NAME" if field == "name" else f"--{field}"
        raise click.BadParameter(first["msg"], param_hint=where) from None


def _url(path: str) -> str:
    return settings().api_url.rstrip("/") + path


def _show_secret(created: s.WebhookCreated, verb: str) -> None:
    click.echo(f"{verb} webhook {created.name!r} ({created.auth}); it listens at:")
    click.echo(f"  {_url(created.path)}")
    how = "sign requests with it" if created.auth == "hmac-sha256" else "send it with requests"
    click.echo(f"Its secret ({how}). Store it now; it is not shown again:")
    click.echo(f"  {created.secret}")


@webhook.command("create")
@click.argument("name")
@click.option("--template", required=True, help="The event's Jinja template: TEXT or @FILE.")
@click.option(
    "--auth",
    type=AUTH,
    default="secret",
    show_default=True,
    help="secret: requests carry the secret; hmac-sha256: they are signed with it.",
)
@click.option("--description", default="", help="What the webhook is for.")
@click.option("--disabled", is_flag=True, help="Create it disabled (its URL answers 404).")
@json_option
def create(
    name: str, template: str, auth: str, description: str, disabled: bool, as_json: bool
) -> None:
    """Create webhook NAME; print its URL and its secret, once."""
    body = _document(
        s.WebhookCreate,
        name=name,
        template=_template(template),
        auth=auth,
        description=description,
        enabled=not disabled,
    )
    with client() as api:
        created = api.create_webhook(body)
    if as_json:
        emit_json({**created.model_dump(mode="json"), "url": _url(created.path)})
        return
    _show_secret(created, "Created")


@webhook.command("ls")
@json_option
def list_webhooks(as_json: bool) -> None:
    """List webhooks (never their secrets)."""
    with client() as api:
        found = api.list_webhooks()
    if as_json:
        emit_json(found)
        return
    rows = [(w.name, w.auth, "yes" if w.enabled else "no", _url(w.path), w.updated) for w in found]
    table(["name", "auth", "enabled", "url", "updated"], rows)


@webhook.command("inspect")
@click.argument("name")
@json_option
def inspect(name: str, as_json: bool) -> None:
    """Show webhook NAME: its URL, authentication and template (not its secret)."""
    with client() as api:
        found = api.read_webhook(name)
    if as_json:
        emit_json(found)
        return
    details(
        [
            ("webhook", found.name),
            ("url", _url(found.path)),
            ("auth", found.auth),
            ("enabled", "yes" if found.enabled else "no"),
            ("description", found.description or None),
            ("id", found.id),
            ("created", found.created),
            ("updated", found.updated),
        ]
    )
    click.echo("template:")
    click.echo(found.template)


@webhook.command("update")
@click.argument("name")
@click.option("--template", help="A new template: TEXT or @FILE.")
@click.option("--description", help="A new description.")
@click.option("--enable/--disable", "enabled", default=None, help="Listen, or answer 404.")
@json_option
def update(
    name: str, template: str | None, description: str | None, enabled: bool | None, as_json: bool
) -> None:
    """Change webhook NAME's template, description or whether it listens."""
    body = _document(
        s.WebhookUpdate, template=_template(template), description=description, enabled=enabled
    )
    with client() as api:
        found = api.update_webhook(name, body)
    if as_json:
        emit_json(found)
        return
    click.echo(f"Updated webhook {name!r} ({'enabled' if found.enabled else 'disabled'}).")


@webhook.command("rotate-secret")
@click.argument("name")
@json_option
def rotate_secret(name: str, as_json: bool) -> None:
    """Give webhook NAME a new secret (printed once); the old one stops working at once."""
    with client() as api:
        created = api.rotate_webhook_secret(name)
    if as_json:
        emit_json({**created.model_dump(mode="json"), "url": _url(created.path)})
        return
    _show_secret(created, "Rotated the secret of")


@webhook.command("delete")
@click.argument("name")
def delete(name: str) -> None:
    """Delete webhook NAME; its URL answers 404 from now on."""
    with client() as api:
        api.delete_webhook(name)
    click.echo(f"Deleted webhook {name!r}.")
