"""How long ``flowyard server start`` takes to exit on SIGTERM: idle, and with a worker's
claim long-polling (the server answers it at once instead of waiting it out).

Target: ≤ 1 s when idle. Each round starts a fresh embedded server (SQLite + managed Redis).

    python bench/server_stop.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import signal
import tempfile
import threading
import time
from pathlib import Path

from common import summary, write_results

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess
from flowyard.client import FlowyardClient
from flowyard.workers.process import ProcessWorker


def stop_seconds(long_poll: bool) -> float:
    """Seconds from SIGTERM to the exit of a fresh server (exit code checked)."""
    server = ServerProcess(Path(tempfile.mkdtemp(prefix="flowyard-bench-stop-")) / "home")
    try:
        server.wait_ready()
        if long_poll:
            _start_long_poll(server)
        started = time.perf_counter()
        server.process.send_signal(signal.SIGTERM)
        code = server.process.wait(60)
        elapsed = time.perf_counter() - started
    finally:
        server.stop()
    if code != 0:
        raise SystemExit(f"the server exited with {code}:\n{server.tail()}")
    return elapsed


def _start_long_poll(server: ServerProcess) -> None:
    """A claim waiting up to 60 s, given time to reach the server."""
    with server.client() as api:
        template = ProcessWorker.default_base_job_template()
        api.create_work_pool(
            s.WorkPoolCreate(name="bench", type="process", base_job_template=template)
        )

    def claim() -> None:
        with FlowyardClient(server.url, timeout=90) as api:
            api.claim("bench", s.ClaimRequest(worker_name="w", max_runs=1, wait=60))

    threading.Thread(target=claim, daemon=True).start()
    time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    idle = [stop_seconds(long_poll=False) for _ in range(args.rounds)]
    polling = [stop_seconds(long_poll=True) for _ in range(args.rounds)]
    write_results(
        "server_stop",
        {
            "rounds": args.rounds,
            "idle_stop_seconds": summary(idle),
            "stop_with_long_poll_seconds": summary(polling),
            "target_idle_seconds": 1.0,
        },
    )


if __name__ == "__main__":
    main()
