"""A second ``flowyard server start``: refused at once, with one line, starting nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from flowyard.cli.processes import ServerProcess, free_port
from tests.servers import running_server


def start(home: Path, port: int, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flowyard", "server", "start", "--port", str(port)],
        env={**os.environ, "FLOWYARD_HOME": str(home), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path):
    """Another home, the live server's port: exit 1, one line, no Redis or database made."""
    with running_server(tmp_path / "live") as live:
        result = start(tmp_path / "second", live.port)
        assert f"port {live.port} on 127.0.0.1 is already in use" in one_line(result)
        assert "Flowyard API on" not in result.stdout  # no banner for a server that never was
        assert sorted(p.name for p in (tmp_path / "second").iterdir()) == ["server.lock"]
        live.client(retry_seconds=0).health()


def test_a_second_server_on_the_same_data_folder_names_the_holder(tmp_path):
    """The same FLOWYARD_HOME, another port: exit 1 with one line naming the live PID."""
    with running_server(tmp_path / "home") as live:
        line = one_line(start(tmp_path / "home", free_port()))
        assert f"another Flowyard server (PID {live.pid}) is using the data folder" in line
        live.client(retry_seconds=0).health()


def test_the_data_folder_is_free_again_after_a_crash(tmp_path, redis_url):
    """A server killed outright leaves no lock behind: the next one starts on the same home."""
    env = {"FLOWYARD_REDIS_URL": redis_url}
    crashed = ServerProcess(tmp_path / "home", env=env)
    crashed.wait_ready()
    crashed.stop(sig=signal.SIGKILL)
    with running_server(tmp_path / "home", env) as again:
        again.client(retry_seconds=0).health()


def test_ctrl_c_stops_the_server_with_exit_0(tmp_path, redis_url):
    """SIGINT (Ctrl-C) is the ordinary way to stop it: exit 0, no "Aborted!"."""
    server = ServerProcess(tmp_path / "home", env={"FLOWYARD_REDIS_URL": redis_url})
    server.wait_ready()
    assert server.stop(sig=signal.SIGINT) == 0, server.tail()
    assert "Aborted!" not in server.tail() and "Flowyard API stopped." in server.tail()


def test_a_malformed_redis_url_is_one_line_before_anything_starts(tmp_path):
    """A Sentinel URL with a port that is no number: exit 1, one line saying the URL's shape."""
    result = start(tmp_path / "home", free_port(), FLOWYARD_REDIS_URL="redis+sentinel://h:x/svc")
    assert "a Sentinel URL names its Sentinels" in one_line(result)
    assert "Flowyard API on" not in result.stdout
