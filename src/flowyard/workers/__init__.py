"""Workers: the loop that claims runs of a pool and launches them, one module per type."""

from flowyard.workers.base import BaseWorker, Infrastructure
from flowyard.workers.registry import load_worker_type, require_installed, worker_types

__all__ = [
    "BaseWorker",
    "Infrastructure",
    "load_worker_type",
    "require_installed",
    "worker_types",
]
