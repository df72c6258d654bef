"""Variables (Prefect's): named JSON values that flows read — configuration, not secrets
(those are ``secret`` blocks, encrypted at rest)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from flowyard.schemas.base import _UNSTORABLE, Doc, Tags, _bounded_json, _refuse

MAX_VARIABLE_VALUE_LENGTH = 5000
"""Prefect's bound: the value's JSON text, in characters."""
MAX_VARIABLE_NAME_LENGTH = 255
VARIABLE_NAME_PATTERN = r"^[a-z0-9_-]+$"


def _storable_value(value: Any) -> Any:
    """A value JSON carries within the bounds, whose texts every store keeps."""
    _bounded_json(value)
    if len(json.dumps(value)) > MAX_VARIABLE_VALUE_LENGTH:
        raise ValueError(f"Variable value must be less than {MAX_VARIABLE_VALUE_LENGTH} characters")
    stack = [value]
    while stack:  # no NUL nor lone surrogate in any text, keys included
        node = stack.pop()
        if isinstance(node, str):
            _refuse(_UNSTORABLE, node)
        elif isinstance(node, dict):
            stack.extend([*node.keys(), *node.values()])
        elif isinstance(node, list):
            stack.extend(node)
    return value


VariableName = Annotated[
    str,
    Field(min_length=1, max_length=MAX_VARIABLE_NAME_LENGTH, pattern=VARIABLE_NAME_PATTERN),
]
"""Lowercase letters, digits, dashes and underscores, as Prefect's variable names."""
VariableValue = Annotated[
    StrictStr | StrictInt | StrictBool | StrictFloat | dict[str, Any] | list[Any] | None,
    AfterValidator(_storable_value),
]


class VariableCreate(Doc):
    name: VariableName
    value: VariableValue
    tags: Tags = Field(default_factory=list)


class VariableUpdate(Doc):
    """A change to a variable: the fields given (a ``value`` of null sets it to null)."""

    name: VariableName | None = None
    value: VariableValue = None
    tags: Tags | None = None


class Variable(Doc):
    id: str
    name: str
    value: Any
    tags: list[str]
    created: datetime
    updated: datetime
