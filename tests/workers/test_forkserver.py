"""The engine fork server: real forked children, real signals, a real server process."""

from __future__ import annotations

import json
import os
import select
import signal
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from flowyard.errors import ForkServerError
from flowyard.workers.forkserver import EngineForkServer
from tests.waiting import wait_until

TARGET = textwrap.dedent(
    """
    import json
    import os
    import signal
    import sys


    def main(argv):
        mode = argv[0]
        seen = {
            "pid": os.getpid(),
            "pgid": os.getpgid(0),
            "cwd": os.getcwd(),
            "var": os.environ.get("FY_VAR"),
            "home": os.environ.get("HOME"),
            "stdin": sys.stdin.read(),
            "sigint": str(signal.getsignal(signal.SIGINT)),
            "sigchld": str(signal.getsignal(signal.SIGCHLD)),
        }
        print(json.dumps(seen), flush=True)
        print("on stderr", file=sys.stderr)
        if mode == "block":
            while True:
                signal.pause()
        if mode == "raise":
            raise RuntimeError("the target failed")
        return int(mode)
    """
)


@dataclass
class Child:
    pid: int
    stdout: IO[bytes]
    stderr: IO[bytes]

    def first_line(self, timeout: float = 10.0) -> dict[str, object]:
        """The JSON line the target prints first (fails instead of hanging)."""
        ready, _, _ = select.select([self.stdout], [], [], timeout)
        assert ready, f"child {self.pid} printed nothing within {timeout}s"
        return json.loads(self.stdout.readline())

    def finish(self, server: EngineForkServer) -> tuple[int, bytes, bytes]:
        """Read both streams to EOF, then the exit code."""
        out, err = self.stdout.read(), self.stderr.read()
        self.stdout.close()
        self.stderr.close()
        return server.wait(self.pid), out, err


@pytest.fixture
def target_dir(tmp_path: Path) -> Path:
    """A working directory holding the test target module ``fy_target``."""
    (tmp_path / "fy_target.py").write_text(TARGET)
    return tmp_path


@pytest.fixture
def server() -> Iterator[EngineForkServer]:
    forkserver = EngineForkServer()
    try:
        yield forkserver
    finally:
        forkserver.close()


