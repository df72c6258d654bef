"""The fork server's own process: import the engine once, then fork a child per request."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import selectors
import signal
import socket
import sys
import traceback
from typing import Any, NoReturn

from flowyard.workers.forkserver.protocol import EXIT_TARGET_FAILED, MAX_MESSAGE, PRELOAD


class _Server:
    """The single-threaded loop: requests on the socket, SIGCHLD on a wakeup pipe."""

    def __init__(self, sock: socket.socket, handlers: dict[signal.Signals, Any]) -> None:
        self.sock = sock
        self.handlers = handlers  # a fresh interpreter's signal handlers, restored in children
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.selector = selectors.DefaultSelector()

    def serve(self) -> int:
        signal.signal(signal.SIGCHLD, _ignore)  # a Python handler, so the wakeup fd is written
        signal.set_wakeup_fd(self.wake_w)
        self.selector.register(self.sock, selectors.EVENT_READ)
        self.selector.register(self.wake_r, selectors.EVENT_READ)
        try:
            self._send({"op": "ready", "pid": os.getpid()})
            while True:
                for key, _ in self.selector.select():
                    if key.fileobj is self.sock and not self._handle_request():
                        return 0
                    if key.fileobj == self.wake_r:
                        self._drain_wakeup()
                        self._reap()
        except OSError:  # the worker is gone (EPIPE, ECONNRESET): nobody left to serve
            return 0

    def _send(self, message: dict[str, Any]) -> None:
        self.sock.send(json.dumps(message).encode())

    def _handle_request(self) -> bool:
        """Serve one request; False on EOF."""
        data, fds, flags, _ = socket.recv_fds(self.sock, MAX_MESSAGE, 2)
        if not data:
            return False
        request: dict[str, Any] = {}
        try:
            request = dict(json.loads(data))
            _check_request(request, fds, flags)
            pid = self._fork(request, fds)
        except (ValueError, KeyError, TypeError, OSError) as exc:
            self._send({"op": "refused", "id": request.get("id"), "error": str(exc)})
        else:
            self._send({"op": "spawned", "id": request["id"], "pid": pid})
        finally:
            for fd in fds:
                os.close(fd)
        return True

    def _fork(self, request: dict[str, Any], fds: list[int]) -> int:
        """Fork the child; return once it has its own session, so ``killpg(pid)`` works."""
        ready_r, ready_w = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(ready_r)
            os.close(ready_w)
            raise
        if pid == 0:
            self._child(request, fds, ready_r, ready_w)
        os.close(ready_w)
        try:
            os.read(ready_r, 1)  # EOF once the child called setsid() (or died)
        finally:
            os.close(ready_r)
        return pid

    def _child(self, request: dict[str, Any], fds: list[int], *ready: int) -> NoReturn:
        """In the child: become the run's process, call the target, never return."""
        code = EXIT_TARGET_FAILED
        try:
            os.setsid()
            for fd in ready:
                os.close(fd)  # the server's read() returns: our process group exists
            self._forget_server()
            _redirect(fds[0], fds[1])
            _become(request["cwd"], request["env"], request["target"], request["argv"])
            code = _exit_code(_call(request["target"], request["argv"]))
        except SystemExit as exc:
            code = _exit_code(exc.code)
        except BaseException:
            traceback.print_exc()
        finally:
            _flush()
            os._exit(code)

    def _forget_server(self) -> None:
        """In a child: drop the server's socket, selector, wakeup pipe and signal handlers."""
        signal.set_wakeup_fd(-1)
        for signum, handler in self.handlers.items():
            if signal.getsignal(signum) is not handler:
                signal.signal(signum, handler)
        self.selector.close()
        self.sock.close()
        os.close(self.wake_r)
        os.close(self.wake_w)

    def _drain_wakeup(self) -> None:
        try:
            while os.read(self.wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._send({"op": "exited", "pid": pid, "code": os.waitstatus_to_exitcode(status)})


def _ignore(signum: int, frame: object) -> None:
    """SIGCHLD's handler: the wakeup fd does the work."""


def _check_request(request: dict[str, Any], fds: list[int], flags: int) -> None:
    if flags & (socket.MSG_CTRUNC | socket.MSG_TRUNC) or len(fds) != 2:
        raise ValueError("a spawn request needs exactly two file descriptors: stdout, stderr")
    if request.get("op") != "spawn" or not isinstance(request.get("id"), int):
        raise ValueError(f"not a spawn request: {request.get('op')!r}")
    module, sep, function = str(request["target"]).partition(":")
    if not (module and sep and function):
        raise ValueError(f"target {request['target']!r} is not 'module:function'")
    argv, env = request["argv"], request["env"]
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        raise TypeError("argv must be a list of strings")
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise TypeError("env must map strings to strings")
    cwd = request["cwd"]
    if cwd is not None and not os.path.isdir(cwd):
        raise FileNotFoundError(f"working directory {cwd!r} does not exist")


def _redirect(stdout_fd: int, stderr_fd: int) -> None:
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(stdout_fd, 1)
    os.dup2(stderr_fd, 2)
    os.close(stdout_fd)
    os.close(stderr_fd)


def _become(cwd: str | None, env: dict[str, str], target: str, argv: list[str]) -> None:
    """What ``exec`` would have given: cwd, environment, argv and ``-m``'s ``sys.path[0]``."""
    if cwd is not None:
        os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = [target, *argv]
    sys.path[0] = os.getcwd()
    importlib.invalidate_caches()


def _call(target: str, argv: list[str]) -> object:
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)(argv)


def _exit_code(value: object) -> int:
    """``sys.exit`` semantics: None is 0, an int is itself, anything else is printed and 1."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    print(value, file=sys.stderr)
    return EXIT_TARGET_FAILED


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flowyard.workers.forkserver")
    parser.add_argument("--fd", type=int, required=True, help="the inherited socket")
    args = parser.parse_args(argv)
    handlers = {sig: signal.getsignal(sig) for sig in signal.valid_signals()}
    handlers = {sig: h for sig, h in handlers.items() if h is not None}
    for module in PRELOAD:
        importlib.import_module(module)
    return _Server(socket.socket(fileno=args.fd), handlers).serve()
