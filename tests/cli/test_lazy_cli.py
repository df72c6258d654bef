"""``flowyard``'s command groups load when used: ``--help`` lists them all, importing none."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from flowyard.cli.main import COMMANDS, cli

# the commands ``flowyard`` had when its groups were imported eagerly (2026-12-07)
BEFORE = {
    "api-key", "artifact", "automation", "block", "concurrency-limit", "demo", "deploy",
    "deployment", "events", "flow-run", "init", "lambda", "server", "task", "work-pool",
    "work-queue", "worker",
}  # fmt: skip

HEAVY = ("pydantic", "httpx", "structlog", "flowyard.schemas", "flowyard.sdk", "flowyard.client")

PROBE = """
import json, sys
from flowyard.cli.main import cli
try:
    cli(["--help"])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def test_every_command_is_still_there_and_its_summary_is_true():
    """Each lazy entry loads a click command of that name whose help begins with the
    summary ``--help`` shows; no command of before is missing."""
    assert BEFORE <= set(COMMANDS)
    ctx = click.Context(cli)
    for name, entry in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert isinstance(command, click.Command) and command.name == name, entry
        first_paragraph = " ".join((command.help or "").split("\n\n")[0].split())
        assert first_paragraph.startswith(entry.summary), (name, first_paragraph)


def test_help_lists_every_command():
    """``flowyard --help`` names every command."""
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    listed = result.output.split("Commands:")[1]
    for name in COMMANDS:
        assert f"\n  {name} " in listed, name


def test_help_imports_no_command_group_and_no_heavy_library():
    """``flowyard --help`` imports no command module, pydantic, httpx, structlog or the SDK."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    groups = {entry.target.partition(":")[0] for entry in COMMANDS.values()}
    assert sorted(groups & set(loaded)) == []
    assert [m for m in loaded if m.split(".")[0] in HEAVY or m.startswith(HEAVY)] == []


LISTING_PROBE = """
import json, sys
from flowyard.cli.main import cli
try:
    cli(["--api-url", "http://127.0.0.1:9", *sys.argv[1:]])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize(
    ("args", "group"),
    [(["work-pool", "ls"], "flowyard.cli.pools"), (["flow-run", "ls"], "flowyard.cli.flow_runs")],
)
def test_a_listing_imports_only_what_it_reads(args, group):
    """A listing loads its own group and the client's transport: not pydantic, the API
    documents, pydantic-settings, structlog, the SDK, the worker types, the events
    package, automations or the other command groups."""
    done = subprocess.run(
        [sys.executable, "-c", LISTING_PROBE, *args], capture_output=True, text=True, timeout=60
    )
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert {group, "flowyard.client.transport"} <= loaded
    unwanted = {
        "pydantic", "pydantic_settings", "structlog", "tenacity", "flowyard.schemas",
        "flowyard.settings", "flowyard.client.http", "flowyard.sdk", "flowyard.workers",
        "flowyard.events", "flowyard.schemas.automations", "flowyard.cli.deployments",
        "fastapi", "sqlalchemy",
    }  # fmt: skip
    assert sorted(unwanted & loaded) == []
