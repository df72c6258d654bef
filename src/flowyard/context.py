"""``flowyard.context``: the current run's context (as ``prefect.context``).

``get_run_context()`` is the task run's context inside a task, else the flow run's, and
raises ``MissingContextError`` outside both; ``FlowRunContext.get()`` and
``TaskRunContext.get()`` return None there instead. Both contexts answer ``.flow_run`` /
``.task_run`` with themselves, so ``ctx.flow_run.id`` and ``ctx.task_run.name`` read as in
Prefect. Read-only facts are simpler through ``flowyard.runtime``.
"""

from flowyard.errors import MissingContextError
from flowyard.sdk.context import FlowRunContext, TaskRunContext, get_run_context, tags

__all__ = [
    "FlowRunContext",
    "MissingContextError",
    "TaskRunContext",
    "get_run_context",
    "tags",
]
