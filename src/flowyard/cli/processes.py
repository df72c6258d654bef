"""Starting a Flowyard server or worker as a child process, and waiting for it to be ready.

Used by ``flowyard demo``, the tests and the benchmarks, so that all three exercise the
real command-line entry points.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from flowyard.client import FlowyardClient
from flowyard.errors import ApiError, FlowyardError
from flowyard.utilities.ports import free_port


class ChildProcess:
    """A ``python -m flowyard …`` child with its own environment and output file."""

    def __init__(
        self, args: list[str], env: dict[str, str], output: Path, cwd: Path | None = None
    ) -> None:
        self.args = args
        self.output = output
        # its output may hold run logs: 0600, like everything under a Flowyard home
        fd = os.open(output, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._log: IO[bytes] = os.fdopen(fd, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flowyard", *args],
            env={**os.environ, **env},
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 60.0, sig: signal.Signals = signal.SIGTERM) -> int:
        """Signal the child and wait for it; kill it if it outlives ``timeout``."""
        if self.alive():
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def tail(self, lines: int = 20) -> str:
        text = self.output.read_text(errors="replace") if self.output.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class ServerProcess(ChildProcess):
    """``flowyard server start`` on a free loopback port, with its data under ``home``."""

    def __init__(
        self, home: Path, *, port: int | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.port = port or free_port()
        self.home = home
        self.url = f"http://127.0.0.1:{self.port}"
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        full_env = {"FLOWYARD_HOME": str(home), "FLOWYARD_API_URL": self.url, **(env or {})}
        super().__init__(
            ["server", "start", "--port", str(self.port)], full_env, home / "server.log"
        )

    def client(self, **kwargs: object) -> FlowyardClient:
        return FlowyardClient(self.url, os.environ.get("FLOWYARD_API_KEY"), **kwargs)  # type: ignore[arg-type]

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Poll /api/health until it answers, the child dies, or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        with FlowyardClient(self.url, retry_seconds=0) as api:
            while time.monotonic() < deadline:
                if not self.alive():
                    raise FlowyardError(
                        f"the server exited with code {self.process.returncode}:\n{self.tail()}"
                    )
                try:
                    api.health()
                    return
                except ApiError as exc:
                    if exc.status_code == 401:  # up, and asking for a key
                        return
                    time.sleep(0.05)
        raise FlowyardError(f"the server did not answer within {timeout:.0f}s:\n{self.tail()}")


class WorkerProcess(ChildProcess):
    """``flowyard worker start`` against ``api_url``, serving one pool or several."""

    def __init__(
        self,
        api_url: str,
        pool: str | Sequence[str],
        log_dir: Path,
        *extra: str,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        pools = [pool] if isinstance(pool, str) else list(pool)
        args = ["worker", "start", *(arg for name in pools for arg in ("--pool", name)), *extra]
        name = f"worker-{pools[0]}-{free_port()}.log"
        super().__init__(
            args, {"FLOWYARD_API_URL": api_url, **(env or {})}, log_dir / name, cwd=cwd
        )
