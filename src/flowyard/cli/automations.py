"""``flowyard automation …``: create automations from a file, list, inspect, pause, resume,
delete.

A file holds one automation, or several under ``automations:`` (YAML or JSON)::

    automations:
      - name: retry-failed-etl
        trigger:
          expect: ["flowyard.flow-run.Failed"]
          match_related: {flowyard.resource.name: etl}
        actions:
          - {type: run-deployment, deployment: etl/nightly}

Every automation of the file is checked here before any is sent; an error names the file,
the automation and the field (``trigger.within: …``).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, get_args

import click
from pydantic import ValidationError

from flowyard.cli.common import client, json_option
from flowyard.cli.output import emit_json, table
from flowyard.errors import ApiError, InvalidInput
from flowyard.schemas import automations as a

FIRINGS = 10


@click.group("automation")
def automation() -> None:
    """Automations: a trigger on events (or metrics) and the actions it takes."""


@automation.command("create")
@click.option(
    "--file",
    "path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A YAML or JSON file: one automation, or a list under 'automations:'.",
)
@json_option
def create(path: Path, as_json: bool) -> None:
    """Create the automations of a file. All are checked here first (none is sent if one
    is malformed); the server then checks what they refer to, one by one."""
    docs = load_automations(path)
    created = []
    with client() as api:
        for doc in docs:
            try:
                created.append(api.create_automation(doc))
            except ApiError as exc:
                raise click.ClickException(f"{path}: automation {doc.name!r}: {exc}") from exc
            if not as_json:
                click.echo(f"Created automation {doc.name!r} ({created[-1].id}).")
    if as_json:
        emit_json(created)


@automation.command("ls")
@json_option
def list_automations(as_json: bool) -> None:
    """List automations: whether enabled, their trigger's type, when they last fired."""
    with client() as api:
        found = api.list_automations()
        last = {auto.id: api.list_automation_firings(auto.id, limit=1) for auto in found}
    if as_json:
        emit_json(found)
        return
    rows = [
        (
            auto.name,
            "yes" if auto.enabled else "paused",
            auto.trigger.type,
            last[auto.id][0].fired if last[auto.id] else None,
        )
        for auto in found
    ]
    table(["name", "enabled", "trigger", "last fired"], rows)


@automation.command("inspect")
@click.argument("ref", metavar="NAME|ID")
@click.option(
    "--limit",
    type=click.IntRange(1, 200),
    default=FIRINGS,
    show_default=True,
    help="Show at most this many.",
)
@json_option
def inspect(ref: str, limit: int, as_json: bool) -> None:
    """Show an automation (as YAML) and its latest firings with what their actions did."""
    import yaml

    with client() as api:
        found = api.read_automation(ref)
        firings = api.list_automation_firings(found.id, limit=limit)
    if as_json:
        doc = found.model_dump(mode="json")
        emit_json({**doc, "firings": [firing.model_dump(mode="json") for firing in firings]})
        return
    click.echo(yaml.safe_dump(found.model_dump(mode="json"), sort_keys=False).rstrip())
    click.echo("")
    click.echo("firings:" if firings else "firings: (none yet)")
    for firing in firings:
        suppressed = " (suppressed)" if firing.suppressed else ""
        click.echo(f"  {firing.fired:%Y-%m-%d %H:%M:%S}  {firing.state}{suppressed}  {firing.id}")
        for action in firing.actions:
            line = f"    {action.when} #{action.index} {action.type}: {action.status}"
            line += f" after {action.attempts} attempt(s)" if action.attempts else ""
            click.echo(line + (f" - {action.error}" if action.error else ""))


@automation.command("pause")
@click.argument("ref", metavar="NAME|ID")
def pause(ref: str) -> None:
    """Pause an automation: its trigger is not evaluated until it is resumed."""
    with client() as api:
        found = api.set_automation_enabled(ref, False)
    click.echo(f"Paused automation {found.name!r}.")


@automation.command("resume")
@click.argument("ref", metavar="NAME|ID")
def resume(ref: str) -> None:
    """Resume a paused automation."""
    with client() as api:
        found = api.set_automation_enabled(ref, True)
    click.echo(f"Resumed automation {found.name!r}.")


@automation.command("delete")
@click.argument("ref", metavar="NAME|ID")
def delete(ref: str) -> None:
    """Delete an automation and its firings."""
    with client() as api:
        found = api.read_automation(ref)
        api.delete_automation(found.id)
    click.echo(f"Deleted automation {found.name!r}.")


# -- the file ----------------------------------------------------------------------------


def load_automations(path: Path) -> list[a.AutomationCreate]:
    """The automations of ``path``, each checked; ``InvalidInput`` names the file, the
    automation and the field."""
    raw = _read(path)
    entries = raw.get("automations") if isinstance(raw, dict) and "automations" in raw else raw
    if isinstance(entries, dict):
        entries = [entries]
    if not isinstance(entries, list) or not entries:
        raise InvalidInput(f"{path}: expected an automation, or a list under 'automations:'")
    docs = []
    for number, entry in enumerate(entries, start=1):
        name = entry.get("name") if isinstance(entry, dict) else None
        which = f"automation {name!r}" if isinstance(name, str) else f"automation #{number}"
        try:
            docs.append(a.AutomationCreate.model_validate(entry))
        except ValidationError as exc:
            raise InvalidInput(f"{path}: {which}: {describe(exc)}") from exc
    return docs


def _read(path: Path) -> Any:
    import yaml

    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read it: {exc.strerror}") from exc
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise InvalidInput(f"{path}: not valid JSON: {exc}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path}: not valid YAML: {exc}") from exc


def describe(exc: ValidationError) -> str:
    """Each error as ``field: message`` (``trigger.within: …``), one per line after the first."""
    lines = []
    for error in exc.errors():
        where = field_path(error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {message}" if where else message)
    return "\n  ".join(lines)


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("trigger", "event", "within")`` → ``trigger.within``: the union's tags dropped."""
    out = ""
    previous: Any = None
    for part in loc:
        tag = isinstance(part, str) and part in _tags()
        if tag and (previous == "trigger" or isinstance(previous, int)):
            previous = part
            continue
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
        previous = part
    return out.lstrip(".")


@cache
def _tags() -> frozenset[str]:
    """The ``type`` of every trigger and action: pydantic puts them in a union's path."""
    union = get_args(a.Action)[0]
    actions = {model.model_fields["type"].default for model in get_args(union)}
    return frozenset({"event", "metric", "compound", "sequence", *actions})
