"""Run loggers.

``get_run_logger()`` returns a stdlib ``LoggerAdapter`` bound to the current flow run
and task run. The public ``flowyard.get_run_logger`` is ``require_run_logger``: outside
any run it raises ``MissingContextError``, as Prefect does; the engines' own records use
the lenient ``get_run_logger``, which falls back to stderr. Records of an engine run go
to the API through the run's ``LogShipper`` (and nowhere else: the worker already
captures stdout/stderr); records of a local run, or outside any run, go to stderr.
"""

from __future__ import annotations

import builtins
import logging
import sys
import threading
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from flowyard.errors import MissingContextError
from flowyard.sdk.context import get_flow_run_context, get_task_run_context

if TYPE_CHECKING:
    from flowyard.client.log_shipper import LogShipper
    from flowyard.schemas import LogCreate

RUN_LOGGER_NAME = "flowyard.runs"
_SHIPPER_KEY = "flowyard_shipper"
_ECHO_KEY = "flowyard_echo"


class RunLogHandler(logging.Handler):
    """Sends a record to its run's shipper when it has one, and writes it to stderr too
    unless the run is an engine's (whose output its worker ships as the run's logs)."""

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
            if shipper is None or getattr(record, _ECHO_KEY, True):
                sys.stderr.write(self.format(record) + "\n")
            if shipper is not None:
                shipper.put(to_log_create(record, self._message(record)))
        except Exception:
            self.handleError(record)

    def _message(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
        return message.rstrip()


def to_log_create(record: logging.LogRecord, message: str) -> LogCreate:
    from flowyard.client.log_shipper import log_record  # cuts what the API would refuse

    return log_record(
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
            **{_SHIPPER_KEY: flow_run.shipper, _ECHO_KEY: flow_run.echo_logs},
        )
    if task_run is not None:
        extra.update(
            task_run_id=task_run.task_run_id,
            flowyard_label=f"Task run {task_run.task_run_name!r}",
        )
    return RunLogger(_base_logger(), extra)


def require_run_logger() -> RunLogger:
    """``flowyard.get_run_logger``: the current run's logger; raises outside any run."""
    if get_flow_run_context() is None and get_task_run_context() is None:
        raise MissingContextError(
            "There is no active flow or task run context: call get_run_logger() inside a "
            "@flow or @task (or use logging.getLogger(...) outside them)."
        )
    return get_run_logger()


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


def log_prints_enabled() -> bool:
    """Whether ``print`` goes to the run logger in the current context."""
    return _log_prints.get()


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
