"""What every local user can see of the processes on this machine (``ps``, ``/proc``)."""

from __future__ import annotations

import os
from pathlib import Path


def command_lines() -> list[str]:
    """``/proc/*/cmdline`` of every process now, arguments joined by spaces."""
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "cmdline").read_bytes()
            except OSError:  # the process ended meanwhile
                continue
            lines.append(raw.replace(b"\0", b" ").decode(errors="replace"))
    return lines


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return (
        Path(f"/proc/{pid}").exists()
        and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
    )
