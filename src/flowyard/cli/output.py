"""Human tables by default, JSON for scripts."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click


def emit_json(data: Any) -> None:
    """Print API documents as JSON: pydantic models, or the API's JSON as it came (a
    listing command's ``reader()``), or lists of either."""
    click.echo(json.dumps(_plain(data), indent=2, default=str))


def _plain(data: Any) -> Any:
    if isinstance(data, list | tuple):
        return [_plain(item) for item in data]
    dump = getattr(data, "model_dump", None)  # a pydantic model, without importing pydantic
    return dump(mode="json") if dump is not None else data


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


def timestamp(text: str | None) -> datetime | None:
    """A time in the API's JSON (ISO 8601), as a ``datetime`` that ``table`` shows in UTC."""
    return None if text is None else datetime.fromisoformat(text)


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
