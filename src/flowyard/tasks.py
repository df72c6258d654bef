"""``flowyard.tasks``: the task decorator and its helpers (as ``prefect.tasks``)."""

from flowyard.sdk.caching import task_input_hash
from flowyard.sdk.retries import exponential_backoff
from flowyard.sdk.tasks import Task, task

__all__ = ["Task", "exponential_backoff", "task", "task_input_hash"]
