"""Task-run records as the SDK ships them, made up in bulk for the pages that draw them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from flowyard import schemas as s
from flowyard.states import StateType


def task_run_records(run_id: str, count: int, tasks: int = 5) -> list[dict[str, object]]:
    """``count`` task runs of ``tasks`` tasks over a minute, each fed by the one before."""
    start = datetime.now(UTC) - timedelta(minutes=2)
    ids = [str(uuid.uuid4()) for _ in range(count)]
    records = []
    for n, task_run_id in enumerate(ids):
        began = start + timedelta(milliseconds=30 * n)
        inputs = {"x": [{"input_type": "task_run", "id": ids[n - 1]}]} if n else {}
        records.append(
            s.TaskRunRecord(
                id=task_run_id,
                flow_run_id=run_id,
                name=f"step{n % tasks}-{n}",
                task_key=f"step{n % tasks}",
                state=StateType.FAILED if n == 7 else StateType.COMPLETED,
                start_time=began,
                end_time=began + timedelta(milliseconds=100),
                task_inputs=inputs,
            ).model_dump(mode="json")
        )
    return records
