"""Serving tasks: a task worker runs their background runs (``flowyard.task_worker.serve``).

::

    from flowyard.task_worker import serve

    serve(add, other_task, limit=10)   # or add.serve()

A task worker long-polls the API for Scheduled runs of its tasks (``Task.delay``), at
most ``limit`` at a time, runs each in a thread of its own, and heartbeats the claims it
holds so that their leases do not expire; if it dies, the leases expire and its runs go
back to the queue for another worker. It talks to the API only (``FLOWYARD_API_URL``).
The runs' logs are printed by the worker (on stderr); those of a run made by a flow run
the API knows are shipped to that flow run too (with the run's task run id).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from flowyard import schemas as s
from flowyard.client.log_shipper import LogShipper
from flowyard.errors import FlowyardError
from flowyard.sdk.background import LOG_FLUSH_SECONDS, run_claimed
from flowyard.sdk.distributed_futures import background_client
from flowyard.utilities.status_http import Answer, ReadOnlyHttpServer

if TYPE_CHECKING:
    from flowyard.client import FlowyardClient
    from flowyard.sdk.tasks import Task

log = structlog.get_logger()

CLAIM_WAIT_SECONDS = 20.0
MAX_BACKOFF_SECONDS = 5.0


class TaskWorker:
    """Runs the background runs of ``tasks``, at most ``limit`` at once."""

    def __init__(
        self,
        *tasks: Task[..., Any],
        limit: int | None = 10,
        client: FlowyardClient | None = None,
        heartbeat_seconds: float | None = None,
    ) -> None:
        if not tasks:
            raise ValueError("a task worker needs at least one task to serve")
        self.tasks = {task.task_key: task for task in tasks}
        self.limit = limit or 1_000
        self.unlimited = not limit  # Prefect's status then shows no limit
        self.client = client or background_client()
        if heartbeat_seconds is None:
            from flowyard.settings import Settings

            heartbeat_seconds = Settings().worker_heartbeat_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.name = f"task-worker-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.shipper = LogShipper(self.client)  # logs of runs made by flow runs go there
        self._held: dict[str, str] = {}  # run id -> claim token
        self.started_at: datetime | None = None
        self._in_flight: dict[str, dict[str, datetime]] = {key: {} for key in self.tasks}
        self._finished: dict[str, int] = dict.fromkeys(self.tasks, 0)
        self._changed = threading.Condition()
        self._stopping = threading.Event()

    def status(self) -> dict[str, Any]:
        """What this worker is doing, in the shape of Prefect's task worker ``/status``."""
        with self._changed:
            return {
                "client_id": self.name,
                "started_at": None if self.started_at is None else self.started_at.isoformat(),
                "stopping": self._stopping.is_set(),
                "limit": None if self.unlimited else self.limit,
                "current": len(self._held),
                "available": None if self.unlimited else max(0, self.limit - len(self._held)),
                "tasks": sorted(self.tasks),
                "finished": dict(self._finished),
                "in_flight": {
                    key: {run_id: at.isoformat() for run_id, at in runs.items()}
                    for key, runs in self._in_flight.items()
                },
            }

    def stop(self) -> None:
        """Stop claiming; the runs started go on to their end."""
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()

    def run(self, timeout: float | None = None) -> None:
        """Claim and run until ``stop()`` (or ``timeout`` seconds); waits for started runs."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self.started_at = datetime.now(UTC)
        log.info("task_worker_started", worker=self.name, tasks=sorted(self.tasks))
        beating = threading.Thread(
            target=self._heartbeat, name="task-worker-heartbeat", daemon=True
        )
        beating.start()
        self.shipper.start()
        with ThreadPoolExecutor(self.limit, thread_name_prefix="task-run") as pool:
            backoff = 0.1
            while not self._stopping.is_set():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                free = self._wait_for_capacity()
                if free == 0:
                    continue
                try:
                    claimed = self._claim(free, left)
                except FlowyardError as exc:
                    log.warning("task_claim_failed", error=str(exc), retry_in=backoff)
                    self._stopping.wait(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                    continue
                backoff = 0.1
                for run in claimed:
                    with self._changed:
                        self._held[run.run.id] = run.token
                    pool.submit(self._run, run)
        self._stopping.set()
        self.shipper.close(LOG_FLUSH_SECONDS)
        log.info("task_worker_stopped", worker=self.name)

    def _wait_for_capacity(self) -> int:
        with self._changed:
            if len(self._held) >= self.limit and not self._stopping.is_set():
                self._changed.wait(self.heartbeat_seconds)
            return max(0, self.limit - len(self._held))

    def _claim(self, free: int, left: float | None) -> list[s.ClaimedTaskRun]:
        wait = CLAIM_WAIT_SECONDS if left is None else max(0.0, min(left, CLAIM_WAIT_SECONDS))
        body = s.TaskWorkerClaim(
            task_keys=list(self.tasks), worker_name=self.name, max_runs=free, wait=wait
        )
        return self.client.claim_background_task_runs(body)

    def _run(self, claimed: s.ClaimedTaskRun) -> None:
        run = claimed.run
        log.info("task_run_claimed", run_id=run.id, task_run=run.name, worker=self.name)
        with self._changed:
            self._in_flight[run.task_key][run.id] = datetime.now(UTC)
        try:
            run_claimed(self.tasks[run.task_key], claimed, self.client, self.shipper)
        except Exception:
            log.exception("task_run_not_reported", run_id=run.id)
        finally:
            with self._changed:
                self._held.pop(run.id, None)
                self._in_flight[run.task_key].pop(run.id, None)
                self._finished[run.task_key] += 1
                self._changed.notify_all()

    def _heartbeat(self) -> None:
        """Extend the leases of the runs held, every ``heartbeat_seconds``, until stopped
        and every run has ended."""
        while not (self._stopping.is_set() and not self._held):
            with self._changed:
                held = [s.HeldTaskRun(id=run_id, token=t) for run_id, t in self._held.items()]
            if held:
                try:
                    kept = self.client.task_worker_heartbeat(
                        s.TaskWorkerHeartbeat(worker_name=self.name, runs=held)
                    )
                    for lost in {h.id for h in held} - set(kept):
                        log.warning("task_run_lease_lost", run_id=lost)
                except FlowyardError as exc:
                    log.warning("task_worker_heartbeat_failed", error=str(exc))
            self._stopping.wait(self.heartbeat_seconds)


def serve(
    *tasks: Task[..., Any],
    limit: int | None = 10,
    status_server_port: int | None = None,
    timeout: float | None = None,
) -> None:
    """Serve ``tasks``: run their background runs here, ``limit`` at once, until interrupted
    (Ctrl-C or SIGTERM) or ``timeout`` seconds have passed.

    ``status_server_port``: also answer ``GET /status`` on ``127.0.0.1:PORT`` with what the
    worker is doing (``TaskWorker.status``, Prefect's document), while it serves."""
    worker = TaskWorker(*tasks, limit=limit)
    status = None
    if status_server_port is not None:
        status = status_server(worker, status_server_port).start()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # ends a claim's long poll at once
    try:
        worker.run(timeout=timeout)
    except KeyboardInterrupt:
        worker.stop()  # runs claimed in that instant go back to the queue when their lease ends
    finally:
        if status is not None:
            status.stop()


def status_server(worker: TaskWorker, port: int) -> ReadOnlyHttpServer:
    """``GET /status`` of ``worker`` on loopback ``port`` (0: a free one), as Prefect's."""

    def answer() -> Answer:
        body = json.dumps(worker.status(), separators=(",", ":"))
        return 200, body.encode(), "application/json"

    return ReadOnlyHttpServer("127.0.0.1", port, {"/status": answer}, name="task-worker-status")


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


__all__ = ["TaskWorker", "serve", "status_server"]
