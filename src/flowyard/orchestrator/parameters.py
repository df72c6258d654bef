"""Checking a run's parameters against its deployment's JSON schema, before anything is queued."""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator

from flowyard.errors import InvalidInput


def check_parameters(
    schema: dict[str, Any] | None, parameters: dict[str, Any], *, partial: bool = False
) -> None:
    """Raise ``InvalidInput`` naming the first parameter that is unknown, missing or mistyped.

    ``partial`` (a deployment's defaults) allows required parameters to be given later, per run.
    """
    if not schema:
        return
    if partial:
        schema = {key: value for key, value in schema.items() if key != "required"}
    _check(schema, Draft202012Validator(schema), parameters)


def check_parameter_sets(schema: dict[str, Any] | None, sets: list[dict[str, Any]]) -> None:
    """``check_parameters`` for each set of a bulk create, the schema's validator built once;
    the error names the set's index (``parameter_sets[i]: parameter 'n': ...``)."""
    if not schema:
        return
    validator = Draft202012Validator(schema)
    for index, parameters in enumerate(sets):
        try:
            _check(schema, validator, parameters)
        except InvalidInput as exc:
            raise InvalidInput(f"parameter_sets[{index}]: {exc}") from exc


def _check(
    schema: dict[str, Any], validator: Draft202012Validator, parameters: dict[str, Any]
) -> None:
    properties = schema.get("properties", {})
    unknown = sorted(set(parameters) - set(properties))
    if unknown:
        known = ", ".join(sorted(properties)) or "none"
        raise InvalidInput(f"unknown parameter {unknown[0]!r} (the flow takes: {known})")
    errors = sorted(validator.iter_errors(parameters), key=lambda e: list(e.path))
    if not errors:
        return
    error = errors[0]
    if error.validator == "required":
        missing = next((name for name in schema.get("required", []) if name not in parameters), "?")
        raise InvalidInput(f"parameter {missing!r} is required")
    name = error.path[0] if error.path else "?"
    raise InvalidInput(f"parameter {name!r}: {_json_spelling(error.message, error.instance)}")


def _json_spelling(message: str, instance: Any) -> str:
    """``message`` with the offending value as JSON spells it (``true``, not ``True``)."""
    shown = repr(instance)
    if not message.startswith(shown):
        return message
    try:
        return json.dumps(instance) + message[len(shown) :]
    except (TypeError, ValueError):
        return message
