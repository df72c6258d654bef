"""``flowyard events ls`` and ``flowyard events stream``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from flowyard.cli.common import client, json_option
from flowyard.cli.output import table
from flowyard.events.schemas import RESOURCE_NAME, Event

_SPAN = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(raw: str | None, *, now: datetime) -> datetime | None:
    """An ISO time, or a span back from ``now`` such as ``90s``, ``10m``, ``2h``, ``7d``."""
    if raw is None:
        return None
    if found := _SPAN.match(raw.strip()):
        return now - timedelta(seconds=float(found[1]) * _UNITS[found[2]])
    try:
        when = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise click.BadParameter(f"{raw!r} is neither an ISO time nor a span like 10m") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _filters(f: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--event", "events", multiple=True, help="Name; * matches any text."),
        click.option("--resource-id", multiple=True, help="Resource id; * matches any text."),
        click.option("--resource-name", multiple=True, help="Resource name; * allowed."),
        click.option("--related-id", multiple=True, help="A related resource's id."),
        click.option("--related-role", multiple=True, help="A related resource's role."),
        click.option("--since", help="ISO time or a span back from now (10m, 2h, 7d)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _query(
    events: tuple[str, ...],
    resource_id: tuple[str, ...],
    resource_name: tuple[str, ...],
    related_id: tuple[str, ...],
    related_role: tuple[str, ...],
) -> dict[str, Any]:
    return {
        "event": list(events),
        "resource_id": list(resource_id),
        "resource_name": list(resource_name),
        "related_id": list(related_id),
        "related_role": list(related_role),
    }


@click.group("events")
def events() -> None:
    """List and follow events: state changes, pools paused, what flows emitted."""


@events.command("ls")
@_filters
@click.option("--until", help="ISO time.")
@click.option(
    "--limit",
    type=click.IntRange(1, 500),
    default=20,
    show_default=True,
    help="Show at most this many.",
)
@click.option("--oldest-first", is_flag=True, help="Oldest first (default: newest first).")
@click.option("--cursor", help="The cursor a previous page printed, for the next page.")
@json_option
def list_events(
    since: str | None,
    until: str | None,
    limit: int,
    oldest_first: bool,
    cursor: str | None,
    as_json: bool,
    **names: tuple[str, ...],
) -> None:
    """List events matching every filter given, newest first."""
    now = datetime.now(UTC)
    params = _query(**names)
    with client() as api:
        found = api.list_events(
            cursor=cursor,
            order="asc" if oldest_first else "desc",
            limit=limit,
            since=_iso(parse_since(since, now=now)),
            until=_iso(parse_since(until, now=now)),
            **params,
        )
    if as_json:
        payload = found.model_dump(mode="json")
        click.echo(json.dumps(payload, indent=2))
        return
    table(["occurred", "event", "resource", "name", "id"], [_row(e) for e in found.events])
    if found.next_cursor:
        click.echo(f"more: --cursor {found.next_cursor}", err=True)


@events.command("stream")
@_filters
@click.option("--count", type=click.IntRange(1), help="Stop after this many events.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document per line.")
def stream_events(since: str | None, count: int | None, as_json: bool, **names: Any) -> None:
    """Print matching events as they are stored (from --since first), until interrupted."""
    params = _query(**names)
    printed = 0
    with client() as api:
        position = api.follow_events(None, wait=0).cursor
        backlog: set[str] = set()
        when = parse_since(since, now=datetime.now(UTC))
        if when is not None:
            for event in _backlog(api, when, params):
                backlog.add(str(event.id))
                printed += _print(event, as_json)
                if count is not None and printed >= count:
                    return
        while count is None or printed < count:
            found = api.follow_events(position, wait=5.0, **params)
            position = found.cursor
            for event in found.events:
                if str(event.id) in backlog:
                    continue
                printed += _print(event, as_json)
                if count is not None and printed >= count:
                    return


def _backlog(api: Any, since: datetime, params: dict[str, Any]) -> list[Event]:
    found: list[Event] = []
    cursor = None
    while True:
        page = api.list_events(
            cursor=cursor, order="asc", limit=500, since=since.isoformat(), **params
        )
        found += page.events
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


def _print(event: Event, as_json: bool) -> int:
    if as_json:
        click.echo(event.model_dump_json())
    else:
        occurred, name, about, label, _ = _row(event)
        click.echo(f"{occurred}  {name}  {about}" + (f"  ({label})" if label else ""))
    return 1


def _row(event: Event) -> tuple[str, str, str, str, str]:
    name = event.resource.get(RESOURCE_NAME, "")
    return event.occurred.isoformat(), event.event, event.resource_id, name, str(event.id)


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None
