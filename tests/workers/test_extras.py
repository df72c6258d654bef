"""A worker type whose extra is not installed fails with one line naming the install."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
sys.modules[{module!r}] = None  # as if the extra were not installed
from flowyard.cli.main import cli
cli(["--api-url", "http://127.0.0.1:9", "worker", "start", "--pool", "p", "--type", {type!r}])
"""


@pytest.mark.parametrize(
    ("worker_type", "module", "extra"),
    [("docker", "docker", "docker"), ("kubernetes", "kubernetes", "kubernetes"),
     ("lambda", "boto3", "aws")],
)  # fmt: skip
def test_a_missing_extra_is_one_line_naming_the_install(worker_type, module, extra):
    """``worker start --type T`` without T's client: exit 1 before contacting the API."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module, type=worker_type)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"Error: the {worker_type} worker needs the {module!r} package: "
        f"pip install 'flowyard[{extra}]'"
    )


def test_the_process_worker_needs_no_extra():
    """The process worker runs on the base install."""
    from flowyard.workers import load_worker_type, require_installed

    worker_type = load_worker_type("process")
    assert worker_type.requires is None
    require_installed(worker_type)  # nothing to raise
