"""``flowyard artifact …``: the markdown, tables, progress and images runs published."""

from __future__ import annotations

import json
from typing import Any

import click

from flowyard.cli.common import client, json_option
from flowyard.cli.output import details, emit_json, table
from flowyard.schemas.artifacts import Artifact

PREVIEW = 60


@click.group("artifact")
def artifact() -> None:
    """Read and delete the artifacts flow runs and task runs published."""


@artifact.command("ls")
@click.option("--key", help="Only the versions of this key.")
@click.option("--flow-run", "flow_run_id", help="Only those of this flow run (its id).")
@click.option("--task-run", "task_run_id", help="Only those of this task run (its id).")
@click.option(
    "--type", "kind", type=click.Choice(["markdown", "table", "progress", "image"]), help="Type."
)
@click.option(
    "--limit",
    type=click.IntRange(1, 200),
    default=50,
    show_default=True,
    help="Show at most this many.",
)
@click.option("--cursor", help="Continue from where a previous listing stopped.")
@json_option
def list_artifacts(
    key: str | None,
    flow_run_id: str | None,
    task_run_id: str | None,
    kind: str | None,
    limit: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    """List artifacts, newest first."""
    with client() as api:
        page = api.list_artifacts(
            cursor=cursor, limit=limit, key=key, flow_run_id=flow_run_id,
            task_run_id=task_run_id, type=kind,
        )  # fmt: skip
    if as_json:
        emit_json(page)
        return
    _table(page.artifacts)
    if page.next_cursor:
        click.echo(f"More: --cursor '{page.next_cursor}'")


@artifact.command("inspect")
@click.argument("key")
@click.option(
    "--limit",
    type=click.IntRange(1, 200),
    default=50,
    show_default=True,
    help="Show at most this many.",
)
@json_option
def inspect(key: str, limit: int, as_json: bool) -> None:
    """Show KEY's current artifact in full, and its history (newest first)."""
    with client() as api:
        history = api.read_artifact_history(key, limit=limit)
    if as_json:
        emit_json(history)
        return
    latest = history.latest
    details(
        [
            ("key", latest.key),
            ("id", latest.id),
            ("type", latest.type),
            ("description", latest.description),
            ("flow run", latest.flow_run_id),
            ("task run", latest.task_run_id),
            ("created", latest.created),
            ("updated", latest.updated),
        ]
    )
    click.echo("")
    click.echo(_full(latest.data))
    click.echo("")
    click.echo("History:")
    _table(history.versions)


@artifact.command("delete")
@click.argument("key")
@click.confirmation_option(prompt="Delete every version of this key?")
def delete(key: str) -> None:
    """Delete KEY and its whole history (admin key)."""
    with client() as api:
        api.delete_artifact_key(key)
    click.echo(f"Deleted the artifacts of key {key!r}.")


def _table(found: list[Artifact]) -> None:
    table(
        ["id", "key", "type", "flow run", "task run", "created", "data"],
        [
            (x.id, x.key, x.type, x.flow_run_id, x.task_run_id, x.created, _preview(x.data))
            for x in found
        ],
    )


def _preview(data: Any) -> str:
    text = data if isinstance(data, str) else json.dumps(data)
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW else text[: PREVIEW - 1] + "…"


def _full(data: Any) -> str:
    return data if isinstance(data, str) else json.dumps(data, indent=2)
