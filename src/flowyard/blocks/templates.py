"""Base job templates: a pool's variables (a JSON schema) and a job configuration with
``{{ variable }}`` placeholders.

A placeholder that is the whole string takes the variable's value with its type (a dict
stays a dict); a placeholder inside a longer string is formatted into it. All pure.
"""

from __future__ import annotations

import re
from typing import Any

from jsonschema import Draft202012Validator
from pydantic import BaseModel

from flowyard.blocks.references import REFERENCE
from flowyard.errors import InvalidInput

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def base_job_template(variables: type[BaseModel]) -> dict[str, Any]:
    """The default template of a worker type: every variable, placed by its own name."""
    schema = variables.model_json_schema()
    configuration = {name: f"{{{{ {name} }}}}" for name in schema.get("properties", {})}
    return {"job_configuration": configuration, "variables": schema}


def merge_variables(
    template: dict[str, Any], *layers: dict[str, Any], complete: bool = False
) -> dict[str, Any]:
    """Schema defaults overridden by each layer in turn (deployment, then run).

    A variable the schema does not declare, or a value of the wrong type, is an error, never
    silently dropped or passed on to fail later in the infrastructure. With ``complete``
    (a run about to be queued), a required variable without a value is an error too.
    """
    schema: dict[str, Any] = template.get("variables", {})
    properties: dict[str, Any] = schema.get("properties", {})
    merged = {name: spec["default"] for name, spec in properties.items() if "default" in spec}
    for layer in layers:
        unknown = sorted(set(layer) - set(properties))
        if unknown and properties:
            known = ", ".join(sorted(properties)) or "none"
            raise InvalidInput(f"unknown job variable {unknown[0]!r} (this pool knows: {known})")
        for name, value in layer.items():
            if name in properties:
                check_variable(schema, name, value)
        merged.update(layer)
    if complete:
        missing = [name for name in schema.get("required", []) if merged.get(name) is None]
        if missing:
            raise InvalidInput(f"job variable {missing[0]!r} is required by this pool")
    return merged


def check_variable(schema: dict[str, Any], name: str, value: Any) -> None:
    """``value`` must match the variable's own schema (its ``$defs`` resolved from the pool's).

    A ``{{ block.TYPE/NAME }}`` reference stands for a document resolved at launch, so it
    is not held against the type it will be replaced by."""
    spec = {**schema["properties"][name], "$defs": schema.get("$defs", {})}
    errors = Draft202012Validator(spec).iter_errors(value)
    error = next((e for e in errors if not _is_reference(e.instance)), None)
    if error is not None:
        where = "".join(f"[{part!r}]" for part in error.absolute_path)
        raise InvalidInput(f"job variable {name!r}{where}: {error.message}")


def render_template(value: Any, variables: dict[str, Any]) -> Any:
    """Replace placeholders in ``value`` (nested dicts and lists included)."""
    if isinstance(value, dict):
        return {key: render_template(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [render_template(item, variables) for item in value]
    if not isinstance(value, str):
        return value
    whole = PLACEHOLDER.fullmatch(value.strip())
    if whole:
        return variables.get(whole.group(1))
    return PLACEHOLDER.sub(lambda m: _inline(variables.get(m.group(1))), value)


def render_job_configuration(template: dict[str, Any], *layers: dict[str, Any]) -> dict[str, Any]:
    """The job configuration a worker launches: template rendered with the merged variables."""
    variables = merge_variables(template, *layers)
    configuration = template.get("job_configuration") or {}
    rendered: dict[str, Any] = render_template(configuration, variables)
    return rendered


def _is_reference(value: Any) -> bool:
    return isinstance(value, str) and REFERENCE.fullmatch(value.strip()) is not None


def _inline(value: Any) -> str:
    return "" if value is None else str(value)
