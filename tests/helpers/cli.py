"""The ``flowyard`` command, run as a user types it: this Python, a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def flowyard(
    api_url: str | None,
    *args: str,
    key: str | None = None,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    **run: Any,
) -> subprocess.CompletedProcess[str]:
    """``flowyard ARGS…`` against the API at ``api_url`` (with API key ``key``), its output
    captured as text; ``env`` on top of this process's environment."""
    environment = {**os.environ, **(env or {})}
    if api_url is not None:
        environment["FLOWYARD_API_URL"] = api_url
    if key is not None:
        environment["FLOWYARD_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "flowyard", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        **run,
    )
