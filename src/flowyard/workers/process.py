"""The process worker: each flow run is a subprocess of the worker, in its own process group."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
from typing import IO, ClassVar

from pydantic import BaseModel, Field

from flowyard import schemas as s
from flowyard.workers.base import BaseWorker, Infrastructure, OutputSink


class ProcessVariables(BaseModel):
    """Job variables of a process pool (its base job template's schema)."""

    command: str | None = Field(
        default=None, description="Command to run; default: the Flowyard engine with this Python."
    )
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment variables.")
    working_dir: str | None = Field(
        default=None, description="Working directory; default: the deployment's path."
    )
    stream_output: bool = Field(
        default=True, description="Send stdout and stderr to the run's logs."
    )


class ProcessInfrastructure(Infrastructure):
    pid: int


class ProcessWorker(BaseWorker):
    type: ClassVar[str] = "process"
    variables: ClassVar[type[BaseModel]] = ProcessVariables
    supports_kill: ClassVar[bool] = True

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._processes: dict[int, subprocess.Popen[bytes]] = {}
        self._readers: dict[int, list[threading.Thread]] = {}

    def launch(
        self, claimed: s.ClaimedRun, configuration: BaseModel, output: OutputSink
    ) -> Infrastructure:
        assert isinstance(configuration, ProcessVariables)
        command = (
            shlex.split(configuration.command)
            if configuration.command
            else [sys.executable, "-m", "flowyard.engine", claimed.run.id]
        )
        cwd = configuration.working_dir or (claimed.deployment.path if claimed.deployment else None)
        env = {**os.environ, **configuration.env, **self._engine_env(claimed)}
        stream = subprocess.PIPE if configuration.stream_output else subprocess.DEVNULL
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stream,
            stderr=stream,
            start_new_session=True,
        )
        self._processes[process.pid] = process
        self._readers[process.pid] = [
            _pump(pipe, name, output)
            for pipe, name in ((process.stdout, "stdout"), (process.stderr, "stderr"))
            if pipe
        ]
        return ProcessInfrastructure(id=f"{socket.gethostname()}:{process.pid}", pid=process.pid)

    def wait(self, infrastructure: Infrastructure) -> int:
        assert isinstance(infrastructure, ProcessInfrastructure)
        process = self._processes[infrastructure.pid]
        try:
            code = process.wait()
            for reader in self._readers.pop(infrastructure.pid, []):
                reader.join()
            return code
        finally:
            self._processes.pop(infrastructure.pid, None)

    def kill(self, infrastructure: Infrastructure, grace_seconds: float) -> None:
        """SIGTERM the run's whole process group, then SIGKILL it after the grace period."""
        assert isinstance(infrastructure, ProcessInfrastructure)
        process = self._processes.get(infrastructure.pid)
        if process is None:
            return
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)

    def _engine_env(self, claimed: s.ClaimedRun) -> dict[str, str]:
        env = {
            "FLOWYARD_API_URL": self.client.api_url,
            "FLOWYARD_CLAIM_TOKEN": claimed.token,
            "FLOWYARD_FLOW_RUN_ID": claimed.run.id,
            "PYTHONUNBUFFERED": "1",
        }
        if self.client.api_key:
            env["FLOWYARD_API_KEY"] = self.client.api_key
        return env


def _pump(pipe: IO[bytes], name: str, output: OutputSink) -> threading.Thread:
    def read() -> None:
        with pipe:
            for raw in iter(pipe.readline, b""):
                output(name, raw.decode(errors="replace").rstrip("\n"))

    thread = threading.Thread(target=read, name=f"output-{name}", daemon=True)
    thread.start()
    return thread


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
