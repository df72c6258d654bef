"""``LogShipper``: log records to the API in batches, from a background thread.

Used by the engine for a run's own logs and by workers for their infrastructure's output.
The batching, retries and memory bound are ``BatchShipper``'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flowyard.client.batches import BatchShipper, should_keep
from flowyard.schemas import LogCreate

if TYPE_CHECKING:
    from flowyard.client import FlowyardClient

__all__ = ["LogShipper", "should_keep"]


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
            flush_interval=flush_interval,
            batch_size=batch_size,
            retry_interval=retry_interval,
            max_pending=max_pending,
        )

    def start(self) -> LogShipper:
        super().start()
        return self
