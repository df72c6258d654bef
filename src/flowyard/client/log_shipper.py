"""``LogShipper``: log records to the API in batches, from a background thread.

Used by the engine for a run's own logs and by workers for their infrastructure's output.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING

import structlog

from flowyard.errors import ApiError
from flowyard.schemas import LogCreate

if TYPE_CHECKING:
    from flowyard.client import FlowyardClient

log = structlog.get_logger()


def should_keep(exc: Exception) -> bool:
    """True when a batch that failed to ship may still succeed later (and must be kept)."""
    if not isinstance(exc, ApiError):
        return False
    return exc.status_code == 0 or exc.status_code == 429 or exc.status_code >= 500


class LogShipper:
    """Ships log records to the API in batches from a background thread.

    A batch leaves every ``flush_interval`` seconds, or as soon as ``batch_size``
    records wait. Batches that fail transiently are kept and retried; ``close`` ships
    what is left before returning. At most ``max_pending`` records are held (oldest
    dropped first) so that a long outage cannot exhaust memory.
    """

    def __init__(
        self,
        client: FlowyardClient,
        *,
        flush_interval: float = 0.2,
        batch_size: int = 100,
        retry_interval: float = 1.0,
        max_pending: int = 100_000,
    ) -> None:
        self._client = client
        self._flush_interval = flush_interval
        self._batch_size = batch_size
        self._retry_interval = retry_interval
        self._max_pending = max_pending
        self._pending: deque[LogCreate] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._abandoned = False
        self._in_flight = 0
        self._thread = threading.Thread(target=self._loop, name="flowyard-logs", daemon=True)
        self.dropped = 0

    def start(self) -> LogShipper:
        self._thread.start()
        return self

    @property
    def pending(self) -> int:
        """Records not delivered yet: waiting, or in a batch being sent right now."""
        with self._cond:
            return len(self._pending) + self._in_flight

    def put(self, record: LogCreate) -> None:
        with self._cond:
            if len(self._pending) >= self._max_pending:
                self._pending.popleft()
                self.dropped += 1
            self._pending.append(record)
            if len(self._pending) >= self._batch_size:
                self._cond.notify_all()

    def close(self, timeout: float = 30.0) -> bool:
        """Ship what is left and stop; False when records remain after ``timeout`` seconds."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        with self._cond:
            self._abandoned = True
            self._cond.notify_all()
            return not self._pending and not self._in_flight

    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            shipped = self._ship(batch)
            with self._cond:
                self._in_flight = 0
                if not shipped:
                    self._pending.extendleft(reversed(batch))
                    self._cond.wait_for(lambda: self._abandoned, timeout=self._retry_interval)

    def _next_batch(self) -> list[LogCreate] | None:
        """Wait for the next batch; None once closing with nothing left (or abandoned)."""
        with self._cond:
            self._cond.wait_for(self._batch_ready, timeout=self._flush_interval)
            if self._abandoned or (self._closing and not self._pending):
                return None
            self._in_flight = min(self._batch_size, len(self._pending))
            return [self._pending.popleft() for _ in range(self._in_flight)]

    def _batch_ready(self) -> bool:
        return self._closing or self._abandoned or len(self._pending) >= self._batch_size

    def _ship(self, batch: list[LogCreate]) -> bool:
        """Send one batch; False when it should be kept for a retry."""
        if not batch:
            return True
        try:
            self._client.create_logs(batch)
        except Exception as exc:
            if should_keep(exc):
                log.warning("logs_ship_retrying", records=len(batch), error=str(exc))
                return False
            log.error("logs_ship_dropped", records=len(batch), error=str(exc))
        return True
