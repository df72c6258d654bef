"""The process worker: each flow run is a process of its own, in its own process group.

With ``warm_start`` (the default) a run's process is forked from the worker's
``EngineForkServer``, which imported the engine once; otherwise, or when the job sets a
``command`` or interpreter-start variables (``PYTHON*``, ``LD_*``), it is a fresh
``subprocess.Popen`` interpreter. Both kinds are watched and killed the same way: output
through pipes into the run's logs, ``killpg`` on the pid, the exit code from ``wait``.

A forked run's exit code comes from the fork server's exit message (the worker is not its
parent). If the fork server dies, the worker waits for the run's process to end (a pidfd)
and then raises ``ForkServerError``, "exit code unknown": the run is reported Crashed
unless it reported a final state itself. A run is never lost to the optimisation: when the
fork server cannot start or refuses a spawn, the run is started with ``Popen``.
"""

from __future__ import annotations

import os
import select
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import IO, ClassVar

from pydantic import BaseModel, Field

from flowyard import schemas as s
from flowyard.errors import ForkServerError
from flowyard.workers.base import BaseWorker, Infrastructure, OutputSink
from flowyard.workers.forkserver import EngineForkServer

INTERPRETER_START_PREFIXES = ("PYTHON", "LD_")
"""Job variables read only when an interpreter starts, which a forked run would ignore."""


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
    warm_start: bool = Field(
        default=True,
        description="Fork flow-run processes from a preloaded engine for a fast start; "
        "off: a fresh interpreter per run.",
    )


class ProcessInfrastructure(Infrastructure):
    pid: int
    engine: bool = False  # the engine itself (forked, or Popen without the job's command)


