"""One server per data folder, and a free port, checked before the server starts anything.

A second ``flowyard server start`` on the same ``FLOWYARD_HOME`` would start a second
managed Redis in that folder and rebuild queues against the live database before its port
bind failed. ``HomeLock`` holds an ``flock`` on ``<home>/server.lock`` for the server's
life (the kernel drops it when the process ends, even on a crash) and records the holder's
PID there, so the refusal can name it. ``listening_socket`` binds the port up front and
hands the socket to uvicorn, so nothing can take the port between the check and the start.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from flowyard.errors import Conflict

LOCK_FILE = "server.lock"


class HomeLock:
    """An exclusive, non-blocking lock on a data folder, held until ``release`` or exit."""

    def __init__(self, home: Path) -> None:
        self.path = home / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise ``Conflict`` naming the process that holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise Conflict(
                f"another Flowyard server (PID {holder}) is using the data folder "
                f"{self.path.parent}; stop it, or set FLOWYARD_HOME to another folder"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> HomeLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def listening_socket(host: str, port: int) -> Iterator[socket.socket]:
    """A socket bound to ``host:port`` (uvicorn listens on it), or ``Conflict`` if taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise Conflict(f"cannot listen on {host}:{port}: {exc.strerror}") from None
            raise Conflict(
                f"port {port} on {host} is already in use (another Flowyard server?); "
                "choose another with --port"
            ) from None
        yield sock
    finally:
        sock.close()
