"""``LogShipper``: log records to the API in batches, from a background thread.

Used by the engine for a run's own logs and by workers for their infrastructure's output.
The batching, retries and bounds are ``BatchShipper``'s. Every producer builds its
records with ``log_record``, which cuts a line longer than the API takes
(``MAX_LOG_MESSAGE_LENGTH`` characters) and says so at its end, so that no line a
user's code prints can fail the producer or be refused; the shipper cuts further a
record that would not fit in a request on its own.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING

from flowyard.client.batches import BatchShipper
from flowyard.client.bodies import json_size
from flowyard.schemas import MAX_LOG_MESSAGE_LENGTH, LogCreate

if TYPE_CHECKING:
    from flowyard.client import FlowyardClient

__all__ = ["LogShipper", "cut_message", "log_record"]

_CUT_NOTE = re.compile(r"… \[cut: (\d+) more characters\]\Z")


def cut_message(message: str, limit: int = MAX_LOG_MESSAGE_LENGTH) -> str:
    """``message``, or its start and a note of how much was cut, in at most ``limit``
    characters. A message cut before is cut again with one note counting both cuts."""
    if len(message) <= limit:
        return message
    earlier = 0
    found = _CUT_NOTE.search(message)
    if found:
        earlier = int(found.group(1))
        message = message[: found.start()]
    total = len(message) + earlier
    keep = limit - len(_note(total))  # the longest note there can be: surely fits
    if keep < 0:  # no room even for the note
        return message[:limit]
    closer = limit - len(_note(total - keep))  # the note is shorter when more is kept
    if closer + len(_note(total - closer)) <= limit:
        keep = closer
    return message[:keep] + _note(total - keep)


def _note(cut: int) -> str:
    return f"… [cut: {cut} more characters]"


def log_record(
    *,
    flow_run_id: str,
    message: str,
    timestamp: datetime,
    level: int = 20,
    source: str = "engine",
    task_run_id: str | None = None,
) -> LogCreate:
    """A log record the API accepts, whatever the line: over-long lines are cut."""
    return LogCreate(
        flow_run_id=flow_run_id,
        task_run_id=task_run_id,
        level=max(0, min(level, 100)),
        message=cut_message(message),
        timestamp=timestamp,
        source=source,
    )


_MEASURED_FROM = 10_000  # characters; shorter records are only estimated
_FRAME_BYTES = 200  # the JSON of a record with empty texts, and more


def _log_size(record: LogCreate) -> int:
    """The record's size as JSON: for a short one (the usual case, so cheaply) a bound, as
    a character takes at most 6 bytes (``\\u001b``); exact for a long one."""
    texts = (record.message, record.flow_run_id, record.task_run_id or "", record.source)
    chars = sum(map(len, texts))
    if chars < _MEASURED_FROM:
        return _FRAME_BYTES + 6 * chars
    return json_size(record.model_dump(mode="json"))


def _shrink(record: LogCreate, limit: int) -> LogCreate | None:
    """``record`` with its message cut so that it takes at most ``limit`` bytes as JSON;
    None when even an empty message would not fit."""
    size = _log_size(record)
    message = record.message
    while size > limit:
        if not message:
            return None
        # characters take 1 to 6 bytes (escapes): scale down, then check
        chars = min(len(message) - 1, len(message) * limit // size - 64)
        message = cut_message(message, max(0, chars)) if chars > 0 else ""
        record = record.model_copy(update={"message": message})
        size = _log_size(record)
    return record


class LogShipper(BatchShipper[LogCreate]):
    """Ships log records to the API in batches; every record is kept (no coalescing)."""

    def __init__(
        self,
        client: FlowyardClient,
        *,
        flush_interval: float = 0.2,
        batch_size: int = 100,
        retry_interval: float = 1.0,
        max_pending: int = 100_000,
    ) -> None:
        super().__init__(
            client.create_logs,
            name="logs",
            size=_log_size,
            shrink=_shrink,
            max_bytes=client.max_request_bytes,
            flush_interval=flush_interval,
            batch_size=batch_size,
            retry_interval=retry_interval,
            max_pending=max_pending,
        )

    def start(self) -> LogShipper:
        super().start()
        return self
