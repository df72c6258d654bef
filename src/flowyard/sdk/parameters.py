"""Flow parameters: a JSON schema of a function's signature, and validation against it.

Both go through one pydantic model built from the signature. Its fields are named
``p0``, ``p1``, … with the parameter names as aliases, so that parameters called
``json`` or ``model_config`` cannot clash with pydantic's own attributes.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from flowyard.errors import ParameterTypeError

if TYPE_CHECKING:  # pydantic is imported on first use, to keep ``import flowyard`` light
    from pydantic import BaseModel
    from pydantic_core import ErrorDetails


_SKIPPED = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def parameter_schema(fn: Callable[..., Any]) -> dict[str, Any]:
    """The JSON schema of ``fn``'s parameters (``properties``, ``required``, defaults)."""
    schema = _model(fn).model_json_schema(by_alias=True)
    schema["title"] = "Parameters"
    schema.pop("additionalProperties", None)
    for position, name in enumerate(schema.get("properties", {})):
        schema["properties"][name]["position"] = position
    return schema


def validate_parameters(fn: Callable[..., Any], params: dict[str, Any]) -> dict[str, Any]:
    """Coerce ``params`` to ``fn``'s signature; raises ``ParameterTypeError`` naming the
    parameter."""
    from pydantic import ValidationError

    model = _model(fn)
    try:
        validated = model.model_validate(params)
    except ValidationError as exc:
        raise ParameterTypeError(_message(exc.errors()[0])) from None
    values = {
        field.alias or name: getattr(validated, name) for name, field in model.model_fields.items()
    }
    return {**values, **(validated.model_extra or {})}


@lru_cache(maxsize=256)
def _model(fn: Callable[..., Any]) -> type[BaseModel]:
    from pydantic import ConfigDict, Field, create_model

    signature = inspect.signature(fn)
    hints = _type_hints(fn)
    fields: dict[str, Any] = {}
    for index, param in enumerate(signature.parameters.values()):
        if param.kind in _SKIPPED:
            continue
        default = ... if param.default is inspect.Parameter.empty else param.default
        field = Field(default, alias=param.name, title=param.name)
        fields[f"p{index}"] = (hints.get(param.name, Any), field)
    takes_kwargs = any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()
    )
    config = ConfigDict(extra="allow" if takes_kwargs else "forbid", arbitrary_types_allowed=True)
    model: type[BaseModel] = create_model("Parameters", __config__=config, **fields)
    return model


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """Resolved annotations; unresolvable ones (a missing name) fall back to Any."""
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:
        raw = getattr(fn, "__annotations__", {})
        return {k: v for k, v in raw.items() if not isinstance(v, str)}


def _message(error: ErrorDetails) -> str:
    loc = error["loc"]
    name = ".".join(str(part) for part in loc) if loc else "?"
    if error["type"] == "missing" and len(loc) == 1:
        return f"parameter {name!r}: missing (required)"
    if error["type"] == "extra_forbidden":
        return f"parameter {name!r}: unknown parameter"
    return f"parameter {name!r}: {error['msg']}"
