"""The user-facing SDK: ``@flow``, ``@task``, states, futures, caching and run loggers."""

from flowyard.errors import UpstreamTaskError
from flowyard.sdk.annotations import allow_failure, quote, unmapped
from flowyard.sdk.context import (
    FlowRunContext,
    TaskRunContext,
    ThreadPoolTaskRunner,
    get_flow_run_context,
    get_task_run_context,
    tags,
)
from flowyard.sdk.flows import Flow, flow, run_flow
from flowyard.sdk.futures import TaskFuture, TaskFutureList, as_completed, wait
from flowyard.sdk.logs import get_run_logger
from flowyard.sdk.parameters import parameter_schema, validate_parameters
from flowyard.sdk.reporter import ApiReporter, LocalReporter, Reporter
from flowyard.sdk.retries import exponential_backoff
from flowyard.sdk.tasks import Task, task

__all__ = [
    "ApiReporter",
    "Flow",
    "FlowRunContext",
    "LocalReporter",
    "Reporter",
    "Task",
    "TaskFuture",
    "TaskFutureList",
    "TaskRunContext",
    "ThreadPoolTaskRunner",
    "UpstreamTaskError",
    "allow_failure",
    "as_completed",
    "exponential_backoff",
    "flow",
    "get_flow_run_context",
    "get_run_logger",
    "get_task_run_context",
    "parameter_schema",
    "quote",
    "run_flow",
    "tags",
    "task",
    "unmapped",
    "validate_parameters",
    "wait",
]
