"""What every command shares: settings, the client, and turning errors into one clean line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from flowyard.errors import FlowyardError

if TYPE_CHECKING:  # imported when a command runs: ``flowyard --help`` needs neither
    from flowyard.client import FlowyardClient
    from flowyard.settings import Settings

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


class FlowyardGroup(click.Group):
    """A click group whose commands print Flowyard errors as one line and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FlowyardError as exc:
            raise click.ClickException(str(exc)) from exc


def settings() -> Settings:
    ctx = click.get_current_context()
    found: Settings = ctx.find_root().obj["settings"]
    return found


def client(**kwargs: Any) -> FlowyardClient:
    """The API client of a command; a person is waiting, so a refused connection fails at
    once with a hint (long-running commands pass ``retry_refused=True``)."""
    from flowyard.client import FlowyardClient

    kwargs.setdefault("retry_refused", False)
    return FlowyardClient.from_settings(settings(), **kwargs)
