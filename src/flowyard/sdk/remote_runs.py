"""Task runs executed in another process (a Dask worker): what travels with each one, and
running it there.

The flow run's process resolves the task's inputs (its upstream futures are done by
then) and sends a ``RemoteCall``: the task, its resolved arguments, the task run's id,
name, tags and graph links, and ``RunAccess`` — the API's URL and a token that acts for
this flow run only. The worker builds a flow-run context of its own from them, so that
the task run's records and logs reach the API as the flow run's whatever the worker
process's environment holds (no credential is read from it). The final state travels
back; a failed run's exception keeps its traceback (``tblib``), so that ``result()``
raises with the remote frames.

The task run's record and its log records travel back with its state (``RemoteOutcome``)
and the flow's process ships them with its own, in batches, as the thread runner does:
a short task run costs the worker no request to the API. The logs of a run that lasts
are shipped from the worker while it runs (``remote_logs``).
"""

from __future__ import annotations

import contextvars
import pickle
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from flowyard.sdk.context import FlowRunContext, flow_run_scope, get_task_run_context
from flowyard.sdk.remote_logs import CarriedLogs
from flowyard.sdk.remote_parcels import Parcel
from flowyard.sdk.task_engine import TaskRunEngine
from flowyard.sdk.task_inputs import PARENTS, TaskInputs
from flowyard.states import State

if TYPE_CHECKING:
    from flowyard.client import FlowyardClient
    from flowyard.client.log_shipper import LogShipper
    from flowyard.schemas import LogCreate, TaskRunCreate, TaskRunUpdate
    from flowyard.sdk.results import ResultStorage, ResultStore
    from flowyard.sdk.tasks import Task

RUN_TOKEN_PREFIX = "fyrt_"  # orchestrator.run_tokens.PREFIX: a credential for one run
MINTED_TTL_SECONDS = 6 * 3600.0  # the API's longest; a person's key is never sent instead


@dataclass(frozen=True)
class RunAccess:
    """How a remote task run reaches the API as its flow run (no API: everything local)."""

    flow_run_id: str
    flow_run_name: str
    api_url: str | None = None
    token: str | None = field(default=None, repr=False)
    max_request_bytes: int = 0
    parameters: dict[str, Any] = field(default_factory=dict)


LARGE_RESULT_BYTES = 8 * 1024 * 1024
"""Results bigger than this (pickled) travel back through the flow's result storage."""
MAX_LARGE_RESULT_BYTES = 1024 * 1024 * 1024


@dataclass(frozen=True)
class LargeResults:
    """Where a result too large to travel back with its state is written: the flow's
    result storage, signed with a key made for the flow run (the flow's process checks it
    before it unpickles the result)."""

    storage: ResultStorage
    signing_key: bytes = field(repr=False)
    threshold: int = LARGE_RESULT_BYTES

    def store(self) -> ResultStore:
        from flowyard.sdk.results import PickleSerializer, ResultStore

        return ResultStore(self.storage, PickleSerializer(), signing_key=self.signing_key)


def check_result_limit(limit: int) -> int:
    if not 0 < limit <= MAX_LARGE_RESULT_BYTES:
        raise ValueError(f"large_result_bytes must be between 1 and {MAX_LARGE_RESULT_BYTES}")
    return limit


@dataclass
class RemoteCall:
    """One task run, ready to run anywhere: its inputs resolved, its identity fixed."""

    parcel: Parcel  # the task, its access, its result storage: shared, pickled once
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    task_run_id: str
    task_run_name: str
    tags: frozenset[str]
    task_inputs: TaskInputs
    log_prints: bool = False  # the flow's ``log_prints``, for a task that does not say


class RunTokens:
    """The token remote task runs of one flow run carry: the engine's own run token (read
    each time, as its heartbeat renews it), or one minted for this run when the flow was
    called with a person's key (which never leaves the flow's process)."""

    def __init__(self, client: FlowyardClient | None, flow_run_id: str) -> None:
        self._client, self._run_id = client, flow_run_id
        self._minted: str | None = None

    def current(self) -> str | None:
        client = self._client
        if client is None or client.api_key is None:  # no API, or one without keys
            return None
        if client.api_key.startswith(RUN_TOKEN_PREFIX):
            return client.api_key
        if self._minted is None:
            self._minted = client.create_run_token(self._run_id, ttl_seconds=MINTED_TTL_SECONDS)
        return self._minted


def access_for(flow_run: FlowRunContext, tokens: RunTokens) -> RunAccess:
    client = flow_run.client if flow_run.reporter.records else None
    return RunAccess(
        flow_run_id=flow_run.flow_run_id,
        flow_run_name=flow_run.flow_run_name,
        api_url=client.api_url if client is not None else None,
        token=tokens.current() if client is not None else None,
        max_request_bytes=client.max_request_bytes if client is not None else 0,
        parameters=flow_run.parameters,
    )


def prepare(
    engine: TaskRunEngine, context: contextvars.Context, parcels: Callable[[Task[..., Any]], Parcel]
) -> RemoteCall | None:
    """The call to send, its inputs resolved here; None when an upstream did not complete
    (the run then ends NotReady where it is, without travelling)."""
    if context.run(engine._resolve_inputs) is None:
        return None
    inputs = dict(engine.task_inputs)
    caller = context.run(get_task_run_context)  # a task submitted from a task
    if engine.links is not None and caller is not None and caller.task_run_id:
        inputs[PARENTS] = [{"input_type": "task_run", "id": caller.task_run_id}]
    from flowyard.sdk.context import current_tags
    from flowyard.sdk.logs import log_prints_enabled

    flow_tags = engine.flow_run.tags if engine.flow_run is not None else frozenset()
    return RemoteCall(
        parcel=parcels(engine.task),
        args=tuple(engine.args),
        kwargs=dict(engine.kwargs),
        task_run_id=engine.context.task_run_id or str(uuid.uuid4()),
        task_run_name=engine.default_name,
        tags=context.run(current_tags) | flow_tags,
        task_inputs=inputs,
        log_prints=context.run(log_prints_enabled),
    )


