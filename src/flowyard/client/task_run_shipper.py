"""``TaskRunShipper``: task-run records to ``POST /api/task_runs/bulk`` in batches.

A record is everything known about one task run, upserted by id, so the record written
when a task run starts and the one written when it ends coalesce into one while the
first still waits (the usual case for a fast task): one row, one round trip per batch.
A batch stays within the API's body limit; a record too large to be sent even alone is
dropped with an error log (``task_runs_too_large``), the others shipped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flowyard.client.batches import BatchShipper

if TYPE_CHECKING:
    from flowyard.client import FlowyardClient

TaskRunDocument = dict[str, Any]
"""A ``schemas.TaskRunRecord`` as JSON (built without pydantic: this is the hot path)."""


class TaskRunShipper(BatchShipper[TaskRunDocument]):
    """Ships task-run records, the newer record of a task run replacing an unsent older one."""

    def __init__(
        self,
        client: FlowyardClient,
        *,
        flush_interval: float = 0.2,
        batch_size: int = 500,
        retry_interval: float = 1.0,
        max_pending: int = 100_000,
    ) -> None:
        super().__init__(
            client.upsert_task_runs,
            name="task_runs",
            key=_task_run_id,
            max_bytes=client.max_request_bytes,
            flush_interval=flush_interval,
            batch_size=batch_size,
            retry_interval=retry_interval,
            max_pending=max_pending,
        )

    def start(self) -> TaskRunShipper:
        super().start()
        return self


def _task_run_id(document: TaskRunDocument) -> object:
    return document["id"]
