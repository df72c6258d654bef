"""``BatchShipper``: documents to the API in batches, from a background thread.

The pattern behind ``LogShipper`` and ``TaskRunShipper``. Callers ``put`` documents and
never wait for the API. A batch leaves every ``flush_interval`` seconds, or as soon as
``batch_size`` documents wait. A batch that fails transiently (``retries.is_transient``:
the API is away, 429, 502-504) is put back in front and retried every ``retry_interval``
seconds; any other failure drops it with an error log. ``flush`` waits until everything
put so far was shipped; ``close`` ships what is left and stops. At most ``max_pending``
documents wait (the oldest dropped first), so that a long outage cannot exhaust memory.

A request also stays within the API's body limit (``max_bytes``, the client's
``max_request_bytes``): a batch holds no more documents than fit as a JSON array. A
batch the API still finds too large (413: its limit is lower than this client was told)
is split in halves and each half sent on, and the limit the answer names is used from
then on. A document too large on its own is made smaller by ``shrink`` (a log line is
cut) or, when it cannot be, dropped alone with an error log (``<name>_too_large``).

Documents carry a key: a document put while an older one of the same key still waits
replaces it in place (a task run's start and end records become one). Documents without
a key (``None``) are all kept.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import structlog

from flowyard.api_settings import DEFAULT_MAX_REQUEST_BYTES, MIN_MAX_REQUEST_BYTES
from flowyard.client.bodies import json_size
from flowyard.client.retries import is_transient
from flowyard.errors import ApiError

log = structlog.get_logger()

T = TypeVar("T")

DEFAULT_MAX_BYTES = DEFAULT_MAX_REQUEST_BYTES
MIN_MAX_BYTES = MIN_MAX_REQUEST_BYTES  # the smallest limit the API can be given
_LIMIT_IN_ANSWER = re.compile(r"larger than (\d+) bytes")

Batch = list[tuple[object, T, int]]
"""Documents with their keys and their sizes in bytes as JSON."""


def too_large(exc: BaseException) -> bool:
    """True when the API refused a request for its size (413)."""
    return isinstance(exc, ApiError) and exc.status_code == 413


def _named_limit(exc: BaseException) -> int | None:
    """The limit a 413's message names (``… larger than N bytes …``), if it names one."""
    found = _LIMIT_IN_ANSWER.search(str(exc))
    return int(found.group(1)) if found else None


