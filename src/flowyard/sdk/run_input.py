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


class RunInputMetadata(pydantic.BaseModel):
    """Where a received message came from: its key, its sender, the run it was sent to."""

    key: str
    sender: str | None = None
    receiver: str


class RunInput(pydantic.BaseModel):
    """Input for a paused flow run: subclass it with the fields a person fills in. Also a
    message between flow runs (``send_to``, ``receive``, ``respond``: ``run_messages``)."""

    model_config = pydantic.ConfigDict(extra="forbid")
    _metadata: RunInputMetadata | None = pydantic.PrivateAttr(default=None)

    @property
    def metadata(self) -> RunInputMetadata | None:
        """Set on a received message: its key and sender (None on one made here)."""
        return self._metadata

    def send_to(
        self, flow_run_id: Any, sender: str | None = None, key_prefix: str | None = None
    ) -> Any:
        """Send this input to a flow run (awaitable in an async flow)."""
        from flowyard.sdk.run_messages import send_input

        return send_input(self, flow_run_id, sender=sender, key_prefix=key_prefix)

    def respond(
        self, run_input: Any, sender: str | None = None, key_prefix: str | None = None
    ) -> Any:
        """Send ``run_input`` back to the flow run that sent this one."""
        from flowyard.sdk.run_messages import respond_to

        return respond_to(self, run_input, sender, key_prefix)

    @classmethod
    def with_initial_data(cls, description: str | None = None, **kwargs: Any) -> Any:
        """This model with ``kwargs`` as its fields' defaults (the form shows them filled
        in) and ``description`` (markdown) shown above the input form, as Prefect's."""
        fields: Any = {key: (type(value), value) for key, value in kwargs.items()}
        model: Any = pydantic.create_model(cls.__name__, __base__=cls, **fields)
        if description is not None:
            type.__setattr__(model, "_description_text", description)
        return model

    @classmethod
    def receive(cls, **options: Any) -> Any:
        """The messages of this type sent to a flow run (the current one by default); the
        options are ``receive_input``'s (``timeout``, ``poll_interval``, ``flow_run_id``…)."""
        from flowyard.sdk.run_messages import receive_input

        return receive_input(cls, **options)


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
