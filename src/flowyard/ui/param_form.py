"""A run form's fields, generated from a flow's parameter JSON schema.

The schema is what ``sdk.parameters.parameter_schema`` writes (pydantic's JSON schema of
the flow function's signature): ``properties`` in signature order, ``required``, defaults,
``$defs`` referred to by ``$ref`` (models, enums), ``anyOf`` with ``null`` for optional
values. Each property becomes a field the page's script reads by its ``data-type``
(``operate.js``): an object with properties a fieldset of fields, an enum a select (its
options' values are JSON, so numbers stay numbers), a boolean a select, an integer or a
number a number input, a string a text input, anything else (lists, unions, free
objects) JSON in a textarea. The server checks the parameters again (``check_parameters``):
the form only helps to fill them in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

MAX_DEPTH = 4  # deeper objects are edited as JSON
MISSING = object()


@dataclass
class FormField:
    path: str  # the field's name in the form: "parameters.a.b" nests
    label: str
    kind: str  # object, enum, boolean, integer, number, string, json (secret: block_pages)
    required: bool
    value: str = ""  # what the input holds at first ("" for none)
    description: str = ""
    choices: list[tuple[str, str]] = field(default_factory=list)  # (JSON value, label)
    children: list[FormField] = field(default_factory=list)
    secret_set: bool = False  # a secret field (kind "secret"): whether a value is stored
    clearable: bool = False  # a stored secret the type does not require: it may be removed
    scope: str = ""  # told apart from same-named fields of the page's other groups (ids)
    suggest: str = ""  # the id of a <datalist> of known values (a text field still takes any)

    @property
    def ident(self) -> str:
        return "-".join(filter(None, ("f", self.scope, self.path.replace(".", "-"))))


def fields(
    schema: dict[str, Any] | None,
    values: dict[str, Any],
    prefix: str = "parameters",
    *,
    values_are_defaults: bool = True,
) -> list[FormField]:
    """The form's fields for ``schema``'s properties, filled with ``values`` or else the
    schema's defaults. ``values_are_defaults``: the server falls back on ``values`` for a
    field left out (a deployment's parameters), so a required field given one is optional
    in the form; otherwise (a block's stored document, replaced whole) it stays required."""
    if not schema:
        return []
    return _properties(
        schema, schema, values, prefix, parent_required=True, depth=0,
        optional_if_given=values_are_defaults,
    )  # fmt: skip


def _properties(
    root: dict[str, Any],
    schema: dict[str, Any],
    values: Any,
    prefix: str,
    *,
    parent_required: bool,
    depth: int,
    optional_if_given: bool,
) -> list[FormField]:
    required = set(schema.get("required", []))
    properties: dict[str, Any] = schema.get("properties", {})
    ordered = sorted(properties.items(), key=lambda item: item[1].get("position", 0))
    given = values if isinstance(values, dict) else {}
    return [
        _field(
            root,
            spec,
            name,
            f"{prefix}.{name}",
            given.get(name, MISSING),
            required=parent_required and name in required,
            depth=depth,
            optional_if_given=optional_if_given,
        )
        for name, spec in ordered
    ]


def _resolve(root: dict[str, Any], spec: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The spec with its ``$ref`` followed and an optional's ``null`` branch dropped, and
    whether ``null`` is allowed."""
    nullable = False
    for _ in range(8):  # refs to refs, bounded
        if "$ref" in spec:
            ref = spec["$ref"]
            target = _lookup(root, ref) if isinstance(ref, str) else None
            merged = {k: v for k, v in spec.items() if k != "$ref"}
            spec = {**(target or {"type": "json"}), **merged}
            continue
        branches = spec.get("anyOf") or spec.get("oneOf")
        if isinstance(branches, list):
            others = [b for b in branches if b != {"type": "null"}]
            nullable = nullable or len(others) < len(branches)
            if len(others) == 1:
                rest = {k: v for k, v in spec.items() if k not in ("anyOf", "oneOf")}
                spec = {**others[0], **rest}
                continue
        all_of = spec.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1:
            rest = {k: v for k, v in spec.items() if k != "allOf"}
            spec = {**all_of[0], **rest}
            continue
        break
    return spec, nullable


def _lookup(root: dict[str, Any], ref: str) -> dict[str, Any] | None:
    if not ref.startswith("#/"):
        return None
    found: Any = root
    for part in ref[2:].split("/"):
        found = found.get(part) if isinstance(found, dict) else None
    return found if isinstance(found, dict) else None


def _field(
    root: dict[str, Any],
    raw: dict[str, Any],
    name: str,
    path: str,
    given: Any,
    *,
    required: bool,
    depth: int,
    optional_if_given: bool,
) -> FormField:
    spec, _nullable = _resolve(root, raw)
    value = given if given is not MISSING else spec.get("default", MISSING)
    required = required and (value is MISSING or not optional_if_given)
    label = str(spec.get("title") or name)
    out = FormField(path, label, "json", required, description=str(spec.get("description", "")))
    kind = spec.get("type")
    if isinstance(spec.get("enum"), list):
        out.kind = "enum"
        out.choices = [(json.dumps(v), str(v)) for v in spec["enum"]]
        out.value = json.dumps(value) if value is not MISSING else ""
    elif kind == "object" and spec.get("properties") and depth < MAX_DEPTH:
        out.kind = "object"
        inner = value if isinstance(value, dict) else {}
        out.children = _properties(
            root, spec, inner, path, parent_required=required, depth=depth + 1,
            optional_if_given=optional_if_given,
        )  # fmt: skip
    elif kind in ("boolean", "integer", "number", "string"):
        out.kind = str(kind)
        if kind == "boolean":
            out.value = "" if value is MISSING else ("true" if value else "false")
        elif value is not MISSING and value is not None:
            out.value = str(value)
    elif value is not MISSING:
        out.value = json.dumps(value, indent=2)
    return out
