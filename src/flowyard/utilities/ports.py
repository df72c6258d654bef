"""Free loopback ports for child servers (managed Redis, test servers).

``bind(port 0)`` hands out a port from the kernel's ephemeral range, the same range
outgoing connections take their source ports from: between our releasing the port and
the child binding it, any ``connect()`` on the machine may take it. Picking below that
range closes the race for everything but another picker, which a random start makes rare.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

HOST = "127.0.0.1"
_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10_000


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = (int(part) for part in _RANGE_FILE.read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default; macOS uses 49152-65535, also above ours


def free_port(host: str = HOST) -> int:
    """A TCP port on ``host`` that nothing is bound to now, outside the ephemeral range."""
    low, high = _ephemeral_range()
    candidates = [*range(_LOWEST, min(low, 65536)), *range(high + 1, 65536)]
    start = random.randrange(len(candidates)) if candidates else 0
    for offset in range(min(len(candidates), 2000)):
        port = candidates[(start + offset) % len(candidates)]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return int(port)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # all taken: let the kernel
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