class ProcessWorker(BaseWorker[ProcessVariables, ProcessInfrastructure]):
    type: ClassVar[str] = "process"
    variables = ProcessVariables
    supports_kill: ClassVar[bool] = True

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._processes: dict[int, subprocess.Popen[bytes]] = {}
        self._forked: set[int] = set()
        self._readers: dict[int, list[threading.Thread]] = {}
        self._fork_server = EngineForkServer()
        self._fork_server_broken = False

    def setup(self) -> None:
        """As every worker, then start the fork server in the background: the first run
        need not wait for the engine's imports (a run claimed meanwhile waits for them
        in ``spawn``, as it would have; a server that cannot start means cold starts)."""
        super().setup()
        threading.Thread(target=self._warm_up, name="flowyard-warm-engine", daemon=True).start()

    def _warm_up(self) -> None:
        try:
            self._fork_server.start()
        except ForkServerError as exc:
            self.log.warning("warm_start_unavailable", error=str(exc))
        else:
            self.log.info("engine_warmed", pid=self._fork_server.pid)

    def create(
        self, claimed: s.ClaimedRun, configuration: ProcessVariables, output: OutputSink
    ) -> ProcessInfrastructure:
        """Start the run's process (its pid is the handle, known only once it runs)."""
        cwd = configuration.working_dir or (claimed.deployment.path if claimed.deployment else None)
        env = {**os.environ, **configuration.env, **self.engine_env(claimed)}
        pid = None
        if self._warm_start(configuration):
            pid = self._launch_forked(claimed.run.id, cwd, env, configuration, output)
        if pid is None:
            pid = self._launch_subprocess(claimed.run.id, cwd, env, configuration, output)
        return ProcessInfrastructure(
            id=f"{socket.gethostname()}:{pid}", pid=pid, engine=not configuration.command
        )

    def exit_code_is_the_engines(self, infrastructure: ProcessInfrastructure) -> bool:
        return infrastructure.engine

    def _warm_start(self, configuration: ProcessVariables) -> bool:
        return (
            configuration.warm_start
            and not configuration.command
            and not self._fork_server_broken
            and not any(name.startswith(INTERPRETER_START_PREFIXES) for name in configuration.env)
        )

    def _launch_forked(
        self,
        run_id: str,
        cwd: str | None,
        env: dict[str, str],
        configuration: ProcessVariables,
        output: OutputSink,
    ) -> int | None:
        """Fork the run from the fork server; None when it could not (then use Popen)."""
        if configuration.stream_output:
            pipes = {"stdout": os.pipe(), "stderr": os.pipe()}
            write_ends = [pipes["stdout"][1], pipes["stderr"][1]]
        else:
            pipes = {}
            write_ends = [os.open(os.devnull, os.O_WRONLY)] * 2
        try:
            pid = self._fork_server.spawn(run_id, env, cwd, write_ends[0], write_ends[1])
        except ForkServerError as exc:
            for read_end, _ in pipes.values():
                os.close(read_end)
            self._warm_start_failed(run_id, exc)
            return None
        finally:
            for fd in set(write_ends):
                os.close(fd)
        self._forked.add(pid)
        self._readers[pid] = [
            _pump(os.fdopen(read_end, "rb"), name, output) for name, (read_end, _) in pipes.items()
        ]
        return pid

    def _warm_start_failed(self, run_id: str, exc: ForkServerError) -> None:
        if self._fork_server.alive:
            self.log.warning("warm_start_refused", run_id=run_id, error=str(exc))
        elif not self._fork_server_broken:
            self._fork_server_broken = True
            self.log.warning("warm_start_unavailable", run_id=run_id, error=str(exc))

    def _launch_subprocess(
        self,
        run_id: str,
        cwd: str | None,
        env: dict[str, str],
        configuration: ProcessVariables,
        output: OutputSink,
    ) -> int:
        command = (
            shlex.split(configuration.command)
            if configuration.command
            else [sys.executable, "-m", "flowyard.engine", run_id]
        )
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
        return process.pid

    def wait(self, infrastructure: ProcessInfrastructure) -> int:
        pid = infrastructure.pid
        try:
            if pid in self._forked:
                code = self._wait_forked(pid)
            else:
                code = self._processes[pid].wait()
            for reader in self._readers.pop(pid, []):
                reader.join()
            return code
        finally:
            self._processes.pop(pid, None)
            self._forked.discard(pid)
            self._readers.pop(pid, None)

    def _wait_forked(self, pid: int) -> int:
        try:
            return self._fork_server.wait(pid)
        except ForkServerError:
            self.log.warning("fork_server_lost", pid=pid)
            _wait_ended(pid)  # the run outlives the server: hold its slot until it ends
            for reader in self._readers.pop(pid, []):
                reader.join()
            raise

    def kill(self, infrastructure: ProcessInfrastructure, grace_seconds: float) -> None:
        """SIGTERM the run's whole process group, then SIGKILL it after the grace period."""
        pid = infrastructure.pid
        process = self._processes.get(pid)
        if process is None and pid not in self._forked:
            return
        _signal_group(pid, signal.SIGTERM)
        if process is not None:
            try:
                process.wait(grace_seconds)
                return
            except subprocess.TimeoutExpired:
                pass
        elif self._forked_ended(pid, grace_seconds):
            return
        _signal_group(pid, signal.SIGKILL)

    def _forked_ended(self, pid: int, timeout: float) -> bool:
        try:
            self._fork_server.wait(pid, timeout)
            return True
        except TimeoutError:
            return False
        except ForkServerError:  # the server died: watch the process itself
            return _wait_ended(pid, timeout)

    def shutdown(self) -> None:
        """Drain and stop as every worker does, then stop the fork server."""
        try:
            super().shutdown()
        finally:
            self._fork_server.close()


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


def _wait_ended(pid: int, timeout: float | None = None) -> bool:
    """Wait for a process that is not our child to end; False if still running at ``timeout``."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except OSError:  # no pidfds here (old kernel, seccomp): look every half second
        return _poll_ended(pid, timeout)
    try:
        return bool(select.select([pidfd], [], [], timeout)[0])
    finally:
        os.close(pidfd)


def _poll_ended(pid: int, timeout: float | None) -> bool:
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = threading.Event()
    while deadline is None or time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        pause.wait(0.5)
    return False
