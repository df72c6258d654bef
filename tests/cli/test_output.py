"""State colours on a terminal: columns stay aligned, and NO_COLOR turns them off."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from flowyard.cli.output import state_text, table

GREEN = "\x1b[32m"


@click.command()
def listing() -> None:
    table(["state", "name"], [(state_text("Completed", "COMPLETED"), "a"), ("Late", "b")])


def test_states_are_coloured_on_a_terminal_and_columns_stay_aligned(monkeypatch):
    """With colour, the state is green and the next column starts where it does without."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    shown = CliRunner().invoke(listing, color=True).output
    plain = click.unstyle(shown)
    assert GREEN in shown
    assert plain.splitlines() == ["STATE      NAME", "Completed  a", "Late       b"]


@pytest.mark.parametrize("color", [True, False])
def test_no_color_or_a_pipe_prints_no_escape_codes(monkeypatch, color):
    """NO_COLOR set, or output that is not a terminal: plain text."""
    if color:
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    shown = CliRunner().invoke(listing, color=color).output
    assert "\x1b[" not in shown and "Completed  a" in shown
