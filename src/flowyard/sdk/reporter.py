"""Reporters: where a flow run's task runs are recorded.

A local run (``python my_flow.py`` with no server) records nothing; a run recorded
through the API (the engine's, or a direct call while a server is configured) records
task runs there. Reporting is bookkeeping: it never fails the user's task and never
makes it wait for the API. ``ApiReporter`` hands records to a background shipper
(``client.task_run_shipper``) that upserts them in batches; a task run's start and end
coalesce into one record when the start was not sent yet. ``flush`` at the end of the
flow run makes every record visible; records made while the API is away are retried
until it is back (up to the flush's timeout at the flow run's end).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from flowyard.errors import FlowyardError

if TYPE_CHECKING:
    from flowyard.client import FlowyardClient
    from flowyard.client.task_run_shipper import TaskRunShipper
    from flowyard.schemas import TaskRunCreate, TaskRunUpdate

log = structlog.get_logger()

FLUSH_SECONDS = 30.0
"""How long the end of a flow run waits for its task-run records to reach the API."""

WAIT_SECONDS = 10.0
"""How long a record started with ``wait`` (a subflow's call) waits to reach the API."""


class Reporter(Protocol):
    """Records the life of task runs."""

    records: bool
    """False when nothing is recorded, so callers may skip building the documents."""

    def start_task_run(self, body: TaskRunCreate, *, wait: bool = False) -> str | None:
        """Record a new task run (``wait``: until the API has it, for a while); returns its
        id, or None when it cannot be recorded."""
        ...

    def finish_task_run(self, task_run_id: str, body: TaskRunUpdate) -> None:
        """Record a task run's final state."""
        ...

    def flush(self, timeout: float | None = None) -> bool:
        """Deliver every record made so far; False when some are left after ``timeout``
        (default: the reporter's own patience)."""
        ...


class LocalReporter:
    """Records nothing: the ids chosen by the SDK are the ids."""

    records = False

    def start_task_run(self, body: TaskRunCreate, *, wait: bool = False) -> str | None:
        return body.id

    def finish_task_run(self, task_run_id: str, body: TaskRunUpdate) -> None:
        return None

    def flush(self, timeout: float | None = None) -> bool:
        return True


class ApiReporter:
    """Records task runs through the Flowyard API, in batches from a background thread.

    The thread starts with the first record and stops at ``flush``, so a reporter that
    outlives its flow run holds no thread.
    """

    records = True

    def __init__(
        self, client: FlowyardClient, *, flush_seconds: float = FLUSH_SECONDS,
        **shipper_options: Any,
    ) -> None:  # fmt: skip
        self._client = client
        self._flush_seconds = flush_seconds  # an engine waits longer than a script
        self._shipper_options = shipper_options
        self._shipper: TaskRunShipper | None = None
        self._open: dict[str, dict[str, Any]] = {}  # started, not finished: their records
        self._lock = threading.Lock()
        self._failed_before = 0  # failed batches of the shippers already closed

    @property
    def failed_batches(self) -> int:
        """Batches that failed to ship and were kept for a retry (the API was away)."""
        shipper = self._shipper
        return self._failed_before + (shipper.failed_batches if shipper is not None else 0)

    @property
    def pending(self) -> int:
        """Records not delivered yet."""
        shipper = self._shipper
        return shipper.pending if shipper is not None else 0

    def start_task_run(self, body: TaskRunCreate, *, wait: bool = False) -> str | None:
        record = _record(body)
        with self._lock:
            self._open[record["id"]] = record
            shipper = self._put(dict(record))
        if wait and not shipper.flush(WAIT_SECONDS):  # kept and retried all the same
            log.warning("task_run_not_recorded_yet", task_run=body.name)
        return str(record["id"])

    def finish_task_run(self, task_run_id: str, body: TaskRunUpdate) -> None:
        with self._lock:
            record = self._open.pop(task_run_id, None)
            if record is not None:
                self._put(_finished(record, body))
                return
        try:  # not started by this reporter: the single-record route
            self._client.set_task_run_state(task_run_id, body)
        except FlowyardError as exc:
            log.warning("task_run_report_failed", task_run_id=task_run_id, error=str(exc))

    def put_records(self, records: list[dict[str, Any]]) -> None:
        """Ship task-run records made elsewhere (a Dask or Ray worker's, carried back with
        the task's state), each replacing what this reporter holds of its task run."""
        with self._lock:
            for record in records:
                self._open.pop(record["id"], None)
                self._put(record)

    def flush(self, timeout: float | None = None) -> bool:
        with self._lock:
            shipper, self._shipper = self._shipper, None
        if shipper is None:
            return True
        delivered = shipper.close(self._flush_seconds if timeout is None else timeout)
        self._failed_before += shipper.failed_batches
        if not delivered:
            log.error("task_runs_not_recorded", records=shipper.pending, dropped=shipper.dropped)
        return delivered

    def _put(self, record: dict[str, Any]) -> TaskRunShipper:
        """Hand a record to the shipper, starting one if needed (caller holds the lock)."""
        if self._shipper is None:
            from flowyard.client.task_run_shipper import TaskRunShipper

            self._shipper = TaskRunShipper(self._client, **self._shipper_options).start()
        self._shipper.put(record)
        return self._shipper


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _record(body: TaskRunCreate) -> dict[str, Any]:
    """A ``TaskRunRecord`` (as JSON) for a task run that starts now."""
    import uuid

    record = body.model_dump(mode="json")
    record["id"] = record["id"] or str(uuid.uuid4())
    record["start_time"] = _now() if body.state.value == "RUNNING" else None
    return record


def _finished(record: dict[str, Any], body: TaskRunUpdate) -> dict[str, Any]:
    """``record`` updated with the task run's final state, ended now."""
    update = body.model_dump(mode="json", exclude_none=True)
    done = {**record, **update}
    if body.state.is_terminal:
        done["end_time"] = _now()
    if done.get("start_time") is None and body.state.value == "RUNNING":
        done["start_time"] = _now()
    return done
