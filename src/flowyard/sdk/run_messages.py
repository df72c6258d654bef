"""Messages between flow runs, as Prefect's ``prefect.input.run_input``: ``send_input``,
``receive_input``, ``RunInput.send_to`` / ``.receive`` / ``.respond``.

A message is a ``RunInput`` (a plain value travels as an ``AutomaticRunInput`` of its
type) stored on the receiving run under ``<prefix>-<uuid4>``, the prefix being the
type's lowercased class name plus ``-auto`` unless given. A receiver polls the run's
messages under the prefix, oldest first, each once (its keys are excluded afterwards);
after ``timeout`` seconds without one, iteration stops (or ``TimeoutError`` with
``raise_timeout_error=True``). From a flow run, the sender is ``flowyard.flow-run.<id>``,
which ``respond`` answers. The API checks who may write to which run: see
``orchestrator/authority.py``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING, Any

import pydantic

from flowyard import schemas as s
from flowyard.sdk.context import get_flow_run_context
from flowyard.sdk.run_input import AutomaticRunInput, RunInput, input_model

if TYPE_CHECKING:
    from flowyard.client import FlowyardClient

SENDER_PREFIXES = ("flowyard.flow-run.", "prefect.flow-run.")


def send_input(
    run_input: Any, flow_run_id: Any, sender: str | None = None, key_prefix: str | None = None
) -> Any:
    """Send ``run_input`` (a ``RunInput``, or any value pydantic can dump) to a flow run."""
    return _maybe_async(_send, str(flow_run_id), run_input, sender, key_prefix)


def receive_input(
    input_type: Any,
    timeout: float | None = 3600,
    poll_interval: float = 10,
    raise_timeout_error: bool = False,
    exclude_keys: set[str] | None = None,
    key_prefix: str | None = None,
    flow_run_id: Any = None,
    with_metadata: bool = False,
) -> InputReceiver:
    """The messages of type ``input_type`` sent to a flow run (the current one by default):
    iterate over it (``for``/``async for``) or call ``next()``."""
    model = input_model(input_type)
    return InputReceiver(
        model, key_prefix or default_prefix(model), timeout, poll_interval,
        raise_timeout_error, exclude_keys, flow_run_id, with_metadata,
    )  # fmt: skip


def default_prefix(model: type[RunInput]) -> str:
    return f"{model.__name__.lower()}-auto"


class InputReceiver:
    """Prefect's ``GetInputHandler``: each ``next()`` gives the oldest message not yet read."""

    def __init__(
        self,
        model: type[RunInput],
        key_prefix: str,
        timeout: float | None,
        poll_interval: float,
        raise_timeout_error: bool,
        exclude_keys: set[str] | None,
        flow_run_id: Any,
        with_metadata: bool,
    ) -> None:
        self.model = model
        self.key_prefix = key_prefix
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.raise_timeout_error = raise_timeout_error
        self.exclude_keys = set(exclude_keys or ())
        self.flow_run_id = _run_id(flow_run_id)
        self.with_metadata = with_metadata

    def next(self) -> Any:
        """The next message; ``TimeoutError`` after ``timeout`` seconds without one."""
        started = time.monotonic()
        while True:
            found = self._unread()
            if found is not None:
                return self._instance(found)
            if self.timeout is not None and time.monotonic() - started >= self.timeout:
                raise TimeoutError("Timed out waiting for input")
            time.sleep(self.poll_interval)

    def __iter__(self) -> InputReceiver:
        return self

    def __next__(self) -> Any:
        try:
            return self.next()
        except TimeoutError:
            if self.raise_timeout_error:
                raise
            raise StopIteration from None

    def __aiter__(self) -> InputReceiver:
        return self

    async def __anext__(self) -> Any:
        try:
            return await asyncio.to_thread(self.next)
        except TimeoutError:
            if self.raise_timeout_error:
                raise
            raise StopAsyncIteration from None

    def _unread(self) -> s.FlowRunInput | None:
        query = s.FlowRunInputFilter(
            prefix=self.key_prefix, limit=1, exclude_keys=sorted(self.exclude_keys)
        )
        found = _client().filter_flow_run_input(self.flow_run_id, query)
        if not found:
            return None
        self.exclude_keys.add(found[0].key)
        return found[0]

    def _instance(self, message: s.FlowRunInput) -> Any:
        instance = loaded_message(self.model, message)
        if isinstance(instance, AutomaticRunInput) and not self.with_metadata:
            return instance.value
        return instance


def loaded_message(model: type[RunInput], message: s.FlowRunInput) -> RunInput:
    """Prefect's ``load_from_flow_run_input``: the model, with the message's metadata."""
    from flowyard.sdk.run_input import RunInputMetadata

    instance = model.model_validate(message.value)
    instance._metadata = RunInputMetadata(
        key=message.key, sender=message.sender, receiver=message.flow_run_id
    )
    return instance


def respond_to(received: RunInput, answer: Any, sender: str | None, key_prefix: str | None) -> Any:
    """Send ``answer`` to the flow run that sent ``received``."""
    origin = received.metadata.sender if received.metadata is not None else None
    run_id = next(
        (origin[len(p) :] for p in SENDER_PREFIXES if origin and origin.startswith(p)), None
    )
    if not run_id:
        raise RuntimeError("Cannot respond to an input that was not sent by a flow run.")
    return send_input(answer, run_id, sender=sender, key_prefix=key_prefix)


def _send(flow_run_id: str, value: Any, sender: str | None, key_prefix: str | None) -> None:
    message: RunInput
    if isinstance(value, RunInput):
        message = value
    elif isinstance(value, pydantic.BaseModel):  # as its "<Model>RunInput"
        message = input_model(type(value)).model_validate(value.model_dump())
    else:  # a plain value: as its type's AutomaticRunInput
        automatic: Any = input_model(type(value))
        message = automatic(value=value)
    if sender is None:
        context = get_flow_run_context()
        sender = f"flowyard.flow-run.{context.flow_run_id}" if context is not None else None
    key = f"{key_prefix or default_prefix(type(message))}-{uuid.uuid4()}"
    body = s.FlowRunInputCreate(key=key, value=message.model_dump(mode="json"), sender=sender)
    _client().create_flow_run_input(flow_run_id, body)


def _run_id(given: Any) -> str:
    if given is not None:
        return str(given)
    context = get_flow_run_context()
    if context is None:
        raise RuntimeError("flow_run_id must be given outside a flow run")
    return context.flow_run_id


def _client() -> FlowyardClient:
    """The flow run's own client (its run token) inside a run, else the configured API's."""
    context = get_flow_run_context()
    if context is not None and context.client is not None:
        return context.client
    from flowyard.sdk.api import required_client

    return required_client("flow run input needs")


def _maybe_async(fn: Any, *args: Any) -> Any:
    """In an event loop (an async flow), a coroutine to await, as Prefect's calls are."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn(*args)
    return asyncio.to_thread(fn, *args)
