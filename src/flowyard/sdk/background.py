"""Background task runs, both ends: ``Task.apply_async`` (the producer) and running one
claimed run in a task worker.

The producer binds the call's arguments and writes them, with the ids of its ``wait_for``
futures, as one record of the task's result storage (its ``result_storage`` and
serializer, ``$FLOWYARD_HOME/storage`` by default) under ``parameters-<uuid>``; the run's
record points at it. An argument the serializer cannot write is refused before anything
is written or created. The task worker reads that record back from the task's own result
storage (the reference gives only the key: its storage is whatever the API was told, so
it is never used), runs the task (results are always persisted, so that the producer can
read them) and reports each state with its claim token; a failed run's exception is
persisted too, so that ``result()`` re-raises it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import structlog

from flowyard import schemas as s
from flowyard.errors import ApiError, InvalidInput, SerializationError, UntrustedResult
from flowyard.sdk.api import jsonable
from flowyard.sdk.caching import NONE
from flowyard.sdk.context import current_tags, get_flow_run_context
from flowyard.sdk.distributed_futures import PrefectDistributedFuture, background_client
from flowyard.sdk.labels import task_run_document
from flowyard.sdk.result_refs import reference
from flowyard.sdk.results import DefaultSerializer, ResultStore
from flowyard.sdk.task_engine import TaskRunEngine
from flowyard.sdk.task_inputs import RunLinks
from flowyard.states import Failed, State, StateType

if TYPE_CHECKING:
    from flowyard.client import FlowyardClient
    from flowyard.client.log_shipper import LogShipper
    from flowyard.sdk.tasks import Task

log = structlog.get_logger()

PARAMETERS_PREFIX = "parameters-"
LOG_FLUSH_SECONDS = 10.0  # a background run's logs, before its final state is reported


# -- the producer ------------------------------------------------------------------------------


def apply_async(
    task: Task[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    wait_for: Iterable[Any] | None = None,
) -> PrefectDistributedFuture[Any]:
    """Create a Scheduled background run of ``task`` with these arguments; its future."""
    client = background_client()
    bound = task._signature.bind(*args, **kwargs)
    bound.apply_defaults()
    parameters = dict(bound.arguments)
    waits = [_distributed(task, future) for future in wait_for or ()]
    store = task.result_store()
    ref = None
    if parameters or waits:
        data = {"parameters": parameters, "wait_for": [f.task_run_id for f in waits]}
        owner = f"the parameters of a background run of task {task.name!r}"
        try:  # serialized before anything is written
            record = store.write(
                f"{PARAMETERS_PREFIX}{uuid.uuid4().hex}", data, expiration=None, owner=owner
            )
        except SerializationError:
            _name_unserializable(task, store, parameters)
            raise
        ref = s.ResultRef.model_validate(reference(store, record))
    inputs = {name: _upstream_ids(value) for name, value in parameters.items()}
    if waits:
        inputs["wait_for"] = [{"input_type": "task_run", "id": f.task_run_id} for f in waits]
    body = task_run_document(
        s.BackgroundTaskRunCreate,
        {
            "task_key": task.task_key,
            "name": f"{task.name}-{uuid.uuid4().hex[:8]}",
            "parameters": jsonable(parameters, task.fn),
            "parameters_ref": ref,
            "tags": sorted(task.tags | current_tags()),
            "task_version": task.version,
            "task_inputs": {name: ids for name, ids in inputs.items() if ids},
            "caller_flow_run_id": _recorded_flow_run(),
        },
        task=task.task_key,
        exact=("task_key",),  # what task workers claim by
    )
    if body is None:
        raise InvalidInput(f"task {task.name!r} cannot run in the background: see the warning")
    run = client.create_background_task_run(body)
    return PrefectDistributedFuture(run.id, run.name, store=store)


def _recorded_flow_run() -> str | None:
    """The flow run making a background run, when the API knows it (its logs go there)."""
    context = get_flow_run_context()
    return context.flow_run_id if context is not None and context.recorder is not None else None


def _name_unserializable(
    task: Task[..., Any], store: ResultStore, parameters: dict[str, Any]
) -> None:
    """Raise naming the first argument the task's serializer cannot write (the parameters
    as a whole could not be)."""
    for name, value in parameters.items():
        serializer = store.serializer
        if isinstance(serializer, DefaultSerializer):
            serializer = serializer.choose(value)
        try:
            serializer.dumps(value)
        except Exception as exc:
            raise SerializationError(
                f"parameter {name!r} of task {task.name!r} cannot be sent to a task worker: "
                f"the {serializer.type} serializer failed with {type(exc).__name__}: {exc}"
            ) from exc


def _distributed(task: Task[..., Any], future: Any) -> PrefectDistributedFuture[Any]:
    if not isinstance(future, PrefectDistributedFuture):
        raise TypeError(
            f"wait_for of a background run of task {task.name!r} takes futures of background "
            f"runs (from delay or apply_async), not {type(future).__name__}"
        )
    return future


def _upstream_ids(value: Any) -> list[dict[str, str]]:
    """The background runs whose futures are passed in ``value`` (or its items)."""
    if isinstance(value, PrefectDistributedFuture):
        return [{"input_type": "task_run", "id": value.task_run_id}]
    items = value.values() if isinstance(value, dict) else value
    if isinstance(value, dict | list | tuple | set | frozenset):
        return [found for item in items for found in _upstream_ids(item)]
    return []


# -- the task worker's side --------------------------------------------------------------------


class ClaimTakenBack(Exception):
    """Raised when the API refuses a report because the run's claim is no longer ours."""


