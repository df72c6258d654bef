"""Secrets in recorded parameters: what the API is told in place of a secret argument.

A value of a secret type (pydantic ``SecretStr``, ``SecretBytes``, ``Secret[...]``, a
``flowyard.blocks.Secret``), or any value of a parameter annotated with one, is recorded as
``"********"``, as Prefect's ``obfuscate`` does; the task or flow itself still receives the
real value. Secrets inside dicts, lists, tuples and sets are found too. Only what is sent
to the API is masked: a background run's arguments travel whole, in its signed parameters
record.
"""

from __future__ import annotations

import functools
import re
import sys
import typing
from collections.abc import Callable
from typing import Any

OBFUSCATED = "********"
MAX_DEPTH = 20
MAX_ITEMS = 10_000
_SECRET_NAME = re.compile(r"\b(SecretStr|SecretBytes|Secret)\b")


def obfuscate(value: Any) -> str:
    """What a secret is recorded as (its length and tail are not shown)."""
    return OBFUSCATED


def masked(parameters: dict[str, Any], fn: Callable[..., Any] | None = None) -> dict[str, Any]:
    """``parameters`` with every secret value (and every value of a parameter ``fn``
    annotates with a secret type) replaced by ``"********"``."""
    secret_names = _secret_parameters(fn) if fn is not None else frozenset()
    walk = _Walk(_secret_classes())
    return {
        name: obfuscate(value) if name in secret_names and value is not None else walk(value)
        for name, value in parameters.items()
    }


class _Walk:
    """Masks secret values inside containers, visiting at most ``MAX_ITEMS`` values in all
    (beyond that a value is left as it is: its ``repr``, which is what is recorded of
    anything not JSON, masks pydantic's secrets anyway)."""

    def __init__(self, classes: tuple[type, ...]) -> None:
        self.classes = classes
        self.left = MAX_ITEMS

    def __call__(self, value: Any, depth: int = 0) -> Any:
        """``value``, or a copy with its secrets masked (the same object when it holds none)."""
        self.left -= 1
        if self.classes and isinstance(value, self.classes):
            return obfuscate(value)
        containers = (dict, list, tuple, set, frozenset)
        if depth >= MAX_DEPTH or self.left <= 0 or not isinstance(value, containers):
            return value
        if isinstance(value, dict):
            items = {k: self(v, depth + 1) for k, v in value.items()}
            changed = any(items[k] is not v for k, v in value.items())
            return items if changed else value
        parts = [self(v, depth + 1) for v in value]
        if all(p is v for p, v in zip(parts, value, strict=True)):
            return value
        if isinstance(value, tuple) and hasattr(value, "_fields"):
            return type(value)(*parts)  # a named tuple
        return parts if isinstance(value, set | frozenset) else type(value)(parts)


def _secret_classes() -> tuple[type, ...]:
    """The secret types loaded in this process (none before pydantic is imported: then no
    secret value can exist, and the SDK stays light)."""
    if "pydantic" not in sys.modules:
        return ()
    import pydantic

    found: list[type] = [pydantic.SecretStr, pydantic.SecretBytes]
    if hasattr(pydantic, "Secret"):
        found.append(pydantic.Secret)
    blocks = sys.modules.get("flowyard.blocks.standard")
    if blocks is not None:
        found.append(blocks.Secret)
    return tuple(found)


@functools.lru_cache(maxsize=1024)
def _secret_parameters(fn: Callable[..., Any]) -> frozenset[str]:
    """The parameters of ``fn`` annotated with a secret type (``Optional``/``list`` of one
    included); a string annotation that cannot be resolved is read by its words."""
    try:
        hints: dict[str, Any] = typing.get_type_hints(fn)
    except Exception:
        hints = dict(getattr(fn, "__annotations__", {}))
    classes = _secret_classes()
    return frozenset(
        name for name, hint in hints.items() if name != "return" and _is_secret(hint, classes)
    )


def _is_secret(hint: Any, classes: tuple[type, ...]) -> bool:
    if isinstance(hint, typing.ForwardRef):
        hint = hint.__forward_arg__
    if isinstance(hint, str):
        return bool(_SECRET_NAME.search(hint))
    if typing.get_origin(hint) is typing.Literal:
        return False
    if isinstance(hint, type) and classes and issubclass(hint, classes):
        return True
    origin = typing.get_origin(hint)
    if origin is not None and isinstance(origin, type) and classes and issubclass(origin, classes):
        return True  # Secret[int]
    return any(_is_secret(arg, classes) for arg in typing.get_args(hint))