class BatchShipper(Generic[T]):
    """Ships documents with ``send(batch)`` from a thread started by ``start()``.

    ``name`` names the thread (``flowyard-<name>``) and the log events
    (``<name>_ship_retrying``, ``<name>_ship_dropped``, ``<name>_too_large``). ``size``
    gives a document's size in bytes as JSON (default: ``json_size``); ``shrink(document,
    limit)`` a smaller one of at most ``limit`` bytes, or None when there is none.
    """

    def __init__(
        self,
        send: Callable[[list[T]], object],
        *,
        name: str,
        key: Callable[[T], object] | None = None,
        size: Callable[[T], int] = json_size,
        shrink: Callable[[T, int], T | None] | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        flush_interval: float = 0.2,
        batch_size: int = 100,
        retry_interval: float = 1.0,
        max_pending: int = 100_000,
    ) -> None:
        self._send = send
        self._name = name
        self._key = key
        self._size = size
        self._shrink = shrink
        self.max_bytes = max(MIN_MAX_BYTES, max_bytes)
        self._flush_interval = flush_interval
        self._batch_size = batch_size
        self._retry_interval = retry_interval
        self._max_pending = max_pending
        self._pending: dict[object, tuple[T, int]] = {}
        self._serial = itertools.count()
        self._cond = threading.Condition()
        self._closing = False
        self._abandoned = False
        self._flushes = 0
        self._in_flight = 0
        self._retrying_event = f"{name}_ship_retrying"
        self._dropped_event = f"{name}_ship_dropped"
        self._too_large_event = f"{name}_too_large"
        self._thread = threading.Thread(target=self._loop, name=f"flowyard-{name}", daemon=True)
        self.dropped = 0
        self.too_large = 0
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
        fitted = self._fitted(document, self.max_bytes)
        if fitted is None:
            return
        with self._cond:
            if key is None:
                key = ("serial", next(self._serial))
            elif key in self._pending:
                self._pending[key] = fitted  # newer replaces older, keeping its place
                return
            if len(self._pending) >= self._max_pending:
                del self._pending[next(iter(self._pending))]
                self.dropped += 1
            self._pending[key] = fitted
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

    def _fitted(self, document: T, limit: int) -> tuple[T, int] | None:
        """``document`` and its size, made to fit alone in a request of ``limit`` bytes
        (``[document]``); None, with an error log, when it cannot be."""
        size = self._size(document)
        if size + 2 <= limit:
            return document, size
        smaller = self._shrink(document, limit - 2) if self._shrink is not None else None
        if smaller is None:
            self.too_large += 1
            log.error(self._too_large_event, bytes=size, limit=limit, document=_label(document))
            return None
        return smaller, self._size(smaller)

    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            kept = self._ship(batch)
            with self._cond:
                self._in_flight = 0
                self.shipped += len(batch) - len(kept)
                if kept:
                    self.failed_batches += 1
                    pending = {key: (doc, size) for key, doc, size in kept}
                    self._pending = {**pending, **self._pending}  # newer versions win
                self._cond.notify_all()
                if kept:
                    self._cond.wait_for(lambda: self._abandoned, timeout=self._retry_interval)

    def _next_batch(self) -> Batch[T] | None:
        """Wait for the next batch; None once closing with nothing left (or abandoned).

        A batch holds at most ``batch_size`` documents and, as a JSON array, at most
        ``max_bytes`` bytes (or is one document)."""
        with self._cond:
            self._cond.wait_for(self._batch_ready, timeout=self._flush_interval)
            if self._abandoned or (self._closing and not self._pending):
                return None
            batch: Batch[T] = []
            total = 1  # "[" and "]", and a comma between documents
            for key in itertools.islice(self._pending, self._batch_size):
                document, size = self._pending[key]
                if batch and total + size + 1 > self.max_bytes:
                    break
                batch.append((key, document, size))
                total += size + 1
            for key, _, _ in batch:
                del self._pending[key]
            self._in_flight = len(batch)
            return batch

    def _batch_ready(self) -> bool:
        return (
            self._closing
            or self._abandoned
            or (self._flushes > 0 and bool(self._pending))
            or len(self._pending) >= self._batch_size
        )

    def _ship(self, batch: Batch[T]) -> Batch[T]:
        """Send one batch; returns what should be kept for a retry (the API is away)."""
        if not batch:
            return []
        try:
            self._send([document for _, document, _ in batch])
        except Exception as exc:
            if is_transient(exc):  # may still succeed later: kept
                log.warning(self._retrying_event, records=len(batch), error=str(exc))
                return batch
            if too_large(exc):
                return self._split(batch, exc)
            log.error(self._dropped_event, records=len(batch), error=str(exc))
        return []

    def _split(self, batch: Batch[T], exc: BaseException) -> Batch[T]:
        """After a 413: learn the API's limit, then send the halves (or a smaller document)
        on; returns what should be kept for a retry."""
        sent = 1 + sum(size + 1 for _, _, size in batch)
        learned = _named_limit(exc) or sent // 2  # a smaller limit than the request's size
        self.max_bytes = max(MIN_MAX_BYTES, min(self.max_bytes, learned, sent - 1))
        log.warning(self._too_large_event, records=len(batch), bytes=sent, limit=self.max_bytes)
        if len(batch) == 1:
            key, document, size = batch[0]
            fitted = self._fitted(document, self.max_bytes)
            if fitted is None or fitted[1] >= size:
                if fitted is not None:  # no smaller version: cannot be sent at all
                    self.too_large += 1
                    log.error(self._too_large_event, bytes=size, document=_label(document))
                return []
            return self._ship([(key, *fitted)])
        half = len(batch) // 2
        kept = self._ship(batch[:half])
        if kept:
            return kept + batch[half:]
        return self._ship(batch[half:])


def _label(document: object) -> str:
    """A short description of a document for an error log (its id and name when it has them)."""
    fields = document if isinstance(document, dict) else getattr(document, "__dict__", {})
    named = {k: str(fields[k])[:100] for k in ("id", "name", "flow_run_id") if k in fields}
    return ", ".join(f"{k}={v}" for k, v in named.items()) or type(document).__name__
