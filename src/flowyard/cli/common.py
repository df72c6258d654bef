"""What every command shares: settings, the client, and turning errors into one clean line.

A command pays only for what it uses. Listing commands read the API's JSON with
``reader()``: the three API settings come from the environment (``ApiSettings``), and
neither pydantic, the API documents, pydantic-settings nor structlog is imported, so such
a command starts in about half the time. ``settings()`` and ``client()`` give the rest
Flowyard's full settings and the typed client, and set up logging on first use (the
commands that run Flowyard's code, which logs).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import click

from flowyard.errors import FlowyardError

if TYPE_CHECKING:  # imported when a command runs: ``flowyard --help`` needs neither
    from flowyard.api_settings import ApiSettings
    from flowyard.client import FlowyardClient
    from flowyard.client.transport import ApiTransport
    from flowyard.settings import Settings

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


class FlowyardGroup(click.Group):
    """A click group whose commands print Flowyard errors as one line and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FlowyardError as exc:
            raise click.ClickException(str(exc)) from exc
        except UnicodeEncodeError as exc:  # e.g. '\\ud800' in a JSON value: no request made
            raise click.ClickException(
                f"a value holds text that is not valid Unicode ({exc.reason}: "
                f"{exc.object[exc.start : exc.end]!a}); nothing was sent"
            ) from exc
        except ValueError as exc:  # pydantic's ValidationError: a request body built from options
            if not callable(getattr(exc, "errors", None)):
                raise
            raise click.ClickException(f"{_invalid(exc)}; nothing was sent") from exc


def _invalid(exc: Any) -> str:
    """A pydantic ValidationError as one line: ``tags.0: contains the character …``."""
    return "; ".join(
        f"{'.'.join(map(str, error['loc']))}: {error['msg'].removeprefix('Value error, ')}"
        for error in exc.errors()
    )


@dataclass
class CliContext:
    """The root command's options; the settings they override are read on first use."""

    api_url: str | None
    log_level: str
    _settings: Settings | None = field(default=None, init=False)

    def settings(self) -> Settings:
        """Flowyard's settings with the command line's overrides, logging set up from them."""
        if self._settings is None:
            from flowyard.log_config import configure_logging
            from flowyard.settings import Settings

            overrides = {"log_level": self.log_level, **self._api_url()}
            self._settings = Settings().model_copy(update=overrides)
            configure_logging(self._settings.log_level)
        return self._settings

    def api_settings(self) -> ApiSettings | Settings:
        """The API's address, key and body limit: from the full settings when a command
        has them already, else read alone from the environment."""
        if self._settings is not None:
            return self._settings
        from flowyard.api_settings import ApiSettings

        found = ApiSettings.from_env()
        return replace(found, api_url=self.api_url) if self.api_url else found

    def _api_url(self) -> dict[str, str]:
        return {"api_url": self.api_url} if self.api_url else {}


def context() -> CliContext:
    found: CliContext = click.get_current_context().find_root().obj
    return found


def settings() -> Settings:
    return context().settings()


def start_logging() -> None:
    """Set up Flowyard's logging as the settings say, for a command that runs Flowyard's
    code (which logs) without asking for the settings or the typed client."""
    context().settings()


def client(**kwargs: Any) -> FlowyardClient:
    """The typed API client of a command; a person is waiting, so the policy is
    ``INTERACTIVE`` (a refused connection fails at once with a hint) unless the command
    says otherwise (``retry=WORKER`` for a worker)."""
    from flowyard.client import INTERACTIVE, FlowyardClient

    kwargs.setdefault("retry", INTERACTIVE)
    return FlowyardClient.from_settings(settings(), **kwargs)


def reader() -> ApiTransport:
    """A client that returns the API's JSON as it came, for commands that only list and
    show (see the module's docstring); ``INTERACTIVE`` like ``client()``."""
    from flowyard.client.retries import INTERACTIVE
    from flowyard.client.transport import ApiTransport

    return ApiTransport.from_settings(context().api_settings(), retry=INTERACTIVE)
