"""Persisting a flow's return value (``@flow(persist_result=True, ...)``).

The value is written with the flow's ``result_storage`` and ``result_serializer`` (the
same ones tasks use, ``sdk/results.py``), and where it went is recorded on the flow run,
so that ``flowyard.results.load_result(client.read_flow_run(id))`` reads it back from
any process. A value that cannot be persisted fails the flow run, as in Prefect.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import structlog

from flowyard.errors import FlowyardError
from flowyard.sdk.result_refs import declared, reference
from flowyard.sdk.results import ResultStore, get_serializer, get_storage
from flowyard.states import Failed, State

if TYPE_CHECKING:
    from flowyard.sdk.context import FlowRunContext

log = structlog.get_logger()


def persist_flow_result(flow: Any, state: State[Any], context: FlowRunContext) -> State[Any]:
    """``state``, its value persisted when the flow asks; a Failed state when it cannot be.
    A generator flow's values are streamed to its caller, not persisted."""
    if not flow.persist_result or flow.is_generator or not state.is_completed():
        return state
    storage = declared(get_storage(flow.result_storage))
    store = ResultStore(storage, get_serializer(flow.result_serializer))
    owner = f"flow run {context.flow_run_name!r} of flow {flow.name!r}"
    try:
        record = store.write(uuid.uuid4().hex, state.data, expiration=None, owner=owner)
    except Exception as exc:
        return Failed(data=exc, message=f"Flow run could not persist its result: {exc}")
    if context.client is not None:
        _record(context, reference(store, record))
    return state


def _record(context: FlowRunContext, ref: dict[str, Any]) -> None:
    from flowyard.schemas import ResultRef

    assert context.client is not None
    try:
        context.client.set_flow_run_result(context.flow_run_id, ResultRef.model_validate(ref))
    except FlowyardError as exc:
        log.warning("flow_result_not_recorded", run_id=context.flow_run_id, error=str(exc))
