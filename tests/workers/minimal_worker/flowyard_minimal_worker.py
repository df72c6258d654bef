"""A minimal Flowyard worker type: each flow run is a fresh engine process.

The example of ``docs/writing-a-worker.md``: a job variables model, a handle named before
the infrastructure starts, and the four hooks.
"""

from __future__ import annotations

import os
import subprocess
import sys

from pydantic import BaseModel, Field

from flowyard.workers import BaseWorker, ClaimedRun, Infrastructure, OutputSink


class MinimalVariables(BaseModel):
    """Job variables of a minimal pool; their JSON schema is the pool's default template."""

    env: dict[str, str] = Field(default_factory=dict, description="Extra environment variables.")


class MinimalHandle(Infrastructure):
    """``id`` (recorded on the run) is ``minimal:<run id>``, known before the process starts."""


class MinimalWorker(BaseWorker[MinimalVariables, MinimalHandle]):
    type = "minimal"
    variables = MinimalVariables
    supports_kill = True

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._planned: dict[str, tuple[list[str], dict[str, str], str | None]] = {}
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    def create(
        self, claimed: ClaimedRun, configuration: MinimalVariables, output: OutputSink
    ) -> MinimalHandle:
        """Plan the process; the base reports the handle, then calls ``start``."""
        handle = MinimalHandle(id=f"minimal:{claimed.run.id}")
        command = [sys.executable, "-m", "flowyard.engine", claimed.run.id]
        env = {**os.environ, **configuration.env, **self.engine_env(claimed)}
        cwd = claimed.deployment.path if claimed.deployment else None
        self._planned[handle.id] = (command, env, cwd)
        return handle

    def start(self, infrastructure: MinimalHandle) -> None:
        command, env, cwd = self._planned.pop(infrastructure.id)
        self._processes[infrastructure.id] = subprocess.Popen(
            command, env=env, cwd=cwd, stdin=subprocess.DEVNULL, start_new_session=True
        )

    def wait(self, infrastructure: MinimalHandle) -> int:
        try:
            return self._processes[infrastructure.id].wait()
        finally:
            self._processes.pop(infrastructure.id, None)

    def kill(self, infrastructure: MinimalHandle, grace_seconds: float) -> None:
        process = self._processes.get(infrastructure.id)
        if process is None:
            return
        process.terminate()
        try:
            process.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
