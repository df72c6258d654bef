"""``--param KEY=VALUE`` read by the flow's parameter schema.

A parameter that takes only text keeps the value as typed (``label=123`` is the string
"123", ``label=true`` the string "true"); any other parameter reads the value as JSON
(``n=3``, ``flag=true``, ``ids=[1,2]``, ``opts={"a":1}``), and keeps the text when it is
not JSON, so that the server's check names what is wrong. With no schema, or a parameter
the schema does not name, the value is read as JSON when it parses.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

HELP = (
    "Parameter value, repeatable. A text (str) parameter takes VALUE as typed; "
    'others read it as JSON: 3, true, [1,2], {"a":1}.'
)

_JSON_TYPES = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}


def parse_parameters(
    items: Sequence[str], schema: dict[str, Any] | None, what: str = "--param"
) -> dict[str, Any]:
    """The ``KEY=VALUE`` pairs of ``items`` as parameters, each value read by its schema."""
    properties = (schema or {}).get("properties", {})
    result: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=what)
        types = accepted_types(properties[key], schema or {}) if key in properties else None
        result[key] = read_value(raw, types)
    return result


def read_value(raw: str, types: set[str] | None) -> Any:
    """``raw`` as a parameter accepting JSON ``types`` (None: unknown) would take it."""
    if types is not None and "string" in types and not types - {"string", "null"}:
        return raw
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    if types is None or "string" not in types:
        return value
    return value if _fits(value, types) else raw


def accepted_types(prop: dict[str, Any], schema: dict[str, Any]) -> set[str] | None:
    """The JSON types a property's schema allows; None when it does not say (any value)."""
    ref = prop.get("$ref")
    if isinstance(ref, str) and ref.startswith(("#/$defs/", "#/definitions/")):
        section, name = ref[2:].split("/", 1)
        return accepted_types(schema.get(section, {}).get(name, {}), schema)
    declared = prop.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return set(declared)
    branches = prop.get("anyOf") or prop.get("oneOf")
    if not branches:
        return None
    found: set[str] = set()
    for branch in branches:
        types = accepted_types(branch, schema)
        if types is None:
            return None
        found |= types
    return found


def _fits(value: Any, types: set[str]) -> bool:
    kind = _JSON_TYPES.get(type(value))
    if kind == "integer" and "number" in types:
        return True
    return kind in types
