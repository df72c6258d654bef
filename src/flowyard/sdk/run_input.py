"""Typed input a person gives a paused flow run (``wait_for_input=``), as Prefect's.

``RunInput`` is a pydantic model; a flow waits for one (or for any pydantic model, or
any type pydantic knows: ``int``, ``list[str]``...) with ``pause_flow_run(wait_for_input=
T)`` or ``suspend_flow_run(wait_for_input=T)``. The flow sends T's JSON schema with its
pause; the API checks the input a resume gives against it; the flow gets back a T (for a
plain type, the value itself).
"""

from __future__ import annotations

from typing import Any

import pydantic


class RunInput(pydantic.BaseModel):
    """Input for a paused flow run: subclass it with the fields a person fills in."""

    model_config = pydantic.ConfigDict(extra="forbid")


class AutomaticRunInput(RunInput):
    """The input for a plain type: one field, ``value`` (of that type)."""

    value: Any


def input_model(wanted: Any) -> type[RunInput]:
    """The ``RunInput`` model that carries ``wanted`` (a model, or a type pydantic knows)."""
    if isinstance(wanted, type) and issubclass(wanted, RunInput):
        return wanted
    name = getattr(wanted, "__name__", None) or type(wanted).__name__
    if isinstance(wanted, type) and issubclass(wanted, pydantic.BaseModel):
        bases: Any = (wanted, RunInput)  # named as Prefect names it: "<Model>RunInput"
        made: type[RunInput] = pydantic.create_model(f"{name}RunInput", __base__=bases)
        return made
    field: Any = (wanted, ...)
    automatic: type[RunInput] = pydantic.create_model(
        f"{name}AutomaticRunInput", __base__=AutomaticRunInput, value=field
    )
    return automatic


def input_schema(model: type[RunInput]) -> dict[str, Any]:
    return model.model_json_schema()


def loaded(model: type[RunInput], data: dict[str, Any]) -> Any:
    """The flow's answer: the model built from ``data``, or its ``value`` for a plain type."""
    instance = model.model_validate(data)
    if isinstance(instance, AutomaticRunInput):
        return instance.value
    return instance
