"""Human tables by default, JSON for scripts."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click
from pydantic import BaseModel


def emit_json(data: BaseModel | Sequence[BaseModel] | dict[str, Any]) -> None:
    if isinstance(data, BaseModel):
        payload: Any = data.model_dump(mode="json")
    elif isinstance(data, dict):
        payload = data
    else:
        payload = [item.model_dump(mode="json") for item in data]
    click.echo(json.dumps(payload, indent=2, default=str))


# a state's colour on a terminal (click strips colours from output that is not one)
STATE_COLORS = {
    "SCHEDULED": "yellow",
    "PENDING": "cyan",
    "RUNNING": "blue",
    "PAUSED": "magenta",
    "COMPLETED": "green",
    "FAILED": "red",
    "CRASHED": "red",
    "CANCELLING": "bright_black",
    "CANCELLED": "bright_black",
}


@dataclass(frozen=True)
class Painted:
    """A cell shown in ``color`` on a terminal, unless NO_COLOR is set."""

    text: str
    color: str | None

    def __str__(self) -> str:
        if self.color is None or os.environ.get("NO_COLOR"):
            return self.text
        return click.style(self.text, fg=self.color)


def state_text(name: str, state_type: str) -> Painted:
    """A state's name, in its type's colour."""
    return Painted(name, STATE_COLORS.get(state_type))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print rows as aligned columns; an empty list prints a short note."""
    if not rows:
        click.echo("(none)")
        return
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    click.echo("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for values, row in zip(rows, cells, strict=True):
        padded = [
            _painted(value, cell.ljust(width))
            for value, cell, width in zip(values, row, widths, strict=True)
        ]
        click.echo("  ".join(padded).rstrip())


def _painted(value: Any, padded: str) -> str:
    """``padded`` (the cell with its padding), coloured as ``value`` asks."""
    return str(Painted(padded, value.color)) if isinstance(value, Painted) else padded


def details(pairs: Sequence[tuple[str, Any]]) -> None:
    width = max(len(key) for key, _ in pairs)
    for key, value in pairs:
        click.echo(f"{key.ljust(width)}  {_cell(value)}")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, Painted):
        return value.text
    if isinstance(value, datetime):  # in UTC, and saying so (the API's times are UTC)
        utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return utc.strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, dict | list):
        return json.dumps(value) if value else "-"
    return str(value)


def parse_assignments(items: Sequence[str], what: str) -> dict[str, Any]:
    """``k=v`` pairs; a value that parses as JSON keeps its type (``n=3`` is the number 3)."""
    result: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=what)
        try:
            result[key] = json.loads(raw)
        except ValueError:
            result[key] = raw
    return result