class _RemoteEngine(TaskRunEngine):
    """A task run whose inputs were resolved, and graph links found, in the flow's process."""

    given_inputs: TaskInputs = {}
    flow_log_prints = False

    def _resolve_inputs(self) -> dict[str, Any] | None:
        resolved = super()._resolve_inputs()
        self.task_inputs = dict(self.given_inputs)
        return resolved

    def _log_prints(self) -> bool:
        own = self.task.log_prints
        return own if own is not None else self.flow_log_prints


@dataclass
class RemoteOutcome:
    """What travels back: the final state, and the records and logs to ship for it."""

    state: State[Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    logs: list[LogCreate] = field(default_factory=list)
    stored_as: str | None = None  # the key of a large result in the flow's result storage


class CarriedReporter:
    """Keeps a remote task run's records, to travel back with its state. One that must be
    in the API at once (``wait``: a subflow's parent) is sent from here as well."""

    records = True

    def __init__(self, client: FlowyardClient) -> None:
        self._client = client
        self.kept: dict[str, dict[str, Any]] = {}

    def start_task_run(self, body: TaskRunCreate, *, wait: bool = False) -> str | None:
        from flowyard.sdk.reporter import _record

        record = _record(body)
        self.kept[record["id"]] = record
        if wait:
            self._client.upsert_task_runs([record])
        return str(record["id"])

    def finish_task_run(self, task_run_id: str, body: TaskRunUpdate) -> None:
        from flowyard.sdk.reporter import _finished

        record = self.kept.get(task_run_id)
        if record is None:  # not started here (cannot happen for a remote run): say so now
            self._client.set_task_run_state(task_run_id, body)
        else:
            self.kept[task_run_id] = _finished(record, body)

    def flush(self, timeout: float | None = None) -> bool:
        return True


def run_remote(call: RemoteCall) -> RemoteOutcome:
    """Run ``call`` to its final state in this process, as its flow run; its records and
    logs come back with the state."""
    access = call.parcel.access
    client = _client(access)
    context, logs = _context(access, client, call.tags)
    engine = _RemoteEngine(call.parcel.task, call.args, call.kwargs, flow_run=context)
    engine.given_inputs, engine.flow_log_prints = call.task_inputs, call.log_prints
    engine.context.task_run_id = call.task_run_id
    engine.context.task_run_name = engine.default_name = call.task_run_name
    try:
        with flow_run_scope(context):
            state = engine.run()
    finally:
        kept_logs = logs.end() if logs is not None else []
    outcome = RemoteOutcome(_portable(state), stored_as=_store_large(call, state))
    if isinstance(context.reporter, CarriedReporter):
        outcome.records = list(context.reporter.kept.values())
    outcome.logs = kept_logs
    return outcome


_clients: OrderedDict[tuple[str, str | None, int], FlowyardClient] = OrderedDict()
_clients_lock = threading.Lock()
KEPT_CLIENTS = 8  # a worker serves a few flow runs at a time; their tokens change slowly


def _client(access: RunAccess) -> FlowyardClient | None:
    """This worker process's client for ``access`` (kept: making one per task run costs
    more than most tasks), the least recently used dropped beyond ``KEPT_CLIENTS``."""
    if access.api_url is None:
        return None
    from flowyard.client import FlowyardClient

    key = (access.api_url, access.token, access.max_request_bytes)
    with _clients_lock:
        client = _clients.pop(key, None) or FlowyardClient(
            access.api_url, access.token, max_request_bytes=access.max_request_bytes
        )
        _clients[key] = client
        while len(_clients) > KEPT_CLIENTS:
            _clients.popitem(last=False)  # not closed: a task run may be using it still
    return client


def _context(
    access: RunAccess, client: FlowyardClient | None, tags: frozenset[str]
) -> tuple[FlowRunContext, CarriedLogs | None]:
    from flowyard.sdk.reporter import LocalReporter

    logs = CarriedLogs(client) if client is not None else None
    context = FlowRunContext(
        flow_run_id=access.flow_run_id,
        flow_run_name=access.flow_run_name,
        reporter=CarriedReporter(client) if client is not None else LocalReporter(),
        client=client,
        shipper=cast("LogShipper", logs),  # only ``put`` is used
        echo_logs=client is None,  # records go to the API; nobody reads a worker's stderr
        parameters=access.parameters,
        tags=tags,
    )
    return context, logs


SMALL = (int, float, bool, type(None))


def _store_large(call: RemoteCall, state: State[Any]) -> str | None:
    """Write a completed run's result to the flow's result storage when it is too large to
    travel back (its state then travels without it); the key, or None."""
    large = call.parcel.large_results
    if large is None or not state.is_completed() or isinstance(state.data, SMALL):
        return None
    try:
        size = len(pickle.dumps(state.data, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:  # the engine's own pickling says what is wrong
        return None
    if size <= large.threshold:
        return None
    key = f"remote-result-{call.task_run_id}"
    owner = f"task run {call.task_run_name!r}"
    large.store().write(key, state.data, expiration=None, owner=owner)
    state.data = None
    return key


def _portable(state: State[Any]) -> State[Any]:
    """``state`` with its exception's traceback made picklable, to travel back."""
    if isinstance(state.data, BaseException):
        from tblib import pickling_support

        pickling_support.install(state.data)
    return state
