"""A task worker's status server (``serve(..., status_server_port=)``), as Prefect 3.9.1's:
``GET /status`` on loopback with the worker's limit, runs in flight and runs finished
(a real server; background runs made with ``Task.delay``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import urllib.error
import urllib.request
from datetime import datetime

import pytest
from tests.sdk.conftest import ADMIN, task_worker_thread
from tests.waiting import wait_until

from flowyard import task
from flowyard.sdk.task_worker import TaskWorker, status_server
from flowyard.utilities.ports import free_port

RELEASE = threading.Event()


@task
def add(a: int, b: int) -> int:
    return a + b


@task
def gated() -> str:
    assert RELEASE.wait(60), "the test never released the task"
    return "done"


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def worker(server):
    """A task worker of ``add`` and ``gated`` (limit 3) claiming from the real server in a
    thread, with its status server on a free loopback port; one per module, as stopping
    it waits for its claim's long poll to end."""
    with task_worker_thread(server, add, gated, limit=3) as worker:
        status = status_server(worker, 0).start()
        try:
            yield worker, f"http://127.0.0.1:{status.port}"
        finally:
            RELEASE.set()
            status.stop()


def test_status_shows_runs_in_flight_and_finished(api, worker):
    """Prefect's document: limit, current and available slots, the task keys, finished
    runs per task, and each run in flight with when it started."""
    task_worker, url = worker
    RELEASE.clear()
    assert add.delay(1, 2).result(timeout=60) == 3
    running = gated.delay()
    status = wait_until(  # add's run ends in the worker just after its state is final
        lambda: (
            (doc := get(f"{url}/status")[1])["in_flight"][gated.task_key]
            and doc["finished"][add.task_key] == 1
            and doc
        ),
        timeout=60,
    )
    assert set(status) == {
        "client_id", "started_at", "stopping", "limit", "current", "available", "tasks",
        "finished", "in_flight",
    }  # fmt: skip
    assert status["client_id"] == task_worker.name and status["stopping"] is False
    assert datetime.fromisoformat(status["started_at"]).tzinfo is not None
    assert (status["limit"], status["current"], status["available"]) == (3, 1, 2)
    assert status["tasks"] == sorted([add.task_key, gated.task_key])
    assert status["finished"] == {add.task_key: 1, gated.task_key: 0}
    assert status["in_flight"][add.task_key] == {}
    assert list(status["in_flight"][gated.task_key]) == [str(running.task_run_id)]
    RELEASE.set()
    assert running.result(timeout=60) == "done"
    done = wait_until(
        lambda: (doc := get(f"{url}/status")[1])["finished"][gated.task_key] == 1 and doc,
        timeout=30,
    )
    assert (done["current"], done["available"], done["in_flight"][gated.task_key]) == (0, 3, {})


def test_only_status_is_served(worker):
    """Any other path is Prefect's JSON 404; the status server serves nothing else."""
    _, url = worker
    for path in ("/", "/health", "/docs", "/status/x"):
        assert get(f"{url}{path}") == (404, {"detail": "Not Found"}), path


def test_no_limit_shows_none(api):
    """A worker without a limit shows ``limit`` and ``available`` as null, as Prefect's."""
    status = TaskWorker(add, limit=None).status()
    assert (status["limit"], status["available"], status["started_at"]) == (None, None, None)


def test_cli_serves_status_while_serving(server, tmp_path):
    """``flowyard task serve FILE:TASK --status-server-port P`` answers ``/status`` on
    127.0.0.1:P while it serves, and stops with the worker (``--timeout``)."""
    (tmp_path / "cli_tasks.py").write_text(
        textwrap.dedent(
            """
            from flowyard import task

            @task
            def double(x: int) -> int:
                return 2 * x
            """
        )
    )
    port = free_port()
    env = {**os.environ, "FLOWYARD_API_URL": server.url, "FLOWYARD_API_KEY": ADMIN}
    command = [sys.executable, "-m", "flowyard", "task", "serve", "cli_tasks.py:double"]
    process = subprocess.Popen(
        [*command, "--status-server-port", str(port), "--timeout", "60"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        status = wait_until(lambda: _status_or_none(port), timeout=60)
        assert status["tasks"] == ["cli_tasks.double"] and status["limit"] == 10
    finally:
        process.terminate()
        output = process.communicate(timeout=60)[0].decode()
    assert process.returncode == 0, output
    assert _status_or_none(port) is None  # stopped with the worker


def _status_or_none(port: int) -> dict | None:
    try:
        return get(f"http://127.0.0.1:{port}/status")[1]
    except OSError:
        return None
