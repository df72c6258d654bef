"""Every option of every command says what it is for, and help prints no reST markup."""

from __future__ import annotations

import click
from click.testing import CliRunner

from flowyard.cli.main import cli


def _commands(command: click.Command, path: tuple[str, ...] = ()):
    yield path, command
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None
            yield from _commands(sub, (*path, name))


def test_every_option_has_help_text():
    """No option of any command is listed in --help without a sentence."""
    bare = [
        f"flowyard {' '.join(path)} {option.opts[0]}"
        for path, command in _commands(cli)
        for option in command.params
        if isinstance(option, click.Option) and not option.hidden and not option.help
    ]
    assert bare == []


def test_help_prints_no_double_backticks_and_names_the_api_url_variable():
    """``--help`` of each command shows no literal ``; the root names FLOWYARD_API_URL."""
    runner = CliRunner()
    marked = [
        " ".join(path)
        for path, _ in _commands(cli)
        if "``" in runner.invoke(cli, [*path, "--help"]).output
    ]
    assert marked == []
    root = runner.invoke(cli, ["--help"]).output
    assert "FLOWYARD_API_URL" in root and "FLOWYARD_LOG_LEVEL" in root
