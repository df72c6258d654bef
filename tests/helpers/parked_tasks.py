"""A task that parks on an engine's worker until the test releases it: its pid is written
to ``parked.pid`` in ``folder``; the test writes ``release`` to let it return."""

from __future__ import annotations

import os
from pathlib import Path

from flowyard import task
from tests.waiting import wait_until


@task
def parks(folder: str) -> int:
    """Says its pid, then waits to be released (for a minute at most)."""
    Path(folder, "parked.tmp").write_text(str(os.getpid()))
    Path(folder, "parked.tmp").rename(Path(folder, "parked.pid"))
    wait_until(lambda: Path(folder, "release").exists(), timeout=60)
    return os.getpid()
