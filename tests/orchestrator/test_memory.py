"""The server caps glibc's malloc arenas before its threads start (its RSS stays flat)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

CALL = "from flowyard.orchestrator.memory import limit_malloc_arenas as f; print(f())"
glibc = pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)


def _call(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", CALL], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@glibc
def test_the_arenas_are_capped_on_glibc() -> None:
    """On glibc, mallopt accepts the cap."""
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert _call(env) == "True"


@glibc
def test_an_operators_malloc_arena_max_is_left_as_it_is() -> None:
    """``MALLOC_ARENA_MAX`` set by whoever starts the server wins: nothing is changed."""
    assert _call({**os.environ, "MALLOC_ARENA_MAX": "8"}) == "False"
