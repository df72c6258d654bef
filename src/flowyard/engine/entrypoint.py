"""Loading a flow from a deployment's entrypoint.

Two forms are accepted: ``path/to/file.py:function`` (relative to ``base_dir``, the
deployment's ``path``) and ``package.module:function`` (importable from ``base_dir``).
Every failure is an ``EntrypointError`` with a one-line message; an import error is
chained as its cause so that its traceback reaches the run's logs.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from flowyard.errors import EntrypointError
from flowyard.sdk import Flow

SCRIPT_MODULE = "__flowyard_entrypoint__"


def parse_entrypoint(entrypoint: str) -> tuple[str, str]:
    """Split ``where:attribute``; raises ``EntrypointError`` when malformed."""
    where, sep, attribute = entrypoint.strip().rpartition(":")
    if not sep or not where or not all(p.isidentifier() for p in attribute.split(".")):
        raise EntrypointError(
            f"entrypoint {entrypoint!r} must look like 'path/to/file.py:function' "
            "or 'package.module:function'"
        )
    return where, attribute


def load_flow(entrypoint: str, base_dir: Path | None = None) -> Flow[..., Any]:
    """Import the entrypoint and return its flow."""
    where, attribute = parse_entrypoint(entrypoint)
    base = (base_dir or Path.cwd()).resolve()
    if where.endswith(".py") or "/" in where or "\\" in where:
        module = _load_script(base / where, where)
    else:
        module = _import_module(where, base)
    obj: Any = module
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise EntrypointError(f"{attribute!r} not found in {where!r}")
        obj = getattr(obj, part)
    if not isinstance(obj, Flow):
        kind = type(obj).__name__
        raise EntrypointError(f"{attribute!r} in {where!r} is a {kind}, not a flow (use @flow)")
    return obj


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
