"""The user-facing SDK: ``@flow``, ``@task``, futures and run loggers."""

from flowyard.client.log_shipper import LogShipper
from flowyard.sdk.context import FlowRunContext, get_flow_run_context, get_task_run_context
from flowyard.sdk.flows import Flow, flow, run_flow
from flowyard.sdk.futures import TaskFuture
from flowyard.sdk.logs import get_run_logger
from flowyard.sdk.parameters import parameter_schema, validate_parameters
from flowyard.sdk.reporter import ApiReporter, LocalReporter, Reporter
from flowyard.sdk.tasks import Task, task

__all__ = [
    "ApiReporter",
    "Flow",
    "FlowRunContext",
    "LocalReporter",
    "LogShipper",
    "Reporter",
    "Task",
    "TaskFuture",
    "flow",
    "get_flow_run_context",
    "get_run_logger",
    "get_task_run_context",
    "parameter_schema",
    "run_flow",
    "task",
    "validate_parameters",
]
