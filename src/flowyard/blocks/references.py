"""``{{ block.TYPE/NAME }}`` and ``{{ block.TYPE/NAME.field }}`` in job configurations.

Found after the variables are rendered (so a deployment's job variable may hold one too)
and replaced by the block's document, or one of its fields, when a run is launched. Pure:
the caller fetches the documents (``needed``) and passes them to ``resolve``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from flowyard.errors import InvalidInput

REFERENCE = re.compile(
    r"\{\{\s*block\.(?P<slug>[a-z0-9][a-z0-9\-]*)/(?P<name>[A-Za-z0-9][A-Za-z0-9_\-]*)"
    r"(?:\.(?P<field>[A-Za-z_][A-Za-z0-9_]*))?\s*\}\}"
)


def needed(value: Any) -> set[str]:
    """Every ``TYPE/NAME`` that ``value`` (nested dicts and lists included) refers to."""
    found: set[str] = set()
    _walk(value, lambda text: found.update(f"{m['slug']}/{m['name']}" for m in _matches(text)))
    return found


def resolve(value: Any, documents: Mapping[str, Mapping[str, Any]]) -> Any:
    """Replace each reference by its block document (``TYPE/NAME``) or field."""
    if isinstance(value, dict):
        return {key: resolve(item, documents) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, documents) for item in value]
    if not isinstance(value, str) or "block." not in value:
        return value
    whole = REFERENCE.fullmatch(value.strip())
    if whole:
        return _lookup(whole, documents)
    return REFERENCE.sub(lambda m: _inline(_lookup(m, documents)), value)


def _lookup(match: re.Match[str], documents: Mapping[str, Mapping[str, Any]]) -> Any:
    ref = f"{match['slug']}/{match['name']}"
    if ref not in documents:
        raise InvalidInput(f"block {ref!r} is not available")
    document = documents[ref]
    field = match["field"]
    if field is None:
        return dict(document)
    if field not in document:
        raise InvalidInput(f"block {ref!r} has no field {field!r}")
    return document[field]


def _matches(text: str) -> list[re.Match[str]]:
    return list(REFERENCE.finditer(text))


def _walk(value: Any, visit: Callable[[str], None]) -> None:
    if isinstance(value, dict):
        for item in value.values():
            _walk(item, visit)
    elif isinstance(value, list):
        for item in value:
            _walk(item, visit)
    elif isinstance(value, str):
        visit(value)


def _inline(value: Any) -> str:
    return "" if value is None else str(value)
