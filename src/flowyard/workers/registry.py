"""Worker types are found through the ``flowyard.workers`` entry-point group, built-ins included."""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from flowyard.errors import InvalidInput

if TYPE_CHECKING:
    from flowyard.workers.base import BaseWorker

GROUP = "flowyard.workers"


def worker_types() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP))


def require_installed(worker_type: type[BaseWorker[Any, Any]]) -> None:
    """Raise ``InvalidInput`` naming the ``pip install`` to run when the package the type
    needs (``requires``) is missing; a pool of it can still be created without it."""
    if worker_type.requires is None:
        return
    module, extra = worker_type.requires
    try:
        import_module(module)
    except ImportError:
        raise InvalidInput(
            f"the {worker_type.type} worker needs the {module!r} package: "
            f"pip install 'flowyard[{extra}]'"
        ) from None


def load_worker_type(name: str) -> type[BaseWorker[Any, Any]]:
    for ep in entry_points(group=GROUP):
        if ep.name == name:
            worker_type: type[BaseWorker[Any, Any]] = ep.load()
            if getattr(worker_type, "type", None) != name:
                raise InvalidInput(
                    f"the {name!r} worker type ({ep.value}) says its type is "
                    f"{getattr(worker_type, 'type', None)!r}: a worker type's type must be "
                    "the name of its entry point (pools, runs and the UI go by it)"
                )
            return worker_type
    known = ", ".join(worker_types()) or "none installed"
    raise InvalidInput(f"unknown worker type {name!r} (known: {known})")
