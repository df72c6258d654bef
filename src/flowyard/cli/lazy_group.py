"""A click group that imports a subcommand's module only when that subcommand runs.

Importing every command group (and with them pydantic, httpx and every schema) cost each
``flowyard`` call ~0.7 s before it did anything. Here each subcommand is named by
``module:attribute`` with a one-line summary, so ``flowyard --help`` lists them without
importing any (``tests/cli/test_lazy_cli.py`` keeps the summaries true to the commands).
Commands added with ``add_command`` work as in any click group.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from typing import Any, NamedTuple

import click

from flowyard.cli.common import FlowyardGroup


class LazyCommand(NamedTuple):
    """Where a subcommand is defined (``module:attribute``), and what it does in a line."""

    target: str
    summary: str


class LazyGroup(FlowyardGroup):
    """A ``FlowyardGroup`` whose ``lazy`` subcommands are imported on first use."""

    def __init__(self, *args: Any, lazy: Mapping[str, LazyCommand], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            self.add_command(self.load(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def load(self, cmd_name: str) -> click.Command:
        """Import the subcommand ``cmd_name`` names."""
        module, _, attribute = self.lazy[cmd_name].target.partition(":")
        command = getattr(import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.lazy[cmd_name].target} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list, from the summaries: ``--help`` imports no subcommand."""
        rows = []
        for name in self.list_commands(ctx):
            if name in self.lazy and name not in self.commands:
                rows.append((name, self.lazy[name].summary))
                continue
            command = self.commands.get(name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(formatter.width)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
