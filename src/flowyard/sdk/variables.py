"""``Variable`` (Prefect's ``prefect.variables.Variable``): named JSON values kept by the
server, read by flows for their configuration.

    Variable.set("batch_size", 500, tags=["etl"])
    size = Variable.get("batch_size", default=100)
    Variable.unset("batch_size")

As Prefect's, each call returns a coroutine to await in async code (an async flow or
task, or a running event loop outside any run); ``aget``/``aset``/``aunset`` always do.
Inside a flow run the run's own client (its run token) is used, which may read variables
but not write them (``orchestrator/api/variables.py`` says why); elsewhere, the configured
API's key.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, Field

from flowyard import schemas as s
from flowyard.client import FlowyardClient
from flowyard.errors import ApiError
from flowyard.sdk.context import get_flow_run_context
from flowyard.states import in_async_context


def _client() -> FlowyardClient:
    context = get_flow_run_context()
    if context is not None and context.client is not None:
        return context.client
    from flowyard.sdk.api import required_client

    return required_client("variables need")


def _dispatch(call: Any, *args: Any) -> Any:
    return asyncio.to_thread(call, *args) if in_async_context() else call(*args)


class Variable(BaseModel):
    """A variable as ``set`` leaves it."""

    name: str
    value: Any = None
    tags: list[str] = Field(default_factory=list)

    @classmethod
    def get(cls, name: str, default: Any = None) -> Any:
        """The variable's value, or ``default`` when there is no variable of that name."""
        return _dispatch(_get, name, default)

    @classmethod
    def set(
        cls, name: str, value: Any, tags: list[str] | None = None, overwrite: bool = False
    ) -> Any:
        """Create the variable; one that exists is changed only with ``overwrite=True``
        (else ``ValueError``, as Prefect's)."""
        return _dispatch(_set, name, value, tags, overwrite)

    @classmethod
    def unset(cls, name: str) -> Any:
        """Delete the variable: True, or False when there was none."""
        return _dispatch(_unset, name)

    @classmethod
    async def aget(cls, name: str, default: Any = None) -> Any:
        return await asyncio.to_thread(_get, name, default)

    @classmethod
    async def aset(
        cls, name: str, value: Any, tags: list[str] | None = None, overwrite: bool = False
    ) -> Variable:
        return await asyncio.to_thread(_set, name, value, tags, overwrite)

    @classmethod
    async def aunset(cls, name: str) -> bool:
        return await asyncio.to_thread(_unset, name)


def _get(name: str, default: Any) -> Any:
    found = _client().read_variable(name)
    return default if found is None else found.value


def _set(name: str, value: Any, tags: list[str] | None, overwrite: bool) -> Variable:
    api = _client()
    try:
        made = api.create_variable(s.VariableCreate(name=name, value=value, tags=tags or []))
    except ApiError as exc:
        if exc.status_code != 409:
            raise
        if not overwrite:
            raise ValueError(
                f"Variable {name!r} already exists. Use `overwrite=True` to update it."
            ) from None
        made = api.update_variable(name, s.VariableUpdate(value=value, tags=tags or []))
    return Variable(name=made.name, value=made.value, tags=made.tags)


def _unset(name: str) -> bool:
    try:
        _client().delete_variable(name)
    except ApiError as exc:
        if exc.status_code == 404:
            return False
        raise
    return True
