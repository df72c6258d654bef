"""The README shows what the repository holds: the quick-start flow as it is, every
work-pool command."""

from __future__ import annotations

import re
from pathlib import Path

import click

from flowyard.cli.pools import work_pool

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_the_readme_quick_start_flow_is_examples_etl_py():
    """The ```python block after "`examples/etl.py` is" is the file, to the character."""
    shown = re.search(r"`examples/etl\.py` is[^\n]*\n\n```python\n(.*?)```\n", README, re.S)
    assert shown is not None
    assert shown.group(1) == (ROOT / "examples" / "etl.py").read_text()


def test_the_command_table_names_every_work_pool_command():
    """The work-pool row lists each subcommand the CLI has."""
    row = next(line for line in README.splitlines() if line.startswith("| `flowyard work-pool"))
    listed = set(row.split("`")[1].removeprefix("flowyard work-pool ").split("/"))
    assert set(work_pool.list_commands(click.Context(work_pool))) <= listed
