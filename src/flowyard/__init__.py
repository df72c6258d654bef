"""Flowyard: a self-hostable workflow orchestrator for Python.

Kept light on purpose: ``import flowyard`` loads nothing until a name below is used, and
then the SDK only (no server libraries). The ``flowyard`` command lives in this package
too, and its start should not pay for the SDK (see ``bench/cli.py``).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowyard.client.orchestration import get_client
    from flowyard.runner.serving import aserve, serve
    from flowyard.sdk import Flow, Task, allow_failure, flow, tags, task, unmapped
    from flowyard.sdk.logs import require_run_logger as get_run_logger
    from flowyard.sdk.pause import pause_flow_run, resume_flow_run, suspend_flow_run
    from flowyard.states import State

__all__ = [
    "Flow",
    "State",
    "Task",
    "allow_failure",
    "aserve",
    "flow",
    "get_client",
    "get_run_logger",
    "pause_flow_run",
    "resume_flow_run",
    "serve",
    "suspend_flow_run",
    "tags",
    "task",
    "unmapped",
]

# each public name: the module that defines it, and its name there
_PUBLIC = {
    "Flow": ("flowyard.sdk", "Flow"),
    "State": ("flowyard.states", "State"),
    "Task": ("flowyard.sdk", "Task"),
    "allow_failure": ("flowyard.sdk", "allow_failure"),
    "aserve": ("flowyard.runner.serving", "aserve"),
    "flow": ("flowyard.sdk", "flow"),
    "get_client": ("flowyard.client.orchestration", "get_client"),
    "get_run_logger": ("flowyard.sdk.logs", "require_run_logger"),
    "pause_flow_run": ("flowyard.sdk.pause", "pause_flow_run"),
    "resume_flow_run": ("flowyard.sdk.pause", "resume_flow_run"),
    "serve": ("flowyard.runner.serving", "serve"),
    "suspend_flow_run": ("flowyard.sdk.pause", "suspend_flow_run"),
    "tags": ("flowyard.sdk", "tags"),
    "task": ("flowyard.sdk", "task"),
    "unmapped": ("flowyard.sdk", "unmapped"),
}


def __getattr__(name: str) -> Any:
    """The public name ``name``, imported on first use (PEP 562) and kept."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'flowyard' has no attribute {name!r}")
    module, attribute = _PUBLIC[name]
    value = getattr(import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
