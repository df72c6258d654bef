"""``flowyard block …``: save, list, inspect, delete and test-notify blocks; secrets never print."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from flowyard import schemas as s
from flowyard.blocks import parse_ref
from flowyard.cli.common import client, json_option, settings
from flowyard.cli.output import details, emit_json, parse_assignments, table
from flowyard.errors import ApiError, InvalidInput, NotificationError

if TYPE_CHECKING:
    from flowyard.blocks.notify import NotificationBlock
    from flowyard.client import FlowyardClient

TEST_SUBJECT = "Flowyard test notification"
TEST_BODY = "This is a test message from Flowyard, sent through the block {ref}."


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


@block.command("test-notify")
@click.argument("ref", metavar="NAME")
@click.option("--run", "run_ref", help="Write the message about this flow run (id or prefix).")
@click.option(
    "--subject",
    help="Subject template (Jinja); default: a test line, or with --run the run's state.",
)
@click.option("--body", help="Body template (Jinja); see docs/notifications.md for the context.")
def test_notify(ref: str, run_ref: str | None, subject: str | None, body: str | None) -> None:
    """Send a test message through the notification block NAME (or TYPE/NAME)."""
    from flowyard.blocks.notify import DEFAULT_BODY, DEFAULT_SUBJECT, render, render_message
    from flowyard.blocks.notify import run_context as build_context

    with client() as api:
        found, notifier = _notification_block(api, ref)
        context: dict[str, Any] | None = None
        if run_ref:
            run = api.read_flow_run(run_ref)
            context = build_context(run, _deployment(api, run.deployment_id), settings())
            subject_text, body_text = render_message(
                context, subject or DEFAULT_SUBJECT, body or DEFAULT_BODY
            )
        else:
            subject_text = render(subject or TEST_SUBJECT, {"block": found})
            body_text = render(body or TEST_BODY.format(ref=found), {"block": found})
    try:
        notifier.notify(subject_text, body_text, context=context)
    except NotificationError as exc:
        raise click.ClickException(f"the test message through {found} failed: {exc}") from exc
    click.echo(f"Sent a test message through {found} ({notifier.service}).")


def _notification_block(api: FlowyardClient, ref: str) -> tuple[str, NotificationBlock]:
    """The saved block ``ref`` (``TYPE/NAME``, or a NAME that one notification block has)."""
    from flowyard.blocks.notify import NotificationBlock
    from flowyard.blocks.registry import block_types

    kinds = {slug: t for slug, t in block_types().items() if issubclass(t, NotificationBlock)}
    if "/" in ref:
        slug, name = parse_ref(ref)
    else:
        matches = [d for d in api.list_blocks() if d.type in kinds and d.name == ref]
        if len(matches) != 1:
            what = "no notification block" if not matches else "several notification blocks"
            refs = ", ".join(d.ref for d in matches)
            raise InvalidInput(f"{what} named {ref!r}{f' ({refs}): say TYPE/NAME' if refs else ''}")
        slug, name = matches[0].type, matches[0].name
    if slug not in kinds:
        raise InvalidInput(
            f"{slug!r} is not a notification block type (those are: {', '.join(kinds)})"
        )
    doc = api.read_block(slug, name, include_secrets=True)
    return doc.ref, kinds[slug].model_validate(doc.data)


def _deployment(api: FlowyardClient, deployment_id: str | None) -> s.Deployment | None:
    if deployment_id is None:
        return None
    try:
        return api.read_deployment(deployment_id)
    except ApiError as exc:
        if exc.status_code == 404:  # deleted since the run was made
            return None
        raise


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
