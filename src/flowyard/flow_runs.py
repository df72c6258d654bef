"""``flowyard.flow_runs``: pause or suspend the current flow run and resume paused ones (as
``prefect.flow_runs``)."""

from flowyard.errors import FlowPauseTimeout
from flowyard.sdk.pause import pause_flow_run, resume_flow_run, suspend_flow_run

__all__ = ["FlowPauseTimeout", "pause_flow_run", "resume_flow_run", "suspend_flow_run"]
