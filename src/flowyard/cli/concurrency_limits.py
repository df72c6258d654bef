"""``flowyard concurrency-limit …``: limits on task runs by tag (and on ``concurrency`` /
``rate_limit`` blocks by name), across every flow run."""

from __future__ import annotations

import click

from flowyard import schemas as s
from flowyard.cli.common import client, json_option
from flowyard.cli.output import details, emit_json, table

decay_option = click.option(
    "--slot-decay-per-second",
    "decay",
    type=click.FloatRange(0, 1_000_000, min_open=True),
    help="Slots taken by rate_limit() free themselves at this rate (makes it a rate limit).",
)


@click.group("concurrency-limit")
def concurrency_limit() -> None:
    """Limit how many task runs with a tag run at once, everywhere."""


@concurrency_limit.command("create")
@click.argument("tag")
@click.argument("limit", type=click.IntRange(0))
@decay_option
@click.option("--disable", is_flag=True, help="Create it inactive: it limits nothing yet.")
@json_option
def create(tag: str, limit: int, decay: float | None, disable: bool, as_json: bool) -> None:
    """At most LIMIT task runs tagged TAG at once (create, or replace an existing limit)."""
    with client() as api:
        created = api.set_concurrency_limit(tag, limit, decay, active=not disable)
    _report(created, as_json)


@concurrency_limit.command("update")
@click.argument("tag")
@click.option("--limit", type=click.IntRange(0), help="The new number of slots.")
@decay_option
@click.option("--no-decay", is_flag=True, help="Remove the slot decay.")
@click.option("--enable/--disable", "active", default=None, help="Turn the limit on or off.")
@json_option
def update(
    tag: str,
    limit: int | None,
    decay: float | None,
    no_decay: bool,
    active: bool | None,
    as_json: bool,
) -> None:
    """Change TAG's limit, decay or state; what is not given stays as it is."""
    if decay is not None and no_decay:
        raise click.UsageError("give --slot-decay-per-second or --no-decay, not both")
    with client() as api:
        now = api.read_concurrency_limit(tag)
        updated = api.set_concurrency_limit(
            tag,
            now.limit if limit is None else limit,
            None if no_decay else decay or now.slot_decay_per_second,
            now.active if active is None else active,
        )
    _report(updated, as_json)


@concurrency_limit.command("ls")
@json_option
def list_limits(as_json: bool) -> None:
    """List the limits, with the slots in use now."""
    with client() as api:
        found = api.list_concurrency_limits()
    if as_json:
        emit_json(found)
        return
    table(
        ["tag", "limit", "decay /s", "active", "in use"],
        [(x.tag, x.limit, _decay(x), _yes(x.active), x.active_slots) for x in found],
    )


@concurrency_limit.command("inspect")
@click.argument("tag")
@json_option
def inspect(tag: str, as_json: bool) -> None:
    """Show one tag's limit."""
    with client() as api:
        found = api.read_concurrency_limit(tag)
    if as_json:
        emit_json(found)
        return
    details(
        [
            ("tag", found.tag),
            ("limit", found.limit),
            ("decay /s", _decay(found)),
            ("active", _yes(found.active)),
            ("in use", found.active_slots),
        ]
    )


@concurrency_limit.command("delete")
@click.argument("tag")
def delete(tag: str) -> None:
    """Remove a tag's limit; its task runs are no longer held back."""
    with client() as api:
        api.delete_concurrency_limit(tag)
    click.echo(f"Deleted the concurrency limit of tag {tag!r}.")


@concurrency_limit.command("holders")
@click.argument("tag")
@json_option
def holders(tag: str, as_json: bool) -> None:
    """Who holds TAG's slots now: each owner (run:ID, worker:KEY, admin) and holder."""
    with client() as api:
        found = api.concurrency_limit_holders(tag)
    if as_json:
        emit_json(found)
        return
    table(
        ["owner", "holder", "slots", "lease expires"],
        [(x.owner, x.holder, x.slots, x.lease_expires) for x in found],
    )


@concurrency_limit.command("reset")
@click.argument("tag")
@click.option("--owner", help="Free only this owner's slots (as `holders` shows it).")
@click.option("--holder", help="Free only this holder's slots (needs --owner).")
def reset(tag: str, owner: str | None, holder: str | None) -> None:
    """Free TAG's slots whoever holds them (admin key): all of them, or an owner's, or one
    holder's. A holder still running finds its slots gone when it next renews them."""
    if holder is not None and owner is None:
        raise click.UsageError("--holder needs --owner: a holder is named within its owner")
    with client() as api:
        freed = api.reset_concurrency_limit(tag, s.SlotsReset(owner=owner, holder=holder))
    click.echo(f"Freed {freed} slot{'' if freed == 1 else 's'} of {tag!r}.")


def _report(found: s.ConcurrencyLimit, as_json: bool) -> None:
    if as_json:
        emit_json(found)
        return
    click.echo(f"Task runs tagged {found.tag!r}: at most {found.limit} at once.")
    if found.slot_decay_per_second:
        click.echo(f"As a rate limit: {found.slot_decay_per_second:g} a second.")
    if not found.active:
        click.echo("Inactive: it limits nothing until `--enable`d.")


def _decay(found: s.ConcurrencyLimit) -> str:
    return "-" if found.slot_decay_per_second is None else f"{found.slot_decay_per_second:g}"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