def spawn(
    server: EngineForkServer,
    mode: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    target: str = "fy_target:main",
) -> Child:
    (out_r, out_w), (err_r, err_w) = os.pipe(), os.pipe()
    try:
        pid = server.spawn(mode, env or {"FY_VAR": "set"}, str(cwd), out_w, err_w, target=target)
    finally:
        os.close(out_w)
        os.close(err_w)
    return Child(pid, os.fdopen(out_r, "rb"), os.fdopen(err_r, "rb"))


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class TestSpawn:
    def test_exit_codes_are_the_targets_return_values(self, server, target_dir):
        """A target returning 0 or 3 exits with 0 or 3."""
        assert spawn(server, "0", target_dir).finish(server)[0] == 0
        assert spawn(server, "3", target_dir).finish(server)[0] == 3

    def test_child_gets_its_streams_env_cwd_and_session(self, server, target_dir):
        """Output reaches the given fds; env and cwd are the request's; pgid == pid."""
        child = spawn(server, "0", target_dir)
        code, out, err = child.finish(server)
        seen = json.loads(out)
        assert code == 0
        assert seen["pid"] == child.pid and seen["pgid"] == child.pid
        assert seen["cwd"] == str(target_dir)
        assert seen["var"] == "set" and seen["home"] is None  # replaced, not merged
        assert seen["stdin"] == ""
        assert err == b"on stderr\n"

    def test_child_has_a_fresh_interpreters_signal_handlers(self, server, target_dir):
        """The server's SIGCHLD handler is gone; SIGINT raises KeyboardInterrupt as usual."""
        seen = json.loads(spawn(server, "0", target_dir).finish(server)[1])
        assert seen["sigchld"] == str(signal.SIG_DFL)
        assert "default_int_handler" in seen["sigint"]

    def test_an_exception_is_exit_1_with_its_traceback(self, server, target_dir):
        """A target that raises exits 1 with the traceback on stderr."""
        code, _, err = spawn(server, "raise", target_dir).finish(server)
        assert code == 1
        assert b"RuntimeError: the target failed" in err

    def test_sigkill_is_minus_9(self, server, target_dir):
        """A child killed by SIGKILL exits with -9, as subprocess reports it."""
        child = spawn(server, "block", target_dir)
        child.first_line()
        os.kill(child.pid, signal.SIGKILL)
        assert child.finish(server)[0] == -9

    def test_killpg_stops_the_child(self, server, target_dir):
        """The child leads its own process group, so killpg(pid) stops it."""
        child = spawn(server, "block", target_dir)
        os.killpg(child.pid, signal.SIGTERM)  # right after spawn: the group already exists
        assert child.finish(server)[0] == -signal.SIGTERM

    def test_concurrent_spawns_are_all_reaped_with_their_codes(self, server, target_dir):
        """20 spawns from 20 threads each get their own exit code back."""
        codes: dict[int, int] = {}

        def one(i: int) -> None:
            codes[i] = spawn(server, str(i % 7), target_dir).finish(server)[0]

        threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert codes == {i: i % 7 for i in range(20)}

    def test_a_missing_working_directory_is_refused(self, server, target_dir):
        """A spawn into a directory that does not exist raises; the server keeps serving."""
        with pytest.raises(ForkServerError, match="does not exist"):
            spawn(server, "0", target_dir / "missing")
        assert server.alive
        assert spawn(server, "0", target_dir).finish(server)[0] == 0

    def test_the_engine_exits_1_when_the_api_is_unreachable(self, server, tmp_path):
        """The default target is the engine: no API means flow_run_start_failed and exit 1."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWYARD_")}
        env["FLOWYARD_API_URL"] = "http://127.0.0.1:9"
        child = spawn(server, "some-run-id", tmp_path, env, target="flowyard.engine.__main__:main")
        code, _, err = child.finish(server)
        assert code == 1
        assert b"flow_run_start_failed" in err


class TestLifecycle:
    def test_close_stops_the_server_but_not_its_children(self, server, target_dir):
        """After close the server process is gone, spawns fail, forked runs keep running."""
        child = spawn(server, "block", target_dir)
        child.first_line()
        server_pid = server.pid
        server.close()
        try:
            with pytest.raises(ProcessLookupError):
                os.kill(server_pid, 0)
            assert not server.alive
            os.kill(child.pid, 0)  # still running
            with pytest.raises(ForkServerError):
                spawn(server, "0", target_dir)
        finally:
            kill_group(child.pid)

    def test_a_dead_server_fails_pending_waits_promptly(self, server, target_dir):
        """When the server is killed, a wait on a running child raises instead of hanging."""
        child = spawn(server, "block", target_dir)
        child.first_line()
        failures: list[BaseException] = []

        def wait() -> None:
            try:
                server.wait(child.pid)
            except BaseException as exc:
                failures.append(exc)

        waiter = threading.Thread(target=wait)
        waiter.start()
        try:
            os.kill(server.pid, signal.SIGKILL)
            waiter.join(10)
            assert not waiter.is_alive()
            assert len(failures) == 1 and isinstance(failures[0], ForkServerError)
            wait_until(lambda: not server.alive, message="server still reported alive")
        finally:
            kill_group(child.pid)

    def test_a_timed_wait_raises_timeout_and_keeps_the_child(self, server, target_dir):
        """wait(timeout) on a running child raises TimeoutError; a later wait gets the code."""
        child = spawn(server, "block", target_dir)
        child.first_line()
        with pytest.raises(TimeoutError):
            server.wait(child.pid, timeout=0.1)
        os.killpg(child.pid, signal.SIGKILL)
        assert child.finish(server)[0] == -9
