"""Flowyard: a self-hostable workflow orchestrator for Python.

Kept light on purpose: importing ``flowyard`` loads the SDK only (no server libraries).
"""

from flowyard.sdk import flow, get_run_logger, task

__all__ = ["flow", "get_run_logger", "task"]
