"""Holding the server's resident memory flat: glibc's malloc arenas.

glibc gives each thread that allocates while another does an arena of its own (up to
eight per core), and an arena keeps the pages of its largest moment. The server's request
threads (anyio's pool) each built answers that grow with the store (lists of runs), so
its RSS grew with the database: 156 → 177 MiB over three rounds of 100 runs here, where
Python's own objects did not grow (tracemalloc). With two arenas the RSS stays within a
few MiB across the rounds (bench/server_rss.py).
"""

from __future__ import annotations

import ctypes
import os
import sys

M_ARENA_MAX = -8  # mallopt's parameter, from glibc's malloc.h
SERVER_ARENAS = 2


def limit_malloc_arenas(count: int = SERVER_ARENAS) -> bool:
    """Cap glibc's arenas at ``count``; call before threads start. Returns whether it was
    set: not elsewhere than glibc, nor when ``MALLOC_ARENA_MAX`` already chose."""
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl has no arenas to cap)
        return False
    mallopt = getattr(libc, "mallopt", None)
    return mallopt is not None and mallopt(M_ARENA_MAX, count) == 1
