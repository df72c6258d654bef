"""``flowyard deployment schedule …`` and the schedule options of ``flowyard deploy``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import click

from flowyard import schemas as s
from flowyard.cli.common import client, json_option
from flowyard.cli.output import emit_json, parse_assignments, table
from flowyard.errors import InvalidInput


def schedule_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--cron``, ``--interval``, ``--rrule`` and ``--timezone``, at most one kind."""
    options = [
        click.option("--cron", help='Cron expression, e.g. "0 * * * *".'),
        click.option("--interval", help="Run every S seconds, or a duration: 1h30m, PT15M."),
        click.option("--rrule", help='RFC 5545 RRule, e.g. "FREQ=WEEKLY;BYDAY=MO".'),
        click.option(
            "--timezone", default="UTC", show_default=True, help="IANA zone of the schedule."
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def schedule_from_options(
    cron: str | None, interval: str | float | None, rrule: str | None, timezone: str
) -> s.ScheduleCreate | None:
    """The one schedule the options describe, or None when none was given."""
    given = [
        (kind, value)
        for kind, value in (("cron", cron), ("interval", interval), ("rrule", rrule))
        if value is not None
    ]
    if len(given) > 1:
        raise InvalidInput("give at most one of --cron, --interval and --rrule")
    if not given:
        return None
    kind, value = given[0]
    expression = f"{value:g}" if isinstance(value, float) else str(value)
    return s.ScheduleCreate(kind=kind, expression=expression, timezone=timezone)  # type: ignore[arg-type]


@click.group("schedule")
def schedule() -> None:
    """List, add, pause, resume and delete a deployment's schedules."""


@schedule.command("ls")
@click.argument("deployment")
@json_option
def list_schedules(deployment: str, as_json: bool) -> None:
    """List the schedules of DEPLOYMENT ('flow/deployment' or id)."""
    with client() as api:
        found = api.list_schedules(deployment)
    if as_json:
        emit_json(found)
        return
    table(
        ["id", "kind", "expression", "timezone", "active", "next run (local)"],
        [
            (x.id, x.kind, x.expression, x.timezone, x.active, _local(x, x.next_times[:1]))
            for x in found
        ],
    )


def _local(sch: s.Schedule, times: list[datetime]) -> str:
    """Due times written in the schedule's own time zone."""
    tz = ZoneInfo(sch.timezone)
    return ", ".join(t.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z") for t in times) or "-"


def describe(sch: s.Schedule) -> str:
    """One schedule and its next due times, for ``deployment inspect``."""
    state = "" if sch.active else " (paused)"
    upcoming = _local(sch, sch.next_times)
    return f"{sch.kind} {sch.expression!r} in {sch.timezone}{state}; next: {upcoming}"


@schedule.command("create")
@click.argument("deployment")
@schedule_options
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Parameter override.")
@json_option
def create_schedule(
    deployment: str,
    cron: str | None,
    interval: str | None,
    rrule: str | None,
    timezone: str,
    params: tuple[str, ...],
    as_json: bool,
) -> None:
    """Add a schedule to DEPLOYMENT."""
    body = schedule_from_options(cron, interval, rrule, timezone)
    if body is None:
        raise InvalidInput("give one of --cron, --interval and --rrule")
    body.parameters = parse_assignments(params, "--param")
    with client() as api:
        created = api.create_schedule(deployment, body)
    if as_json:
        emit_json(created)
        return
    click.echo(f"Created schedule {created.id} ({created.kind} {created.expression!r}).")


@schedule.command("update")
@click.argument("deployment")
@click.argument("schedule_id")
@click.option("--cron", help="New cron expression.")
@click.option("--interval", help="New interval: seconds, or a duration like 1h30m.")
@click.option("--rrule", help="New RFC 5545 RRule.")
@click.option("--timezone", help="New IANA time zone.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Parameter override.")
@json_option
def update_schedule(
    deployment: str,
    schedule_id: str,
    cron: str | None,
    interval: str | None,
    rrule: str | None,
    timezone: str | None,
    params: tuple[str, ...],
    as_json: bool,
) -> None:
    """Edit a schedule in place; its runs not yet started are replaced."""
    new = schedule_from_options(cron, interval, rrule, timezone or "UTC")
    body = s.ScheduleUpdate()
    if new is not None:
        body.kind, body.expression = new.kind, new.expression
    if timezone is not None:
        body.timezone = timezone
    if params:
        body.parameters = parse_assignments(params, "--param")
    if not body.model_fields_set:
        raise InvalidInput(
            "nothing to change: give --cron, --interval, --rrule, --timezone or --param"
        )
    with client() as api:
        updated = api.update_schedule(deployment, schedule_id, body)
    if as_json:
        emit_json(updated)
        return
    click.echo(f"Updated schedule {updated.id}: {describe(updated)}.")


def _set_active(deployment: str, schedule_id: str, active: bool) -> None:
    with client() as api:
        changed = api.set_schedule_active(deployment, schedule_id, active)
    click.echo(f"{'Resumed' if active else 'Paused'} schedule {changed.id}.")


@schedule.command("pause")
@click.argument("deployment")
@click.argument("schedule_id")
def pause_schedule(deployment: str, schedule_id: str) -> None:
    """Pause a schedule (SCHEDULE_ID: its id or a unique prefix, as listed); its runs not
    yet started are deleted."""
    _set_active(deployment, schedule_id, False)


@schedule.command("resume")
@click.argument("deployment")
@click.argument("schedule_id")
def resume_schedule(deployment: str, schedule_id: str) -> None:
    """Resume a paused schedule (SCHEDULE_ID: its id or a unique prefix, as listed)."""
    _set_active(deployment, schedule_id, True)


@schedule.command("delete")
@click.argument("deployment")
@click.argument("schedule_id")
def delete_schedule(deployment: str, schedule_id: str) -> None:
    """Delete a schedule (SCHEDULE_ID: its id or a unique prefix) and its runs not yet
    started."""
    with client() as api:
        api.delete_schedule(deployment, schedule_id)
    click.echo(f"Deleted schedule {schedule_id}.")
