"""``flowyard.runtime``: the current flow run, task run and deployment (as ``prefect.runtime``)."""

from flowyard.sdk.runtime import deployment, flow_run, task_run

__all__ = ["deployment", "flow_run", "task_run"]