def run_claimed(
    task: Task[..., Any],
    claimed: s.ClaimedTaskRun,
    client: FlowyardClient,
    shipper: LogShipper | None = None,
) -> None:
    """Run one claimed background run to its final state, reporting with its token; with
    a ``shipper``, its logs go to the flow run that made it (flushed before its end: the
    API takes them only while the run is under way)."""
    run, token = claimed.run, claimed.token
    try:
        _report(client, run.id, token, State(type=StateType.RUNNING), run_count=0)
        state, engine = _execute(task, claimed, shipper)
        if shipper is not None and run.caller_flow_run_id is not None:
            shipper.flush(LOG_FLUSH_SECONDS)
        result = engine.result_ref if engine is not None and state.is_completed() else None
        if not state.is_final():
            state = Failed(data=state.data, message=state.message or "the task did not run")
        if state.is_failed() or state.is_crashed():
            result = _persisted_exception(task, run, state)
        run_count = engine.context.run_count if engine is not None else 0
        _report(client, run.id, token, state, run_count=run_count, result=result)
    except ClaimTakenBack as exc:
        log.warning("task_run_claim_lost", run_id=run.id, reason=str(exc))


def _execute(
    task: Task[..., Any], claimed: s.ClaimedTaskRun, shipper: LogShipper | None = None
) -> tuple[State[Any], TaskRunEngine | None]:
    """Read the parameters and run the task; the state it ended in, and its engine."""
    try:
        stored = _read_parameters(task, claimed.parameters_ref)
        parameters = stored.get("parameters", {})
        waits: list[PrefectDistributedFuture[Any]] = [
            PrefectDistributedFuture(i) for i in stored.get("wait_for", [])
        ]
    except Exception as exc:
        message = f"the parameters of this run cannot be read: {type(exc).__name__}: {exc}"
        return Failed(data=exc, message=message), None
    engine = TaskRunEngine(_persisting(task), (), parameters, wait_for=waits or None)
    engine.context.task_run_id = claimed.run.id
    engine.context.task_run_name = engine.default_name = claimed.run.name
    if claimed.run.caller_flow_run_id is not None:
        engine.context.caller_flow_run_id = claimed.run.caller_flow_run_id
        engine.context.shipper = shipper
    engine.links = RunLinks()  # so that the engine keeps the reference of the result it writes
    return engine.run(), engine


def _read_parameters(task: Task[..., Any], ref: s.ResultRef | None) -> dict[str, Any]:
    """The record the producer wrote, read from the task's own storage by its key."""
    if ref is None:
        return {}
    if not ref.key.startswith(PARAMETERS_PREFIX):
        raise UntrustedResult(f"{ref.key!r} is not the key of a parameters record")
    stored = task.result_store().load(ref.key).value
    if not isinstance(stored, dict):
        raise TypeError(f"the record {ref.key!r} holds no parameters")
    return stored


def _persisting(task: Task[..., Any]) -> Task[..., Any]:
    """The task with its result always persisted; cached only if the task itself caches."""
    options: dict[str, Any] = {"persist_result": True}
    if task.cache_policy is None and task.cache_key_fn is None and task.result_storage_key is None:
        options["cache_policy"] = NONE
    return task.with_options(**options)


def _persisted_exception(
    task: Task[..., Any], run: s.TaskRun, state: State[Any]
) -> dict[str, Any] | None:
    if not isinstance(state.data, BaseException):
        return None
    store = task.result_store()
    owner = f"the exception of background run {run.name!r} of task {task.name!r}"
    try:
        record = store.write(f"exception-{run.id}", state.data, expiration=None, owner=owner)
    except SerializationError:
        log.warning("task_run_exception_not_persisted", run_id=run.id)
        return None
    return reference(store, record)


def _report(
    client: FlowyardClient,
    run_id: str,
    token: str,
    state: State[Any],
    *,
    run_count: int,
    result: dict[str, Any] | None = None,
) -> None:
    body = s.BackgroundStateReport.model_validate(
        {
            "token": token,
            "state": state.type,
            "state_name": state.name,
            "message": state.message,
            "run_count": run_count,
            "result": result,
        }
    )
    try:
        client.report_background_task_run(run_id, body)
    except ApiError as exc:
        if exc.status_code == 409:
            raise ClaimTakenBack(str(exc)) from exc
        raise
