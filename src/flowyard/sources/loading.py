"""Loading the object a deployment's entrypoint names (the SDK checks it is a flow).

Two forms are accepted: ``path/to/file.py:function`` (relative to ``base_dir``, the
deployment's ``path`` or where its pull steps lead) and ``package.module:function``
(importable from ``base_dir``). A file must be inside ``base_dir`` once symlinks are
resolved (see :mod:`flowyard.entrypoints`). Every failure is an ``EntrypointError`` with a
one-line message; an import error is chained as its cause so that its traceback reaches
the run's logs.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from flowyard.entrypoints import is_script, parse_entrypoint, relative_script
from flowyard.errors import EntrypointError

__all__ = ["load_object", "script_inside"]

SCRIPT_MODULE = "__flowyard_entrypoint__"


def load_object(entrypoint: str, base_dir: Path | None = None) -> tuple[Any, str, str]:
    """Import the entrypoint; the object it names, with where and what it is called."""
    where, attribute = parse_entrypoint(entrypoint)
    base = (base_dir or Path.cwd()).resolve()
    if is_script(where):
        module = _load_script(script_inside(base, where), where)
    else:
        module = _import_module(where, base)
    obj: Any = module
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise EntrypointError(f"{attribute!r} not found in {where!r}")
        obj = getattr(obj, part)
    return obj, where, attribute


def script_inside(base: Path, where: str) -> Path:
    """The file ``where`` names under ``base`` (resolved), refused if it leads elsewhere."""
    path = (base / relative_script(where)).resolve()
    if not path.is_relative_to(base.resolve()):
        raise EntrypointError(
            f"entrypoint file {where!r} leads outside the deployment's working directory "
            f"{base} (to {path}, through a symlink)"
        )
    return path


def _load_script(path: Path, shown: str) -> ModuleType:
    if not path.is_file():
        raise EntrypointError(f"entrypoint file {shown!r} not found in {path.parent}")
    spec = importlib.util.spec_from_file_location(SCRIPT_MODULE, path)
    if spec is None or spec.loader is None:
        raise EntrypointError(f"cannot load {shown!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    _add_to_path(path.parent)
    sys.modules[SCRIPT_MODULE] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(SCRIPT_MODULE, None)
        raise EntrypointError(f"cannot import {shown!r}: {type(exc).__name__}: {exc}") from exc
    return module


def _import_module(name: str, base: Path) -> ModuleType:
    _add_to_path(base)
    try:
        return importlib.import_module(name)
    except Exception as exc:
        raise EntrypointError(f"cannot import {name!r}: {type(exc).__name__}: {exc}") from exc


def _add_to_path(directory: Path) -> None:
    """Let the flow's code import its sibling modules, as ``python file.py`` would."""
    entry = str(directory)
    if entry not in sys.path:
        sys.path.insert(0, entry)
