"""``flowyard demo`` as a newcomer runs it: after installing, from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_packaged_example_is_the_repository_example():
    """The flow the demo ships is the one the README shows in examples/etl.py."""
    packaged = REPO / "src" / "flowyard" / "examples" / "etl.py"
    assert packaged.read_text() == (REPO / "examples" / "etl.py").read_text()


def test_demo_runs_from_a_folder_outside_the_checkout(tmp_path):
    """The demo deploys the packaged flow, runs it to Completed and exits 0, cwd anywhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWYARD_")}
    result = subprocess.run(
        [sys.executable, "-m", "flowyard", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Deployed ETL Pipeline/demo" in result.stdout
    assert "Final state: Completed" in result.stdout
    assert list(tmp_path.iterdir()) == []  # nothing written where the user stood
