"""Flowyard: a self-hostable workflow orchestrator for Python.

Kept light on purpose: importing ``flowyard`` loads the SDK only (no server libraries).
"""

from flowyard.sdk import Flow, Task, allow_failure, flow, tags, task, unmapped
from flowyard.sdk.logs import require_run_logger as get_run_logger
from flowyard.sdk.pause import pause_flow_run, resume_flow_run
from flowyard.states import State

__all__ = [
    "Flow",
    "State",
    "Task",
    "allow_failure",
    "flow",
    "get_run_logger",
    "pause_flow_run",
    "resume_flow_run",
    "tags",
    "task",
    "unmapped",
]
