"""``flowyard.task_worker``, as ``prefect.task_worker``: ``serve(*tasks)`` runs their
background runs (``Task.delay``); built in ``flowyard.sdk.task_worker``."""

from flowyard.sdk.task_worker import TaskWorker, serve

__all__ = ["TaskWorker", "serve"]
