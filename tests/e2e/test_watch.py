"""``deployment run --watch``: every state is printed, Late included, and a pool with no
online worker is said."""

from __future__ import annotations

import threading
from subprocess import CompletedProcess

from tests.servers import run_cli
from tests.waiting import wait_until


def test_watch_says_no_worker_serves_the_pool_then_late_running_completed(
    server, api, deploy, pool, start_worker
):
    """Watched with no worker: the run is said to wait for one, turns Late, and once a
    worker starts every state is printed in order, Running included."""
    dep = deploy("noop", late_after_seconds=0.5)
    done: list[CompletedProcess[str]] = []
    watcher = threading.Thread(
        target=lambda: done.append(
            run_cli(server, "deployment", "run", f"{dep.flow_name}/{dep.name}", "--watch")
        )
    )
    watcher.start()
    wait_until(
        lambda: [r.state.name for r in api.list_flow_runs(pool=pool)] == ["Late"], timeout=60
    )
    start_worker()
    watcher.join(timeout=120)
    assert not watcher.is_alive(), "the watch did not end with the run"
    [result] = done
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"No online worker serves pool {pool!r}" in out
    said = [line.split(" is ")[1] for line in out.splitlines() if line.startswith("Flow run ")]
    assert said[:2] == ["Scheduled", "Late"], out
    assert "Running" in said and said[-1] == "Completed", out
    assert said.index("Late") < said.index("Running") < said.index("Completed")
