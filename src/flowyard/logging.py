"""``flowyard.logging``: the run logger (as ``prefect.logging``)."""

from flowyard.errors import MissingContextError
from flowyard.sdk.logs import require_run_logger as get_run_logger

__all__ = ["MissingContextError", "get_run_logger"]
