"""A process worker warms its engine when it starts, not when its first run comes."""

from __future__ import annotations

from pathlib import Path

from flowyard import schemas as s
from tests.waiting import wait_until


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                found.append(int(entry.name))
    return found


def _fork_servers(pid: int) -> list[int]:
    """The fork servers among ``pid``'s children."""
    servers = []
    for child in _children(pid):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"flowyard.workers.forkserver" in command:
            servers.append(child)
    return servers


def test_the_fork_server_starts_with_the_worker_before_any_run(api, deploy, start_worker):
    """With no run waiting, a started worker already has its fork server (the engine
    imported), and the first run it then gets completes."""
    worker = start_worker()
    [fork_server] = wait_until(lambda: _fork_servers(worker.pid), timeout=60)
    wait_until(lambda: "engine_warmed" in worker.tail(50), timeout=60)

    run = api.run_deployment(deploy("noop").id, s.DeploymentRunRequest())
    wait_until(
        lambda: api.read_flow_run(run.id).state.type.value == "COMPLETED",
        timeout=60,
        message="the first run completed",
    )
    assert _fork_servers(worker.pid) == [fork_server]  # the same, warm one served it
