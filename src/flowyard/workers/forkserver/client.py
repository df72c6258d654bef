"""The worker's side of the fork server: start it, ask for children, learn their exit codes."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import Any

from flowyard.errors import ForkServerError
from flowyard.workers.forkserver.protocol import DEFAULT_TARGET, MAX_MESSAGE


@dataclass
class _Child:
    code: int | None = None


class EngineForkServer:
    """One worker's fork server: started on the first ``spawn``, thread-safe, closed once.

    ``spawn`` returns the child's pid; ``wait`` blocks until that child's exit message. A
    reader thread dispatches the server's messages; if the server dies, every pending and
    later ``spawn``/``wait`` raises ``ForkServerError`` instead of hanging.
    """

    def __init__(self, *, start_timeout: float = 30.0, reply_timeout: float = 30.0) -> None:
        self.start_timeout = start_timeout
        self.reply_timeout = reply_timeout
        self._start_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._cond = threading.Condition()
        self._process: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._ready = False
        self._failure: str | None = None  # set once: why the server is no longer usable
        self._next_id = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self._children: dict[int, _Child] = {}

    @property
    def alive(self) -> bool:
        """True once started and until it died or was closed."""
        with self._cond:
            return self._ready and self._failure is None

    @property
    def pid(self) -> int | None:
        """The server process's pid (None before the start)."""
        return self._process.pid if self._process else None

    def start(self) -> None:
        """Start the server and wait until it imported the engine (no-op once started)."""
        with self._start_lock:
            if self._process is None and self._failure is None:
                self._launch()
            with self._cond:
                self._cond.wait_for(
                    lambda: self._ready or self._failure is not None, self.start_timeout
                )
                ready, failure = self._ready, self._failure
        if failure is not None:
            raise ForkServerError(failure)
        if not ready:
            self._fail(f"the fork server did not start within {self.start_timeout}s")
            raise ForkServerError("the fork server did not start")

    def _launch(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        command = [sys.executable, "-u", "-m", "flowyard.workers.forkserver"]
        try:
            self._process = subprocess.Popen(
                [*command, "--fd", str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,  # a terminal's Ctrl-C is for the worker, not for it
            )
        except OSError as exc:
            ours.close()
            self._failure = f"the fork server could not start: {exc}"
            raise ForkServerError(self._failure) from exc
        finally:
            theirs.close()
        self._sock = ours
        self._reader = threading.Thread(target=self._read, name="forkserver-reader", daemon=True)
        self._reader.start()

    def spawn(
        self,
        run_id: str,
        env: dict[str, str],
        cwd: str | None,
        stdout_fd: int,
        stderr_fd: int,
        target: str = DEFAULT_TARGET,
    ) -> int:
        """Fork a child running ``target([run_id])``; return its pid (its process group id)."""
        self.start()
        with self._cond:
            self._next_id += 1
            request_id = self._next_id
        request = {"op": "spawn", "id": request_id, "target": target, "argv": [run_id]}
        payload = json.dumps({**request, "env": env, "cwd": cwd}).encode()
        try:
            with self._send_lock:
                assert self._sock is not None
                socket.send_fds(self._sock, [payload], [stdout_fd, stderr_fd])
        except OSError as exc:
            raise ForkServerError(f"the spawn request could not be sent: {exc}") from exc
        with self._cond:
            self._cond.wait_for(
                lambda: request_id in self._replies or self._failure is not None,
                self.reply_timeout,
            )
            reply, failure = self._replies.pop(request_id, None), self._failure
        if reply is None:
            if failure is None:
                self._fail(f"the fork server did not answer within {self.reply_timeout}s")
            raise ForkServerError(failure or "the fork server did not answer")
        if reply["op"] != "spawned":
            raise ForkServerError(f"the fork server refused the spawn: {reply['error']}")
        return int(reply["pid"])

    def wait(self, pid: int, timeout: float | None = None) -> int:
        """The exit code of a spawned child (negative: killed by that signal).

        Raises ``TimeoutError`` after ``timeout`` and ``ForkServerError`` when the server died
        (the code is then unknown). A wait without timeout is the owner's: once it has the
        code the child is forgotten; timed waits (a kill's grace period) leave it known.
        """
        with self._cond:
            child = self._children.get(pid)
            if child is None:
                raise ForkServerError(f"pid {pid} is not a child of this fork server")
            done = self._cond.wait_for(
                lambda: child.code is not None or self._failure is not None, timeout
            )
            if child.code is not None:
                if timeout is None:
                    self._children.pop(pid, None)
                return child.code
            if done:
                raise ForkServerError(f"exit code of pid {pid} unknown: {self._failure}")
        raise TimeoutError(f"pid {pid} still running after {timeout}s")

    def close(self) -> None:
        """Stop the server (children keep running); pending waits fail."""
        with self._start_lock:
            self._fail("the fork server was closed")
            if self._reader is not None:
                self._reader.join()
            if self._sock is not None:
                self._sock.close()

    def _fail(self, reason: str) -> None:
        """Mark the server unusable (first reason wins), hang up and reap it."""
        with self._cond:
            self._failure = self._failure or reason
            self._cond.notify_all()
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._process is not None:
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def _read(self) -> None:
        assert self._sock is not None
        reason = "the fork server exited"
        try:
            while data := self._sock.recv(MAX_MESSAGE):
                self._dispatch(json.loads(data))
        except (OSError, ValueError) as exc:
            reason = f"the fork server connection failed: {exc}"
        self._fail(reason)

    def _dispatch(self, message: dict[str, Any]) -> None:
        with self._cond:
            op = message["op"]
            if op == "ready":
                self._ready = True
            elif op in ("spawned", "refused"):
                self._replies[message["id"]] = message
                if op == "spawned":
                    self._children[message["pid"]] = _Child()
            elif op == "exited" and message["pid"] in self._children:
                self._children[message["pid"]].code = message["code"]
            self._cond.notify_all()
