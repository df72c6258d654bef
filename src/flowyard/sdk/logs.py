"""Run loggers and the log shipper.

``get_run_logger()`` returns a stdlib ``LoggerAdapter`` bound to the current flow run
and task run. Records of an engine run go to the API through the run's ``LogShipper``
(and nowhere else: the worker already captures stdout/stderr); records of a local run,
or outside any run, go to stderr.
"""

from __future__ import annotations

import builtins
import logging
import sys
import threading
from collections import deque
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from flowyard.errors import ApiError
from flowyard.schemas import LogCreate
from flowyard.sdk.context import get_flow_run_context, get_task_run_context

if TYPE_CHECKING:
    from flowyard.client import FlowyardClient

log = structlog.get_logger()

RUN_LOGGER_NAME = "flowyard.runs"
_SHIPPER_KEY = "flowyard_shipper"


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
        with self._cond:
            return len(self._pending)

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


class RunLogHandler(logging.Handler):
    """Sends a record to its run's shipper when it has one, else writes it to stderr."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(
            logging.Formatter(
                "%(asctime)s.%(msecs)03d | %(levelname)-7s | %(flowyard_label)s - %(message)s",
                datefmt="%H:%M:%S",
            )
        )

    def emit(self, record: logging.LogRecord) -> None:
        try:
            shipper: LogShipper | None = getattr(record, _SHIPPER_KEY, None)
            if shipper is None:
                sys.stderr.write(self.format(record) + "\n")
                return
            shipper.put(to_log_create(record, self._message(record)))
        except Exception:
            self.handleError(record)

    def _message(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
        return message.rstrip()


def to_log_create(record: logging.LogRecord, message: str) -> LogCreate:
    return LogCreate(
        flow_run_id=record.__dict__["flow_run_id"],
        task_run_id=record.__dict__.get("task_run_id"),
        level=record.levelno,
        message=message,
        timestamp=datetime.fromtimestamp(record.created, UTC),
        source="engine",
    )


class RunLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger bound to one flow run (and task run); extra keys are merged, not replaced."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


def _base_logger() -> logging.Logger:
    logger = logging.getLogger(RUN_LOGGER_NAME)
    if not any(isinstance(h, RunLogHandler) for h in logger.handlers):
        logger.addHandler(RunLogHandler())
        logger.propagate = False
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
    return logger


def get_run_logger() -> RunLogger:
    """A logger for the current flow run and task run (stderr outside an engine run)."""
    flow_run = get_flow_run_context()
    task_run = get_task_run_context()
    extra: dict[str, Any] = {"flowyard_label": "flowyard", _SHIPPER_KEY: None}
    if flow_run is not None:
        extra.update(
            flow_run_id=flow_run.flow_run_id,
            flowyard_label=f"Flow run {flow_run.flow_run_name!r}",
            **{_SHIPPER_KEY: flow_run.shipper},
        )
    if task_run is not None:
        extra.update(
            task_run_id=task_run.task_run_id,
            flowyard_label=f"Task run {task_run.task_run_name!r}",
        )
    return RunLogger(_base_logger(), extra)


# -- log_prints ------------------------------------------------------------------------

_log_prints: ContextVar[bool] = ContextVar("flowyard_log_prints", default=False)
_original_print = builtins.print
_patch_lock = threading.Lock()


def _print(*args: Any, sep: str | None = " ", end: str | None = "\n", **kwargs: Any) -> None:
    target = kwargs.get("file")
    if _log_prints.get() and (target is None or target is sys.stdout):
        get_run_logger().info((sep if sep is not None else " ").join(map(str, args)))
        return
    _original_print(*args, sep=sep, end=end, **kwargs)


@contextmanager
def log_prints(enabled: bool) -> Iterator[None]:
    """While enabled (in this context), ``print`` to stdout goes to the run logger instead."""
    if enabled:
        with _patch_lock:
            builtins.print = _print  # installed once; behaves as print when not enabled
    token = _log_prints.set(enabled)
    try:
        yield
    finally:
        _log_prints.reset(token)
