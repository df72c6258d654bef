"""Stopping the server on SIGTERM: at once, with exit code 0, answering what is in flight."""

from __future__ import annotations

import http.client
import json
import os
import signal
from pathlib import Path

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess
from flowyard.workers.process import ProcessWorker
from tests.waiting import wait_until

LONG_POLL = 60.0  # the longest claim wait; the server must not wait it out
STOP_DEADLINE = 30.0  # generous for a loaded machine, but well under LONG_POLL


def _read_by_server(server_pid: int, server_port: int, client_port: int) -> bool:
    """The server process holds the connection from ``client_port`` and has read all that
    was sent on it (its receive queue is empty): the request is in its hands."""
    inodes = set()
    for fd in Path(f"/proc/{server_pid}/fd").iterdir():
        try:
            inodes.add(os.readlink(fd))
        except OSError:
            continue
    for line in Path(f"/proc/{server_pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, queues, inode = fields[1], fields[2], fields[4], fields[9]
        if (
            local.endswith(f":{server_port:04X}")
            and remote.endswith(f":{client_port:04X}")
            and f"socket:[{inode}]" in inodes
        ):
            return queues.split(":")[1] == "00000000"
    return False


def test_sigterm_answers_a_long_poll_in_flight_and_exits_cleanly(tmp_path: Path) -> None:
    """A claim long-polling when SIGTERM comes is answered (no runs) instead of being waited
    out or cut off, and the server exits with code 0."""
    server = ServerProcess(tmp_path / "home")
    try:
        server.wait_ready()
        with server.client() as api:
            template = ProcessWorker.default_base_job_template()
            api.create_work_pool(
                s.WorkPoolCreate(name="stopping", type="process", base_job_template=template)
            )
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=STOP_DEADLINE)
        body = {"worker_name": "w1", "max_runs": 1, "wait": LONG_POLL}
        headers = {"Content-Type": "application/json"}
        connection.request("POST", "/api/work_pools/stopping/claim", json.dumps(body), headers)
        client_port = connection.sock.getsockname()[1]
        wait_until(
            lambda: _read_by_server(server.pid, server.port, client_port),
            message="the server read the claim request",
        )

        server.process.send_signal(signal.SIGTERM)
        response = connection.getresponse()
        answer = response.read()
        exit_code = server.process.wait(STOP_DEADLINE)
    finally:
        server.stop(timeout=5)

    assert response.status == 200, answer
    assert json.loads(answer) == {"runs": []}
    assert exit_code == 0, server.tail()
