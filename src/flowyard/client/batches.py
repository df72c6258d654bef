"""``BatchShipper``: documents to the API in batches, from a background thread.

The pattern behind ``LogShipper`` and ``TaskRunShipper``. Callers ``put`` documents and
never wait for the API. A batch leaves every ``flush_interval`` seconds, or as soon as
``batch_size`` documents wait. A batch that fails transiently (the API is away, 429, 5xx)
is put back in front and retried every ``retry_interval`` seconds; any other failure drops
it with an error log. ``flush`` waits until everything put so far was shipped; ``close``
ships what is left and stops. At most ``max_pending`` documents wait (the oldest dropped
first), so that a long outage cannot exhaust memory.

Documents carry a key: a document put while an older one of the same key still waits
replaces it in place (a task run's start and end records become one). Documents without
a key (``None``) are all kept.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import structlog

from flowyard.errors import ApiError

log = structlog.get_logger()

T = TypeVar("T")


def should_keep(exc: BaseException) -> bool:
    """True when a batch that failed to ship may still succeed later (and must be kept)."""
    if not isinstance(exc, ApiError):
        return False
    return exc.status_code == 0 or exc.status_code == 429 or exc.status_code >= 500


class BatchShipper(Generic[T]):
    """Ships documents with ``send(batch)`` from a thread started by ``start()``.

    ``name`` names the thread (``flowyard-<name>``) and the log events
    (``<name>_ship_retrying``, ``<name>_ship_dropped``).
    """

    def __init__(
        self,
        send: Callable[[list[T]], object],
        *,
        name: str,
        key: Callable[[T], object] | None = None,
        flush_interval: float = 0.2,
        batch_size: int = 100,
        retry_interval: float = 1.0,
        max_pending: int = 100_000,
    ) -> None:
        self._send = send
        self._name = name
        self._key = key
        self._flush_interval = flush_interval
        self._batch_size = batch_size
        self._retry_interval = retry_interval
        self._max_pending = max_pending
        self._pending: dict[object, T] = {}
        self._serial = itertools.count()
        self._cond = threading.Condition()
        self._closing = False
        self._abandoned = False
        self._flushes = 0
        self._in_flight = 0
        self._retrying_event = f"{name}_ship_retrying"
        self._dropped_event = f"{name}_ship_dropped"
        self._thread = threading.Thread(target=self._loop, name=f"flowyard-{name}", daemon=True)
        self.dropped = 0
        self.failed_batches = 0
        self.shipped = 0

    def start(self) -> BatchShipper[T]:
        self._thread.start()
        return self

    @property
    def pending(self) -> int:
        """Documents not delivered yet: waiting, or in a batch being sent right now."""
        with self._cond:
            return len(self._pending) + self._in_flight

    def put(self, document: T) -> None:
        key = self._key(document) if self._key is not None else None
        with self._cond:
            if key is None:
                key = ("serial", next(self._serial))
            elif key in self._pending:
                self._pending[key] = document  # newer replaces older, keeping its place
                return
            if len(self._pending) >= self._max_pending:
                del self._pending[next(iter(self._pending))]
                self.dropped += 1
            self._pending[key] = document
            if len(self._pending) >= self._batch_size:
                self._cond.notify_all()

    def flush(self, timeout: float = 30.0) -> bool:
        """Ship everything put so far now; False when some is left after ``timeout`` seconds."""
        with self._cond:
            self._flushes += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(self._drained, timeout=timeout)
            finally:
                self._flushes -= 1

    def close(self, timeout: float = 30.0) -> bool:
        """Ship what is left and stop; False when documents remain after ``timeout`` seconds."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        with self._cond:
            self._abandoned = True
            self._cond.notify_all()
            return self._drained()

    def _drained(self) -> bool:
        return not self._pending and not self._in_flight

    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            shipped = self._ship([document for _, document in batch])
            with self._cond:
                self._in_flight = 0
                if shipped:
                    self.shipped += len(batch)
                else:
                    self.failed_batches += 1
                    self._pending = {**dict(batch), **self._pending}  # newer versions win
                self._cond.notify_all()
                if not shipped:
                    self._cond.wait_for(lambda: self._abandoned, timeout=self._retry_interval)

    def _next_batch(self) -> list[tuple[object, T]] | None:
        """Wait for the next batch; None once closing with nothing left (or abandoned)."""
        with self._cond:
            self._cond.wait_for(self._batch_ready, timeout=self._flush_interval)
            if self._abandoned or (self._closing and not self._pending):
                return None
            keys = list(itertools.islice(self._pending, self._batch_size))
            self._in_flight = len(keys)
            return [(key, self._pending.pop(key)) for key in keys]

    def _batch_ready(self) -> bool:
        return (
            self._closing
            or self._abandoned
            or (self._flushes > 0 and bool(self._pending))
            or len(self._pending) >= self._batch_size
        )

    def _ship(self, batch: list[T]) -> bool:
        """Send one batch; False when it should be kept for a retry."""
        if not batch:
            return True
        try:
            self._send(batch)
        except Exception as exc:
            if should_keep(exc):
                log.warning(self._retrying_event, records=len(batch), error=str(exc))
                return False
            log.error(self._dropped_event, records=len(batch), error=str(exc))
        return True
