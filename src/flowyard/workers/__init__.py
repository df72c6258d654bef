"""Workers: the loop that claims runs of a pool and launches them, one module per type.

What a worker type needs is exported here (``docs/writing-a-worker.md``).
"""

from flowyard.schemas import ClaimedRun
from flowyard.workers.base import BaseWorker, Infrastructure, OutputSink
from flowyard.workers.registry import load_worker_type, require_installed, worker_types

__all__ = [
    "BaseWorker",
    "ClaimedRun",
    "Infrastructure",
    "OutputSink",
    "load_worker_type",
    "require_installed",
    "worker_types",
]
