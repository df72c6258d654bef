"""Run loggers.

``get_run_logger()`` returns a stdlib ``LoggerAdapter`` bound to the current flow run
and task run, on ``flowyard.flow_runs`` or ``flowyard.task_runs`` (Prefect's
``prefect.flow_runs`` / ``prefect.task_runs``): part of the standard hierarchy, so records
also reach the root logger's handlers and pytest's ``caplog``, carrying
``flow_run_name``, ``flow_name``, ``task_run_name`` and the ids as attributes.

The public ``flowyard.get_run_logger`` is ``require_run_logger``: outside any run it
raises ``MissingContextError``, as Prefect does; the engines' own records use the
lenient ``get_run_logger``, which falls back to stderr. Records of an engine run go to
the API through the run's ``LogShipper`` (and not to stderr: the worker already captures
stdout/stderr); records of a local run, or outside any run, go to stderr, unless the
root logger prints to the console already.
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

RUN_LOGGER_NAME = "flowyard"
"""The parent of the run loggers (a handler here sees every run's records)."""
FLOW_RUN_LOGGER_NAME = "flowyard.flow_runs"
TASK_RUN_LOGGER_NAME = "flowyard.task_runs"
_SHIPPER_KEY = "flowyard_shipper"
_ECHO_KEY = "flowyard_echo"
_LABEL_KEY = "flowyard_label"
_UNKNOWN = "<unknown>"  # what Prefect's adapters say of a name they cannot know


class _RunFormatter(logging.Formatter):
    """Prefect's console line: ``12:00:01.123 | INFO    | Flow run 'name' - message``."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s.%(msecs)03d | %(levelname)-7s | %(flowyard_label)s - %(message)s",
            datefmt="%H:%M:%S",
        )

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, _LABEL_KEY):  # a record logged without a run logger
            record.__dict__[_LABEL_KEY] = record.name
        return super().format(record)


class RunLogHandler(logging.Handler):
    """Sends a record to its run's shipper when it has one, and writes it to stderr too
    unless the run is an engine's (whose output its worker ships as the run's logs)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(_RunFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            shipper: LogShipper | None = getattr(record, _SHIPPER_KEY, None)
            if (shipper is None or getattr(record, _ECHO_KEY, True)) and not _root_prints():
                sys.stderr.write(self.format(record) + "\n")
            if shipper is not None and record.__dict__.get("flow_run_id") not in (None, _UNKNOWN):
                shipper.put(to_log_create(record, self._message(record)))
        except Exception:
            self.handleError(record)

    def _message(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
        return message.rstrip()


def _root_prints() -> bool:
    """Whether the root logger writes records to the console already (the user called
    ``logging.basicConfig()``): the record propagates there, so it is not echoed twice."""
    streams = (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)
    return any(
        isinstance(handler, logging.StreamHandler) and handler.stream in streams
        for handler in logging.getLogger().handlers
    )


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
    """A logger bound to one flow run (and task run), as Prefect's ``PrefectLogAdapter``.

    ``extra`` holds what Prefect's adapters put on each record (``flow_run_name``,
    ``flow_name``, ``task_run_name``, their ids…); where the record is shipped and how it
    is labelled on stderr travel beside it, so ``extra`` reads as Prefect's. Extra keys
    given to one call are merged, not replaced.
    """

    def __init__(
        self, logger: logging.Logger, extra: dict[str, Any], private: dict[str, Any]
    ) -> None:
        super().__init__(logger, extra)
        self._private = private

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**self._private, **(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


def _base_logger(name: str) -> logging.Logger:
    """A run logger of the standard hierarchy: records also propagate to the root's
    handlers (and pytest's ``caplog``), as Prefect's ``prefect.flow_runs`` do."""
    logger = logging.getLogger(name)
    if not any(isinstance(h, RunLogHandler) for h in logger.handlers):
        logger.addHandler(RunLogHandler())
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
    return logger


def get_run_logger(**kwargs: Any) -> RunLogger:
    """A logger for the current flow run and task run (stderr outside an engine run);
    ``kwargs`` are added to every record (as Prefect's ``get_run_logger(**kwargs)``)."""
    flow_run = get_flow_run_context()
    task_run = get_task_run_context()
    private: dict[str, Any] = {_LABEL_KEY: "flowyard", _SHIPPER_KEY: None}
    extra: dict[str, Any] = {}
    if flow_run is not None:
        extra.update(
            flow_run_name=flow_run.flow_run_name,
            flow_run_id=flow_run.flow_run_id,
            flow_name=_name_of(flow_run.flow),
        )
        private.update(
            {
                _LABEL_KEY: f"Flow run {flow_run.flow_run_name!r}",
                _SHIPPER_KEY: flow_run.shipper,
                _ECHO_KEY: flow_run.echo_logs,
            }
        )
    if task_run is None:
        if flow_run is not None:
            extra["deployment_name"] = flow_run.deployment_name
        return RunLogger(_base_logger(FLOW_RUN_LOGGER_NAME), {**extra, **kwargs}, private)
    extra = {
        "task_run_name": task_run.task_run_name,
        "task_run_id": task_run.task_run_id,
        "flow_run_id": extra.get("flow_run_id", task_run.flow_run_id),
        "flow_run_name": extra.get("flow_run_name", _UNKNOWN),
        "flow_name": extra.get("flow_name", _UNKNOWN),
        "task_name": _name_of(task_run.task),
    }
    private[_LABEL_KEY] = f"Task run {task_run.task_run_name!r}"
    if flow_run is None and task_run.shipper is not None:  # a background run's: shipped to
        extra["flow_run_id"] = task_run.caller_flow_run_id  # the flow run that made it
        private[_SHIPPER_KEY] = task_run.shipper
    return RunLogger(_base_logger(TASK_RUN_LOGGER_NAME), {**extra, **kwargs}, private)


def _name_of(flow_or_task: Any) -> str:
    return str(getattr(flow_or_task, "name", None) or _UNKNOWN)


def require_run_logger(**kwargs: Any) -> RunLogger:
    """``flowyard.get_run_logger``: the current run's logger; raises outside any run."""
    if get_flow_run_context() is None and get_task_run_context() is None:
        raise MissingContextError(
            "There is no active flow or task run context: call get_run_logger() inside a "
            "@flow or @task (or use logging.getLogger(...) outside them)."
        )
    return get_run_logger(**kwargs)


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
